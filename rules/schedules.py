"""Schedules: how a year's money is cut into instalments and shared between options.

- **A plan year** is 52 weeks (364 days) from the first payment (contracts/money.py).
- **How many instalments** fall from a first due date to the end of the plan year:
  for a whole year weekly 52, four-weekly 13, annual one up front; a schedule started
  part way through the year (a switch of options) pays the weeks left.
- **Exact money** (seed 003 ch.5 §5): a total split between parts in proportion to their
  amounts adds up to the total to the penny, the odd pence to the largest remainders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from contracts.money import Frequency

PLAN_YEAR_DAYS = 364
PERIOD_DAYS = {Frequency.WEEKLY: 7, Frequency.FOUR_WEEKLY: 28}
"""Days between two instalments; a frequency not listed pays once."""


def instalments_until(frequency: Frequency, first_due_on: date, year_end: date) -> int:
    """How many instalments fall from the first due date to the end of the plan year.

    For a whole plan year: weekly 52, four-weekly 13, annual 1.
    """
    if frequency not in PERIOD_DAYS:
        return 1
    days = (year_end - first_due_on).days
    return max(1, math.ceil(days / PERIOD_DAYS[frequency]))


def split_by_amount(total_pence: int, weights: Sequence[int]) -> list[int]:
    """Split a total in proportion to weights, to the penny (largest remainder first).

    The shares add up to the total exactly; the odd pence go to the largest remainders,
    the earlier part first on a tie.
    """
    whole = sum(weights)
    if whole == 0:
        if total_pence:
            raise ValueError("cannot split money over weights that add up to nothing")
        return [0 for _ in weights]
    shares = [total_pence * w // whole for w in weights]
    remainders = [total_pence * w % whole for w in weights]
    left = total_pence - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares
