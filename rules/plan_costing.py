"""A support plan's cost in integer pence, never in hours (seed 000; seed 003 ch.5 §5).

Each line at its frequency (weekly, four-weekly, annual, one-off), a provider's management
fee on every line whose funds the provider holds (seed 003 Castle: 10%; policy
`planning.provider_management_fee_basis_points`), and a contingency every week (seed 003
Castle; seed 004 §4). Weekly and annual figures agree to the penny (see `Costing`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from contracts.money import (
    WEEKS_PER_YEAR,
    Frequency,
    annual_from,
    apply_basis_points,
    div_round_half_up,
)
from rules.wording import percent


class CostedLine(Protocol):
    """One line of a plan as costing sees it: what it costs per occurrence, how often, and
    whether a provider holds its funds."""

    @property
    def line_id(self) -> UUID: ...
    @property
    def description(self) -> str: ...
    @property
    def provider_name(self) -> str | None: ...
    @property
    def frequency(self) -> Frequency: ...
    @property
    def amount_pence(self) -> int: ...
    @property
    def provider_holds_funds(self) -> bool: ...
    @property
    def domains(self) -> tuple[str, ...]: ...
    @property
    def recurring(self) -> bool: ...


class CostedContent(Protocol):
    """A plan's lines and its weekly contingency."""

    @property
    def lines(self) -> Sequence[CostedLine]: ...
    @property
    def contingency_weekly_pence(self) -> int: ...


@dataclass(frozen=True)
class LineCost:
    line_id: UUID
    annual_pence: int
    """The line's recurring yearly cost without fee (0 for a one-off)."""
    one_off_pence: int
    fee_amount_pence: int
    """The management fee per occurrence, at the line's frequency (0 unless a provider holds it)."""


@dataclass(frozen=True)
class FeeLine:
    """The provider management fee on one line held by a provider (seed 003 Castle: 10%)."""

    line_id: UUID
    fee_line_id: UUID
    description: str
    provider_name: str | None
    frequency: Frequency
    amount_pence: int
    annual_pence: int
    one_off_pence: int
    domains: tuple[str, ...]


@dataclass(frozen=True)
class Costing:
    """A plan's cost, weekly and annual figures consistent to the penny.

    The annual figure is exact: each recurring line's annual value (``annual_from``: 52
    weeks, 13 four-week periods, an annual line once), plus its provider management fee,
    plus the contingency × 52. The weekly figure is that annual figure divided by 52,
    rounded half up, so weekly × 52 differs from annual by at most 26 pence and never
    drifts. One-off lines (and their fees) are counted apart, in ``one_off_pence``.
    """

    weekly_pence: int
    annual_pence: int
    one_off_pence: int
    recurring_annual_pence: int
    fee_basis_points: int
    fee_annual_pence: int
    fee_one_off_pence: int
    contingency_weekly_pence: int
    contingency_annual_pence: int
    lines: tuple[LineCost, ...]
    fee_lines: tuple[FeeLine, ...]

    def line(self, line_id: UUID) -> LineCost:
        return next(c for c in self.lines if c.line_id == line_id)


_FEE_NAMESPACE = UUID("5b0c1f3e-8f5e-4d8a-9c3e-2d7a61f0b1a4")


def cost_plan(content: CostedContent, *, fee_basis_points: int) -> Costing:
    """Cost a plan in integer pence (see Costing for how weekly and annual agree)."""
    line_costs: list[LineCost] = []
    fee_lines: list[FeeLine] = []
    recurring = fee_annual = one_off = fee_one_off = 0
    for line in content.lines:
        fee = (
            apply_basis_points(line.amount_pence, fee_basis_points)
            if (line.provider_holds_funds)
            else 0
        )
        if line.recurring:
            line_annual = annual_from(line.amount_pence, line.frequency)
            line_fee_annual = annual_from(fee, line.frequency)
            recurring += line_annual
            fee_annual += line_fee_annual
            line_costs.append(LineCost(line.line_id, line_annual, 0, fee))
        else:
            line_fee_annual = 0
            one_off += line.amount_pence
            fee_one_off += fee
            line_costs.append(LineCost(line.line_id, 0, line.amount_pence, fee))
        if line.provider_holds_funds:
            fee_lines.append(
                FeeLine(
                    line_id=line.line_id,
                    fee_line_id=uuid.uuid5(_FEE_NAMESPACE, str(line.line_id)),
                    description=f"Provider management fee ({percent(fee_basis_points)}) on: "
                    f"{line.description}"[:2000],
                    provider_name=line.provider_name,
                    frequency=line.frequency,
                    amount_pence=fee,
                    annual_pence=line_fee_annual,
                    one_off_pence=0 if line.recurring else fee,
                    domains=line.domains,
                )
            )
    contingency_annual = content.contingency_weekly_pence * WEEKS_PER_YEAR
    annual = recurring + fee_annual + contingency_annual
    return Costing(
        weekly_pence=div_round_half_up(annual, WEEKS_PER_YEAR),
        annual_pence=annual,
        one_off_pence=one_off + fee_one_off,
        recurring_annual_pence=recurring,
        fee_basis_points=fee_basis_points,
        fee_annual_pence=fee_annual,
        fee_one_off_pence=fee_one_off,
        contingency_weekly_pence=content.contingency_weekly_pence,
        contingency_annual_pence=contingency_annual,
        lines=tuple(line_costs),
        fee_lines=tuple(fee_lines),
    )
