"""Support plans, their sign-off and their reviews: pure rules, no I/O (domain digest §3).

A plan is costed in integer pence and never in hours (seed 000; `rules.plan_costing`).
Before it can be submitted or signed off it must pass the sign-off checks, all reported at
once with a plain reason (seed 003 Step 3; `rules.sign_off_checks`). Who may sign it off is
`rules.authority`'s decision; when it is reviewed, `rules.reviews`'.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from contracts.events import (
    Event,
    PlanLineSummary,
    PlanReturned,
    PlanSignedOff,
    PlanSubmitted,
    ProviderKind,
    ReviewCompleted,
    ReviewDue,
    ReviewKind,
    ReviewOutcome,
    ReviewScheduled,
    ReviewTrigger,
)
from contracts.money import (
    Frequency,
    apply_basis_points,
    div_round_half_up,
    format_pounds,
)
from contracts.policy import Policy, Questionnaire, Reviews
from contracts.vocabulary import Role
from rules import reviews as review_dates
from rules.authority import Decision, Refusal, Sitting, may_sign_off
from rules.plan_costing import Costing as Costing
from rules.plan_costing import FeeLine as FeeLine
from rules.plan_costing import LineCost as LineCost
from rules.plan_costing import cost_plan as cost_plan
from rules.reviews import add_months as add_months
from rules.sign_off_checks import Check as Check
from rules.sign_off_checks import CheckName as CheckName
from rules.sign_off_checks import high_domains as high_domains
from rules.sign_off_checks import run_checks as run_checks
from servicekit import errors
from servicekit.caller import Caller

# --- errors -------------------------------------------------------------------------------


class PlanningError(errors.DomainError):
    """Base of every refusal the planning rules make."""


class PlanNotFound(PlanningError, errors.NotFound):
    def __init__(self, plan_id: UUID) -> None:
        super().__init__(f"plan {plan_id} not found")


class ReviewNotFound(PlanningError, errors.NotFound):
    def __init__(self, review_id: UUID) -> None:
        super().__init__(f"review {review_id} not found")


class InvalidPlan(PlanningError, errors.Invalid):
    """The plan as written cannot be costed or checked; the message names the field."""


class BudgetNotKnown(PlanningError, errors.Invalid):
    def __init__(self, budget_id: UUID, person_id: str) -> None:
        super().__init__(
            f"budget_id: no issued budget {budget_id} is known for person {person_id}; a plan "
            "is written against an indicative or final budget"
        )


class IllegalStateChange(PlanningError, errors.Conflict):
    """The record is not in a state that allows this action."""


class ChecksFailed(PlanningError, errors.Invalid):
    """One or more sign-off checks fail; every failure is listed."""

    def __init__(self, failures: list[Check]) -> None:
        self.failures = failures
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in failures)
        super().__init__(f"the plan does not meet the sign-off criteria: {reasons}")


class PanelOnly(PlanningError, errors.Forbidden):
    def __init__(self, role: Role, client_group: str | None) -> None:
        self.needed = Role.PANEL
        group = (client_group or "unknown client group").replace("_", " ")
        super().__init__(
            f"a {role.value} may not sign off this plan: in this council's policy the panel "
            f"signs off every {group} plan"
        )


class NeedsSeparatePanel(PlanningError, errors.Forbidden):
    """Above the amount where the council's panel sits separately, only that sitting's
    decision counts."""

    def __init__(self, decision: Decision) -> None:
        self.needed = Role.PANEL
        super().__init__(decision.reason)


class AboveApprovalLimit(PlanningError, errors.Forbidden):
    def __init__(self, role: Role, weekly_pence: int, needed: Role | None) -> None:
        self.needed = needed
        who = (
            f"it needs a {needed.value}"
            if needed is not None
            else "no role in this council's policy may sign it off"
        )
        super().__init__(
            f"a {role.value} may not sign off a plan of {format_pounds(weekly_pence)} a week: {who}"
        )


# --- values -------------------------------------------------------------------------------


class PlanStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    SIGNED_OFF = "signed_off"


EDITABLE = frozenset({PlanStatus.DRAFT, PlanStatus.RETURNED})


class ReviewStatus(StrEnum):
    SCHEDULED = "scheduled"
    DUE = "due"
    COMPLETED = "completed"


@dataclass(frozen=True)
class SharedSupport:
    """Support shared between people, e.g. a sleep-in in a supported tenancy (seed 003 ch.4).

    This person's amount is ``share_basis_points`` of the total; without a share, an equal
    share (the total divided by the number of people, rounded half up to the penny).
    """

    total_amount_pence: int
    people: int
    share_basis_points: int | None = None

    def __post_init__(self) -> None:
        if self.total_amount_pence < 0:
            raise InvalidPlan("shared.total_amount_pence must not be negative")
        if self.people < 2:
            raise InvalidPlan("shared.people: shared support is shared by at least 2 people")
        if self.share_basis_points is not None and not 1 <= self.share_basis_points <= 10_000:
            raise InvalidPlan("shared.share_basis_points must be between 1 and 10000")

    @property
    def this_persons_amount(self) -> int:
        if self.share_basis_points is None:
            return div_round_half_up(self.total_amount_pence, self.people)
        return apply_basis_points(self.total_amount_pence, self.share_basis_points)


@dataclass(frozen=True)
class PlanLine:
    """One costed line: what, who, how often, what it costs per occurrence, what it serves."""

    description: str
    provider_kind: ProviderKind
    frequency: Frequency
    amount_pence: int
    domains: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    provider_holds_funds: bool = False
    provider_name: str | None = None
    shared: SharedSupport | None = None
    line_id: UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if self.amount_pence < 0:
            raise InvalidPlan("amount_pence must not be negative")

    @classmethod
    def costed(
        cls,
        *,
        description: str,
        provider_kind: ProviderKind,
        frequency: Frequency,
        amount_pence: int | None,
        shared: SharedSupport | None = None,
        **rest: Any,
    ) -> PlanLine:
        """A line whose amount is given, or for shared support worked out from the share."""
        if shared is not None:
            share = shared.this_persons_amount
            if amount_pence is not None and amount_pence != share:
                raise InvalidPlan(
                    f"amount_pence {amount_pence} is not this person's share of the shared "
                    f"support ({share}); leave amount_pence out to use the share"
                )
            amount_pence = share
        if amount_pence is None:
            raise InvalidPlan("amount_pence is required unless the line is shared support")
        return cls(
            description=description,
            provider_kind=provider_kind,
            frequency=frequency,
            amount_pence=amount_pence,
            shared=shared,
            **rest,
        )

    @property
    def recurring(self) -> bool:
        return self.frequency is not Frequency.ONE_OFF


@dataclass(frozen=True)
class RequestForMore:
    """A recorded request for more than the budget: the extra asked for a week, and why."""

    weekly_pence: int
    reason: str


@dataclass(frozen=True)
class RiskMitigation:
    risk_id: str
    mitigation: str | None = None
    referred_to_risk_panel: bool = False

    @property
    def answers_the_risk(self) -> bool:
        return self.referred_to_risk_panel or bool(self.mitigation and self.mitigation.strip())


@dataclass(frozen=True)
class PlanContent:
    """What the person and whoever helps them write: the part of a plan that is amended."""

    outcomes: tuple[str, ...]
    lines: tuple[PlanLine, ...]
    contingency_weekly_pence: int = 0
    request_for_more: RequestForMore | None = None
    risk_mitigations: tuple[RiskMitigation, ...] = ()

    def __post_init__(self) -> None:
        if self.contingency_weekly_pence < 0:
            raise InvalidPlan("contingency_weekly_pence must not be negative")
        seen: set[str] = set()
        for index, item in enumerate(self.risk_mitigations):
            if item.risk_id in seen:
                raise InvalidPlan(f"risk_mitigations[{index}].risk_id {item.risk_id} is repeated")
            seen.add(item.risk_id)
        line_ids = [line.line_id for line in self.lines]
        if len(line_ids) != len(set(line_ids)):
            raise InvalidPlan("lines: each line_id may appear once")

    def validate_against(self, questionnaire: Questionnaire, known_risks: list[str] | None) -> None:
        """Refuse domains the council's questionnaire does not have and risks never assessed."""
        keys = [d.key for d in questionnaire.domains]
        for index, line in enumerate(self.lines):
            for domain in line.domains:
                if domain not in keys:
                    raise InvalidPlan(
                        f"lines[{index}].domains: {domain!r} is not a domain of this council's "
                        f"questionnaire ({', '.join(keys)})"
                    )
        if known_risks is not None:
            for index, item in enumerate(self.risk_mitigations):
                if item.risk_id not in known_risks:
                    raise InvalidPlan(
                        f"risk_mitigations[{index}].risk_id: {item.risk_id!r} is not a risk of "
                        "the validated assessment"
                    )


