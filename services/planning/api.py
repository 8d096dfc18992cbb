"""Planning HTTP API (versioned under /v1): support plans, sign-off, approvals and reviews.

Thin routes: authorise from the caller's role, turn the request into domain values, call a
handler, shape the answer. Money is integer pence; every list is paginated; every state
change records the caller. Conventions: docs/api.md.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.events import PersonId, ProviderKind, ReviewKind, ReviewOutcome
from contracts.money import Frequency, Pence
from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, Role
from rules.authority import Sitting
from servicekit import clock
from servicekit.app import create_service_app, runtime_from
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
from servicekit.dates import RecordDate
from servicekit.pagination import Cursor, Limit, Page
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.planning import consumer, handlers
from services.planning.db import PlanningUnitOfWork, metadata
from services.planning.domain import (
    Check,
    ChecksFailed,
    InvalidPlan,
    Plan,
    PlanContent,
    PlanLine,
    PlanStatus,
    RequestForMore,
    Review,
    ReviewStatus,
    RiskMitigation,
    SharedSupport,
)
from services.planning.handlers import ApprovalItem, PlanView
from services.planning.schemas import PLAN_CURSOR, REVIEW_CURSOR
from services.planning.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"

router = APIRouter(prefix="/v1", tags=["planning"])

Runtime = Annotated[ServiceRuntime[Any], Depends(runtime_from)]

PLAN_WRITERS = (*sorted(PRACTITIONER_ROLES), *sorted(CITIZEN_ROLES))
PRACTITIONERS = tuple(sorted(PRACTITIONER_ROLES))
REVIEW_CLOCK = (Role.TEAM_MANAGER, Role.OPERATIONS)

MAX_AMOUNT_PENCE = 1_000_000_000  # £10m: far above any real line, far below BigInteger

Amount = Annotated[Pence, Field(le=MAX_AMOUNT_PENCE)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
Line = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
DomainKey = Annotated[str, Field(min_length=1, max_length=64)]
Version = Annotated[int, Field(ge=1, strict=True, description="409 unless the record is at it.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests -----------------------------------------------------------------------------


class SharedIn(_In):
    total_amount_pence: Amount = Field(description="The whole shared cost per occurrence.")
    people: int = Field(strict=True, ge=2, le=100, description="How many people share it.")
    share_basis_points: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=10_000,
        description="This person's share (10,000 = 100%); default an equal share.",
    )


class LineIn(_In):
    line_id: UUID | None = Field(default=None, description="Keep a line's id across edits.")
    description: Line
    provider_kind: ProviderKind
    provider_name: Short | None = None
    frequency: Frequency
    amount_pence: Amount | None = Field(
        default=None, description="Cost per occurrence; left out for shared support."
    )
    domains: list[DomainKey] = Field(default_factory=list, max_length=20)
    outcomes: list[Line] = Field(default_factory=list, max_length=20)
    provider_holds_funds: bool = Field(
        default=False, description="An ISF / provider-managed line: the management fee applies."
    )
    shared: SharedIn | None = None


class RequestForMoreIn(_In):
    weekly_pence: Annotated[Amount, Field(ge=1)] = Field(
        description="The extra a week asked for above the budget."
    )
    reason: Text


class RiskMitigationIn(_In):
    risk_id: Short
    mitigation: Text | None = None
    referred_to_risk_panel: bool = False


class PlanIn(_In):
    person_id: PersonId
    budget_id: UUID
    outcomes: list[Line] = Field(default_factory=list, max_length=50)
    lines: list[LineIn] = Field(min_length=1, max_length=100)
    contingency_weekly_pence: Amount = 0
    request_for_more: RequestForMoreIn | None = None
    risk_mitigations: list[RiskMitigationIn] = Field(default_factory=list, max_length=100)


class PlanUpdateIn(PlanIn):
    expected_version: Version | None = None


class VersionIn(_In):
    expected_version: Version | None = None


class SignOffIn(_In):
    expected_version: Version | None = None
    on: RecordDate | None = Field(default=None, description="Sign-off date; default today (UTC).")
    panel_sitting: Sitting | None = Field(
        None,
        description="Where the council's panel sits separately above a weekly amount "
        "(Council B: above £300 a week), the sitting that took the decision; above that "
        "amount only the separate sitting's counts. Left out: the sitting the amount goes "
        "to is recorded in the plan's history.",
    )


class ReturnIn(_In):
    reasons: list[Text] = Field(min_length=1, max_length=20)
    expected_version: Version | None = None


class ReviewIn(_In):
    plan_id: UUID
    due_on: RecordDate
    reason: Text


class RunDueIn(_In):
    as_of: RecordDate


class CompleteReviewIn(_In):
    outcome: ReviewOutcome
    completed_on: RecordDate | None = Field(default=None, description="Default today (UTC).")
    notes: str = Field(default="", max_length=4000)
    expected_version: Version | None = None


# --- responses ----------------------------------------------------------------------------


class SharedOut(BaseModel):
    total_amount_pence: int
    people: int
    share_basis_points: int | None
    this_persons_amount_pence: int


class LineOut(BaseModel):
    line_id: UUID
    description: str
    provider_kind: ProviderKind
    provider_name: str | None
    frequency: Frequency
    amount_pence: int
    domains: list[str]
    outcomes: list[str]
    provider_holds_funds: bool
    shared: SharedOut | None
    annual_pence: int
    one_off_pence: int
    fee_amount_pence: int


class FeeLineOut(BaseModel):
    line_id: UUID
    fee_line_id: UUID
    description: str
    frequency: Frequency
    amount_pence: int
    annual_pence: int
    one_off_pence: int


class CostingOut(BaseModel):
    weekly_pence: int
    annual_pence: int
    one_off_pence: int
    recurring_annual_pence: int
    fee_basis_points: int
    fee_annual_pence: int
    fee_one_off_pence: int
    contingency_weekly_pence: int
    contingency_annual_pence: int
    fee_lines: list[FeeLineOut]


class CheckOut(BaseModel):
    check: str
    passed: bool
    reason: str


class BudgetOut(BaseModel):
    budget_id: UUID
    stage: str
    revision: int
    weekly_pence: int
    annual_pence: int


class SignOffOut(BaseModel):
    on: date
    by: str
    role: Role
    first_review_on: date
    policy_version: str


class HistoryOut(BaseModel):
    at: datetime
    action: str
    actor: str
    plan_version: int
    version: int
    detail: dict[str, Any]


class RequestForMoreOut(BaseModel):
    weekly_pence: int
    reason: str


class RiskMitigationOut(BaseModel):
    risk_id: str
    mitigation: str | None
    referred_to_risk_panel: bool


class PlanOut(BaseModel):
    plan_id: UUID
    person_id: str
    council: str
    budget_id: UUID
    status: PlanStatus
    version: int
    plan_version: int
    outcomes: list[str]
    lines: list[LineOut]
    contingency_weekly_pence: int
    request_for_more: RequestForMoreOut | None
    risk_mitigations: list[RiskMitigationOut]
    costing: CostingOut
    checks_passed: bool
    checks: list[CheckOut]
    budget: BudgetOut | None
    signed_off: SignOffOut | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    history: list[HistoryOut]


class PlanSummaryOut(BaseModel):
    plan_id: UUID
    person_id: str
    budget_id: UUID
    status: PlanStatus
    version: int
    plan_version: int
    weekly_pence: int
    annual_pence: int
    one_off_pence: int
    request_for_more: bool
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None


class ChecksOut(BaseModel):
    plan_id: UUID
    version: int
    passed: bool
    checks: list[CheckOut]


class ApprovalOut(PlanSummaryOut):
    role_needed: Role | None
    panel_sitting: Sitting | None = Field(
        description="The panel sitting that decides it, where the council's panel sits "
        "separately above a weekly amount."
    )


class ApprovalsPage(BaseModel):
    items: list[ApprovalOut] = Field(description="Submitted plans the caller may sign off.")
    refer_up: list[ApprovalOut] = Field(description="Above the caller's limit: role_needed.")
    next_cursor: str | None = None


class ReviewOut(BaseModel):
    review_id: UUID
    plan_id: UUID
    person_id: str
    kind: ReviewKind
    due_on: date
    reason: str | None
    status: ReviewStatus
    version: int
    scheduled_by: str
    created_at: datetime
    announced_at: datetime | None
    announced_by: str | None
    outcome: ReviewOutcome | None
    completed_on: date | None
    notes: str
    completed_by: str | None


class RunDueOut(BaseModel):
    items: list[ReviewOut] = Field(description="Reviews announced as due by this run.")
    more_due: bool = Field(description="True when a batch limit stopped the run: call again.")


class CompletedReviewOut(BaseModel):
    review: ReviewOut
    next_review: ReviewOut


# --- mapping ------------------------------------------------------------------------------


def _content(body: PlanIn) -> PlanContent:
    lines = []
    for index, raw in enumerate(body.lines):
        try:
            shared = None
            if raw.shared is not None:
                shared = SharedSupport(
                    total_amount_pence=raw.shared.total_amount_pence,
                    people=raw.shared.people,
                    share_basis_points=raw.shared.share_basis_points,
                )
            extra: dict[str, Any] = {} if raw.line_id is None else {"line_id": raw.line_id}
            lines.append(
                PlanLine.costed(
                    description=raw.description,
                    provider_kind=raw.provider_kind,
                    provider_name=raw.provider_name,
                    frequency=raw.frequency,
                    amount_pence=raw.amount_pence,
                    domains=tuple(raw.domains),
                    outcomes=tuple(raw.outcomes),
                    provider_holds_funds=raw.provider_holds_funds,
                    shared=shared,
                    **extra,
                )
            )
        except InvalidPlan as err:
            raise InvalidPlan(f"lines[{index}]: {err}") from err
    more = body.request_for_more
    return PlanContent(
        outcomes=tuple(body.outcomes),
        lines=tuple(lines),
        contingency_weekly_pence=body.contingency_weekly_pence,
        request_for_more=None if more is None else RequestForMore(more.weekly_pence, more.reason),
        risk_mitigations=tuple(
            RiskMitigation(m.risk_id, m.mitigation, m.referred_to_risk_panel)
            for m in body.risk_mitigations
        ),
    )


def _checks_out(checks: list[Check]) -> list[CheckOut]:
    return [CheckOut(check=c.name.value, passed=c.passed, reason=c.reason) for c in checks]


def _plan_out(view: PlanView) -> PlanOut:
    plan, costing, budget = view.plan, view.costing, view.budget
    lines = []
    for line in plan.content.lines:
        cost = costing.line(line.line_id)
        lines.append(
            LineOut(
                line_id=line.line_id,
                description=line.description,
                provider_kind=line.provider_kind,
                provider_name=line.provider_name,
                frequency=line.frequency,
                amount_pence=line.amount_pence,
                domains=list(line.domains),
                outcomes=list(line.outcomes),
                provider_holds_funds=line.provider_holds_funds,
                shared=None
                if line.shared is None
                else SharedOut(
                    total_amount_pence=line.shared.total_amount_pence,
                    people=line.shared.people,
                    share_basis_points=line.shared.share_basis_points,
                    this_persons_amount_pence=line.shared.this_persons_amount,
                ),
                annual_pence=cost.annual_pence,
                one_off_pence=cost.one_off_pence,
                fee_amount_pence=cost.fee_amount_pence,
            )
        )
    more = plan.content.request_for_more
    signed = plan.signed_off
    return PlanOut(
        plan_id=plan.plan_id,
        person_id=plan.person_id,
        council=plan.council,
        budget_id=plan.budget_id,
        status=plan.status,
        version=plan.version,
        plan_version=plan.plan_version,
        outcomes=list(plan.content.outcomes),
        lines=lines,
        contingency_weekly_pence=plan.content.contingency_weekly_pence,
        request_for_more=None
        if more is None
        else RequestForMoreOut(weekly_pence=more.weekly_pence, reason=more.reason),
        risk_mitigations=[
            RiskMitigationOut(
                risk_id=m.risk_id,
                mitigation=m.mitigation,
                referred_to_risk_panel=m.referred_to_risk_panel,
            )
            for m in plan.content.risk_mitigations
        ],
        costing=CostingOut(
            weekly_pence=costing.weekly_pence,
            annual_pence=costing.annual_pence,
            one_off_pence=costing.one_off_pence,
            recurring_annual_pence=costing.recurring_annual_pence,
            fee_basis_points=costing.fee_basis_points,
            fee_annual_pence=costing.fee_annual_pence,
            fee_one_off_pence=costing.fee_one_off_pence,
            contingency_weekly_pence=costing.contingency_weekly_pence,
            contingency_annual_pence=costing.contingency_annual_pence,
            fee_lines=[
                FeeLineOut(
                    line_id=f.line_id,
                    fee_line_id=f.fee_line_id,
                    description=f.description,
                    frequency=f.frequency,
                    amount_pence=f.amount_pence,
                    annual_pence=f.annual_pence,
                    one_off_pence=f.one_off_pence,
                )
                for f in costing.fee_lines
            ],
        ),
        checks_passed=all(c.passed for c in view.checks),
        checks=_checks_out(view.checks),
        budget=None
        if budget is None
        else BudgetOut(
            budget_id=budget.budget_id,
            stage=budget.stage,
            revision=budget.revision,
            weekly_pence=budget.weekly_pence,
            annual_pence=budget.annual_pence,
        ),
        signed_off=None
        if signed is None
        else SignOffOut(
            on=signed.on,
            by=signed.by,
            role=signed.role,
            first_review_on=signed.first_review_on,
            policy_version=signed.policy_version,
        ),
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        submitted_at=plan.submitted_at,
        history=[
            HistoryOut(
                at=h.at,
                action=h.action,
                actor=h.actor,
                plan_version=h.plan_version,
                version=h.version,
                detail=h.detail,
            )
            for h in plan.history
        ],
    )


def _summary(plan: Plan) -> dict[str, Any]:
    costing = plan.costing
    return {
        "plan_id": plan.plan_id,
        "person_id": plan.person_id,
        "budget_id": plan.budget_id,
        "status": plan.status,
        "version": plan.version,
        "plan_version": plan.plan_version,
        "weekly_pence": costing.weekly_pence,
        "annual_pence": costing.annual_pence,
        "one_off_pence": costing.one_off_pence,
        "request_for_more": plan.content.request_for_more is not None,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
        "submitted_at": plan.submitted_at,
    }


def _approval_out(item: ApprovalItem) -> ApprovalOut:
    return ApprovalOut(
        **_summary(item.plan), role_needed=item.role_needed, panel_sitting=item.panel_sitting
    )


def _review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        review_id=review.review_id,
        plan_id=review.plan_id,
        person_id=review.person_id,
        kind=review.kind,
        due_on=review.due_on,
        reason=review.reason,
        status=review.status,
        version=review.version,
        scheduled_by=review.scheduled_by,
        created_at=review.created_at,
        announced_at=review.announced_at,
        announced_by=review.announced_by,
        outcome=review.outcome,
        completed_on=review.completed_on,
        notes=review.notes,
        completed_by=review.completed_by,
    )


def _uow(runtime: ServiceRuntime[Any]) -> PlanningUnitOfWork:
    uow: PlanningUnitOfWork = runtime.uow()
    return uow


# --- plans --------------------------------------------------------------------------------


@router.post("/plans", status_code=201, response_model=PlanOut, summary="Write a draft plan")
async def create_plan(body: PlanIn, actor: CurrentActor, runtime: Runtime) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    if actor.is_citizen and actor.person_id != body.person_id:
        raise HTTPException(404, "not found")
    view = await handlers.create_plan(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        person_id=body.person_id,
        budget_id=body.budget_id,
        content=_content(body),
    )
    return _plan_out(view)


@router.put("/plans/{plan_id}", response_model=PlanOut, summary="Amend a draft or returned plan")
async def amend_plan(
    plan_id: UUID, body: PlanUpdateIn, actor: CurrentActor, runtime: Runtime
) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    view = await handlers.amend_plan(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        person_id=body.person_id,
        budget_id=body.budget_id,
        content=_content(body),
        expected_version=body.expected_version,
    )
    return _plan_out(view)


@router.get("/plans/{plan_id}", response_model=PlanOut, summary="A plan, costed and checked")
async def get_plan(plan_id: UUID, actor: CurrentActor, runtime: Runtime) -> PlanOut:
    view = await handlers.get_plan(
        uow=_uow(runtime), policies=runtime.policies, actor=actor, plan_id=plan_id
    )
    return _plan_out(view)


@router.get("/plans/{plan_id}/checks", response_model=ChecksOut, summary="The sign-off checks")
async def get_plan_checks(plan_id: UUID, actor: CurrentActor, runtime: Runtime) -> ChecksOut:
    view = await handlers.get_plan(
        uow=_uow(runtime), policies=runtime.policies, actor=actor, plan_id=plan_id
    )
    return ChecksOut(
        plan_id=view.plan.plan_id,
        version=view.plan.version,
        passed=all(c.passed for c in view.checks),
        checks=_checks_out(view.checks),
    )


@router.get("/plans", response_model=Page[PlanSummaryOut], summary="The council's plans")
async def list_plans(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    status: PlanStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PlanSummaryOut]:
    found = await handlers.list_plans(
        uow=_uow(runtime),
        actor=actor,
        person_id=person_id,
        status=status,
        after=PLAN_CURSOR.decode(cursor),
        limit=limit + 1,
    )
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = PLAN_CURSOR.encode((last.created_at, last.plan_id))
    return Page[PlanSummaryOut](
        items=[PlanSummaryOut(**_summary(p)) for p in page], next_cursor=next_cursor
    )


@router.post("/plans/{plan_id}/submit", response_model=PlanOut, summary="Submit for sign-off")
async def submit_plan(
    plan_id: UUID, actor: CurrentActor, runtime: Runtime, body: VersionIn | None = None
) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    view = await handlers.submit_plan(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        expected_version=None if body is None else body.expected_version,
    )
    return _plan_out(view)


@router.post("/plans/{plan_id}/sign-off", response_model=PlanOut, summary="Sign off a plan")
async def sign_off_plan(
    plan_id: UUID, actor: CurrentActor, runtime: Runtime, body: SignOffIn | None = None
) -> PlanOut:
    require_role(actor, *PRACTITIONERS)  # before the plan is read: a 403 says nothing of it
    body = body or SignOffIn()
    view, _ = await handlers.sign_off_plan(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        on=body.on or clock.today(),
        expected_version=body.expected_version,
        panel_sitting=body.panel_sitting,
    )
    return _plan_out(view)


@router.post("/plans/{plan_id}/return", response_model=PlanOut, summary="Return with reasons")
async def return_plan(
    plan_id: UUID, body: ReturnIn, actor: CurrentActor, runtime: Runtime
) -> PlanOut:
    require_role(actor, *PRACTITIONERS)
    view = await handlers.return_plan(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        reasons=list(body.reasons),
        expected_version=body.expected_version,
    )
    return _plan_out(view)


@router.get("/approvals", response_model=ApprovalsPage, summary="Plans waiting for sign-off")
async def approvals(
    actor: CurrentActor, runtime: Runtime, limit: Limit = 50, cursor: Cursor = None
) -> ApprovalsPage:
    require_role(actor, *PRACTITIONERS)
    items, last_time, last_id = await handlers.approvals_queue(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        after=PLAN_CURSOR.decode(cursor),
        limit=limit,
    )
    next_cursor = None
    if last_time is not None and last_id is not None:
        next_cursor = PLAN_CURSOR.encode((last_time, last_id))
    return ApprovalsPage(
        items=[_approval_out(i) for i in items if i.can_sign_off],
        refer_up=[_approval_out(i) for i in items if not i.can_sign_off],
        next_cursor=next_cursor,
    )


# --- reviews ------------------------------------------------------------------------------


@router.get("/reviews", response_model=Page[ReviewOut], summary="Reviews by due date")
async def list_reviews(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    due_before: Annotated[
        RecordDate | None, Query(description="Due on or before this date.")
    ] = None,
    status: ReviewStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReviewOut]:
    found = await handlers.list_reviews(
        uow=_uow(runtime),
        actor=actor,
        person_id=person_id,
        due_on_or_before=due_before,
        status=status,
        after=REVIEW_CURSOR.decode(cursor),
        limit=limit + 1,
    )
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = REVIEW_CURSOR.encode((last.due_on, last.review_id))
    return Page[ReviewOut](items=[_review_out(r) for r in page], next_cursor=next_cursor)


@router.post("/reviews", status_code=201, response_model=ReviewOut, summary="Unscheduled review")
async def schedule_review(body: ReviewIn, actor: CurrentActor, runtime: Runtime) -> ReviewOut:
    require_role(actor, *PRACTITIONERS)
    review = await handlers.schedule_review(
        uow=_uow(runtime),
        actor=actor,
        plan_id=body.plan_id,
        due_on=body.due_on,
        reason=body.reason,
    )
    return _review_out(review)


@router.post("/reviews/run-due", response_model=RunDueOut, summary="Announce reviews now due")
async def run_due_reviews(body: RunDueIn, actor: CurrentActor, runtime: Runtime) -> RunDueOut:
    require_role(actor, *REVIEW_CLOCK)
    announced, more = await handlers.run_due_reviews(
        uow=_uow(runtime), actor=actor, as_of=body.as_of
    )
    return RunDueOut(items=[_review_out(r) for r in announced], more_due=more)


@router.get("/reviews/{review_id}", response_model=ReviewOut, summary="One review")
async def get_review(review_id: UUID, actor: CurrentActor, runtime: Runtime) -> ReviewOut:
    review = await handlers.get_review(uow=_uow(runtime), actor=actor, review_id=review_id)
    return _review_out(review)


@router.post(
    "/reviews/{review_id}/complete",
    response_model=CompletedReviewOut,
    summary="Record a review's outcome and schedule the next",
)
async def complete_review(
    review_id: UUID, body: CompleteReviewIn, actor: CurrentActor, runtime: Runtime
) -> CompletedReviewOut:
    require_role(actor, *PRACTITIONERS)
    review, following = await handlers.complete_review(
        uow=_uow(runtime),
        policies=runtime.policies,
        actor=actor,
        review_id=review_id,
        outcome=body.outcome,
        completed_on=body.completed_on or clock.today(),
        notes=body.notes,
        expected_version=body.expected_version,
    )
    return CompletedReviewOut(review=_review_out(review), next_review=_review_out(following))


# --- the app ------------------------------------------------------------------------------


async def _checks_failed(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ChecksFailed)
    return JSONResponse(
        {
            "detail": str(err),
            "error": type(err).__name__,
            "failures": [{"check": c.name.value, "reason": c.reason} for c in err.failures],
        },
        status_code=err.status_code,
    )


# --- bulk conversion ------------------------------------------------------------------------


class PlanConversionRow(_In):
    """One converted person's support plan, written, submitted and signed off by the caller."""

    ref: ConversionRef
    plan: PlanIn
    sign_off_on: RecordDate | None = Field(
        default=None, description="Sign-off date; default today."
    )


