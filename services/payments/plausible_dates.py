"""Every date the payments API takes, and the range it must fall in, in one place.

docs/api.md lists them. "today" is the service's clock (servicekit.clock), never the
caller's. A date outside its range is refused with 422 DateOutOfRange naming the field,
YYYY-MM-DD and the range, except a release date or a signing date after today, which
have errors of their own (ReleaseDateInFuture here, SignedInFuture in the agreement).
"""

from __future__ import annotations

from datetime import date, timedelta

from contracts import events as ev
from contracts.policy import Policy
from servicekit.dates import DECISION_DATE, EARLIEST_RECORD, DateInRange
from services.payments.errors import DateOutOfRange, ReleaseDateInFuture

FIRST_DUE = DateInRange(earliest_days_back=365, latest_days_ahead=730)
"""first_due_on: a first payment may be dated back up to a year (arrears, which need
approval) and forward up to two years."""
UP_TO_TODAY = DECISION_DATE
"""signed_on and a release's as_of: dated the day it was done (2000 to today), as a plan's
sign-off is."""
RECORD = DateInRange(earliest=EARLIEST_RECORD, latest_days_ahead=366)
"""A return's period, an unspent check's date and an export's up_to: at most a year on."""


def check_date(field_name: str, value: date, allowed: DateInRange, today: date) -> None:
    problem = allowed.problem(value, today)
    if problem is not None:
        raise DateOutOfRange(f"{field_name}: {problem}")


def release_date(as_of: date, today: date) -> date:
    """The date a release runs up to: never after today, so nothing leaves before it is due."""
    if as_of > today:
        raise ReleaseDateInFuture(
            f"as_of {as_of.isoformat()} is after today ({today.isoformat()}): only "
            "instalments already due can be released; leave as_of out to release what is "
            "due today"
        )
    check_date("as_of", as_of, UP_TO_TODAY, today)
    return as_of


def plan_signed_off_on(plan: ev.PlanSignedOff, policy: Policy) -> date:
    """The day the plan was signed off, as planning recorded it.

    PlanSignedOff (v1) carries the first review date and the policy version it was worked
    out with; planning books the first review `reviews.first_after_days` after sign-off
    under that policy, so the sign-off date is exactly that many days before it.
    """
    return plan.first_review_on - timedelta(days=policy.reviews.first_after_days)
