"""Whether a person's needs meet the Care Act's eligibility criteria.

The Care and Support (Eligibility Criteria) Regulations 2015, reg. 2(1): an adult's needs
meet the criteria if (a) they arise from or are related to a physical or mental impairment
or illness; (b) as a result, the adult is unable to achieve two or more of the ten
outcomes of reg. 2(2); and (c) as a consequence there is, or is likely to be, a
significant impact on the adult's wellbeing. Reg. 2(3): "unable to achieve" includes
achieving an outcome only with assistance, only with significant pain, distress or
anxiety, only by endangering health or safety, or taking significantly longer than would
normally be expected. How many outcomes are needed is the policy's `eligibility`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from contracts.policy import EligibilityRules
from contracts.vocabulary import Difficulty, EligibilityOutcome


class CriteriaNotInForce(ValueError):
    """The policy's criteria apply from a later day than the one asked about."""

    def __init__(self, rules: EligibilityRules, on: date) -> None:
        super().__init__(
            f"the eligibility criteria apply from {rules.applies_from.isoformat()}, after "
            f"{on.isoformat()}"
        )


@dataclass(frozen=True)
class Determination:
    """The decision, the outcomes it counted, and its reasons in plain words."""

    eligible: bool
    outcomes_not_achieved: tuple[tuple[EligibilityOutcome, tuple[Difficulty, ...]], ...]
    outcomes_needed: int
    reasons: tuple[str, ...]


def outcome_words(outcome: EligibilityOutcome) -> str:
    """An outcome as words: `managing_toilet_needs` is "managing toilet needs"."""
    return outcome.value.replace("_", " ")


def determine(
    *,
    needs_from_impairment_or_illness: bool,
    outcomes: Mapping[EligibilityOutcome, Iterable[Difficulty]],
    significant_impact_on_wellbeing: bool,
    rules: EligibilityRules,
    on: date,
) -> Determination:
    """Apply reg. 2(1) on a day: all three conditions, with at least `outcomes_needed`
    outcomes. An outcome counts only with at least one reason it cannot be achieved
    (reg. 2(3)). Before the criteria apply they are refused, never applied early.
    """
    if rules.applies_from > on:
        raise CriteriaNotInForce(rules, on)
    not_achieved = tuple(
        (outcome, tuple(dict.fromkeys(difficulties)))
        for outcome in EligibilityOutcome
        if (difficulties := tuple(outcomes.get(outcome, ()))) != ()
    )
    count, needed = len(not_achieved), rules.outcomes_needed
    reasons: list[str] = []
    if not needs_from_impairment_or_illness:
        reasons.append(
            "The needs do not arise from a physical or mental impairment or illness (reg. 2(1)(a))."
        )
    if count < needed:
        reasons.append(
            f"{count} of the ten outcomes cannot be achieved; at least {needed} must be "
            "(reg. 2(1)(b))."
        )
    else:
        names = ", ".join(outcome_words(o) for o, _ in not_achieved)
        reasons.append(f"{count} outcomes cannot be achieved: {names} (reg. 2(1)(b)).")
    if not significant_impact_on_wellbeing:
        reasons.append(
            "There is not, and is not likely to be, a significant impact on wellbeing "
            "(reg. 2(1)(c))."
        )
    eligible = needs_from_impairment_or_illness and count >= needed
    eligible = eligible and significant_impact_on_wellbeing
    if eligible:
        reasons.insert(0, "The needs meet the eligibility criteria.")
    else:
        reasons.insert(0, "The needs do not meet the eligibility criteria.")
    return Determination(
        eligible=eligible,
        outcomes_not_achieved=not_achieved,
        outcomes_needed=needed,
        reasons=tuple(reasons),
    )