@router.post(
    "/conversions/plans",
    response_model=ConversionOut,
    summary="Convert existing clients: write, submit and sign off each row's support plan",
    description=(
        "Each row (a PlanConversionRow: ref, plan, sign_off_on) goes through the same use "
        "cases as POST /v1/plans, /submit and /sign-off, as the caller, so the same checks "
        "run and the same events follow (PlanSubmitted, PlanSignedOff, ReviewScheduled); "
        "the caller must be allowed to sign off each plan's cost under the council's "
        "policy. A row whose budget or validated assessment has not reached planning yet "
        "is pending; rows commit together; a refused row is rejected with its reason and "
        "nothing of it is written; a ref converted before is already_done."
    ),
)
async def convert_plans(body: ConversionIn, actor: CurrentActor, runtime: Runtime) -> ConversionOut:
    require_role(actor, *PRACTITIONERS)
    rows: list[Row] = []
    valid, refused = validated_rows(body.rows, PlanConversionRow)
    for raw, row in valid:

        async def apply(uow: PlanningUnitOfWork, row: PlanConversionRow = row) -> dict[str, Any]:
            budget = await uow.budgets.get(row.plan.budget_id)
            # Another council's budget is as if it did not exist: telling it apart from one
            # not yet arrived would say that the other council holds it.
            if budget is None or budget.council != actor.council:
                raise Pending("planning has not learnt of this budget yet")
            if await uow.assessments.get(budget.assessment_id) is None:
                raise Pending("the validated assessment behind the budget has not reached planning")
            drafted = await handlers.create_plan(
                uow=uow,
                policies=runtime.policies,
                actor=actor,
                person_id=row.plan.person_id,
                budget_id=row.plan.budget_id,
                content=_content(row.plan),
            )
            plan_id = drafted.plan.plan_id
            await handlers.submit_plan(
                uow=uow,
                policies=runtime.policies,
                actor=actor,
                plan_id=plan_id,
                expected_version=None,
            )
            signed, review = await handlers.sign_off_plan(
                uow=uow,
                policies=runtime.policies,
                actor=actor,
                plan_id=plan_id,
                on=row.sign_off_on or clock.today(),
                expected_version=None,
            )
            return {
                "person_id": signed.plan.person_id,
                "plan_id": str(plan_id),
                "budget_id": str(row.plan.budget_id),
                "weekly_pence": signed.costing.weekly_pence,
                "review_id": str(review.review_id),
            }

        rows.append(Row(ref=row.ref, content=raw, apply=apply))
    out = await convert_rows(runtime, scope=f"conversion plans {actor.council}", rows=rows)
    return merge_refused(out, refused)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=MIGRATIONS,
        unit_of_work=PlanningUnitOfWork,
    )
    consumer.register(runtime)
    app = create_service_app(
        runtime=runtime,
        title="PB Journey: planning",
        description="Support plans against an issued budget, sign-off by approval limit, "
        "and reviews.",
        routers=[router, subject_access_router("planning")],
    )
    app.add_exception_handler(ChecksFailed, _checks_failed)
    return app
