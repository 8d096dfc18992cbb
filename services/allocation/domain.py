"""The resource allocation system (RAS) and the budget it produces: pure rules, no I/O.

`calculate_budget(inputs, policy)` is a pure function of its arguments, so a proposed
policy can be replayed over the whole cohort with the very code that sets real budgets.
A `Budget` keeps every revision (budgets are revised, never overwritten) and records the
`BudgetIssued` events its changes cause; the unit of work writes them to the outbox.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1;
004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import (
    BudgetIssued,
    BudgetStage,
    Event,
    ExplanationLine,
    OtherFundingSource,
    Scale,
)
from contracts.money import WEEKS_PER_YEAR, Frequency, annual_from, apply_basis_points
from contracts.money import format_pounds as pounds
from contracts.policy import Domain, Policy
from contracts.vocabulary import ClientGroup, Role
from rules.authority import (
    Decision,
    Refusal,
    Sitting,
    may_agree_in_principle,
    may_approve_exception,
)
from servicekit.caller import Caller
from servicekit.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    require_version,
)

MINUS = "\u2212"
TIMES = "\u00d7"
DASH = "\u2014"

NonNegativePence = Annotated[int, Field(strict=True, ge=0)]


# --- errors ---------------------------------------------------------------------------------


class AllocationError(DomainError):
    """Base of every refusal the allocation rules make."""


class ClientGroupNotBudgeted(AllocationError, Invalid):
    def __init__(self, client_group: str, policy_version: str) -> None:
        super().__init__(
            f"client_group: policy {policy_version} sets no price per point for "
            f"{_group_words(client_group)}"
        )


class UnknownDomain(AllocationError, Invalid):
    def __init__(self, domain: str, policy_version: str) -> None:
        super().__init__(
            f"domain_levels.{domain}: {domain!r} is not a domain of policy {policy_version}"
        )


class UnknownLevel(AllocationError, Invalid):
    def __init__(self, domain: str, level: int, levels: list[int]) -> None:
        allowed = ", ".join(str(n) for n in levels)
        super().__init__(
            f"domain_levels.{domain}: level {level} does not exist; the levels are {allowed}"
        )


class MissingDomain(AllocationError, Invalid):
    def __init__(self, domains: list[str]) -> None:
        super().__init__(f"domain_levels: no level given for {', '.join(domains)}")


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


# --- the RAS --------------------------------------------------------------------------------


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FundingStream(_Value):
    """Other money already paying for some of the support (seed 003 ch.2 §v)."""

    source: OtherFundingSource
    weekly_pence: NonNegativePence


class BudgetInputs(_Value):
    """What the RAS needs to know about a person, as validated."""

    client_group: ClientGroup
    domain_levels: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: NonNegativePence = 0
    other_funding: tuple[FundingStream, ...] = ()
    additional_weekly_pence: NonNegativePence = Field(
        default=0, description="Support the points do not capture, e.g. 2-to-1 (seed 003 §iii)."
    )
    additional_reason: str | None = None


class DomainScore(_Value):
    key: str
    name: str
    level: int
    points: int
    statement: str


class Deduction(_Value):
    """An amount netted off the money; never more than what is left (the budget stays >= 0)."""

    source: str
    label: str
    agreed_weekly_pence: int
    deducted_weekly_pence: int


class Calculation(_Value):
    """The RAS result with every figure that went into it."""

    policy_version: str
    policy_name: str
    client_group: ClientGroup
    domain_scores: tuple[DomainScore, ...]
    points: int
    max_points: int
    price_per_point_weekly_pence: int
    standard_weekly_pence: int
    scale: Scale
    scale_basis_points: int
    scaled_weekly_pence: int
    additional_weekly_pence: int
    deductions: tuple[Deduction, ...]
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    explanation: tuple[ExplanationLine, ...]


_FUNDING_WORDS = {
    OtherFundingSource.SUPPORTING_PEOPLE: "Supporting People",
    OtherFundingSource.INDEPENDENT_LIVING_FUND: "Independent Living Fund",
    OtherFundingSource.OTHER: "other funding",
}


def _group_words(client_group: str) -> str:
    return client_group.replace("_", " ")


def _minus(amount_pence: int) -> str:
    return f"{MINUS}{pounds(amount_pence)}"


def score_domains(domain_levels: dict[str, int], policy: Policy) -> tuple[DomainScore, ...]:
    """The points of each validated level, in the questionnaire's order (seed 003 §ii)."""
    return tuple(score for score, _ in _scored_domains(domain_levels, policy))