# --- what planning knows from other services ----------------------------------------------


@dataclass(frozen=True)
class KnownBudget:
    """The latest revision of a budget, from BudgetIssued."""

    budget_id: UUID
    assessment_id: UUID
    person_id: str
    council: str
    stage: str
    revision: int
    weekly_pence: int
    annual_pence: int
    policy_version: str


@dataclass(frozen=True)
class KnownRisk:
    risk_id: str
    description: str
    flagged: bool


@dataclass(frozen=True)
class KnownAssessment:
    """The validated levels and risks of an assessment, from AssessmentValidated."""

    assessment_id: UUID
    person_id: str
    council: str
    client_group: str
    domain_levels: dict[str, int]
    risks: tuple[KnownRisk, ...]
    policy_version: str


@dataclass(frozen=True)
class KnownDeployment:
    """How a signed-off plan's budget is held, from DeploymentSetUp and DeploymentSwitched:
    enough to find the plan a direct payment or a surplus belongs to."""

    deployment_id: UUID
    plan_id: UUID
    person_id: str
    council: str
    direct_payment: bool


# --- checks -------------------------------------------------------------------------------
# --- reviews ------------------------------------------------------------------------------

SYSTEM_ACTOR = "system"
"""Who a review was scheduled by when no person booked it (ReviewScheduled.scheduled_by)."""


