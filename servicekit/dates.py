"""Plausible ranges for the dates the API and the imports take.

A date that parses is not yet a date that makes sense: 0001-01-01 is a valid date of
birth to a parser and a review due in the year 9999 is a valid date. Each date a caller
gives has a range, documented in docs/api.md ("Dates"), and is checked against the
service's clock (servicekit.clock) at the moment it is checked, so a long-running
service never judges by the day it started.

`DateInRange` is both the rule and its pydantic annotation: put it in a field's
`Annotated[date, ...]` and a date outside answers 422 naming YYYY-MM-DD and the range;
an import checks a cell with `.problem(day)` and reports the message against its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from servicekit import clock


def years_after(day: date, years: int) -> date:
    """The same day `years` later (earlier if negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class DateInRange:
    """From `earliest` (a fixed day), `earliest_years_back` years or `earliest_days_back`
    days before today, to `latest_years_ahead` years (0: today at the latest) or
    `latest_days_ahead` days after today. Days where a rule counts days (payments' "a year
    back" is 365 days, whatever the leap years)."""

    earliest: date | None = None
    earliest_years_back: int | None = None
    latest_years_ahead: int = 0
    earliest_days_back: int | None = None
    latest_days_ahead: int | None = None

    def __post_init__(self) -> None:
        starts = (self.earliest, self.earliest_years_back, self.earliest_days_back)
        if sum(start is not None for start in starts) != 1:
            raise ValueError(
                "give exactly one of earliest, earliest_years_back and earliest_days_back"
            )

    def bounds(self, today: date | None = None) -> tuple[date, date]:
        """The first and the last day allowed, judged on `today` (the clock's by default)."""
        today = today or clock.today()
        if self.earliest is not None:
            first = self.earliest
        elif self.earliest_days_back is not None:
            first = today - timedelta(days=self.earliest_days_back)
        else:
            assert self.earliest_years_back is not None
            first = years_after(today, -self.earliest_years_back)
        if self.latest_days_ahead is not None:
            return first, today + timedelta(days=self.latest_days_ahead)
        return first, years_after(today, self.latest_years_ahead)

    def problem(self, day: date, today: date | None = None) -> str | None:
        """Why `day` is out of range, for the person who typed it; None when it is in."""
        first, last = self.bounds(today)
        if first <= day <= last:
            return None
        return f"{day.isoformat()} is out of range: give a date (YYYY-MM-DD) from {first} to {last}"

    def describe(self) -> str:
        if self.earliest is not None:
            first = self.earliest.isoformat()
        elif self.earliest_days_back is not None:
            first = f"{self.earliest_days_back} days before today"
        else:
            first = f"{self.earliest_years_back} years before today"
        if self.latest_days_ahead is not None:
            last = f"{self.latest_days_ahead} days ahead"
        else:
            last = (
                "today"
                if self.latest_years_ahead == 0
                else f"{self.latest_years_ahead} years ahead"
            )
        return f"YYYY-MM-DD, from {first} to {last} (UTC)"

    def _checked(self, day: date) -> date:
        problem = self.problem(day)
        if problem is not None:
            raise ValueError(problem)
        return day

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._checked, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("description", self.describe())
        return json_schema


EARLIEST_RECORD = date(2000, 1, 1)
"""No care record, review or return of this product is dated before this day."""

RECORD_DATE = DateInRange(earliest=EARLIEST_RECORD, latest_years_ahead=5)
"""A date in a care record (a sign-off, a review, a period): 2000 to five years ahead."""

RecordDate = Annotated[date, RECORD_DATE]
"""A request field holding such a date (docs/api.md, Dates)."""

DECISION_DATE = DateInRange(earliest=EARLIEST_RECORD)
"""The day a decision was taken (a plan's sign-off): 2000 to today, never ahead, so a
decision is never judged under a policy not yet in force."""

DecisionDate = Annotated[date, DECISION_DATE]
