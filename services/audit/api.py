"""Audit HTTP API (versioned under /v1): histories, as-of budgets, verification, KPIs, replay.

A person is the pair (council, person_id): every read is of the caller's council, so the
same person id in another council is another person, never seen from here (ADR 16).

Who may call what:
- a person's history, budget, timeline and verification: any staff role of the person's
  council (care_manager, team_manager, panel, finance, auditor, operations), and the
  person or their representative for their own person_id; anyone else gets 404;
- KPIs and the caseload (people by stage, team and key worker): staff roles, over their
  own council's people;
- verification of every chain of the council: auditor, operations;
- the projections' digest: auditor, operations, of their own council;
- replays: operations, of their own council (a council this deployment does not serve: 403);
- a council's operations history (`operations:<council>`: who redelivered events or
  re-drove dead letters, and why): auditor, operations.
- tamper findings (tamper_api.py): auditor and operations of the council read them; an
  auditor acknowledges one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.events import OPERATIONS_SUBJECT_PREFIX
from contracts.money import Pence
from contracts.vocabulary import CITIZEN_ROLES, STAFF_ROLES, Role
from servicekit import clock
from servicekit.app import create_service_app, runtime_from
from servicekit.auth import Actor, CurrentActor, require_role
from servicekit.dates import RecordDate
from servicekit.pagination import Cursor, Limit, Page
from servicekit.policies import policy_for
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.audit import asof, handlers, tamper, tamper_api
from services.audit.consumer import register
from services.audit.db import AuditUnitOfWork, metadata
from services.audit.domain import (
    BudgetHistory,
    CaseloadEntry,
    CaseloadStage,
    ChainReport,
    GroupBy,
    KpiGroup,
    KpiResult,
    PersonNotFound,
    StoredEvent,
    as_utc,
)
from services.audit.returns import (
    CLD_FIELDS,
    CLD_SPECIFICATION,
    Quarter,
    ReturnRequestInvalid,
    la_code_for,
    to_csv,
)
from services.audit.schemas import KPI_GROUP_CURSOR, PERSON_CURSOR, SEQ_CURSOR
from services.audit.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# A person's opaque id, `policy:<council>` (the chain of a council's PolicyAdopted events)
# or `operations:<council>` (its operators' actions, OperatorActionRecorded)
# or `tamper:<council>` (audit's findings about the council's store, tamper.py).
POLICY_CHAIN_PREFIX = "policy:"
OPERATIONS_CHAIN_PREFIX = OPERATIONS_SUBJECT_PREFIX
COUNCIL_CHAIN_PREFIXES = (POLICY_CHAIN_PREFIX, OPERATIONS_CHAIN_PREFIX, tamper.TAMPER_CHAIN_PREFIX)
AUDITORS_ONLY_CHAINS = (OPERATIONS_CHAIN_PREFIX, tamper.TAMPER_CHAIN_PREFIX)
"""Chains about the council's records, not a person: read by auditors and operations."""
PERSON_ID_PATTERN = (
    r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,63}|(?:policy|tamper):[a-z][a-z0-9_]{0,56}"
    r"|operations:[a-z][a-z0-9_]{0,52})$"
)
MAX_BAD_LISTED = 200

router = APIRouter(prefix="/v1", tags=["audit"])


async def _runtime(request: Request) -> ServiceRuntime[AuditUnitOfWork]:
    """The app's runtime; async, because FastAPI runs a plain function dependency in a
    worker thread, a hand-off that cost every request a share of its time."""
    return runtime_from(request)


Runtime = Annotated[ServiceRuntime[AuditUnitOfWork], Depends(_runtime)]


def replays_from(request: Request) -> handlers.ReplayService:
    """FastAPI dependency: the replay service of the app serving this request."""
    service: handlers.ReplayService = request.app.state.replays
    return service


ReplayDep = Annotated[handlers.ReplayService, Depends(replays_from)]

PERSON_READERS = (*sorted(STAFF_ROLES), *sorted(CITIZEN_ROLES))
CHAIN_AUDITORS = (Role.AUDITOR, Role.OPERATIONS)
KPI_READERS = tuple(sorted(STAFF_ROLES))
CASELOAD_READERS = tuple(sorted(STAFF_ROLES))
FilterText = Annotated[str | None, Query(min_length=1, max_length=200)]


