"""The budget the RAS produces and every revision of it: pure rules, no I/O.

The RAS itself, `calculate_budget(inputs, policy)`, is the council's rule and lives in
`rules.ras`, where the what-if replays it too; here its refusals become allocation's errors.
A `Budget` keeps every revision (budgets are revised, never overwritten) and records the
`BudgetIssued` events its changes cause; the unit of work writes them to the outbox.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1;
004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from contracts.events import BudgetIssued, BudgetStage, Event, ExplanationLine, Scale
from contracts.money import WEEKS_PER_YEAR
from contracts.money import format_pounds as pounds
from contracts.policy import Policy
from contracts.vocabulary import Role
from rules import ras
from rules.authority import (
    Decision,
    Refusal,
    Sitting,
    may_agree_in_principle,
    may_approve_exception,
)
from rules.ras import BudgetInputs as BudgetInputs
from rules.ras import Calculation as Calculation
from rules.ras import FundingStream as FundingStream
from rules.wording import group_words, percent
from servicekit.caller import Caller
from servicekit.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    require_version,
)

# --- errors ---------------------------------------------------------------------------------


class AllocationError(DomainError):
    """Base of every refusal the allocation rules make."""


class ClientGroupNotBudgeted(AllocationError, Invalid):
    """The policy sets no price per point for the client group."""


class UnknownDomain(AllocationError, Invalid):
    """A level is given for a domain the policy's questionnaire does not have."""


class UnknownLevel(AllocationError, Invalid):
    """A domain's level is not one of its levels."""


class MissingDomain(AllocationError, Invalid):
    """No level is given for a domain of the questionnaire."""


_RAS_REFUSALS: dict[type[ras.InputsRefused], type[AllocationError]] = {
    ras.ClientGroupNotBudgeted: ClientGroupNotBudgeted,
    ras.UnknownDomain: UnknownDomain,
    ras.UnknownLevel: UnknownLevel,
    ras.MissingDomain: MissingDomain,
}


def calculate_budget(inputs: BudgetInputs, policy: Policy) -> Calculation:
    """The RAS (`rules.ras.calculate_budget`); inputs it refuses answer 422 in allocation's
    own error names."""
    try:
        return ras.calculate_budget(inputs, policy)
    except ras.InputsRefused as err:
        raise _RAS_REFUSALS[type(err)](str(err)) from err


class BudgetNotFound(AllocationError, NotFound):
    def __init__(self, budget_id: UUID | str) -> None:
        super().__init__(f"budget {budget_id} not found")


class NotAwaitingAgreement(AllocationError, Conflict):
    def __init__(self, budget_id: UUID, status: str) -> None:
        super().__init__(
            f"budget {budget_id} is {status.replace('_', ' ')}; only a budget awaiting "
            "agreement can be agreed"
        )


class MayNotAgree(AllocationError, Forbidden):
    def __init__(self, role: Role, policy_version: str) -> None:
        super().__init__(
            f"a {role.value} may not agree budgets in principle under policy {policy_version}"
        )


class AboveAgreementLimit(AllocationError, Forbidden):
    def __init__(
        self, role: Role, limit_pence: int, weekly_pence: int, able: list[Role], policy: str
    ) -> None:
        who = " or ".join(r.value for r in able) or "nobody"
        super().__init__(
            f"a {role.value} may agree budgets up to {pounds(limit_pence)} a week under "
            f"policy {policy}; this one is {pounds(weekly_pence)} a week: ask a {who}"
        )


class CeilingExceptionNotAllowed(AllocationError, Forbidden):
    def __init__(self, role: Role, ceiling_pence: int, weekly_pence: int, able: list[Role]) -> None:
        who = " or ".join(r.value for r in able)
        super().__init__(
            f"this budget ({pounds(weekly_pence)} a week) is above the {pounds(ceiling_pence)} "
            f"ceiling: only a {who} may agree it as an exception, not a {role.value}"
        )


class PanelOnly(AllocationError, Forbidden):
    """The council's panel alone agrees this client group's budgets, whatever the amount."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)


class NeedsSeparatePanel(AllocationError, Forbidden):
    """Above the amount where the council's panel sits separately, only that sitting's
    decision counts."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)