def _scored_domains(
    domain_levels: dict[str, int], policy: Policy
) -> list[tuple[DomainScore, ExplanationLine]]:
    questionnaire = policy.questionnaire
    for key in domain_levels:
        if questionnaire.domain(key) is None:
            raise UnknownDomain(key, policy.policy_version)
    missing = [d.key for d in questionnaire.domains if d.key not in domain_levels]
    if missing:
        raise MissingDomain(missing)
    return [_scored(domain, domain_levels[domain.key]) for domain in questionnaire.domains]


_SCORED: dict[tuple[int, int], tuple[Domain, DomainScore, ExplanationLine]] = {}
_SCORED_MAX = 4096


def _scored(domain: Domain, number: int) -> tuple[DomainScore, ExplanationLine]:
    """A domain's score at a level and its explanation line.

    Both are frozen values, the same for everyone at that level of that policy's domain,
    so each is built once rather than for every assessment. Keyed by the domain object:
    the entry holds it, so its id cannot be reused while the entry lives.
    """
    key = (id(domain), number)
    known = _SCORED.get(key)
    if known is not None and known[0] is domain:
        return known[1], known[2]
    level = domain.level(number)
    if level is None:
        raise UnknownLevel(domain.key, number, [lvl.level for lvl in domain.levels])
    score = DomainScore(
        key=domain.key,
        name=domain.name,
        level=number,
        points=level.points,
        statement=level.statement,
    )
    line = ExplanationLine(
        label=f"{score.name}: level {score.level} = {score.points} points",
        amount_pence=0,
        detail=score.statement,
    )
    if len(_SCORED) >= _SCORED_MAX:
        _SCORED.clear()
    _SCORED[key] = (domain, score, line)
    return score, line