# --- models --------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class HistoryItem(_Out):
    seq: int
    event_id: str
    type: str
    name: str = Field(description="The short name of the type, e.g. budget-issued.")
    time: datetime
    correlation_id: str
    causation_id: str | None
    policy_version: str | None
    actor: str | None = Field(
        default=None,
        description="Who made the change (role:user_id); none for a reaction to another event.",
    )
    data: dict[str, Any]
    prev_hash: str
    hash: str


class TimelineItem(_Out):
    seq: int
    time: datetime
    kind: str
    ref_id: str | None
    amount_pence: Pence | None
    on_date: date | None
    summary: str


class AssessmentOut(_Out):
    assessment_id: str
    status: str
    client_group: str | None
    community_based: bool | None
    team: str | None
    key_worker_id: str | None
    completed_by: str | None
    domain_levels: dict[str, int] | None = Field(description="Validated levels by domain.")
    adjustments: int
    significant_informal_support: bool | None
    needs_24_7: bool | None
    carer_support_weekly_pence: Pence | None
    flagged_risks: int
    validated_by: str | None
    validated_at: datetime | None
    policy_version: str | None
    updated_at: datetime | None


class BudgetRevisionOut(_Out):
    budget_id: str
    revision: int
    stage: str
    weekly_pence: Pence
    annual_pence: Pence
    points: int
    scale: str
    ceiling_weekly_pence: Pence | None
    ceiling_exception: bool
    revision_reason: str | None
    agreed_by: str
    agreed_by_role: str
    issued_at: datetime
    policy_version: str
    current: bool


class PlanOut(_Out):
    plan_id: str
    status: str
    budget_id: str | None
    plan_version: int | None
    weekly_pence: Pence | None
    annual_pence: Pence | None
    one_off_pence: Pence | None
    contingency_weekly_pence: Pence | None
    lines: int | None
    request_for_more: bool | None
    signed_off_by: str | None
    signed_off_by_role: str | None
    signed_off_at: datetime | None
    first_review_on: date | None
    returned_reasons: list[str]
    updated_at: datetime | None


class DeploymentPartOut(BaseModel):
    option: str
    annual_pence: Pence


class DeploymentOut(BaseModel):
    deployment_id: str
    plan_id: str
    parts: list[DeploymentPartOut]
    gross_annual_pence: Pence
    contribution_annual_pence: Pence
    net_annual_pence: Pence
    audit_tier: str
    set_up_at: datetime
    agreement_signed_on: date | None
    suspended: bool
    suspended_reason: str | None


class ScheduleOut(_Out):
    schedule_id: str
    deployment_id: str
    option: str
    frequency: str
    total_pence: Pence
    instalments: int
    first_due_on: date


class PaymentOut(_Out):
    payment_id: str
    schedule_id: str
    deployment_id: str
    instalment_number: int
    option: str
    amount_pence: Pence
    due_on: date
    released_at: datetime


class PaymentsOut(BaseModel):
    count: int
    total_pence: Pence
    items: list[PaymentOut]


class ClawbackOut(_Out):
    clawback_id: str
    deployment_id: str
    amount_pence: Pence
    unspent_balance_pence: Pence
    rule: str
    raised_at: datetime


class ClawbacksOut(BaseModel):
    count: int
    total_pence: Pence
    items: list[ClawbackOut]


class ReviewOut(_Out):
    review_id: str
    plan_id: str
    kind: str
    status: str
    due_on: date | None
    completed_on: date | None
    outcome: str | None
    completed_by: str | None


