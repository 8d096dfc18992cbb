"""The one clock every service reads "now" and "today" from.

Rules that depend on the date (nothing is released before it is due, an agreement is not
signed in the future) must be checked against the service's own clock, never a date the
caller sends. Tests and the model of the journey move this clock instead of patching
`datetime` in five places; production never replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock a test sets and moves; it never moves by itself."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a SettableClock needs an aware datetime (UTC)")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at

    def advance(self, by: timedelta) -> None:
        self._at += by


_clock: Clock = SystemClock()


def now() -> datetime:
    """Now, by the service's clock (aware, UTC)."""
    return _clock.now()


def today() -> date:
    """Today's date in UTC, by the service's clock."""
    return _clock.now().date()


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Read the time from `clock` inside the block (tests only)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
