"""Audit's wire models: what the API takes and answers, and how the store maps to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.events import OPERATIONS_SUBJECT_PREFIX
from contracts.money import Pence
from servicekit.dates import RecordDate
from servicekit.pagination import CursorCodec
from services.audit import handlers, tamper, tamper_api
from services.audit.domain import (
    BudgetHistory,
    CaseloadEntry,
    CaseloadStage,
    ChainReport,
    GroupBy,
    KpiGroup,
    KpiResult,
    StoredEvent,
    as_utc,
)
from services.audit.returns import CLD_SPECIFICATION, specification_to_confirm

SEQ_CURSOR = CursorCodec[tuple[int]](("seq", int))
"""A person's history and timeline are read in chain order (seq)."""

PERSON_CURSOR = CursorCodec[tuple[str]](("person_id", str))
"""The caseload is listed by person id."""

KPI_GROUP_CURSOR = CursorCodec[tuple[str]](("key", str))
"""A KPI's groups are listed by their key."""

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
PersonIdPath = Annotated[str, PathParam(pattern=PERSON_ID_PATTERN)]
EventTypeQuery = Annotated[
    str | None,
    Query(
        alias="type",
        min_length=1,
        max_length=200,
        description="A full type (pb.allocation.budget-issued.v1) or a short name (budget-issued).",
    ),
]
SinceQuery = Annotated[RecordDate | None, Query(description="From this date (UTC), inclusive.")]
UntilQuery = Annotated[RecordDate | None, Query(description="To this date (UTC), inclusive.")]
KnownAtQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="What the record held at this instant: an RFC 3339 date-time "
        "(2026-03-01T09:30:00.123456Z, to the microsecond) counts the events recorded at "
        "or before it; a date YYYY-MM-DD, the end of that UTC day. Default: today's end.",
    ),
]
KnownAtOlderQuery = Annotated[
    str | None, Query(max_length=40, description="The older name of known_at.")
]
InForceOnQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="YYYY-MM-DD: only the facts in force on this date, by the date each "
        "took effect (an agreement's signing date, a payment's due date, ...; the day "
        "it was recorded when its event carries none).",
    ),
]
KpiDayQuery = Annotated[RecordDate | None, Query(description="YYYY-MM-DD (UTC); default today.")]
MAX_BAD_LISTED = 200


FilterText = Annotated[str | None, Query(min_length=1, max_length=200)]


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

    @classmethod
    def of(cls, council: str, reports: list[ChainReport], open_findings: int) -> VerifyAllOut:
        bad = [r for r in reports if not r.ok]
        return cls(
            ok=not bad,
            council=council,
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


class _HistoryItemJson(msgspec.Struct):
    """HistoryItem's fields in its order, `data` as the JSON it stands as."""

    seq: int
    event_id: str
    type: str
    name: str
    time: datetime
    correlation_id: str
    causation_id: str | None
    policy_version: str | None
    actor: str | None
    data: msgspec.Raw
    prev_hash: str
    hash: str


class _HistoryPageJson(msgspec.Struct):
    items: list[_HistoryItemJson]
    next_cursor: str | None


_encode_history_page = msgspec.json.Encoder().encode


def history_page_json(rows: list[StoredEvent], next_cursor: str | None) -> bytes:
    """A page of history as `Page[HistoryItem]` encodes it, written by msgspec.

    Building 200 pydantic items (each parsing its stored document twice) and encoding
    them was most of the route's time; here each item's `data` is spliced in as it
    stands in the hashed document. msgspec writes strings and UTC times as pydantic does
    (non-ASCII as is, `…Z`, microseconds only when set); services/audit/tests/
    test_history_json.py holds the two encodings equal.
    """
    return _encode_history_page(
        _HistoryPageJson(
            [
                _HistoryItemJson(
                    r.seq,
                    r.event_id,
                    r.type,
                    r.name,
                    as_utc(r.time),
                    r.correlation_id,
                    r.causation_id,
                    r.policy_version,
                    r.actor,
                    msgspec.Raw(r.data_json),
                    r.prev_hash,
                    r.hash,
                )
                for r in rows
            ],
            next_cursor,
        )
    )


def kpi_page(
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
    to_confirm: list[str] = Field(
        description="What is still to be checked against the published specification: "
        "fields and code lists whose Release 2 values could not be confirmed."
    )
    quarter: str
    reporting_period_start: date
    reporting_period_end: date
    la_code: str
    rows: int
    events_by_type: dict[str, int]
    valid: bool
    violations: list[CldViolationOut]

    @classmethod
    def of(cls, cld: handlers.CldReturn) -> CldReportOut:
        counts: dict[str, int] = {}
        for row in cld.rows:
            counts[row["Event_Type"]] = counts.get(row["Event_Type"], 0) + 1
        return cls(
            specification=CLD_SPECIFICATION,
            to_confirm=specification_to_confirm(),
            quarter=str(cld.quarter),
            reporting_period_start=cld.quarter.start,
            reporting_period_end=cld.quarter.end,
            la_code=cld.la_code,
            rows=len(cld.rows),
            events_by_type=counts,
            valid=not cld.violations,
            violations=[
                CldViolationOut(row=v.row, field=v.field, rule=v.rule) for v in cld.violations
            ],
        )
