"""Returns and receipts: what a person accounts for, and when.

- **Receipts** (seed 004 App.1 Council D: "Anything under £50 does not require a
  receipt"): an item of the council's threshold or more needs a receipt, so an item of
  exactly the threshold needs one.
- **Returns** (seed 004 App.1 Council B: quarterly): each return covers the months after
  the last one's period, starting at the plan year; the next is due at the end of that
  period, on the same day of the month (or the month's last day when it is shorter).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class ReturnItem:
    """One thing bought, as a return reports it."""

    description: str
    amount_pence: int
    receipt: bool


def missing_receipts(items: Sequence[ReturnItem], required_from_pence: int) -> list[int]:
    """Indexes of items at or above the threshold that have no receipt."""
    return [
        index
        for index, item in enumerate(items)
        if item.amount_pence >= required_from_pence and not item.receipt
    ]


def add_months(day: date, months: int) -> date:
    """The same day N months on, or the month's last day when it is shorter."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def next_return_due_on(
    every_months: int | None, plan_year_starts_on: date | None, last_period_end: date | None
) -> date | None:
    """The end of the next period a return covers; None when the council asks for none or
    nothing is paid yet."""
    if every_months is None or plan_year_starts_on is None:
        return None
    start = plan_year_starts_on if last_period_end is None else last_period_end + timedelta(days=1)
    return add_months(start, every_months)