class CaseloadItem(BaseModel):
    person_id: str
    client_group: str | None
    team: str | None
    key_worker_id: str | None
    stage: CaseloadStage
    assessed_at: datetime | None
    budget_issued_at: datetime | None
    plan_signed_off_at: datetime | None
    payment_released_at: datetime | None
    last_review_completed_on: date | None
    last_event_at: datetime | None
    latest_kind: str | None = Field(description="The latest timeline line's kind.")
    latest_summary: str | None = Field(description="The latest timeline line, in words.")

    @classmethod
    def of(cls, entry: CaseloadEntry) -> CaseloadItem:
        person = entry.person
        return cls(
            person_id=person.person_id,
            client_group=person.client_group,
            team=person.team,
            key_worker_id=person.key_worker_id,
            stage=entry.stage,
            assessed_at=person.assessed_at,
            budget_issued_at=person.budget_issued_at,
            plan_signed_off_at=person.plan_signed_off_at,
            payment_released_at=person.payment_released_at,
            last_review_completed_on=person.last_review_completed_on,
            last_event_at=person.last_event_at,
            latest_kind=entry.latest_kind,
            latest_summary=entry.latest_summary,
        )


class BudgetHistoryOut(BaseModel):
    person_id: str
    council: str | None
    as_of: date = Field(description="The UTC day of known_at.")
    known_at: datetime | None = Field(
        default=None,
        description="What the record held: events recorded at or before this instant (a "
        "bare date asked: the end of that day).",
    )
    in_force_on: date | None = Field(
        default=None,
        description="If asked: only the facts in force on this date (each event's business "
        "date, or the day it was recorded when it carries none).",
    )
    events: int = Field(description="Events counted: recorded by known_at (and in force).")
    last_seq: int | None
    assessment: AssessmentOut | None
    budgets: list[BudgetRevisionOut]
    current_budget: BudgetRevisionOut | None
    plan: PlanOut | None
    deployment: DeploymentOut | None
    schedules: list[ScheduleOut]
    payments: PaymentsOut
    clawbacks: ClawbacksOut
    reviews: list[ReviewOut]

    @classmethod
    def of(
        cls,
        history: BudgetHistory,
        known_at: datetime | None = None,
        in_force_on: date | None = None,
    ) -> BudgetHistoryOut:
        budgets = [BudgetRevisionOut.model_validate(b) for b in history.budgets]
        deployment = history.deployment
        return cls(
            person_id=history.person_id,
            council=history.council,
            as_of=history.as_of,
            known_at=known_at,
            in_force_on=in_force_on,
            events=history.events,
            last_seq=history.last_seq,
            assessment=(
                AssessmentOut.model_validate(history.assessment) if history.assessment else None
            ),
            budgets=budgets,
            current_budget=next((b for b in budgets if b.current), None),
            plan=PlanOut.model_validate(history.plan) if history.plan else None,
            deployment=None
            if deployment is None
            else DeploymentOut(
                deployment_id=deployment.deployment_id,
                plan_id=deployment.plan_id,
                parts=[DeploymentPartOut(option=o, annual_pence=a) for o, a in deployment.parts],
                gross_annual_pence=deployment.gross_annual_pence,
                contribution_annual_pence=deployment.contribution_annual_pence,
                net_annual_pence=deployment.net_annual_pence,
                audit_tier=deployment.audit_tier,
                set_up_at=deployment.set_up_at,
                agreement_signed_on=deployment.agreement_signed_on,
                suspended=deployment.suspended,
                suspended_reason=deployment.suspended_reason,
            ),
            schedules=[ScheduleOut.model_validate(s) for s in history.schedules],
            payments=PaymentsOut(
                count=len(history.payments),
                total_pence=history.payments_total_pence,
                items=[PaymentOut.model_validate(p) for p in history.payments],
            ),
            clawbacks=ClawbacksOut(
                count=len(history.clawbacks),
                total_pence=history.clawbacks_total_pence,
                items=[ClawbackOut.model_validate(c) for c in history.clawbacks],
            ),
            reviews=[ReviewOut.model_validate(r) for r in history.reviews],
        )


class ChainReportOut(BaseModel):
    person_id: str
    ok: bool
    events: int
    first_bad_seq: int | None
    first_bad_event_id: str | None
    reason: str | None
    head_hash: str | None = Field(
        description="The chain's last hash: record it elsewhere to anchor the chain."
    )

    @classmethod
    def of(cls, report: ChainReport) -> ChainReportOut:
        return cls(
            person_id=report.person_id,
            ok=report.ok,
            events=report.events,
            first_bad_seq=report.first_bad_seq,
            first_bad_event_id=report.first_bad_event_id,
            reason=report.reason,
            head_hash=report.head_hash,
        )


