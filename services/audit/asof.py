"""The two times of a fact: when it took effect, and when the record learned of it.

Every stored event was recorded at its CloudEvent `time` (the instant its producer wrote
it, to the microsecond). Many also carry the date the fact itself took effect, the
business date: the day an agreement was signed, an instalment fell due, a switch or a
policy applies from, a review was completed. A fact without one (a budget issued, a plan
signed off: their events carry no date of their own) took effect when it was recorded.

A question about a person's budget names both (architecture.md §13):
- `known_at`: what the record held at an instant: events recorded at or before it. A bare
  date means the end of that UTC day (the events recorded before the next midnight), which
  is also what `as_of`, its older name, has always meant.
- `in_force_on`: of those, the facts in force on a date: events whose effective date is on
  or before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts import events as ev
from servicekit import clock
from servicekit.dates import RECORD_DATE
from servicekit.errors import Invalid
from services.audit.domain import AuditError, StoredEvent, as_utc, end_of_day, event_of

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORMATS = "a date YYYY-MM-DD or an RFC 3339 date-time such as 2026-03-01T09:30:00Z"
ONE_MICROSECOND = timedelta(microseconds=1)


class BadInstant(AuditError, Invalid):
    def __init__(self, field: str, value: str, why: str) -> None:
        super().__init__(f"{field}: {value[:64]!r} {why}")


class TwoNamesForKnownAt(AuditError, Invalid):
    def __init__(self) -> None:
        super().__init__("as_of and known_at name the same thing: send one of them")


@dataclass(frozen=True)
class KnownAt:
    """What the record held: events recorded strictly before `before`."""

    before: datetime
    day: date  # the UTC day it falls in, as the answer's as_of
    instant: datetime  # the instant as asked (a bare date: the end of that day)


def parse_day(field: str, value: str) -> date:
    """A date YYYY-MM-DD within the range of every date audit is asked about, or BadInstant
    naming the field, the format and the range."""
    if _DAY.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            _in_range(field, value, day)
            return day
    raise BadInstant(field, value, "is not a date YYYY-MM-DD")


def _in_range(field: str, value: str, day: date) -> None:
    problem = RECORD_DATE.problem(day)
    if problem is not None:
        raise BadInstant(field, value, problem)


def parse_known_at(field: str, value: str | None) -> KnownAt:
    """A bare date: the end of that UTC day. An RFC 3339 date-time: that very instant,
    inclusive. Omitted: the end of today."""
    if value is None:
        today = clock.today()
        return KnownAt(end_of_day(today), today, end_of_day(today))
    if _DAY.match(value):
        day = parse_day(field, value)
        return KnownAt(end_of_day(day), day, end_of_day(day))
    # In a query string an unencoded "+" of the offset arrives as a space.
    text = value.strip().replace(" ", "+")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise BadInstant(field, value, f"is neither {_FORMATS}") from err
    if "T" not in text.upper() or moment.tzinfo is None:
        raise BadInstant(field, value, f"is neither {_FORMATS} (with Z or an offset)")
    try:
        instant = as_utc(moment)
        before = instant + ONE_MICROSECOND
    except OverflowError as err:
        raise BadInstant(
            field, value, f"is out of range once converted to UTC; give {_FORMATS}"
        ) from err
    _in_range(field, value, instant.date())
    return KnownAt(before, instant.date(), instant)


def known_at_of(as_of: str | None, known_at: str | None) -> KnownAt:
    if as_of is not None and known_at is not None:
        raise TwoNamesForKnownAt()
    if known_at is not None:
        return parse_known_at("known_at", known_at)
    return parse_known_at("as_of", as_of)


def business_date(event: ev.Event) -> date | None:
    """The date the fact took effect, where its event carries one."""
    if isinstance(event, ev.AgreementSigned):
        return event.signed_on
    if isinstance(event, ev.PaymentReleased | ev.ReviewDue):
        return event.due_on
    if isinstance(event, ev.PaymentScheduled):
        return event.first_due_on
    if isinstance(event, ev.PaymentConfirmed):
        return event.paid_on
    if isinstance(event, ev.PaymentFailed):
        return event.failed_on
    if isinstance(event, ev.ReviewCompleted):
        return event.completed_on
    if isinstance(event, ev.DeploymentSwitched | ev.PolicyAdopted):
        return event.effective_from
    if isinstance(event, ev.DeploymentSuperseded):
        return event.effective_from
    if isinstance(event, ev.PersonalDataErased):
        return event.erased_on
    return None


def effective_on(stored: StoredEvent) -> date:
    """When the fact took effect: its business date, else the UTC day it was recorded."""
    return business_date(event_of(stored)) or as_utc(stored.time).date()


def in_force_on(rows: Iterable[StoredEvent], day: date) -> list[StoredEvent]:
    """The events whose fact had taken effect by the end of `day`."""
    return [row for row in rows if effective_on(row) <= day]
