"""The financial assessment's charge in payments, and the personal budget statement.

Care Act 2014 s.26: the council gives the person a personal budget statement that says
the cost of meeting their needs, the amount the person must pay towards it and the amount
the council pays. The person's part is the council's contribution rule
(`rules/contribution.py`, `policy.contribution`) capped by what the financial assessment
(`rules/charging.py`) set; docs/charging.md says how each outcome is taken.

- A full or light-touch assessment sets the weekly charge it worked out.
- A full-cost payer, a light-touch assessment on significant resources and a person who
  refused the assessment pay the full cost of their support (statutory guidance, Annex C
  for the light touch; a refusal leaves the council no means to charge less).
- A deferred assessment sets nothing: the charge in force before it stays.

A new statement is due only when one of its three figures changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from contracts.events import FinancialAssessmentOutcome, LightTouchBasis
from contracts.money import WEEKS_PER_YEAR, format_pounds


def sets_a_charge(outcome: FinancialAssessmentOutcome) -> bool:
    """A deferred assessment leaves the charge in force before it as it was."""
    return outcome is not FinancialAssessmentOutcome.DEFERRED


def pays_full_cost(
    outcome: FinancialAssessmentOutcome, light_touch_basis: LightTouchBasis | None
) -> bool:
    """Capital at or above the upper limit, a light touch on significant resources, or a
    refusal: the person pays the full cost of their support."""
    if outcome in (FinancialAssessmentOutcome.FULL_COST_PAYER, FinancialAssessmentOutcome.REFUSED):
        return True
    return (
        outcome is FinancialAssessmentOutcome.LIGHT_TOUCH
        and light_touch_basis is LightTouchBasis.SIGNIFICANT_RESOURCES
    )


def assessed_max_weekly_pence(
    *, full_cost: bool, weekly_charge_pence: int | None, gross_annual_pence: int
) -> int:
    """The most the person pays a week towards this budget, as the contribution rule's cap.

    The full cost is the budget's own weekly cost (a part of a penny rounded up, so the cap
    never falls short of the annual cost); otherwise the weekly charge assessed.
    """
    if full_cost or weekly_charge_pence is None:
        return -(-gross_annual_pence // WEEKS_PER_YEAR)
    return weekly_charge_pence


def rescheduled_pence(
    net_annual_pence: int, instalments_left: int, instalments_in_year: int
) -> int:
    """What the council pays over the instalments left in the plan year at the new net
    annual: their share of the year (the weeks before keep the amounts they had)."""
    if instalments_in_year <= 0:
        return 0
    share = min(instalments_left, instalments_in_year)
    return net_annual_pence * share // instalments_in_year


@dataclass(frozen=True)
class BudgetFigures:
    """The three figures of a personal budget statement, a year's worth each."""

    total_annual_pence: int
    person_pays_annual_pence: int

    def __post_init__(self) -> None:
        if not 0 <= self.person_pays_annual_pence <= self.total_annual_pence:
            raise ValueError("the person never pays more than the budget, nor less than nothing")

    @property
    def council_pays_annual_pence(self) -> int:
        return self.total_annual_pence - self.person_pays_annual_pence

    @property
    def total_weekly_pence(self) -> int:
        return weekly_pence(self.total_annual_pence)

    @property
    def person_pays_weekly_pence(self) -> int:
        return weekly_pence(self.person_pays_annual_pence)

    @property
    def council_pays_weekly_pence(self) -> int:
        """The weekly total less the person's weekly part, so the two add up to the total."""
        return self.total_weekly_pence - self.person_pays_weekly_pence


def weekly_pence(annual_pence: int) -> int:
    """A year's amount a week (52 weeks), to the nearest penny, a half penny up."""
    return (annual_pence * 2 + WEEKS_PER_YEAR) // (2 * WEEKS_PER_YEAR)


def statement_due(last: BudgetFigures | None, now: BudgetFigures) -> bool:
    """A statement is due for the first figures, then only when one of the three changes."""
    return last is None or last != now


def in_words(day: date) -> str:
    """12 May 2025."""
    return f"{day.day} {day:%B %Y}"


_WHY_THE_PERSON_PAYS = {
    FinancialAssessmentOutcome.ASSESSED: ", as your financial assessment worked out",
    FinancialAssessmentOutcome.FULL_COST_PAYER: (
        ": the full cost, because your savings and capital are at or above the upper limit"
    ),
    FinancialAssessmentOutcome.LIGHT_TOUCH: ", as agreed in a light-touch financial assessment",
    FinancialAssessmentOutcome.REFUSED: (
        ": the full cost, because you chose not to have a financial assessment"
    ),
    FinancialAssessmentOutcome.DEFERRED: ", as your last financial assessment worked out",
}
_FROM_A_GIVEN_FIGURE = ", as the council worked out from your means"


def statement_text(
    figures: BudgetFigures,
    *,
    applies_from: date,
    charge_outcome: FinancialAssessmentOutcome | None,
) -> str:
    """The statement in plain words, as the person reads it (Care Act 2014 s.26)."""
    f = figures
    total = (
        f"The cost of meeting your eligible needs is {format_pounds(f.total_weekly_pence)} "
        f"a week ({format_pounds(f.total_annual_pence)} a year)."
    )
    if f.person_pays_annual_pence == 0:
        person = "You pay nothing towards it."
    else:
        why = (
            _FROM_A_GIVEN_FIGURE if charge_outcome is None else _WHY_THE_PERSON_PAYS[charge_outcome]
        )
        person = (
            f"You pay {format_pounds(f.person_pays_weekly_pence)} a week "
            f"({format_pounds(f.person_pays_annual_pence)} a year){why}."
        )
    council = (
        f"The council pays {format_pounds(f.council_pays_weekly_pence)} a week "
        f"({format_pounds(f.council_pays_annual_pence)} a year)."
    )
    return (
        f"Your personal budget from {in_words(applies_from)}. {total} {person} {council} "
        "If you think this budget is not enough to meet your needs, you can challenge it."
    )
