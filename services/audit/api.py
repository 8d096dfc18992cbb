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
- replays: operations, of their own council (a council with no policy here: 422);
- a council's operations history (`operations:<council>`: who redelivered events or
  re-drove dead letters, and why): auditor, operations.
- tamper findings (tamper_api.py): auditor and operations of the council read them; an
  auditor acknowledges one;
- statutory returns (returns_api.py): the CLD extract for auditor, operations and team
  managers; the KPIs as CSV for staff roles.

Wire models and their mappers: schemas.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Response
from fastapi import Path as PathParam

from contracts.vocabulary import Role
from servicekit import clock
from servicekit.app import create_service_app, migrations_beside
from servicekit.auth import CurrentActor, require_role
from servicekit.caller import Caller
from servicekit.pagination import Cursor, Limit, Page, next_page
from servicekit.policies import policy_for
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.audit import asof, handlers, tamper, tamper_api
from services.audit.consumer import register
from services.audit.db import AuditUnitOfWork, metadata
from services.audit.domain import CaseloadStage, GroupBy, as_utc
from services.audit.returns_api import KPI_READERS
from services.audit.returns_api import router as returns_router
from services.audit.routing import (
    CASELOAD_READERS,
    CHAIN_AUDITORS,
    ReplayDep,
    Runtime,
    authorise_person,
    authorise_reader,
    json_response,
    seq_after,
)
from services.audit.schemas import (
    PERSON_CURSOR,
    SEQ_CURSOR,
    BudgetHistoryOut,
    CaseloadItem,
    ChainReportOut,
    DigestOut,
    EventTypeQuery,
    FilterText,
    HistoryItem,
    InForceOnQuery,
    KnownAtOlderQuery,
    KnownAtQuery,
    KpiDayQuery,
    KpiOut,
    PersonIdPath,
    ReplayOut,
    ReplayRequest,
    SinceQuery,
    TimelineItem,
    UntilQuery,
    VerifyAllOut,
    history_page_json,
    kpi_page,
)
from services.audit.settings import Settings

MIGRATIONS = migrations_beside(AuditUnitOfWork)

router = APIRouter(prefix="/v1", tags=["audit"])


# --- routes --------------------------------------------------------------------------------


@router.get(
    "/people/{person_id}/history",
    response_model=Page[HistoryItem],
    summary="A person's events in chain order, filterable by type and date",
)
async def person_history(
    person_id: PersonIdPath,
    actor: CurrentActor,
    runtime: Runtime,
    event_type: EventTypeQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    uow = runtime.uow()
    async with uow.reading():
        authorise_reader(actor, person_id)  # the history's read finds whether they are held
        rows, more = await handlers.history_page(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            type_filter=event_type,
            since=since,
            until=until,
            after_seq=seq_after(cursor),
            limit=limit,
        )
    next_cursor = SEQ_CURSOR.encode((rows[-1].seq,)) if more and rows else None
    return json_response(history_page_json(rows, next_cursor))


@router.get(
    "/people/{person_id}/budget",
    response_model=BudgetHistoryOut,
    summary="A person's budget history as the record held it at an instant, and as in force "
    "on a date",
)
async def person_budget(
    person_id: PersonIdPath,
    actor: CurrentActor,
    runtime: Runtime,
    known_at: KnownAtQuery = None,
    as_of: KnownAtOlderQuery = None,
    in_force_on: InForceOnQuery = None,
) -> Response:
    known = asof.known_at_of(as_of, known_at)
    in_force = asof.parse_day("in_force_on", in_force_on) if in_force_on is not None else None
    uow = runtime.uow()
    async with uow.reading():
        authorise_reader(actor, person_id)  # the as-of's read finds whether they are held
        history = await handlers.budget_as_of(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            as_of=known.day,
            known_before=known.before,
            in_force_on=in_force,
        )
    body = BudgetHistoryOut.of(history, known.instant, in_force)
    return json_response(body.model_dump_json().encode())


@router.get(
    "/people/{person_id}/timeline",
    response_model=Page[TimelineItem],
    summary="A person's budget timeline, one line per event (a projection)",
)
async def person_timeline(
    person_id: PersonIdPath,
    actor: CurrentActor,
    runtime: Runtime,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TimelineItem]:
    uow = runtime.uow()
    async with uow.reading():
        await authorise_person(uow, actor, person_id)
        rows, more = await handlers.timeline_page(
            uow=uow,
            council=actor.council,
            person_id=person_id,
            after_seq=seq_after(cursor),
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
    person_id: PersonIdPath,
    actor: CurrentActor,
    runtime: Runtime,
) -> ChainReportOut:
    uow = runtime.uow()
    async with uow.reading():
        await authorise_person(uow, actor, person_id)
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
    return VerifyAllOut.of(actor.council, reports, open_findings)


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
    page, next_cursor = next_page(
        entries, limit, lambda last: PERSON_CURSOR.encode((last.person.person_id,))
    )
    return Page[CaseloadItem](items=[CaseloadItem.of(e) for e in page], next_cursor=next_cursor)


@router.get(
    "/kpis/ni130",
    response_model=KpiOut,
    summary="NI130: community-based people on self-directed support, by group",
)
async def kpi_ni130(
    actor: CurrentActor,
    runtime: Runtime,
    by: GroupBy = GroupBy.COUNCIL,
    as_of: KpiDayQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> KpiOut:
    return await _kpi("ni130", handlers.kpi_ni130, actor, runtime, by, as_of, limit, cursor)


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
    as_of: KpiDayQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> KpiOut:
    return await _kpi(
        "lancashire", handlers.kpi_lancashire, actor, runtime, by, as_of, limit, cursor
    )


async def _kpi(
    name: str,
    measure: Callable[..., Awaitable[Any]],
    actor: Caller,
    runtime: ServiceRuntime[Any],
    by: GroupBy,
    as_of: date | None,
    limit: int,
    cursor: str | None,
) -> KpiOut:
    """One KPI for the caller's council, grouped and paged, as of a day (default today)."""
    require_role(actor, *KPI_READERS)
    day = as_of or clock.today()
    result = await measure(uow=runtime.uow(), council=actor.council, by=by, as_of=day)
    return kpi_page(name, actor.council, by, day, result, limit, cursor)


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
        routers=[router, returns_router, tamper_api.router, subject_access_router("audit")],
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