class BadChainOut(BaseModel):
    person_id: str
    first_bad_seq: int | None
    first_bad_event_id: str | None
    reason: str | None


class VerifyAllOut(BaseModel):
    ok: bool
    council: str
    people: int = Field(description="People whose chains were checked.")
    policy_chains: int = Field(
        description="The council's chains of adopted policies (`policy:<council>`), checked too."
    )
    finding_chains: int = Field(
        description="The council's chain of tamper findings (`tamper:<council>`), checked too."
    )
    open_tamper_findings: int = Field(
        description="Tamper findings no auditor has acknowledged yet (GET /v1/tamper-findings)."
    )
    events: int = Field(description="Events checked, over every chain.")
    bad_count: int
    bad: list[BadChainOut] = Field(description=f"The first {MAX_BAD_LISTED} broken chains.")


class KpiGroupOut(BaseModel):
    key: str
    numerator: int
    denominator: int
    percentage: str = Field(description="numerator / denominator × 100, two places, half up.")

    @classmethod
    def of(cls, group: KpiGroup) -> KpiGroupOut:
        return cls(
            key=group.key,
            numerator=group.numerator,
            denominator=group.denominator,
            percentage=group.percentage,
        )


class KpiOut(BaseModel):
    measure: str
    council: str
    by: GroupBy
    as_of: date
    total: KpiGroupOut
    items: list[KpiGroupOut]
    next_cursor: str | None = None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(
        None,
        description="Replay the log from this time (log time; without an offset, UTC); "
        "omitted: from the start.",
    )
    expected_version: int | None = Field(
        None, ge=0, description="The projections' version you saw (GET /v1/projections/digest)."
    )

    @field_validator("since")
    @classmethod
    def _since_in_utc(cls, since: datetime | None) -> datetime | None:
        """In UTC here, so a time whose offset takes it past year 1 or 9999 is a 422."""
        if since is None:
            return None
        try:
            return as_utc(since)
        except OverflowError as err:
            raise ValueError("since is out of range once converted to UTC") from err


class ReplayOut(BaseModel):
    replay_id: str
    council: str = Field(description="The council whose records the replay rebuilds.")
    version: int
    status: str
    phase: str
    since: datetime | None
    processed: int
    total: int
    skipped: int
    appended: int
    changed_people: int
    dropped: int
    missing_from_log: int
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    digest: str | None
    error: str | None
    tamper_findings: list[tamper_api.TamperFindingOut] = Field(
        default=[],
        description="Chains this replay found altered: quarantined, rebuilt from the log, "
        "and recorded as TamperDetected.",
    )

    @classmethod
    def of(
        cls, progress: handlers.ReplayProgress, findings: list[tamper.Finding] | None = None
    ) -> ReplayOut:
        found = [tamper_api.TamperFindingOut.of(f) for f in findings or []]
        return cls.model_validate(progress.row() | {"tamper_findings": found})


class DigestOut(BaseModel):
    digest: str
    rows: dict[str, int]
    version: int = Field(description="The number of replays run: send it as expected_version.")


# --- helpers -------------------------------------------------------------------------------


async def _authorise_person(uow: AuditUnitOfWork, actor: Actor, person_id: str) -> None:
    """Staff of the person's council, or the person themselves; anyone else: 404.

    Call it inside the read's own `uow.batch()`: one session and transaction for the
    check and the read (a connection checkout and a round trip fewer per request).
    """
    require_role(
        actor,
        *(CHAIN_AUDITORS if person_id.startswith(AUDITORS_ONLY_CHAINS) else PERSON_READERS),
    )
    if actor.is_citizen and actor.person_id != person_id:
        raise PersonNotFound(person_id)
    await handlers.ensure_person_held(uow=uow, council=actor.council, person_id=person_id)


def _json_response(body: bytes) -> Response:
    """An answer already encoded: FastAPI would validate and encode it again."""
    return Response(content=body, media_type="application/json")


