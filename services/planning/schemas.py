"""Planning's wire models: what the API takes and answers, and how plans map to them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events import PersonId, ProviderKind, ReviewKind, ReviewOutcome, ReviewTrigger
from contracts.money import Frequency, Pence
from contracts.vocabulary import Role
from rules.authority import Sitting
from servicekit.bulk import ConversionRef
from servicekit.dates import DateInRange, DecisionDate, RecordDate
from servicekit.pagination import CursorCodec
from services.planning.domain import (
    Check,
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

PLAN_CURSOR = CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))
"""Plans are listed in (created_at, plan_id) order."""

REVIEW_CURSOR = CursorCodec[tuple[date, UUID]](("d", date), ("id", UUID))
"""Reviews are listed in (due_on, review_id) order."""


MAX_AMOUNT_PENCE = 1_000_000_000  # £10m: far above any real line, far below BigInteger

Amount = Annotated[Pence, Field(le=MAX_AMOUNT_PENCE)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
Line = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
DomainKey = Annotated[str, Field(min_length=1, max_length=64)]
Version = Annotated[int, Field(ge=1, strict=True, description="409 unless the record is at it.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    on: DecisionDate | None = Field(
        default=None, description="Sign-off date, not after today; default today (UTC)."
    )
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


CHANGE_DATE = DateInRange(earliest_years_back=1)
"""The day a change of circumstances happened: within the year up to today, never ahead
(a change is recorded once it has happened; one older than a year is a reassessment's)."""


class Change(StrEnum):
    """The changes of circumstances a case worker records (a surplus comes from payments)."""

    CARER_STOPPED = ReviewTrigger.CARER_STOPPED.value
    HOSPITAL_ADMISSION = ReviewTrigger.HOSPITAL_ADMISSION.value
    OTHER = ReviewTrigger.OTHER.value


class ChangeOfCircumstancesIn(_In):
    plan_id: UUID
    change: Change
    happened_on: Annotated[date, CHANGE_DATE] = Field(
        description="The day it happened: " + CHANGE_DATE.describe() + "."
    )
    details: Text | None = Field(
        None, description="What happened, in a few words; required for `other`."
    )

    @model_validator(mode="after")
    def _other_says_what(self) -> Self:
        if self.change is Change.OTHER and not (self.details and self.details.strip()):
            raise ValueError("details: say what changed when the change is `other`")
        return self


class RunDueIn(_In):
    as_of: RecordDate


class CompleteReviewIn(_In):
    outcome: ReviewOutcome
    completed_on: RecordDate | None = Field(default=None, description="Default today (UTC).")
    notes: str = Field(default="", max_length=4000)
    expected_version: Version | None = None


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
    trigger: ReviewTrigger | None = Field(
        description="What brought an unscheduled review forward; none for the others."
    )
    happened_on: date | None = Field(description="The day that change happened.")
    deployment_id: UUID | None = Field(
        description="The deployment a direct-payment or surplus review looks at."
    )
    policy_version: str | None = Field(
        description="The policy the due date was worked out under; none where a person chose it."
    )


class RunDueOut(BaseModel):
    items: list[ReviewOut] = Field(description="Reviews announced as due by this run.")
    more_due: bool = Field(description="True when a batch limit stopped the run: call again.")


class CompletedReviewOut(BaseModel):
    review: ReviewOut
    next_review: ReviewOut


def plan_content(body: PlanIn) -> PlanContent:
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


def checks_out(checks: list[Check]) -> list[CheckOut]:
    return [CheckOut(check=c.name.value, passed=c.passed, reason=c.reason) for c in checks]


def plan_checks_out(view: PlanView) -> ChecksOut:
    return ChecksOut(
        plan_id=view.plan.plan_id,
        version=view.plan.version,
        passed=all(c.passed for c in view.checks),
        checks=checks_out(view.checks),
    )


def plan_out(view: PlanView) -> PlanOut:
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
        checks=checks_out(view.checks),
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


def plan_summary(plan: Plan) -> dict[str, Any]:
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


def approval_out(item: ApprovalItem) -> ApprovalOut:
    return ApprovalOut(
        **plan_summary(item.plan), role_needed=item.role_needed, panel_sitting=item.panel_sitting
    )


def review_out(review: Review) -> ReviewOut:
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
        trigger=review.trigger,
        happened_on=review.happened_on,
        deployment_id=review.deployment_id,
        policy_version=review.policy_version,
    )


class PlanConversionRow(_In):
    """One converted person's support plan, written, submitted and signed off by the caller."""

    ref: ConversionRef
    plan: PlanIn
    sign_off_on: DecisionDate | None = Field(
        default=None, description="Sign-off date; default today."
    )
