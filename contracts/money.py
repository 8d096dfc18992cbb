"""Exact money: integer pence, GBP, and the period conversions every service shares.

A year is 52 weeks and 13 four-week periods, so weekly, 4-weekly and annual figures
convert both ways without drift (ADR 0003). Splitting a total into instalments hands
the odd pence to the earliest instalments, so the parts always add up to the total.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

WEEKS_PER_YEAR = 52
FOUR_WEEK_PERIODS_PER_YEAR = 13

Pence = Annotated[int, Field(strict=True, ge=0, description="Money in integer pence (GBP).")]
"""A non-negative amount in integer pence; fractional or negative amounts are refused."""

SignedPence = Annotated[int, Field(strict=True, description="Money in integer pence (GBP).")]


class Frequency(StrEnum):
    WEEKLY = "weekly"
    FOUR_WEEKLY = "four_weekly"
    ANNUAL = "annual"
    ONE_OFF = "one_off"


def annual_from(amount_pence: int, frequency: Frequency) -> int:
    """The yearly value of an amount paid at a frequency (a one-off counts once)."""
    if frequency is Frequency.WEEKLY:
        return amount_pence * WEEKS_PER_YEAR
    if frequency is Frequency.FOUR_WEEKLY:
        return amount_pence * FOUR_WEEK_PERIODS_PER_YEAR
    return amount_pence


def weekly_from(amount_pence: int, frequency: Frequency) -> int:
    """The weekly equivalent, rounded half up to the penny (a one-off spreads over a year)."""
    if frequency is Frequency.WEEKLY:
        return amount_pence
    if frequency is Frequency.FOUR_WEEKLY:
        return div_round_half_up(amount_pence, 4)
    return div_round_half_up(amount_pence, WEEKS_PER_YEAR)


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero; no floats anywhere."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def apply_basis_points(amount_pence: int, basis_points: int) -> int:
    """amount × basis_points / 10,000, rounded half up (10,000 bp = 100%)."""
    return div_round_half_up(amount_pence * basis_points, 10_000)


def split_evenly(total_pence: int, parts: int) -> list[int]:
    """Split a total into parts that differ by at most a penny and sum to the total exactly."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    if total_pence < 0:
        raise ValueError("total must not be negative")
    base, remainder = divmod(total_pence, parts)
    return [base + 1 if index < remainder else base for index in range(parts)]


def format_pounds(amount_pence: int) -> str:
    """£1,234.56 for people; the APIs carry pence."""
    sign = "-" if amount_pence < 0 else ""
    pounds, pence = divmod(abs(amount_pence), 100)
    return f"{sign}£{pounds:,}.{pence:02d}"