_json_string = json.encoder.encode_basestring  # pydantic's escaping: non-ASCII as is


def _json_time(moment: datetime) -> str:
    """An instant as pydantic writes a UTC datetime (…Z, microseconds only when set)."""
    return '"' + as_utc(moment).isoformat().replace("+00:00", "Z") + '"'


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def history_page_json(rows: list[StoredEvent], next_cursor: str | None) -> bytes:
    """A page of history as `Page[HistoryItem]` encodes it, written out directly.

    Building 200 pydantic items (each parsing its stored document twice) and encoding
    them was most of the route's time; here each item's `data` is spliced in as it
    stands in the hashed document. services/audit/tests/test_history_json.py holds the two
    encodings equal.
    """
    items = ",".join(
        f'{{"seq":{r.seq},"event_id":{_json_string(r.event_id)},"type":{_json_string(r.type)},'
        f'"name":{_json_string(r.name)},"time":{_json_time(r.time)},'
        f'"correlation_id":{_json_string(r.correlation_id)},'
        f'"causation_id":{_json_or_null(r.causation_id)},'
        f'"policy_version":{_json_or_null(r.policy_version)},"actor":{_json_or_null(r.actor)},'
        f'"data":{r.data_json},"prev_hash":{_json_string(r.prev_hash)},'
        f'"hash":{_json_string(r.hash)}}}'
        for r in rows
    )
    return f'{{"items":[{items}],"next_cursor":{_json_or_null(next_cursor)}}}'.encode()


def _seq_after(cursor: str | None) -> int:
    position = SEQ_CURSOR.decode(cursor)
    return 0 if position is None else position[0]


def _kpi_page(
    measure: str,
    council: str,
    by: GroupBy,
    as_of: date,
    result: KpiResult,
    limit: int,
    cursor: str | None,
) -> KpiOut:
    position = KPI_GROUP_CURSOR.decode(cursor)
    groups = [g for g in result.groups if position is None or g.key > position[0]]
    page = groups[:limit]
    more = len(groups) > limit
    return KpiOut(
        measure=measure,
        council=council,
        by=by,
        as_of=as_of,
        total=KpiGroupOut.of(result.total),
        items=[KpiGroupOut.of(g) for g in page],
        next_cursor=KPI_GROUP_CURSOR.encode((page[-1].key,)) if more and page else None,
    )


# --- routes --------------------------------------------------------------------------------


