"""Whether a person's needs meet the Care Act's eligibility criteria.

The Care and Support (Eligibility Criteria) Regulations 2015, reg. 2(1): an adult's needs
meet the criteria if (a) they arise from or are related to a physical or mental impairment
or illness; (b) as a result, the adult is unable to achieve two or more of the ten
outcomes of reg. 2(2); and (c) as a consequence there is, or is likely to be, a
significant impact on the adult's wellbeing. Reg. 2(3): "unable to achieve" includes
achieving an outcome only with assistance, only with significant pain, distress or
anxiety, only by endangering health or safety, or taking significantly longer than would
normally be expected. How many outcomes are needed is the policy's `eligibility`.

A budget is calculated only for eligible needs: `validation_basis` decides whether an
assessment may be validated (and so budgeted), from its latest determination or a reason
recorded for going ahead without one (Care Act 2014 s.19(3): urgent needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from contracts.events import EligibilityBasis, ValidationBasis
from contracts.policy import EligibilityRules
from contracts.vocabulary import Difficulty, EligibilityOutcome

MIN_EXPLANATION_CHARS = 10
"""Going ahead without an eligible determination needs at least this much explanation."""


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


# --- the gate before a budget -------------------------------------------------------------


class NotYetValidatable(ValueError):
    """The assessment may not be validated yet; the message says what would allow it."""


class NoDetermination(NotYetValidatable):
    def __init__(self) -> None:
        super().__init__(
            "no eligibility determination has been recorded for this assessment, and a "
            "budget is calculated only for eligible needs; record the determination first "
            "(POST .../eligibility), or give the reason to go ahead without one "
            "(going_ahead_without_eligibility: urgent_need, converted_from_legacy_system or "
            "determination_pending_review, with an explanation)"
        )


class NeedsNotEligible(NotYetValidatable):
    def __init__(self, determined_on: date) -> None:
        super().__init__(
            f"the latest eligibility determination ({determined_on.isoformat()}) found the "
            "needs not eligible, so no budget can be calculated; redetermine eligibility if "
            "the needs have changed, or, if the needs must be met urgently (Care Act 2014 "
            "s.19(3)), record going_ahead_without_eligibility with reason urgent_need and "
            "an explanation"
        )


class ExplanationTooShort(NotYetValidatable):
    def __init__(self) -> None:
        super().__init__(
            "going_ahead_without_eligibility.explanation: say in at least "
            f"{MIN_EXPLANATION_CHARS} characters why support goes ahead without an eligible "
            "determination"
        )


@dataclass(frozen=True)
class DeterminationOnRecord:
    """The latest eligibility determination of an assessment, as far as the gate needs it."""

    determination_id: UUID
    eligible: bool
    determined_on: date


@dataclass(frozen=True)
class GoingAhead:
    """A recorded reason to validate without an eligible determination, and its words."""

    reason: ValidationBasis
    explanation: str


def criteria_in_force(rules: EligibilityRules | None, on: date) -> bool:
    """Whether the policy's eligibility criteria apply on a day (never before 1 April 2015)."""
    return rules is not None and rules.applies_from <= on


GOING_AHEAD_REASONS = frozenset(ValidationBasis) - {
    ValidationBasis.ELIGIBLE,
    ValidationBasis.NO_CRITERIA_IN_FORCE,
}
"""The reasons a practitioner may give to validate without an eligible determination."""


def validation_basis(
    latest: DeterminationOnRecord | None,
    going_ahead: GoingAhead | None,
    *,
    in_force: bool,
) -> EligibilityBasis:
    """What a validation rests on, or why it may not happen.

    The latest determination finding the needs eligible is enough. Otherwise (none, or not
    eligible) only a recorded reason, explained in words, lets it go ahead; the latest
    determination, whatever it found, is kept with the basis. A reason given when the
    needs were found eligible is recorded as given: it is what the practitioner said.
    Before the council's criteria are in force (`in_force` false) there is nothing to
    determine, and the validation says so.
    """
    found = {
        "determination_id": latest.determination_id if latest else None,
        "determined_eligible": latest.eligible if latest else None,
    }
    if going_ahead is not None and going_ahead.reason in GOING_AHEAD_REASONS:
        explanation = going_ahead.explanation.strip()
        if len(explanation) < MIN_EXPLANATION_CHARS:
            raise ExplanationTooShort()
        return EligibilityBasis(basis=going_ahead.reason, explanation=explanation, **found)
    if latest is None and not in_force:
        return EligibilityBasis(basis=ValidationBasis.NO_CRITERIA_IN_FORCE, **found)
    if latest is None:
        raise NoDetermination()
    if not latest.eligible:
        raise NeedsNotEligible(latest.determined_on)
    return EligibilityBasis(basis=ValidationBasis.ELIGIBLE, **found)