def refusal_of(
    decision: Decision, ceiling_pence: int | None, policy_version: str
) -> AllocationError:
    """The error a refused agreement in principle answers with."""
    role, weekly = decision.role, decision.weekly_pence
    match decision.refusal:
        case Refusal.PANEL_ONLY:
            return PanelOnly(decision)
        case Refusal.NEEDS_SEPARATE_PANEL:
            return NeedsSeparatePanel(decision)
        case Refusal.ABOVE_APPROVAL_LIMIT:
            able = [decision.needed] if decision.needed else []
            return AboveAgreementLimit(
                role, decision.limit_pence or 0, weekly, able, policy_version
            )
        case Refusal.NOT_AN_EXCEPTION_APPROVER:
            able = [decision.needed] if decision.needed else []
            return CeilingExceptionNotAllowed(role, ceiling_pence or 0, weekly, able)
        case _:
            return MayNotAgree(role, policy_version)


class CeilingExceptionReasonRequired(AllocationError, Invalid):
    def __init__(self, ceiling_pence: int, weekly_pence: int) -> None:
        super().__init__(
            f"ceiling_exception_reason: this budget ({pounds(weekly_pence)} a week) is above "
            f"the {pounds(ceiling_pence)} ceiling, so agreeing it needs the reason for the "
            "exception"
        )


class CeilingExceptionNotNeeded(AllocationError, Invalid):
    def __init__(self) -> None:
        super().__init__(
            "ceiling_exception_reason: this budget is within its ceiling, so no exception "
            "is needed; leave the reason out"
        )


class PlanDoesNotMatchBudget(AllocationError, Invalid):
    def __init__(self, budget_id: UUID, what: str) -> None:
        super().__init__(f"the signed-off plan names budget {budget_id} but its {what} differs")


# --- the budget -----------------------------------------------------------------------------


class BudgetStatus(StrEnum):
    AWAITING_AGREEMENT = "awaiting_agreement"
    AGREED = "agreed"
    FINAL = "final"


class RevisionState(StrEnum):
    AWAITING_AGREEMENT = "awaiting_agreement"
    AGREED = "agreed"
    FINAL = "final"
    SUPERSEDED = "superseded"
    """Replaced by a newer revision before anyone agreed it."""


ISSUED_STATES = frozenset({RevisionState.AGREED, RevisionState.FINAL})


@dataclass(frozen=True)
class SignedOffPlan:
    """The parts of a signed-off support plan that make the budget final."""

    plan_id: UUID
    plan_version: int
    person_id: str
    council: str
    weekly_pence: int
    annual_pence: int
    one_off_pence: int
    signed_off_by: str
    signed_off_by_role: Role


@dataclass
class Revision:
    number: int
    assessment_id: UUID
    inputs: BudgetInputs
    calculation: Calculation
    reason: str
    created_by: str
    created_at: datetime
    state: RevisionState
    weekly_pence: int
    annual_pence: int
    explanation: tuple[ExplanationLine, ...]
    stage: BudgetStage | None = None
    ceiling_exception: bool = False
    ceiling_exception_reason: str | None = None
    agreed_by: str | None = None
    agreed_by_role: Role | None = None
    agreed_at: datetime | None = None
    panel_sitting: Sitting | None = None
    """The panel sitting that agreed it, where the council's panel sits separately."""
    plan_id: UUID | None = None
    plan_version: int | None = None

    @property
    def issued(self) -> bool:
        return self.state in ISSUED_STATES

    @property
    def points(self) -> int:
        return self.calculation.points

    @property
    def scale(self) -> Scale:
        return self.calculation.scale

    @property
    def ceiling_weekly_pence(self) -> int | None:
        return self.calculation.ceiling_weekly_pence

    @property
    def above_ceiling(self) -> bool:
        ceiling = self.calculation.ceiling_weekly_pence
        return ceiling is not None and self.weekly_pence > ceiling

    @property
    def policy_version(self) -> str:
        return self.calculation.policy_version


def new_revision(
    *,
    number: int,
    assessment_id: UUID,
    inputs: BudgetInputs,
    calculation: Calculation,
    reason: str,
    by: str,
    at: datetime,
) -> Revision:
    return Revision(
        number=number,
        assessment_id=assessment_id,
        inputs=inputs,
        calculation=calculation,
        reason=reason,
        created_by=by,
        created_at=at,
        state=RevisionState.AWAITING_AGREEMENT,
        weekly_pence=calculation.weekly_pence,
        annual_pence=calculation.annual_pence,
        explanation=calculation.explanation,
    )


