"""Payments HTTP API (versioned under /v1): deployment, agreement, schedules, releases,
monitoring returns, unspent-funds checks, managed-account statements and finance export.

Thin routes: authorise from the bearer token, validate the body, call a handler, shape the
answer. Another council's record answers 404; a person or representative sees only their
own person_id; a role that may not act answers 403 (docs/api.md).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from contracts.events import DeploymentOption
from contracts.money import Frequency, Pence, SignedPence
from contracts.policy import UnspentRule
from contracts.vocabulary import CITIZEN_ROLES, STAFF_ROLES, Role
from servicekit import clock
from servicekit.app import RequestPence, create_service_app, runtime_from
from servicekit.auth import CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    ConversionRef,
    Pending,
    Row,
    convert_rows,
    merge_refused,
    validated_rows,
)
from servicekit.csvfile import CSV_REQUEST_BODY, ImportReportOut, csv_body
from servicekit.errors import InvalidCursor
from servicekit.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.payments import consumer, handlers
from services.payments.db import PaymentsUnitOfWork, metadata
from services.payments.domain import (
    Deployment,
    ExportBatch,
    InstalmentStatus,
    MonitoringReturn,
    PartRequest,
    PaymentFrequency,
    ReturnItem,
    ScheduleKind,
    Status,
    UnspentAction,
    UnspentCheck,
)
from services.payments.reconciliation import Outcome
from services.payments.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"

router = APIRouter(prefix="/v1", tags=["payments"])

Runtime = Annotated[ServiceRuntime[Any], Depends(runtime_from)]

VIEWERS = tuple(STAFF_ROLES | CITIZEN_ROLES)
# The panel arranges and records agreements too: arrears above a team manager's limit are
# the panel's to approve (rules/arrears.py).
ARRANGERS = (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.FINANCE, Role.PANEL)
RELEASERS = (Role.FINANCE, Role.OPERATIONS)
RETURN_SUBMITTERS = (
    Role.PERSON,
    Role.REPRESENTATIVE,
    Role.CARE_MANAGER,
    Role.TEAM_MANAGER,
    Role.FINANCE,
)
HOLDERS = (Role.FINANCE, Role.TEAM_MANAGER)
EXPORT_READERS = (Role.FINANCE, Role.AUDITOR)

PersonIdQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Opaque id.")
]
ExpectedVersion = Annotated[
    int | None, Field(default=None, ge=1, description="409 if the deployment has moved on.")
]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
ArrearsReason = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Why instalments already past due are scheduled (arrears); required "
        "when first_due_on is before today, with a role whose limit covers them.",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class PartIn(_Request):
    option: DeploymentOption
    annual_pence: RequestPence | None = Field(
        default=None,
        description="This option's share of the gross annual; the parts must add up to it "
        "exactly. A single part may leave it out to take the whole budget.",
    )


class ArrangementIn(_Request):
    parts: list[PartIn] = Field(min_length=1, max_length=4)
    frequency: PaymentFrequency = Field(description="annual = the whole year up front.")
    first_due_on: date | None = Field(
        default=None,
        description="The first payment (YYYY-MM-DD), from a year before today to two years "
        "after; default today. Before today schedules arrears (see arrears_reason).",
    )
    assessed_max_weekly_contribution_pence: RequestPence | None = Field(
        default=None,
        description="The most the financial assessment says the person can pay a week (0 if "
        "none). Required the first time; on a switch, leave it out to keep the last figure.",
    )
    arrears_reason: ArrearsReason = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="On a switch of a signed deployment dated back: why the instalments "
        "already past due are paid (arrears). Before the agreement, give it with the "
        "agreement instead, which schedules the money.",
    )
    expected_version: ExpectedVersion = None


class AgreementIn(_Request):
    signed_on: date | None = Field(
        default=None,
        description="The day the person signed (YYYY-MM-DD): not after today, not before the "
        "plan was signed off; default today.",
    )
    arrears_reason: ArrearsReason = None
    expected_version: ExpectedVersion = None


AsOf = Annotated[
    date | None,
    Field(
        default=None,
        description="Release what is due up to this day (YYYY-MM-DD): not after today; "
        "default today. An earlier day catches up to it only.",
    ),
]


class ReleaseDueIn(_Request):
    as_of: AsOf = None


class ReleaseIn(_Request):
    as_of: AsOf = None
    expected_version: ExpectedVersion = None


class ReturnItemIn(_Request):
    description: str = Field(min_length=1, max_length=200)
    amount_pence: RequestPence
    receipt: StrictBool


class ReturnIn(_Request):
    period_start: date
    period_end: date
    items: list[ReturnItemIn] = Field(max_length=500)
    balance_pence: RequestPence = Field(description="The account balance the person reports.")
    option: DeploymentOption | None = Field(
        default=None,
        description="The account the return covers; default the direct payment part if "
        "any, else the first part.",
    )
    expected_version: ExpectedVersion = None


class UnspentCheckIn(_Request):
    as_of: date
    balance_pence: RequestPence | None = Field(
        default=None, description="Default: the balance the last return reported."
    )
    action: UnspentAction | None = Field(
        default=None,
        description="hold_or_clawback councils only: clawback (default) or hold releases.",
    )
    expected_version: ExpectedVersion = None


class HoldIn(_Request):
    reason: Reason
    expected_version: ExpectedVersion = None


class ExportIn(_Request):
    up_to: date


# --- responses -----------------------------------------------------------------------------


class PartOut(BaseModel):
    option: DeploymentOption
    annual_pence: Pence
    net_annual_pence: Pence


class AgreementOut(BaseModel):
    signed_on: date
    recorded_by: str


class ScheduleOut(BaseModel):
    schedule_id: UUID
    option: DeploymentOption
    frequency: Frequency
    kind: ScheduleKind
    first_due_on: date
    total_pence: Pence
    instalments: int
    scheduled_pence: Pence
    released_pence: Pence
    cancelled_pence: Pence


class BalanceOut(BaseModel):
    released_pence: Pence
    to_release_pence: Pence
    cancelled_pence: Pence
    clawed_back_pence: Pence
    last_reported_balance_pence: Pence | None


class MonitoringOut(BaseModel):
    audit_tier: str | None
    returns_every_months: int | None
    next_return_due_on: date | None
    receipts_required_from_pence: Pence
    unspent_rule: UnspentRule
    returns_submitted: int


class DeploymentSummaryOut(BaseModel):
    deployment_id: UUID
    person_id: str
    council: str
    plan_id: UUID
    plan_version: int
    status: Status
    suspended: bool
    version: int
    policy_version: str
    gross_annual_pence: Pence
    contribution_annual_pence: Pence | None
    net_annual_pence: Pence | None
    one_off_pence: Pence
    parts: list[PartOut]
    frequency: PaymentFrequency | None
    first_due_on: date | None
    audit_tier: str | None
    agreement_signed_on: date | None


class DeploymentOut(DeploymentSummaryOut):
    contingency_weekly_pence: Pence
    assessed_max_weekly_contribution_pence: Pence | None
    suspended_reason: str | None
    agreement: AgreementOut | None
    plan_year_starts_on: date | None
    schedules: list[ScheduleOut]
    balance: BalanceOut
    monitoring: MonitoringOut
    predecessor_id: UUID | None
    successor_id: UUID | None
    superseded_by: UUID | None
    updated_by: str


class InstalmentOut(BaseModel):
    instalment_id: UUID
    schedule_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    amount_pence: Pence
    status: InstalmentStatus
    payment_id: UUID | None
    released_on: date | None


class ReleasedOut(BaseModel):
    payment_id: UUID
    deployment_id: UUID
    schedule_id: UUID
    person_id: str
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date = Field(description="The service's today when it was released.")
    amount_pence: Pence


class ReleaseResultOut(BaseModel):
    as_of: date
    released: list[ReleasedOut]
    count: int
    total_pence: Pence


class MissingReceiptOut(BaseModel):
    index: int
    description: str
    amount_pence: Pence


class ReturnOut(BaseModel):
    return_id: UUID
    deployment_id: UUID
    option: DeploymentOption
    period_start: date
    period_end: date
    spent_pence: Pence
    balance_pence: Pence
    items: int
    receipts_required_from_pence: Pence
    missing_receipts: list[MissingReceiptOut]
    next_return_due_on: date | None
    version: int


class UnspentCheckOut(BaseModel):
    check_id: UUID
    deployment_id: UUID
    as_of: date
    rule: UnspentRule
    balance_pence: Pence
    allowance_pence: Pence | None
    clawback_pence: Pence
    clawback_id: UUID | None
    action: UnspentAction | None
    held: bool
    suspended: bool
    version: int


class AccountOut(BaseModel):
    option: DeploymentOption
    paid_in_pence: Pence
    spent_pence: Pence
    balance_left_pence: SignedPence
    last_reported_balance_pence: Pence | None
    failed_pence: Pence = Field(
        description="Released but reported failed by finance: not in paid_in_pence."
    )


class StatementOut(BaseModel):
    deployment_id: UUID
    accounts: list[AccountOut]
    paid_in_pence: Pence
    spent_pence: Pence
    balance_left_pence: SignedPence
    failed_pence: Pence


class ExportBatchOut(BaseModel):
    batch_id: UUID
    up_to: date
    created_at: datetime
    created_by: str
    rows: int
    control_total_pence: Pence


# --- shaping -------------------------------------------------------------------------------


def _summary_fields(dep: Deployment) -> dict[str, Any]:
    return {
        "deployment_id": dep.deployment_id,
        "person_id": dep.person_id,
        "council": dep.council,
        "plan_id": dep.plan_id,
        "plan_version": dep.plan_version,
        "status": dep.status,
        "suspended": dep.suspended,
        "version": dep.version,
        "policy_version": dep.policy_version,
        "gross_annual_pence": dep.gross_annual_pence,
        "contribution_annual_pence": dep.contribution_annual_pence,
        "net_annual_pence": dep.net_annual_pence,
        "one_off_pence": dep.one_off_pence,
        "parts": [PartOut(**p.__dict__) for p in dep.parts],
        "frequency": dep.frequency,
        "first_due_on": dep.first_due_on,
        "audit_tier": dep.audit_tier,
        "agreement_signed_on": dep.agreement.signed_on if dep.agreement else None,
    }


def _deployment_out(dep: Deployment, runtime: ServiceRuntime[Any]) -> DeploymentOut:
    policy = handlers.policy_for(runtime.policies, dep.policy_version, dep.council)
    every = policy.monitoring.returns_every_months
    return DeploymentOut(
        **_summary_fields(dep),
        contingency_weekly_pence=dep.contingency_weekly_pence,
        assessed_max_weekly_contribution_pence=dep.assessed_max_weekly_contribution_pence,
        suspended_reason=dep.suspended_reason,
        agreement=(
            AgreementOut(signed_on=dep.agreement.signed_on, recorded_by=dep.agreement.recorded_by)
            if dep.agreement
            else None
        ),
        plan_year_starts_on=dep.plan_year_starts_on,
        schedules=[
            ScheduleOut(
                schedule_id=s.schedule_id,
                option=s.option,
                frequency=s.frequency,
                kind=s.kind,
                first_due_on=s.first_due_on,
                total_pence=s.total_pence,
                instalments=len(s.instalments),
                scheduled_pence=s.pence(InstalmentStatus.SCHEDULED),
                released_pence=s.pence(InstalmentStatus.RELEASED),
                cancelled_pence=s.pence(InstalmentStatus.CANCELLED),
            )
            for s in dep.schedules
        ],
        balance=BalanceOut(
            released_pence=dep.pence(InstalmentStatus.RELEASED),
            to_release_pence=dep.pence(InstalmentStatus.SCHEDULED),
            cancelled_pence=dep.pence(InstalmentStatus.CANCELLED),
            clawed_back_pence=dep.clawed_back_pence,
            last_reported_balance_pence=dep.last_reported_balance_pence,
        ),
        monitoring=MonitoringOut(
            audit_tier=dep.audit_tier,
            returns_every_months=every,
            next_return_due_on=dep.next_return_due_on(every),
            receipts_required_from_pence=policy.monitoring.receipts_required_from_pence,
            unspent_rule=policy.monitoring.unspent_rule,
            returns_submitted=len(dep.returns),
        ),
        predecessor_id=dep.predecessor_id,
        successor_id=dep.successor_id,
        superseded_by=dep.superseded_by,
        updated_by=dep.updated_by,
    )


def _release_out(as_of: date, released: list[handlers.ReleasedPayment]) -> ReleaseResultOut:
    items = [
        ReleasedOut(
            payment_id=r.instalment.payment_id,
            deployment_id=r.deployment_id,
            schedule_id=r.instalment.schedule_id,
            person_id=r.person_id,
            option=r.instalment.option,
            instalment_number=r.instalment.number,
            due_on=r.instalment.due_on,
            released_on=r.instalment.released_on,
            amount_pence=r.instalment.amount_pence,
        )
        for r in released
    ]
    return ReleaseResultOut(
        as_of=as_of,
        released=items,
        count=len(items),
        total_pence=sum(i.amount_pence for i in items),
    )


def _batch_out(batch: ExportBatch) -> ExportBatchOut:
    return ExportBatchOut(
        batch_id=batch.batch_id,
        up_to=batch.up_to,
        created_at=batch.created_at,
        created_by=batch.created_by,
        rows=batch.rows,
        control_total_pence=batch.control_total_pence,
    )


def _after_seq(cursor: str | None, key: str = "seq") -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    value = position.get(key)
    if not isinstance(value, int) or value < 0:
        raise InvalidCursor()
    return value


def _uow(runtime: ServiceRuntime[Any]) -> PaymentsUnitOfWork:
    uow: PaymentsUnitOfWork = runtime.uow()
    return uow


# --- deployments ---------------------------------------------------------------------------


@router.get(
    "/deployments",
    response_model=Page[DeploymentSummaryOut],
    summary="List the council's deployments (a person: their own)",
)
async def list_deployments(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: PersonIdQuery = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeploymentSummaryOut]:
    require_role(actor, *VIEWERS)
    rows = await handlers.list_deployments(
        uow=_uow(runtime),
        actor=actor,
        person_id=person_id,
        status=status,
        after_seq=_after_seq(cursor),
        limit=limit,
    )
    return Page[DeploymentSummaryOut](
        items=[DeploymentSummaryOut(**_summary_fields(dep)) for _, dep in rows],
        next_cursor=encode_cursor({"seq": rows[-1][0]}) if len(rows) == limit else None,
    )


@router.get("/deployments/{deployment_id}", response_model=DeploymentOut, summary="One deployment")
async def get_deployment(
    deployment_id: UUID, actor: CurrentActor, runtime: Runtime
) -> DeploymentOut:
    require_role(actor, *VIEWERS)
    dep = await handlers.get_deployment(uow=_uow(runtime), actor=actor, deployment_id=deployment_id)
    return _deployment_out(dep, runtime)


@router.put(
    "/deployments/{deployment_id}/arrangement",
    response_model=DeploymentOut,
    summary="Choose (or switch) how the budget is held and paid",
)
async def put_arrangement(
    deployment_id: UUID, body: ArrangementIn, actor: CurrentActor, runtime: Runtime
) -> DeploymentOut:
    require_role(actor, *ARRANGERS)
    dep = await handlers.arrange_deployment(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        parts=[PartRequest(option=p.option, annual_pence=p.annual_pence) for p in body.parts],
        frequency=body.frequency,
        first_due_on=body.first_due_on,
        assessed_max_weekly_contribution_pence=body.assessed_max_weekly_contribution_pence,
        expected_version=body.expected_version,
        arrears_reason=body.arrears_reason,
    )
    return _deployment_out(dep, runtime)


@router.post(
    "/deployments/{deployment_id}/agreement",
    response_model=DeploymentOut,
    summary="Record the signed agreement and schedule the payments",
)
async def post_agreement(
    deployment_id: UUID, body: AgreementIn, actor: CurrentActor, runtime: Runtime
) -> DeploymentOut:
    require_role(actor, *ARRANGERS)
    dep = await handlers.sign_agreement(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        signed_on=body.signed_on,
        expected_version=body.expected_version,
        arrears_reason=body.arrears_reason,
    )
    return _deployment_out(dep, runtime)


@router.get(
    "/deployments/{deployment_id}/schedule",
    response_model=Page[InstalmentOut],
    summary="The deployment's instalments in due order",
)
async def get_schedule(
    deployment_id: UUID,
    actor: CurrentActor,
    runtime: Runtime,
    limit: Limit = 200,
    cursor: Cursor = None,
) -> Page[InstalmentOut]:
    require_role(actor, *VIEWERS)
    dep = await handlers.get_deployment(uow=_uow(runtime), actor=actor, deployment_id=deployment_id)
    start = _after_seq(cursor, "offset") or 0
    ordered = dep.ordered_instalments()
    page = ordered[start : start + limit]
    return Page[InstalmentOut](
        items=[
            InstalmentOut(
                instalment_id=i.instalment_id,
                schedule_id=i.schedule_id,
                option=i.option,
                instalment_number=i.number,
                due_on=i.due_on,
                amount_pence=i.amount_pence,
                status=i.status,
                payment_id=i.payment_id,
                released_on=i.released_on,
            )
            for i in page
        ],
        next_cursor=(
            encode_cursor({"offset": start + limit}) if start + limit < len(ordered) else None
        ),
    )


@router.post(
    "/deployments/{deployment_id}/release",
    response_model=ReleaseResultOut,
    summary="Release this deployment's instalments due by as_of",
)
async def post_release(
    deployment_id: UUID, body: ReleaseIn, actor: CurrentActor, runtime: Runtime
) -> ReleaseResultOut:
    require_role(actor, *RELEASERS)
    released = await handlers.release_for_deployment(
        uow=_uow(runtime),
        actor=actor,
        deployment_id=deployment_id,
        as_of=body.as_of,
        expected_version=body.expected_version,
    )
    return _release_out(body.as_of or clock.today(), released)


@router.post(
    "/payments/release-due",
    response_model=ReleaseResultOut,
    summary="Release every due instalment of the council's signed deployments",
)
async def post_release_due(
    body: ReleaseDueIn, actor: CurrentActor, runtime: Runtime
) -> ReleaseResultOut:
    require_role(actor, *RELEASERS)
    released = await handlers.release_due(uow=_uow(runtime), actor=actor, as_of=body.as_of)
    return _release_out(body.as_of or clock.today(), released)


@router.post(
    "/deployments/{deployment_id}/suspend",
    response_model=DeploymentOut,
    summary="Hold the deployment's releases",
)
async def post_suspend(
    deployment_id: UUID, body: HoldIn, actor: CurrentActor, runtime: Runtime
) -> DeploymentOut:
    require_role(actor, *HOLDERS)
    dep = await handlers.suspend_payments(
        uow=_uow(runtime),
        actor=actor,
        deployment_id=deployment_id,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return _deployment_out(dep, runtime)


@router.post(
    "/deployments/{deployment_id}/resume",
    response_model=DeploymentOut,
    summary="Lift the hold on the deployment's releases",
)
async def post_resume(
    deployment_id: UUID, body: HoldIn, actor: CurrentActor, runtime: Runtime
) -> DeploymentOut:
    require_role(actor, *HOLDERS)
    dep = await handlers.resume_payments(
        uow=_uow(runtime),
        actor=actor,
        deployment_id=deployment_id,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return _deployment_out(dep, runtime)


# --- monitoring ----------------------------------------------------------------------------


def _return_out(
    dep: Deployment, record: MonitoringReturn, runtime: ServiceRuntime[Any]
) -> ReturnOut:
    policy = handlers.policy_for(runtime.policies, dep.policy_version, dep.council)
    return ReturnOut(
        return_id=record.return_id,
        deployment_id=dep.deployment_id,
        option=record.option,
        period_start=record.period_start,
        period_end=record.period_end,
        spent_pence=record.spent_pence,
        balance_pence=record.balance_pence,
        items=len(record.items),
        receipts_required_from_pence=policy.monitoring.receipts_required_from_pence,
        missing_receipts=[
            MissingReceiptOut(
                index=index,
                description=record.items[index].description,
                amount_pence=record.items[index].amount_pence,
            )
            for index in record.missing_receipts
        ],
        next_return_due_on=dep.next_return_due_on(policy.monitoring.returns_every_months),
        version=dep.version,
    )


@router.post(
    "/deployments/{deployment_id}/returns",
    response_model=ReturnOut,
    status_code=201,
    summary="Record a monitoring return",
)
async def post_return(
    deployment_id: UUID, body: ReturnIn, actor: CurrentActor, runtime: Runtime
) -> ReturnOut:
    require_role(actor, *RETURN_SUBMITTERS)
    dep, record = await handlers.submit_return(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        period_start=body.period_start,
        period_end=body.period_end,
        items=[
            ReturnItem(description=i.description, amount_pence=i.amount_pence, receipt=i.receipt)
            for i in body.items
        ],
        balance_pence=body.balance_pence,
        option=body.option,
        expected_version=body.expected_version,
    )
    return _return_out(dep, record, runtime)


def _check_out(dep: Deployment, check: UnspentCheck) -> UnspentCheckOut:
    return UnspentCheckOut(
        check_id=check.check_id,
        deployment_id=dep.deployment_id,
        as_of=check.as_of,
        rule=check.rule,
        balance_pence=check.balance_pence,
        allowance_pence=check.allowance_pence,
        clawback_pence=check.clawback_pence,
        clawback_id=check.clawback_id,
        action=check.action,
        held=check.held,
        suspended=dep.suspended,
        version=dep.version,
    )


@router.post(
    "/deployments/{deployment_id}/unspent-check",
    response_model=UnspentCheckOut,
    summary="Apply the council's unspent-funds rule to the balance",
)
async def post_unspent_check(
    deployment_id: UUID, body: UnspentCheckIn, actor: CurrentActor, runtime: Runtime
) -> UnspentCheckOut:
    require_role(actor, Role.FINANCE)
    dep, check = await handlers.check_unspent(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        as_of=body.as_of,
        balance_pence=body.balance_pence,
        action=body.action,
        expected_version=body.expected_version,
    )
    return _check_out(dep, check)


@router.get(
    "/deployments/{deployment_id}/statement",
    response_model=StatementOut,
    summary="Managed accounts: paid in, spent and left",
)
async def get_statement(deployment_id: UUID, actor: CurrentActor, runtime: Runtime) -> StatementOut:
    require_role(actor, *VIEWERS)
    dep, accounts = await handlers.get_statement(
        uow=_uow(runtime), actor=actor, deployment_id=deployment_id
    )
    return StatementOut(
        deployment_id=dep.deployment_id,
        accounts=[
            AccountOut(
                option=a.option,
                paid_in_pence=a.paid_in_pence,
                spent_pence=a.spent_pence,
                balance_left_pence=a.balance_left_pence,
                last_reported_balance_pence=a.last_reported_balance_pence,
                failed_pence=a.failed_pence,
            )
            for a in accounts
        ],
        paid_in_pence=sum(a.paid_in_pence for a in accounts),
        spent_pence=sum(a.spent_pence for a in accounts),
        balance_left_pence=sum(a.balance_left_pence for a in accounts),
        failed_pence=sum(a.failed_pence for a in accounts),
    )


# --- finance export ------------------------------------------------------------------------


@router.post(
    "/exports/payments",
    response_model=ExportBatchOut,
    status_code=201,
    summary="Batch every released payment up to a date not yet exported",
)
async def post_export(body: ExportIn, actor: CurrentActor, runtime: Runtime) -> ExportBatchOut:
    require_role(actor, Role.FINANCE)
    batch = await handlers.create_export_batch(uow=_uow(runtime), actor=actor, up_to=body.up_to)
    return _batch_out(batch)


@router.get(
    "/exports/payments",
    response_model=Page[ExportBatchOut],
    summary="The council's export batches, oldest first",
)
async def list_exports(
    actor: CurrentActor, runtime: Runtime, limit: Limit = 50, cursor: Cursor = None
) -> Page[ExportBatchOut]:
    require_role(actor, *EXPORT_READERS)
    rows = await handlers.list_export_batches(
        uow=_uow(runtime), actor=actor, after_seq=_after_seq(cursor), limit=limit
    )
    return Page[ExportBatchOut](
        items=[_batch_out(batch) for _, batch in rows],
        next_cursor=encode_cursor({"seq": rows[-1][0]}) if len(rows) == limit else None,
    )


@router.get(
    "/exports/payments/{batch_id}.csv",
    response_class=Response,
    summary="The batch as CSV (byte-identical every time); see EXPORT.md",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_export_csv(batch_id: UUID, actor: CurrentActor, runtime: Runtime) -> Response:
    require_role(actor, *EXPORT_READERS)
    batch, text = await handlers.export_batch_csv(uow=_uow(runtime), actor=actor, batch_id=batch_id)
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payments-{batch.batch_id}.csv"'},
    )


# --- reconciliation and the feed -------------------------------------------------------------

CONFIRMERS = (Role.FINANCE,)
FEED_READERS = (Role.FINANCE,)
OUTCOME_READERS = VIEWERS
CONFIRMATIONS_PATH = "/v1/payments/confirmations"


class ConfirmationReportOut(ImportReportOut):
    recorded_paid: int
    recorded_failed: int
    unchanged: int = Field(description="Lines already recorded exactly so: a re-import.")


class PaymentOutcomeOut(BaseModel):
    payment_id: UUID
    person_id: str
    deployment_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: Pence
    status: Outcome
    status_on: date | None = Field(description="The date finance paid it, or it failed.")
    reason: str | None = Field(description="Why it failed, in the finance system's words.")
    finance_reference: str | None


class FeedItemOut(BaseModel):
    position: str = Field(description="Pass as `after` to read on from this item.")
    payment_id: UUID
    person_id: str
    council: str
    deployment_id: UUID
    schedule_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: Pence
    status: str = Field(description="released, paid or failed (as finance last reported).")


class FeedPageOut(BaseModel):
    items: list[FeedItemOut]
    next_after: str = Field(
        description="Where to read on from next time; the same `after` again when empty."
    )


def _feed_position(seq: int) -> str:
    return encode_cursor({"feed": seq})


@router.post(
    "/payments/confirmations",
    response_model=ConfirmationReportOut,
    summary="Import the finance system's confirmation file (paid / failed per payment)",
    openapi_extra=CSV_REQUEST_BODY,
    responses={
        422: {"model": ConfirmationReportOut, "description": "Some lines refused: nothing done"}
    },
)
async def post_confirmations(
    request: Request, actor: CurrentActor, runtime: Runtime
) -> ConfirmationReportOut | JSONResponse:
    require_role(actor, *CONFIRMERS)
    report = await handlers.import_confirmations(
        uow=_uow(runtime), actor=actor, content=await csv_body(request)
    )
    out = ConfirmationReportOut(
        accepted=report.accepted,
        lines=report.lines,
        rejected=report.rejected,
        recorded_paid=report.recorded_paid,
        recorded_failed=report.recorded_failed,
        unchanged=report.unchanged,
    )
    if not report.accepted:
        return JSONResponse(
            {
                "detail": f"{len(report.rejected)} line(s) refused; nothing was recorded",
                "error": "ConfirmationLinesRefused",
                **out.model_dump(mode="json"),
            },
            status_code=422,
        )
    return out


@router.get(
    "/payments",
    response_model=Page[PaymentOutcomeOut],
    summary="Payments finance reported failed (or paid), oldest report first",
)
async def list_payments(
    actor: CurrentActor,
    runtime: Runtime,
    status: Annotated[Outcome, Query(description="failed or paid")],
    person_id: PersonIdQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PaymentOutcomeOut]:
    require_role(actor, *OUTCOME_READERS)
    views = await handlers.list_payments_by_outcome(
        uow=_uow(runtime),
        actor=actor,
        outcome=status,
        person_id=person_id,
        after_seq=_after_seq(cursor),
        limit=limit,
    )
    return Page[PaymentOutcomeOut](
        items=[
            PaymentOutcomeOut(
                payment_id=v.payment_id,
                person_id=v.person_id,
                deployment_id=v.deployment_id,
                option=v.option,
                instalment_number=v.instalment_number,
                due_on=v.due_on,
                released_on=v.released_on,
                amount_pence=v.amount_pence,
                status=status,
                status_on=v.outcome_on,
                reason=v.reason,
                finance_reference=v.finance_reference,
            )
            for v in views
        ],
        next_cursor=encode_cursor({"seq": views[-1].seq}) if len(views) == limit else None,
    )


@router.get(
    "/payments/feed",
    response_model=FeedPageOut,
    summary="Released payments in release order, for finance systems that pull",
)
async def get_payment_feed(
    actor: CurrentActor,
    runtime: Runtime,
    after: Annotated[
        str | None,
        Query(max_length=500, description="next_after of the last page; absent: from the start"),
    ] = None,
    limit: Limit = 100,
) -> FeedPageOut:
    require_role(actor, *FEED_READERS)
    after_seq = _after_seq(after, key="feed") or 0
    rows = await handlers.payment_feed(
        uow=_uow(runtime), actor=actor, after_seq=after_seq, limit=limit
    )
    return FeedPageOut(
        items=[
            FeedItemOut(
                position=_feed_position(row.seq),
                payment_id=UUID(row.payment_id),
                person_id=row.person_id,
                council=row.council,
                deployment_id=UUID(row.deployment_id),
                schedule_id=UUID(row.schedule_id),
                option=DeploymentOption(row.option),
                instalment_number=row.instalment_number,
                due_on=row.due_on,
                released_on=row.released_on,
                amount_pence=row.amount_pence,
                status=row.outcome or "released",
            )
            for row in rows
        ],
        next_after=_feed_position(rows[-1].seq if rows else after_seq),
    )


# --- bulk conversion ------------------------------------------------------------------------


class DeploymentConversionRow(_Request):
    """One converted person's payment set-up: the arrangement and the signed agreement."""

    ref: ConversionRef
    person_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    plan_id: UUID = Field(description="The signed-off plan whose deployment this sets up.")
    arrangement: ArrangementIn
    signed_on: date | None = Field(default=None, description="Default today.")
    arrears_reason: ArrearsReason = None


