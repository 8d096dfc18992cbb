"""Unspent funds and clawback: how much of a build-up a person may keep.

Each council's policy names its unspent-funds rule (seed 004 App.1):

- **above_weeks_of_payment** (Council A): the person may keep the equivalent of N weeks
  of direct payments, computed exactly as annual x N / 52 rounded half up.
- **above_contingency** (Council B, recouped quarterly): the plan's agreed contingency for
  a quarter, contingency a week x 13.
- **hold_or_clawback** (Council D: "may put a hold on future release of funds or
  potentially claw back"): nothing; any build-up above zero may be held or clawed back.
- **none**: no limit.

What is clawed back is the balance above the allowance, never less than nothing.
"""

from __future__ import annotations

from contracts.money import FOUR_WEEK_PERIODS_PER_YEAR, WEEKS_PER_YEAR, div_round_half_up
from contracts.policy import Monitoring, UnspentRule

QUARTER_WEEKS = FOUR_WEEK_PERIODS_PER_YEAR  # 13 weeks: a quarter of a 52-week year


def unspent_allowance(
    rule: UnspentRule,
    monitoring: Monitoring,
    *,
    weekly_basis_annual_pence: int,
    contingency_weekly_pence: int,
) -> int | None:
    """How much of an unspent balance the person may keep (None: no limit)."""
    if rule is UnspentRule.ABOVE_WEEKS_OF_PAYMENT:
        weeks = monitoring.unspent_weeks_allowed or 0
        return div_round_half_up(weekly_basis_annual_pence * weeks, WEEKS_PER_YEAR)
    if rule is UnspentRule.ABOVE_CONTINGENCY:
        return contingency_weekly_pence * QUARTER_WEEKS
    if rule is UnspentRule.HOLD_OR_CLAWBACK:
        return 0
    return None


def clawback_amount(balance_pence: int, allowance_pence: int | None) -> int:
    """The balance above the allowance; nothing when there is no limit."""
    if allowance_pence is None:
        return 0
    return max(0, balance_pence - allowance_pence)
