"""When a signed-off support plan is reviewed: first soon after sign-off, then at least
yearly (seed 004 §6.7, Councils D and E; seed 003, step 7). Each council's intervals are its
policy's `reviews`: `first_after_days` after sign-off, then `then_every_months` after each
completed review.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def add_months(start: date, months: int) -> date:
    """The same day `months` later; the 29th-31st fall back to the month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def first_review_on(signed_off_on: date, first_after_days: int) -> date:
    """The first review: the policy's `reviews.first_after_days` after the plan's sign-off."""
    return signed_off_on + timedelta(days=first_after_days)


def next_review_on(completed_on: date, then_every_months: int) -> date:
    """The next review: the policy's `reviews.then_every_months` after one is completed."""
    return add_months(completed_on, then_every_months)