@dataclass
class Review:
    """A review of a signed-off plan: first, annual or unscheduled (seed 004 §6.7; 003 step 7)."""

    review_id: UUID
    plan_id: UUID
    person_id: str
    council: str
    kind: ReviewKind
    due_on: date
    scheduled_by: str
    created_at: datetime
    reason: str | None = None
    trigger: ReviewTrigger | None = None
    happened_on: date | None = None
    deployment_id: UUID | None = None
    policy_version: str | None = None
    status: ReviewStatus = ReviewStatus.SCHEDULED
    version: int = 1
    announced_at: datetime | None = None
    announced_by: str | None = None
    outcome: ReviewOutcome | None = None
    completed_on: date | None = None
    notes: str = ""
    completed_by: str | None = None
    events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def schedule(
        cls,
        *,
        plan: Plan,
        kind: ReviewKind,
        due_on: date,
        by: str,
        at: datetime,
        reason: str | None = None,
        review_id: UUID | None = None,
        trigger: ReviewTrigger | None = None,
        happened_on: date | None = None,
        deployment_id: UUID | None = None,
        policy_version: str | None = None,
    ) -> Review:
        review = cls(
            review_id=review_id or uuid.uuid4(),
            plan_id=plan.plan_id,
            person_id=plan.person_id,
            council=plan.council,
            kind=kind,
            due_on=due_on,
            scheduled_by=by,
            created_at=at,
            reason=reason,
            trigger=trigger,
            happened_on=happened_on,
            deployment_id=deployment_id,
            policy_version=policy_version,
        )
        review.events.append(
            ReviewScheduled(
                person_id=review.person_id,
                council=review.council,
                review_id=review.review_id,
                plan_id=review.plan_id,
                kind=kind,
                due_on=due_on,
                reason=reason,
                scheduled_by=by[:200] or SYSTEM_ACTOR,
                trigger=trigger,
                happened_on=happened_on,
                deployment_id=deployment_id,
                policy_version=policy_version,
            )
        )
        return review

    @classmethod
    def of_direct_payment(
        cls,
        *,
        plan: Plan,
        deployment_id: UUID,
        starts_on: date,
        reviews: Reviews,
        policy_version: str,
        at: datetime,
    ) -> Review:
        """The first review of a direct payment starting on `starts_on` (Care and Support
        (Direct Payments) Regulations 2014, reg. 7: within its first 6 months)."""
        due_on = review_dates.first_direct_payment_review_on(starts_on, reviews)
        return cls.schedule(
            plan=plan,
            kind=ReviewKind.DIRECT_PAYMENT,
            due_on=due_on,
            by=SYSTEM_ACTOR,
            at=at,
            reason=f"first review of the direct payment that started on {starts_on.isoformat()}",
            deployment_id=deployment_id,
            policy_version=policy_version,
        )

    @classmethod
    def on_change(
        cls,
        *,
        plan: Plan,
        trigger: ReviewTrigger,
        happened_on: date,
        reason: str,
        by: str,
        reviews: Reviews,
        policy_version: str,
        at: datetime,
        deployment_id: UUID | None = None,
    ) -> Review:
        """An unscheduled review brought forward by an event in the person's life, due by
        the policy's days for that kind of event (seed 003 step 7)."""
        if plan.signed_off is None:
            raise IllegalStateChange(
                f"plan {plan.plan_id} has never been signed off, so there is nothing to review"
            )
        return cls.schedule(
            plan=plan,
            kind=ReviewKind.UNSCHEDULED,
            due_on=review_dates.unscheduled_review_on(happened_on, trigger.value, reviews),
            by=by,
            at=at,
            reason=reason,
            trigger=trigger,
            happened_on=happened_on,
            deployment_id=deployment_id,
            policy_version=policy_version,
        )

    def check_version(self, expected: int | None) -> None:
        errors.require_version(f"review {self.review_id}", expected, self.version)

    def announce_if_due(self, *, as_of: date, by: str, at: datetime) -> bool:
        """Announce a scheduled review due on or before `as_of`, once (ReviewDue)."""
        if self.status is not ReviewStatus.SCHEDULED or self.due_on > as_of:
            return False
        self.status = ReviewStatus.DUE
        self.announced_at = at
        self.announced_by = by
        self.version += 1
        self.events.append(
            ReviewDue(
                person_id=self.person_id,
                council=self.council,
                review_id=self.review_id,
                plan_id=self.plan_id,
                kind=self.kind,
                due_on=self.due_on,
            )
        )
        return True

    def complete(
        self,
        *,
        outcome: ReviewOutcome,
        completed_on: date,
        notes: str,
        by: str,
        plan: Plan,
        reviews: Reviews,
        policy_version: str,
        at: datetime,
        expected_version: int | None = None,
    ) -> Review:
        """Record the outcome and schedule the next review: of a direct payment, the
        policy's direct-payment interval later (reg. 7: at most 12 months); of the plan,
        the next annual one `then_every_months` later.

        ``revise_plan`` reopens the signed-off plan as a new draft version so it can be
        amended and signed off again; ``reassess`` and ``no_change`` only record the outcome.
        """
        self.check_version(expected_version)
        if self.status is ReviewStatus.COMPLETED:
            raise IllegalStateChange(f"review {self.review_id} is already completed")
        if plan.plan_id != self.plan_id:
            raise InvalidPlan("the review belongs to another plan")
        self.status = ReviewStatus.COMPLETED
        self.outcome = outcome
        self.completed_on = completed_on
        self.notes = notes
        self.completed_by = by
        self.version += 1
        self.events.append(
            ReviewCompleted(
                person_id=self.person_id,
                council=self.council,
                review_id=self.review_id,
                plan_id=self.plan_id,
                outcome=outcome,
                completed_on=completed_on,
                notes=notes,
                completed_by=by[:200],
            )
        )
        if outcome is ReviewOutcome.REVISE_PLAN:
            plan.reopen_for_revision(by=by, at=at, review_id=self.review_id)
        reason = f"next review after the {outcome.value} review of {completed_on.isoformat()}"
        if self.kind is ReviewKind.DIRECT_PAYMENT:
            return Review.schedule(
                plan=plan,
                kind=ReviewKind.DIRECT_PAYMENT,
                due_on=review_dates.next_direct_payment_review_on(completed_on, reviews),
                by=by,
                at=at,
                reason=reason,
                deployment_id=self.deployment_id,
                policy_version=policy_version,
            )
        return Review.schedule(
            plan=plan,
            kind=ReviewKind.ANNUAL,
            due_on=review_dates.next_review_on(completed_on, reviews.then_every_months),
            by=by,
            at=at,
            reason=reason,
            policy_version=policy_version,
        )