@router.get(
    "/people/{person_id}/history",
    response_model=Page[HistoryItem],
    summary="A person's events in chain order, filterable by type and date",
)
async def person_history(
    person_id: Annotated[str, PathParam(pattern=PERSON_ID_PATTERN)],
    actor: CurrentActor,
    runtime: Runtime,
    event_type: Annotated[
        str | None,
        Query(
            alias="type",
            min_length=1,
            max_length=200,
            description="A full type (pb.allocation.budget-issued.v1) or a short name "
            "(budget-issued).",
        ),
    ] = None,
    since: Annotated[
        RecordDate | None, Query(description="From this date (UTC), inclusive.")
    ] = None,
    until: Annotated[RecordDate | None, Query(description="To this date (UTC), inclusive.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    uow = runtime.uow()
    async with uow.batch():
        await _authorise_person(uow, actor, person_id)
        await tamper.refuse_unverified(uow, actor.council, person_id)
        rows, more = await handlers.history_page(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            type_filter=event_type,
            since=since,
            until=until,
            after_seq=_seq_after(cursor),
            limit=limit,
        )
    next_cursor = SEQ_CURSOR.encode((rows[-1].seq,)) if more and rows else None
    return _json_response(history_page_json(rows, next_cursor))


@router.get(
    "/people/{person_id}/budget",
    response_model=BudgetHistoryOut,
    summary="A person's budget history as the record held it at an instant, and as in force "
    "on a date",
)
async def person_budget(
    person_id: Annotated[str, PathParam(pattern=PERSON_ID_PATTERN)],
    actor: CurrentActor,
    runtime: Runtime,
    known_at: Annotated[
        str | None,
        Query(
            max_length=40,
            description="What the record held at this instant: an RFC 3339 date-time "
            "(2026-03-01T09:30:00.123456Z, to the microsecond) counts the events recorded at "
            "or before it; a date YYYY-MM-DD, the end of that UTC day. Default: today's end.",
        ),
    ] = None,
    as_of: Annotated[
        str | None, Query(max_length=40, description="The older name of known_at.")
    ] = None,
    in_force_on: Annotated[
        str | None,
        Query(
            max_length=40,
            description="YYYY-MM-DD: only the facts in force on this date, by the date each "
            "took effect (an agreement's signing date, a payment's due date, ...; the day "
            "it was recorded when its event carries none).",
        ),
    ] = None,
) -> Response:
    known = asof.known_at_of(as_of, known_at)
    in_force = asof.parse_day("in_force_on", in_force_on) if in_force_on is not None else None
    uow = runtime.uow()
    async with uow.batch():
        await _authorise_person(uow, actor, person_id)
        await tamper.refuse_unverified(uow, actor.council, person_id)
        history = await handlers.budget_as_of(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            as_of=known.day,
            known_before=known.before,
            in_force_on=in_force,
        )
    body = BudgetHistoryOut.of(history, known.instant, in_force)
    return _json_response(body.model_dump_json().encode())


@router.get(
    "/people/{person_id}/timeline",
    response_model=Page[TimelineItem],
    summary="A person's budget timeline, one line per event (a projection)",
)
async def person_timeline(
    person_id: Annotated[str, PathParam(pattern=PERSON_ID_PATTERN)],
    actor: CurrentActor,
    runtime: Runtime,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TimelineItem]:
    uow = runtime.uow()
    async with uow.batch():
        await _authorise_person(uow, actor, person_id)
        rows, more = await handlers.timeline_page(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            after_seq=_seq_after(cursor),
            limit=limit,
        )
    next_cursor = SEQ_CURSOR.encode((rows[-1].seq,)) if more and rows else None
    return Page[TimelineItem](
        items=[TimelineItem.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/people/{person_id}/verify",
    response_model=ChainReportOut,
    summary="Recompute a person's hash chain and name the first bad event",
)
async def verify_person(
    person_id: Annotated[str, PathParam(pattern=PERSON_ID_PATTERN)],
    actor: CurrentActor,
    runtime: Runtime,
) -> ChainReportOut:
    uow = runtime.uow()
    async with uow.batch():
        await _authorise_person(uow, actor, person_id)
        report = await handlers.verify_person(uow=uow, council=actor.council, person_id=person_id)
    return ChainReportOut.of(report)


@router.get(
    "/verify",
    response_model=VerifyAllOut,
    summary="Recompute the chain of every person of the caller's council",
)
async def verify_all(actor: CurrentActor, runtime: Runtime) -> VerifyAllOut:
    require_role(actor, *CHAIN_AUDITORS)
    reports = await handlers.verify_council(uow=runtime.uow(), council=actor.council)
    open_findings = await tamper.count_open(uow=runtime.uow(), council=actor.council)
    bad = [r for r in reports if not r.ok]
    return VerifyAllOut(
        ok=not bad,
        council=actor.council,
        people=sum(1 for r in reports if not r.person_id.startswith(COUNCIL_CHAIN_PREFIXES)),
        policy_chains=sum(1 for r in reports if r.person_id.startswith(POLICY_CHAIN_PREFIX)),
        finding_chains=sum(
            1 for r in reports if r.person_id.startswith(tamper.TAMPER_CHAIN_PREFIX)
        ),
        open_tamper_findings=open_findings,
        events=sum(r.events for r in reports),
        bad_count=len(bad),
        bad=[
            BadChainOut(
                person_id=r.person_id,
                first_bad_seq=r.first_bad_seq,
                first_bad_event_id=r.first_bad_event_id,
                reason=r.reason,
            )
            for r in bad[:MAX_BAD_LISTED]
        ],
    )


@router.get(
    "/caseload",
    response_model=Page[CaseloadItem],
    summary="The council's people by stage, filterable by team, key worker and stage",
)
async def caseload(
    actor: CurrentActor,
    runtime: Runtime,
    team: FilterText = None,
    key_worker_id: FilterText = None,
    stage: CaseloadStage | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CaseloadItem]:
    require_role(actor, *CASELOAD_READERS)
    position = PERSON_CURSOR.decode(cursor)
    entries = await handlers.caseload(
        uow=runtime.uow(),
        council=actor.council,
        team=team,
        key_worker_id=key_worker_id,
        stage=stage,
        after_person_id=None if position is None else position[0],
        limit=limit + 1,
    )
    page, more = entries[:limit], len(entries) > limit
    return Page[CaseloadItem](
        items=[CaseloadItem.of(e) for e in page],
        next_cursor=PERSON_CURSOR.encode((page[-1].person.person_id,)) if more else None,
    )


@router.get(
    "/kpis/ni130",
    response_model=KpiOut,
    summary="NI130: community-based people on self-directed support, by group",
)
async def kpi_ni130(
    actor: CurrentActor,
    runtime: Runtime,
    by: GroupBy = GroupBy.COUNCIL,
    as_of: Annotated[
        RecordDate | None, Query(description="YYYY-MM-DD (UTC); default today.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> KpiOut:
    require_role(actor, *KPI_READERS)
    day = as_of or clock.today()
    result = await handlers.kpi_ni130(uow=runtime.uow(), council=actor.council, by=by, as_of=day)
    return _kpi_page("ni130", actor.council, by, day, result, limit, cursor)


@router.get(
    "/kpis/lancashire",
    response_model=KpiOut,
    summary="Lancashire's 'has a personal budget': budget known, plan signed off and "
    "paid, reviewed within 12 months",
)
async def kpi_lancashire(
    actor: CurrentActor,
    runtime: Runtime,
    by: GroupBy = GroupBy.COUNCIL,
    as_of: Annotated[
        RecordDate | None, Query(description="YYYY-MM-DD (UTC); default today.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> KpiOut:
    require_role(actor, *KPI_READERS)
    day = as_of or clock.today()
    result = await handlers.kpi_lancashire(
        uow=runtime.uow(), council=actor.council, by=by, as_of=day
    )
    return _kpi_page("lancashire", actor.council, by, day, result, limit, cursor)


# --- statutory returns ---------------------------------------------------------------------

RETURN_READERS = (Role.AUDITOR, Role.OPERATIONS, Role.TEAM_MANAGER)
QuarterQuery = Annotated[
    str, Query(max_length=7, description="A calendar quarter, e.g. 2026-Q3 (July-September).")
]
LaCodeQuery = Annotated[
    str | None,
    Query(max_length=3, description="The council's three-digit CASSR code, if not known."),
]


class CldViolationOut(BaseModel):
    row: int
    field: str
    rule: str


class CldReportOut(BaseModel):
    specification: str
    quarter: str
    reporting_period_start: date
    reporting_period_end: date
    la_code: str
    rows: int
    events_by_type: dict[str, int]
    valid: bool
    violations: list[CldViolationOut]


async def _cld(
    actor: Actor, runtime: ServiceRuntime[Any], quarter: str, la_code: str | None
) -> handlers.CldReturn:
    try:
        period = Quarter.parse(quarter)
        code = la_code_for(actor.council, la_code)
    except ReturnRequestInvalid as err:
        raise HTTPException(422, str(err)) from err
    try:
        la_name = runtime.policies.current(actor.council).name
    except KeyError:
        la_name = actor.council
    return await handlers.cld_return(
        uow=runtime.uow(), council=actor.council, la_name=la_name, quarter=period, la_code=code
    )


@router.get(
    "/returns/cld",
    response_model=CldReportOut,
    summary="The Client Level Data extract for a quarter, checked against the layout's rules",
)
async def get_cld_report(
    actor: CurrentActor, runtime: Runtime, quarter: QuarterQuery, la_code: LaCodeQuery = None
) -> CldReportOut:
    require_role(actor, *RETURN_READERS)
    cld = await _cld(actor, runtime, quarter, la_code)
    counts: dict[str, int] = {}
    for row in cld.rows:
        counts[row["Event_Type"]] = counts.get(row["Event_Type"], 0) + 1
    return CldReportOut(
        specification=CLD_SPECIFICATION,
        quarter=str(cld.quarter),
        reporting_period_start=cld.quarter.start,
        reporting_period_end=cld.quarter.end,
        la_code=cld.la_code,
        rows=len(cld.rows),
        events_by_type=counts,
        valid=not cld.violations,
        violations=[CldViolationOut(row=v.row, field=v.field, rule=v.rule) for v in cld.violations],
    )


@router.get(
    "/returns/cld.csv",
    response_class=Response,
    summary="The Client Level Data extract for a quarter as the CSV a council submits",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_cld_csv(
    actor: CurrentActor, runtime: Runtime, quarter: QuarterQuery, la_code: LaCodeQuery = None
) -> Response:
    require_role(actor, *RETURN_READERS)
    cld = await _cld(actor, runtime, quarter, la_code)
    name = f"cld-{cld.la_code}-{cld.quarter}.csv"
    return Response(
        content=to_csv(CLD_FIELDS, cld.rows).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-CLD-Violations": str(len(cld.violations)),
        },
    )


@router.get(
    "/returns/kpis.csv",
    response_class=Response,
    summary="NI130 and the Lancashire measure as CSV, the council total then each group",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_kpis_csv(
    actor: CurrentActor,
    runtime: Runtime,
    by: GroupBy = GroupBy.COUNCIL,
    as_of: Annotated[
        RecordDate | None, Query(description="YYYY-MM-DD (UTC); default today.")
    ] = None,
) -> Response:
    require_role(actor, *KPI_READERS)
    day = as_of or clock.today()
    text = await handlers.kpis_csv(uow=runtime.uow(), council=actor.council, by=by, as_of=day)
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kpis-{day}.csv"'},
    )


@router.post(
    "/replay",
    response_model=ReplayOut,
    status_code=202,
    summary="Rebuild the caller's council's projections (and, from the start, its store) "
    "from the log",
)
async def start_replay(
    body: ReplayRequest, actor: CurrentActor, replays: ReplayDep, runtime: Runtime
) -> ReplayOut:
    require_role(actor, Role.OPERATIONS)
    policy_for(runtime.policies, actor.council)  # a council this deployment has no policy for
    progress = await replays.start(
        council=actor.council,
        since=as_utc(body.since) if body.since else None,
        expected_version=body.expected_version,
        requested_by=actor.as_record(),
    )
    return ReplayOut.of(progress)


@router.get(
    "/replay/{replay_id}",
    response_model=ReplayOut,
    summary="A replay's progress (the caller's council's replays only)",
)
async def replay_status(
    replay_id: Annotated[str, PathParam(min_length=1, max_length=36)],
    actor: CurrentActor,
    replays: ReplayDep,
    runtime: Runtime,
) -> ReplayOut:
    require_role(actor, Role.OPERATIONS)
    progress = await replays.status(actor.council, replay_id)
    findings = await tamper.findings_of_replay(uow=runtime.uow(), replay_id=replay_id)
    return ReplayOut.of(progress, findings)


@router.get(
    "/projections/digest",
    response_model=DigestOut,
    summary="sha256 over the council's store and projections, to compare rebuilds",
)
async def projections_digest(actor: CurrentActor, runtime: Runtime) -> DigestOut:
    require_role(actor, *CHAIN_AUDITORS)
    digest, rows, version = await handlers.projection_digest(
        uow=runtime.uow(), council=actor.council
    )
    return DigestOut(digest=digest, rows=rows, version=version)


# --- the app -------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=MIGRATIONS,
        unit_of_work=AuditUnitOfWork,
    )
    replays = handlers.ReplayService(runtime)
    register(runtime, gate=replays.gate)
    app = create_service_app(
        runtime=runtime,
        title="PB Journey: audit",
        description=(
            "Every event in a hash-chained history per person; as-of budget history; KPIs; replay."
        ),
        routers=[router, tamper_api.router, subject_access_router("audit")],
    )
    app.state.replays = replays
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            try:
                yield
            finally:
                await replays.shutdown()  # before the runtime closes the database

    app.router.lifespan_context = lifespan
    return app