@dataclass
class Budget:
    """One person's personal budget and every revision of it, oldest first."""

    budget_id: UUID
    council: str
    person_id: str
    created_at: datetime
    revisions: list[Revision]
    version: int = 1
    updated_at: datetime | None = None
    events: list[Event] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        *,
        budget_id: UUID,
        council: str,
        person_id: str,
        assessment_id: UUID,
        inputs: BudgetInputs,
        calculation: Calculation,
        by: str,
        at: datetime,
    ) -> Budget:
        """A new budget from a validated assessment, awaiting agreement in principle."""
        first = new_revision(
            number=1,
            assessment_id=assessment_id,
            inputs=inputs,
            calculation=calculation,
            reason="assessment validated",
            by=by,
            at=at,
        )
        return cls(
            budget_id=budget_id,
            council=council,
            person_id=person_id,
            created_at=at,
            revisions=[first],
            updated_at=at,
        )

    @property
    def current(self) -> Revision:
        return self.revisions[-1]

    @property
    def status(self) -> BudgetStatus:
        return BudgetStatus(self.current.state.value)

    @property
    def issued_revisions(self) -> list[Revision]:
        """What the person has been told: agreed and final revisions only."""
        return [r for r in self.revisions if r.issued]

    def check_version(self, expected_version: int | None) -> None:
        require_version(f"budget {self.budget_id}", expected_version, self.version)

    def check_council(self, council: str) -> None:
        """Another council's budget does not exist as far as its staff can tell."""
        if council != self.council:
            raise BudgetNotFound(self.budget_id)

    def _add(self, revision: Revision, at: datetime) -> Revision:
        if self.current.state is RevisionState.AWAITING_AGREEMENT:
            self.current.state = RevisionState.SUPERSEDED
        self.revisions.append(revision)
        self.version += 1
        self.updated_at = at
        return revision

    def already_has(self, assessment_id: UUID, inputs: BudgetInputs) -> bool:
        """The same validated assessment again (re-emitted): nothing to revise."""
        return self.current.assessment_id == assessment_id and self.current.inputs == inputs

    def reassess(
        self,
        *,
        assessment_id: UUID,
        inputs: BudgetInputs,
        calculation: Calculation,
        by: str,
        at: datetime,
    ) -> Revision:
        """A reassessment revises the person's budget; it never opens a second one."""
        return self._add(
            new_revision(
                number=self.current.number + 1,
                assessment_id=assessment_id,
                inputs=inputs,
                calculation=calculation,
                reason="reassessment validated",
                by=by,
                at=at,
            ),
            at,
        )

    def revise(
        self,
        *,
        inputs: BudgetInputs,
        calculation: Calculation,
        reason: str,
        by: Caller,
        at: datetime,
        expected_version: int | None = None,
    ) -> Revision:
        """A new revision from the stored inputs plus changes, awaiting agreement."""
        self.check_council(by.council)
        self.check_version(expected_version)
        return self._add(
            new_revision(
                number=self.current.number + 1,
                assessment_id=self.current.assessment_id,
                inputs=inputs,
                calculation=calculation,
                reason=reason,
                by=by.record,
                at=at,
            ),
            at,
        )

    def revise_for_policy(
        self, *, calculation: Calculation, reason: str, by: Caller, at: datetime
    ) -> Revision | None:
        """Recompute the current revision's inputs under a newly adopted policy.

        The council's adoption is the decision, so a budget the person has been told is
        issued again at once (BudgetIssued, indicative: a plan signed off against the old
        figure is checked against the new one at its next sign-off). Two cases still wait
        for a person to agree, as any budget does: a budget whose current revision was
        still waiting for agreement, and one the new policy puts above its ceiling (only an
        exception approver may agree that).
        None when the budget already uses that policy version.
        """
        current = self.current
        if current.policy_version == calculation.policy_version:
            return None
        revision = new_revision(
            number=current.number + 1,
            assessment_id=current.assessment_id,
            inputs=current.inputs,
            calculation=calculation,
            reason=reason,
            by=by.record,
            at=at,
        )
        was_waiting = current.state is RevisionState.AWAITING_AGREEMENT
        self._add(revision, at)
        if was_waiting or calculation.above_ceiling:
            return revision
        revision.state = RevisionState.AGREED
        revision.stage = BudgetStage.INDICATIVE
        revision.agreed_by = by.record
        revision.agreed_by_role = by.role
        revision.agreed_at = at
        self._issue(revision)
        return revision

    def agree(
        self,
        *,
        by: Caller,
        policy: Policy,
        at: datetime,
        ceiling_exception_reason: str | None = None,
        expected_version: int | None = None,
        panel_sitting: Sitting | None = None,
    ) -> BudgetIssued:
        """Agreement in principle (seed 003 ch.2 §iv) by whoever rules.authority allows:
        above the ceiling only by exception, a panel-only client group by the panel alone.

        `panel_sitting`: the sitting a panel names, where the council's panel sits
        separately above an amount (seed 004 App.1 Council B); when not named, the sitting
        the amount goes to is recorded."""
        self.check_council(by.council)
        self.check_version(expected_version)
        revision = self.current
        if revision.state is not RevisionState.AWAITING_AGREEMENT:
            raise NotAwaitingAgreement(self.budget_id, self.status.value)
        weekly = revision.weekly_pence
        decision = may_agree_in_principle(
            policy, by.role, weekly, revision.inputs.client_group, sitting=panel_sitting
        )
        ceiling = revision.ceiling_weekly_pence
        if not decision.allowed:
            raise refusal_of(decision, ceiling, policy.policy_version)
        reason = (ceiling_exception_reason or "").strip() or None
        if ceiling is not None and weekly > ceiling:
            # The ceiling the revision was worked out with, whatever policy is found now.
            exception = may_approve_exception(policy, by.role, weekly, revision.inputs.client_group)
            if not exception.allowed:
                raise refusal_of(exception, ceiling, policy.policy_version)
            if reason is None:
                raise CeilingExceptionReasonRequired(ceiling, weekly)
            revision.ceiling_exception = True
            revision.ceiling_exception_reason = reason
        elif reason is not None:
            raise CeilingExceptionNotNeeded()
        revision.state = RevisionState.AGREED
        revision.stage = BudgetStage.INDICATIVE
        revision.agreed_by = by.record
        revision.agreed_by_role = by.role
        revision.agreed_at = at
        revision.panel_sitting = decision.sitting
        self.version += 1
        self.updated_at = at
        return self._issue(revision)

    def has_plan(self, plan_id: UUID, plan_version: int) -> bool:
        return any(r.plan_id == plan_id and r.plan_version == plan_version for r in self.revisions)

    def finalise(self, *, plan: SignedOffPlan, at: datetime) -> BudgetIssued:
        """A signed-off costed plan makes the budget final at the plan's cost (seed 003 §iv)."""
        if plan.council != self.council:
            raise PlanDoesNotMatchBudget(self.budget_id, "council")
        if plan.person_id != self.person_id:
            raise PlanDoesNotMatchBudget(self.budget_id, "person")
        base = self.current
        ceiling = base.ceiling_weekly_pence
        line = ExplanationLine(
            label=f"Signed-off support plan: {pounds(plan.weekly_pence)} a week",
            amount_pence=plan.weekly_pence,
            detail=f"plan {plan.plan_id} version {plan.plan_version}: "
            f"{pounds(plan.annual_pence)} a year"
            + (f" and {pounds(plan.one_off_pence)} one-off" if plan.one_off_pence else "")
            + f"; signed off by {plan.signed_off_by}",
        )
        revision = Revision(
            number=base.number + 1,
            assessment_id=base.assessment_id,
            inputs=base.inputs,
            calculation=base.calculation,
            reason="support plan signed off",
            created_by=plan.signed_off_by,
            created_at=at,
            state=RevisionState.FINAL,
            weekly_pence=plan.weekly_pence,
            annual_pence=plan.annual_pence,
            explanation=(*base.explanation, line),
            stage=BudgetStage.FINAL,
            ceiling_exception=ceiling is not None and plan.weekly_pence > ceiling,
            ceiling_exception_reason=base.ceiling_exception_reason,
            agreed_by=plan.signed_off_by,
            agreed_by_role=plan.signed_off_by_role,
            agreed_at=at,
            plan_id=plan.plan_id,
            plan_version=plan.plan_version,
        )
        self._add(revision, at)
        return self._issue(revision)

    def _issue(self, revision: Revision) -> BudgetIssued:
        assert revision.stage is not None
        assert revision.agreed_by is not None and revision.agreed_by_role is not None
        event = BudgetIssued(
            person_id=self.person_id,
            council=self.council,
            budget_id=self.budget_id,
            assessment_id=revision.assessment_id,
            client_group=revision.inputs.client_group,
            stage=revision.stage,
            revision=revision.number,
            revision_reason=revision.reason,
            points=revision.points,
            scale=revision.scale,
            weekly_pence=revision.weekly_pence,
            annual_pence=revision.annual_pence,
            ceiling_weekly_pence=revision.ceiling_weekly_pence,
            ceiling_exception=revision.ceiling_exception,
            explanation=list(revision.explanation),
            agreed_by=revision.agreed_by,
            agreed_by_role=revision.agreed_by_role,
            policy_version=revision.policy_version,
        )
        self.events.append(event)
        return event


