"""Whether a support plan may be signed off: four checks, all reported at once, each with a
reason a case worker can read (seed 003 Step 3: the person is safe, the money is used
legally, needs are met in broad terms).

- ``budget_issued``: an indicative or final budget is issued for this person;
- ``within_budget``: the weekly cost is within the budget's weekly amount, or a request
  for more has been recorded (seed 003 ch.2 §iii: 2:1 support the points miss);
- ``high_domains_addressed``: every domain the validated assessment scores at or above the
  policy's `high_from_level` is served by some line (seed 003 ch.2 §ii: "Where someone
  scores 'keeping safe' highly, then it is our job to check that a share of the budget is
  indeed being spent on keeping safe");
- ``flagged_risks_mitigated``: every flagged risk has a mitigation or is referred to the
  risk enablement panel (seed 003 ch.5; seed 004 Council B).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from contracts.money import format_pounds
from contracts.policy import Questionnaire
from rules.plan_costing import Costing


class BudgetFacts(Protocol):
    """The person's latest budget revision, as BudgetIssued told it."""

    @property
    def person_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def weekly_pence(self) -> int: ...


class RiskFacts(Protocol):
    @property
    def risk_id(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def flagged(self) -> bool: ...


class AssessmentFacts(Protocol):
    """The validated levels and risks, as AssessmentValidated told them."""

    @property
    def domain_levels(self) -> Mapping[str, int]: ...
    @property
    def risks(self) -> Sequence[RiskFacts]: ...


class ServingLine(Protocol):
    @property
    def domains(self) -> tuple[str, ...]: ...


class RiskAnswer(Protocol):
    @property
    def risk_id(self) -> str: ...
    @property
    def answers_the_risk(self) -> bool: ...


class CheckedPlan(Protocol):
    """What the checks read of a plan: which domains its lines serve, whether it asks for
    more than the budget, and how it answers each risk."""

    @property
    def lines(self) -> Sequence[ServingLine]: ...
    @property
    def request_for_more(self) -> object | None: ...
    @property
    def risk_mitigations(self) -> Sequence[RiskAnswer]: ...


class CheckName(StrEnum):
    BUDGET_ISSUED = "budget_issued"
    WITHIN_BUDGET = "within_budget"
    HIGH_DOMAINS_ADDRESSED = "high_domains_addressed"
    FLAGGED_RISKS_MITIGATED = "flagged_risks_mitigated"


@dataclass(frozen=True)
class Check:
    name: CheckName
    passed: bool
    reason: str


def run_checks(
    *,
    person_id: str,
    content: CheckedPlan,
    costing: Costing,
    budget: BudgetFacts | None,
    assessment: AssessmentFacts | None,
    questionnaire: Questionnaire,
) -> list[Check]:
    """Every sign-off check, passed or not, each with a reason a case worker can read."""
    return [
        _budget_issued(person_id, budget),
        _within_budget(content, costing, budget),
        _high_domains_addressed(content, assessment, questionnaire),
        _flagged_risks_mitigated(content, assessment),
    ]


def _budget_issued(person_id: str, budget: BudgetFacts | None) -> Check:
    name = CheckName.BUDGET_ISSUED
    if budget is None or budget.person_id != person_id:
        return Check(name, False, "no budget has been issued for this person")
    if budget.stage not in ("indicative", "final"):
        return Check(name, False, f"the budget is at stage {budget.stage}, not issued")
    return Check(
        name,
        True,
        f"a {budget.stage} budget of {format_pounds(budget.weekly_pence)} a week "
        f"(revision {budget.revision}) is issued",
    )


def _within_budget(content: CheckedPlan, costing: Costing, budget: BudgetFacts | None) -> Check:
    name = CheckName.WITHIN_BUDGET
    cost = format_pounds(costing.weekly_pence)
    if budget is None:
        return Check(name, False, f"the plan costs {cost} a week and there is no budget")
    allowed = format_pounds(budget.weekly_pence)
    if costing.weekly_pence <= budget.weekly_pence:
        return Check(name, True, f"the plan costs {cost} a week, within the budget of {allowed}")
    over = format_pounds(costing.weekly_pence - budget.weekly_pence)
    if content.request_for_more is not None:
        return Check(
            name,
            True,
            f"the plan costs {cost} a week, {over} over the budget of {allowed}, "
            "and a request for more is recorded",
        )
    return Check(
        name,
        False,
        f"the plan costs {cost} a week, {over} over the budget of {allowed}; bring "
        "it within budget or record a request for more",
    )


def high_domains(assessment: AssessmentFacts, questionnaire: Questionnaire) -> list[str]:
    """Domains the validated assessment scores at or above the policy's 'high' level."""
    found = []
    for key, level in assessment.domain_levels.items():
        domain = questionnaire.domain(key)
        if domain is not None and level >= domain.high_from_level:
            found.append(key)
    return found


def _high_domains_addressed(
    content: CheckedPlan, assessment: AssessmentFacts | None, questionnaire: Questionnaire
) -> Check:
    name = CheckName.HIGH_DOMAINS_ADDRESSED
    if assessment is None:
        return Check(
            name,
            False,
            "the validated assessment behind the budget has not reached "
            "planning yet, so its high domains cannot be checked",
        )
    high = high_domains(assessment, questionnaire)
    served = {domain for line in content.lines for domain in line.domains}
    missing = [key for key in high if key not in served]
    names = {d.key: d.name for d in questionnaire.domains}
    if missing:
        listed = ", ".join(names.get(key, key) for key in missing)
        return Check(name, False, f"scored high but no line of the plan addresses: {listed}")
    if not high:
        return Check(name, True, "no domain is scored high")
    listed = ", ".join(names.get(key, key) for key in high)
    return Check(name, True, f"every domain scored high is addressed: {listed}")


def _flagged_risks_mitigated(content: CheckedPlan, assessment: AssessmentFacts | None) -> Check:
    name = CheckName.FLAGGED_RISKS_MITIGATED
    if assessment is None:
        return Check(
            name,
            False,
            "the validated assessment behind the budget has not reached "
            "planning yet, so its risks cannot be checked",
        )
    answers = {m.risk_id: m for m in content.risk_mitigations}
    flagged = [r for r in assessment.risks if r.flagged]
    open_risks = [
        r for r in flagged if r.risk_id not in answers or not answers[r.risk_id].answers_the_risk
    ]
    if open_risks:
        listed = "; ".join(f"{r.risk_id} ({r.description[:80]})" for r in open_risks)
        return Check(
            name,
            False,
            f"flagged risks need a mitigation or a referral to the risk enablement panel: {listed}",
        )
    if not flagged:
        return Check(name, True, "no risk is flagged")
    return Check(name, True, f"all {len(flagged)} flagged risks are mitigated or referred")