@router.post(
    "/conversions/deployments",
    response_model=ConversionOut,
    summary="Convert existing clients: arrange each row's deployment and record the agreement",
    description=(
        "Each row (a DeploymentConversionRow: ref, person_id, plan_id, arrangement, "
        "signed_on, arrears_reason) goes through the same use cases as PUT "
        "/v1/deployments/{id}/arrangement and POST /v1/deployments/{id}/agreement, as the "
        "caller, so the same events follow (DeploymentSetUp, AgreementSigned, ArrearsApproved "
        "for a first payment dated back, PaymentScheduled). A row whose deployment has "
        "not been opened yet (PlanSignedOff not applied) is pending; rows commit together; "
        "a refused row is rejected with its reason and nothing of it is written; a ref "
        "converted before is already_done."
    ),
)
async def convert_deployments(
    body: ConversionIn, actor: CurrentActor, runtime: Runtime
) -> ConversionOut:
    require_role(actor, *ARRANGERS)
    rows: list[Row] = []
    valid, refused = validated_rows(body.rows, DeploymentConversionRow)
    for raw, row in valid:

        async def apply(
            uow: PaymentsUnitOfWork, row: DeploymentConversionRow = row
        ) -> dict[str, Any]:
            live = await uow.deployments.live_for_person(actor.council, row.person_id)
            found = next((d for d in live if d.plan_id == row.plan_id), None)
            if found is None:
                raise Pending("payments has not opened the deployment for this plan yet")
            arrangement = row.arrangement
            await handlers.arrange_deployment(
                uow=uow,
                policies=runtime.policies,
                actor=actor,
                deployment_id=found.deployment_id,
                parts=[
                    PartRequest(option=p.option, annual_pence=p.annual_pence)
                    for p in arrangement.parts
                ],
                frequency=arrangement.frequency,
                first_due_on=arrangement.first_due_on,
                assessed_max_weekly_contribution_pence=(
                    arrangement.assessed_max_weekly_contribution_pence
                ),
                expected_version=None,
            )
            dep = await handlers.sign_agreement(
                uow=uow,
                policies=runtime.policies,
                actor=actor,
                deployment_id=found.deployment_id,
                signed_on=row.signed_on,
                expected_version=None,
                arrears_reason=row.arrears_reason or arrangement.arrears_reason,
            )
            return {
                "person_id": dep.person_id,
                "deployment_id": str(dep.deployment_id),
                "status": dep.status.value,
            }

        rows.append(Row(ref=row.ref, content=raw, apply=apply))
    out = await convert_rows(runtime, scope=f"conversion deployments {actor.council}", rows=rows)
    return merge_refused(out, refused)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=MIGRATIONS,
        unit_of_work=PaymentsUnitOfWork,
    )
    consumer.register(runtime)
    return create_service_app(
        runtime=runtime,
        title="PB Journey: payments",
        description="Deployment of the budget, payment schedules, releases, monitoring "
        "and finance export.",
        routers=[router, subject_access_router("payments")],
        upload_paths=frozenset({CONFIRMATIONS_PATH}),
    )
