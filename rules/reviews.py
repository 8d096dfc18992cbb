"""When a support plan and a direct payment are reviewed.

The plan: first soon after sign-off, then at least yearly (seed 004 §6.7, Councils D and E;
seed 003, step 7; Care and Support Statutory Guidance, para. 13.32: 6 to 8 weeks, then no
later than every 12 months). Each council's intervals are its policy's `reviews`:
`first_after_days` after sign-off, then `then_every_months` after each completed review.

A direct payment: within the first 6 months of the first payment, then at intervals of no
more than 12 months (Care and Support (Direct Payments) Regulations 2014, reg. 7(1)(a));
the policy's `reviews.direct_payment`, else the regulation's own limits.

An unscheduled review: due a number of days after the event that brought it forward (a
carer stops, a hospital admission, a surplus found), by the policy's
`reviews.unscheduled.within_days`; due at once where the policy has no figure.

The policy model refuses a schedule outside the guidance or the regulation
(`contracts.policy.Reviews`), so every date here is within them.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from contracts.policy import (
    DIRECT_PAYMENT_FIRST_REVIEW_MONTHS_AT_MOST,
    DIRECT_PAYMENT_REVIEW_MONTHS_AT_MOST,
    Reviews,
)


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


def first_direct_payment_review_on(starts_on: date, reviews: Reviews) -> date:
    """The first review of a direct payment that starts on `starts_on` (set up, or switched
    to): the policy's `first_within_months` later, the regulation's 6 without one."""
    months = (
        reviews.direct_payment.first_within_months
        if reviews.direct_payment is not None
        else DIRECT_PAYMENT_FIRST_REVIEW_MONTHS_AT_MOST
    )
    return add_months(starts_on, months)


def next_direct_payment_review_on(completed_on: date, reviews: Reviews) -> date:
    """The next review of a direct payment: the policy's `then_every_months` after one is
    completed, the regulation's 12 without one."""
    months = (
        reviews.direct_payment.then_every_months
        if reviews.direct_payment is not None
        else DIRECT_PAYMENT_REVIEW_MONTHS_AT_MOST
    )
    return add_months(completed_on, months)


def unscheduled_review_on(happened_on: date, trigger: str, reviews: Reviews) -> date:
    """An unscheduled review: the policy's days for its trigger after the day it happened;
    on that day itself where the policy has no figure."""
    if reviews.unscheduled is None:
        return happened_on
    return happened_on + timedelta(days=reviews.unscheduled.within_days.get(trigger, 0))