# --- plans --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    action: str
    actor: str
    plan_version: int
    version: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignOff:
    on: date
    by: str
    role: Role
    first_review_on: date
    policy_version: str


@dataclass
class Plan:
    """A support plan against one budget, through draft, submission and sign-off."""

    plan_id: UUID
    person_id: str
    council: str
    budget_id: UUID
    content: PlanContent
    fee_basis_points: int
    created_at: datetime
    updated_at: datetime
    status: PlanStatus = PlanStatus.DRAFT
    version: int = 1
    plan_version: int = 1
    submitted_at: datetime | None = None
    signed_off: SignOff | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def draft(
        cls,
        *,
        person_id: str,
        council: str,
        budget: KnownBudget,
        content: PlanContent,
        fee_basis_points: int,
        by: str,
        at: datetime,
        plan_id: UUID | None = None,
    ) -> Plan:
        """A new draft plan against a budget issued for this person."""
        if budget.person_id != person_id or budget.council != council:
            raise BudgetNotKnown(budget.budget_id, person_id)
        plan = cls(
            plan_id=plan_id or uuid.uuid4(),
            person_id=person_id,
            council=council,
            budget_id=budget.budget_id,
            content=content,
            fee_basis_points=fee_basis_points,
            created_at=at,
            updated_at=at,
        )
        plan._record("created", by, at, weekly_pence=plan.costing.weekly_pence)
        return plan

    @property
    def costing(self) -> Costing:
        return cost_plan(self.content, fee_basis_points=self.fee_basis_points)

    def check_version(self, expected: int | None) -> None:
        errors.require_version(f"plan {self.plan_id}", expected, self.version)

    def _record(self, action: str, by: str, at: datetime, **detail: Any) -> None:
        self.updated_at = at
        self.history.append(
            HistoryEntry(at, action, by, self.plan_version, self.version, dict(detail))
        )

    def _bump(self) -> None:
        self.version += 1

    def amend(
        self,
        *,
        budget: KnownBudget,
        content: PlanContent,
        fee_basis_points: int,
        by: str,
        at: datetime,
        expected_version: int | None = None,
    ) -> None:
        """Replace the plan's content; only a draft or a returned plan can be amended."""
        self.check_version(expected_version)
        if self.status not in EDITABLE:
            raise IllegalStateChange(
                f"plan {self.plan_id} is {self.status.value}; only a draft or returned plan "
                "can be amended"
            )
        if budget.person_id != self.person_id or budget.council != self.council:
            raise BudgetNotKnown(budget.budget_id, self.person_id)
        self.budget_id = budget.budget_id
        self.content = content
        self.fee_basis_points = fee_basis_points
        self.status = PlanStatus.DRAFT
        self._bump()
        self._record("amended", by, at, weekly_pence=self.costing.weekly_pence)

    def submit(
        self, *, checks: list[Check], by: str, at: datetime, expected_version: int | None = None
    ) -> None:
        """Submit for sign-off; every check must pass (all failures are reported at once)."""
        self.check_version(expected_version)
        if self.status not in EDITABLE:
            raise IllegalStateChange(
                f"plan {self.plan_id} is {self.status.value}; only a draft or returned plan "
                "can be submitted"
            )
        failures = [c for c in checks if not c.passed]
        if failures:
            raise ChecksFailed(failures)
        costing = self.costing
        self.status = PlanStatus.SUBMITTED
        self.submitted_at = at
        self._bump()
        self._record("submitted", by, at, weekly_pence=costing.weekly_pence)
        self.events.append(
            PlanSubmitted(
                person_id=self.person_id,
                council=self.council,
                plan_id=self.plan_id,
                budget_id=self.budget_id,
                plan_version=self.plan_version,
                weekly_pence=costing.weekly_pence,
                annual_pence=costing.annual_pence,
                request_for_more=self.content.request_for_more is not None,
            )
        )

    def return_to_author(
        self,
        *,
        reasons: list[str],
        by: Caller,
        at: datetime,
        expected_version: int | None = None,
    ) -> None:
        """Send a submitted plan back with reasons; it can then be amended and resubmitted."""
        self.check_version(expected_version)
        if self.status is not PlanStatus.SUBMITTED:
            raise IllegalStateChange(
                f"plan {self.plan_id} is {self.status.value}; only a submitted plan can be returned"
            )
        if not reasons:
            raise InvalidPlan("reasons: give at least one reason for returning the plan")
        self.status = PlanStatus.RETURNED
        self._bump()
        self._record("returned", by.record, at, reasons=list(reasons))
        self.events.append(
            PlanReturned(
                person_id=self.person_id,
                council=self.council,
                plan_id=self.plan_id,
                reasons=list(reasons),
                returned_by=by.record[:200],
                returned_by_role=by.role,
            )
        )

    def sign_off(
        self,
        *,
        approver: Caller,
        policy: Policy,
        checks: list[Check],
        budget: KnownBudget | None,
        on: date,
        first_review_after_days: int,
        policy_version: str,
        at: datetime,
        expected_version: int | None = None,
        review_id: UUID | None = None,
        client_group: str | None = None,
        panel_sitting: Sitting | None = None,
    ) -> Review:
        """Sign off a submitted plan if rules.authority allows the approver; schedule the
        first review.

        `client_group`: the assessment's, for a council that sends some groups' plans to
        the panel whatever the amount (policy `panel_only_client_groups`); None when not
        known, which such a council's panel alone may sign off. `panel_sitting`: the sitting
        a panel names where the council's panel sits separately above an amount (seed 004
        App.1 Council B); not named, the sitting the amount goes to is recorded."""
        self.check_version(expected_version)
        if self.status is not PlanStatus.SUBMITTED:
            raise IllegalStateChange(
                f"plan {self.plan_id} is {self.status.value}; only a submitted plan can be "
                "signed off"
            )
        costing = self.costing
        decision = may_sign_off(
            policy, approver.role, costing.weekly_pence, client_group, sitting=panel_sitting
        )
        if decision.refusal is Refusal.PANEL_ONLY:
            raise PanelOnly(approver.role, client_group)
        if decision.refusal is Refusal.NEEDS_SEPARATE_PANEL:
            raise NeedsSeparatePanel(decision)
        if not decision.allowed:
            raise AboveApprovalLimit(approver.role, costing.weekly_pence, decision.needed)
        failures = [c for c in checks if not c.passed]
        if failures:
            raise ChecksFailed(failures)
        if budget is None:  # the budget_issued check has already refused this
            raise BudgetNotKnown(self.budget_id, self.person_id)
        first_review_on = review_dates.first_review_on(on, first_review_after_days)
        self.signed_off = SignOff(
            on, approver.record, approver.role, first_review_on, policy_version
        )
        self.status = PlanStatus.SIGNED_OFF
        self._bump()
        self._record(
            "signed_off",
            approver.record,
            at,
            on=on.isoformat(),
            weekly_pence=costing.weekly_pence,
            first_review_on=first_review_on.isoformat(),
            policy_version=policy_version,
            **({"panel_sitting": decision.sitting.value} if decision.sitting else {}),
        )
        self.events.append(
            PlanSignedOff(
                person_id=self.person_id,
                council=self.council,
                plan_id=self.plan_id,
                budget_id=self.budget_id,
                assessment_id=budget.assessment_id,
                plan_version=self.plan_version,
                weekly_pence=costing.weekly_pence,
                annual_pence=costing.annual_pence,
                one_off_pence=costing.one_off_pence,
                contingency_weekly_pence=costing.contingency_weekly_pence,
                lines=line_summaries(self.content, costing),
                request_for_more=self.content.request_for_more is not None,
                signed_off_by=approver.record[:200],
                signed_off_by_role=approver.role,
                first_review_on=first_review_on,
                policy_version=policy_version,
            )
        )
        review = Review.schedule(
            plan=self,
            kind=ReviewKind.FIRST,
            due_on=first_review_on,
            by=approver.record,
            at=at,
            reason="first review after sign-off",
            review_id=review_id,
        )
        return review

    def reopen_for_revision(self, *, by: str, at: datetime, review_id: UUID) -> None:
        """After a review decides to revise the plan: a new draft version of a signed-off plan."""
        if self.status is not PlanStatus.SIGNED_OFF:
            return  # already open for amendment: nothing to reopen
        self.status = PlanStatus.DRAFT
        self.plan_version += 1
        self.submitted_at = None
        self._bump()
        self._record("reopened_for_revision", by, at, review_id=str(review_id))


def line_summaries(content: PlanContent, costing: Costing) -> list[PlanLineSummary]:
    """The plan's lines as PlanSignedOff carries them, each fee as a line of its own."""
    summaries: list[PlanLineSummary] = []
    fees = {fee.line_id: fee for fee in costing.fee_lines}
    for line in content.lines:
        cost = costing.line(line.line_id)
        summaries.append(
            PlanLineSummary(
                line_id=line.line_id,
                description=line.description,
                provider_kind=line.provider_kind,
                provider_name=line.provider_name,
                frequency=line.frequency,
                amount_pence=line.amount_pence,
                annual_pence=cost.annual_pence or cost.one_off_pence,
                domains=list(line.domains),
            )
        )
        fee = fees.get(line.line_id)
        if fee is not None:
            summaries.append(
                PlanLineSummary(
                    line_id=fee.fee_line_id,
                    description=fee.description,
                    provider_kind=line.provider_kind,
                    provider_name=line.provider_name,
                    frequency=fee.frequency,
                    amount_pence=fee.amount_pence,
                    annual_pence=fee.annual_pence or fee.one_off_pence,
                    domains=list(fee.domains),
                )
            )
    return summaries