def revised_inputs(
    inputs: BudgetInputs,
    *,
    additional_weekly_pence: int | None = None,
    additional_reason: str | None = None,
    carer_support_weekly_pence: int | None = None,
    other_funding: list[FundingStream] | None = None,
) -> BudgetInputs:
    """The stored inputs with the changes a revision asks for; what is not given is kept."""
    changes: dict[str, object] = {}
    if additional_weekly_pence is not None:
        changes["additional_weekly_pence"] = additional_weekly_pence
        changes["additional_reason"] = additional_reason if additional_weekly_pence else None
    if carer_support_weekly_pence is not None:
        changes["carer_support_weekly_pence"] = carer_support_weekly_pence
    if other_funding is not None:
        changes["other_funding"] = tuple(other_funding)
    return inputs.model_copy(update=changes)


def summary_in_words(budget: Budget, revision: Revision) -> str:
    """A plain-English paragraph a person can read about how their budget was worked out."""
    calc = revision.calculation
    group = group_words(calc.client_group)
    parts = [
        f"Your answers scored {calc.points} points out of a possible {calc.max_points} "
        f"under {calc.policy_name}'s policy ({calc.policy_version}).",
        f"At {pounds(calc.price_per_point_weekly_pence)} a point a week for {group}, that is "
        f"{pounds(calc.standard_weekly_pence)} a week.",
    ]
    if calc.scale is Scale.LOWER:
        parts.append(
            f"Because you have significant informal support and do not need support around "
            f"the clock, the lower scale of {percent(calc.scale_basis_points)} applies, "
            f"giving {pounds(calc.scaled_weekly_pence)} a week."
        )
    if calc.additional_weekly_pence:
        parts.append(
            f"{pounds(calc.additional_weekly_pence)} a week is added for support the points "
            "do not capture."
        )
    for deduction in calc.deductions:
        if deduction.source == "carer_support":
            parts.append(
                f"The support your carer has agreed to give reduces the money by "
                f"{pounds(deduction.deducted_weekly_pence)} a week but not your points; if "
                "your carer stops, this money can be restored without a new assessment."
            )
        else:
            parts.append(
                f"{pounds(deduction.deducted_weekly_pence)} a week from {deduction.label} is "
                "taken off because it already pays for part of your support."
            )
    parts.append(
        f"Your budget is {pounds(calc.weekly_pence)} a week ({pounds(calc.annual_pence)} a "
        f"year of {WEEKS_PER_YEAR} weeks)."
    )
    if calc.ceiling_weekly_pence is not None and calc.above_ceiling:
        parts.append(
            f"This is above the {pounds(calc.ceiling_weekly_pence)} a week ceiling for {group}, "
            + (
                "and was agreed as an exception."
                if revision.ceiling_exception
                else "so it needs to be agreed as an exception."
            )
        )
    if revision.state is RevisionState.FINAL:
        parts.append(
            f"Your support plan was signed off at {pounds(revision.weekly_pence)} a week "
            f"({pounds(revision.annual_pence)} a year): this is your final budget."
        )
    elif revision.state is RevisionState.AGREED:
        parts.append(
            "This budget is indicative: it was agreed in principle so you can plan your "
            "support, and becomes final once a costed support plan is signed off."
        )
    else:
        parts.append(
            "This budget is indicative and still waiting to be agreed in principle by a "
            "manager or panel."
        )
    return " ".join(parts)