def calculate_budget(inputs: BudgetInputs, policy: Policy) -> Calculation:
    """Points to money under one policy: pure, so a whole cohort can be replayed through it.

    Points are carer-neutral (seed 004 Council C, §7.8): carer support never changes them
    or the scale; it only reduces the money, so a carer stopping restores it without a
    reassessment. The lower scale applies with significant informal support and no 24/7
    need (seed 003 ch.2 §i). Other funding streams are netted off (seed 003 ch.2 §v).
    """
    ras = policy.ras
    group = inputs.client_group
    price = ras.price_per_point_weekly_pence.get(group)
    if group not in policy.client_groups or price is None:
        raise ClientGroupNotBudgeted(group.value, policy.policy_version)
    scored = _scored_domains(inputs.domain_levels, policy)
    scores = tuple(score for score, _ in scored)
    lines = [line for _, line in scored]
    points = sum(s.points for s in scores)
    max_points = policy.questionnaire.max_points
    standard = points * price
    lines.append(
        ExplanationLine(
            label=f"{points} points {TIMES} {pounds(price)} a point ({_group_words(group)})",
            amount_pence=standard,
            detail=f"{points} of a possible {max_points} points, priced a week",
        )
    )

    lower = inputs.significant_informal_support and not inputs.needs_24_7
    if lower:
        basis_points = ras.lower_scale_basis_points
        scaled = apply_basis_points(standard, basis_points)
        lines.append(
            ExplanationLine(
                label=f"Lower scale (significant informal support, no 24/7 need): "
                f"{_percent(basis_points)}",
                amount_pence=scaled - standard,
                detail="seed 003 ch.2: the lower scale applies where there is significant "
                "informal support and no need for support around the clock",
            )
        )
    else:
        basis_points = 10_000
        scaled = standard
        reason = "needs 24/7 support" if inputs.needs_24_7 else "no significant informal support"
        lines.append(ExplanationLine(label=f"Standard scale ({reason}): 100%", amount_pence=0))

    running = scaled
    if inputs.additional_weekly_pence:
        running += inputs.additional_weekly_pence
        lines.append(
            ExplanationLine(
                label=f"Additional support the points do not capture: "
                f"+{pounds(inputs.additional_weekly_pence)}",
                amount_pence=inputs.additional_weekly_pence,
                detail=inputs.additional_reason or "",
            )
        )

    deductions: list[Deduction] = []
    wanted: list[tuple[str, str, int]] = []
    if inputs.carer_support_weekly_pence:
        wanted.append(("carer_support", "agreed carer support", inputs.carer_support_weekly_pence))
    for stream in inputs.other_funding:
        if stream.weekly_pence:
            wanted.append((stream.source.value, _FUNDING_WORDS[stream.source], stream.weekly_pence))
    for source, words, agreed in wanted:
        taken = min(agreed, running)
        running -= taken
        deductions.append(
            Deduction(
                source=source, label=words, agreed_weekly_pence=agreed, deducted_weekly_pence=taken
            )
        )
        detail = (
            "carer-neutral: the points assume no carer; if the carer stops, this is restored "
            "without a reassessment"
            if source == "carer_support"
            else "netted off: this money already pays for part of the support"
        )
        if taken < agreed:
            detail += f" (agreed {pounds(agreed)} a week; the budget cannot go below £0.00)"
        lines.append(
            ExplanationLine(
                label=f"Less {words}: {_minus(taken)}", amount_pence=-taken, detail=detail
            )
        )

    weekly = running
    annual = annual_from(weekly, Frequency.WEEKLY)
    lines.append(ExplanationLine(label=f"Weekly budget: {pounds(weekly)}", amount_pence=weekly))
    lines.append(
        ExplanationLine(
            label=f"A year ({WEEKS_PER_YEAR} weeks): {pounds(annual)}", amount_pence=annual
        )
    )

    ceiling = ras.ceilings_weekly_pence.get(group)
    above = ceiling is not None and weekly > ceiling
    if ceiling is None:
        lines.append(ExplanationLine(label=f"No ceiling for {_group_words(group)}", amount_pence=0))
    else:
        verdict = "exceeded, needs an exception" if above else "within the ceiling"
        lines.append(
            ExplanationLine(
                label=f"Ceiling for {_group_words(group)}: {pounds(ceiling)} a week {DASH} "
                f"{verdict}",
                amount_pence=ceiling,
            )
        )
    lines.append(
        ExplanationLine(label=f"Policy {policy.policy_version}", amount_pence=0, detail=policy.name)
    )
    return Calculation(
        policy_version=policy.policy_version,
        policy_name=policy.name,
        client_group=group,
        domain_scores=scores,
        points=points,
        max_points=max_points,
        price_per_point_weekly_pence=price,
        standard_weekly_pence=standard,
        scale=Scale.LOWER if lower else Scale.STANDARD,
        scale_basis_points=basis_points,
        scaled_weekly_pence=scaled,
        additional_weekly_pence=inputs.additional_weekly_pence,
        deductions=tuple(deductions),
        weekly_pence=weekly,
        annual_pence=annual,
        ceiling_weekly_pence=ceiling,
        above_ceiling=above,
        explanation=tuple(lines),
    )


def _percent(basis_points: int) -> str:
    whole, rest = divmod(basis_points, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}%"


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
    group = _group_words(calc.client_group)
    parts = [
        f"Your answers scored {calc.points} points out of a possible {calc.max_points} "
        f"under {calc.policy_name}'s policy ({calc.policy_version}).",
        f"At {pounds(calc.price_per_point_weekly_pence)} a point a week for {group}, that is "
        f"{pounds(calc.standard_weekly_pence)} a week.",
    ]
    if calc.scale is Scale.LOWER:
        parts.append(
            f"Because you have significant informal support and do not need support around "
            f"the clock, the lower scale of {_percent(calc.scale_basis_points)} applies, "
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
