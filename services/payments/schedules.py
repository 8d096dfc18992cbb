"""Schedules: the parts a budget is split into, and the instalments that pay them.

A deployment holds its budget in one or more parts (seed 000; seed 004 §6.1: direct
payment, council-managed account, third-party managed account, individual service fund,
or a mix split by amount). Each part is paid by a schedule of instalments that adds up to
its total to the penny (`split_evenly`, seed 003 ch.5 §5); how many instalments and how a
total is shared between parts is the council's arithmetic in `rules/schedules.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from contracts.events import DeploymentOption, DeploymentPart
from contracts.money import Frequency, split_evenly
from rules.schedules import PERIOD_DAYS
from services.payments.errors import InvalidArrangement, PartsDoNotAddUp

MAX_PARTS = len(DeploymentOption)


class PaymentFrequency(StrEnum):
    """How the recurring money is paid (seed 004): weekly, 4-weekly, or annual up front."""

    WEEKLY = "weekly"
    FOUR_WEEKLY = "four_weekly"
    ANNUAL = "annual"

    @property
    def as_money(self) -> Frequency:
        return Frequency(self.value)


class InstalmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    RELEASED = "released"
    CANCELLED = "cancelled"


class ScheduleKind(StrEnum):
    RECURRING = "recurring"
    ONE_OFF = "one_off"


@dataclass(frozen=True)
class PartRequest:
    """One option asked for; annual_pence None means the whole budget (one part only)."""

    option: DeploymentOption
    annual_pence: int | None = None


def resolve_parts(
    requests: Sequence[PartRequest], gross_annual_pence: int
) -> list[tuple[DeploymentOption, int]]:
    """Validate a mix: options once each; amounts add up exactly to the gross annual."""
    if not requests:
        raise InvalidArrangement("parts: give at least one deployment option")
    if len(requests) > MAX_PARTS:
        raise InvalidArrangement(f"parts: at most {MAX_PARTS} options")
    options = [r.option for r in requests]
    if len(set(options)) != len(options):
        raise InvalidArrangement("parts: each option may appear only once")
    if any(r.annual_pence is None for r in requests):
        if len(requests) > 1:
            index = next(i for i, r in enumerate(requests) if r.annual_pence is None)
            raise InvalidArrangement(
                f"parts[{index}].annual_pence is required when the budget is split "
                "between options (only a single part may leave it out to take it all)"
            )
        return [(requests[0].option, gross_annual_pence)]
    amounts = [r.annual_pence or 0 for r in requests]
    if gross_annual_pence > 0:
        for index, amount in enumerate(amounts):
            if amount <= 0:
                raise InvalidArrangement(f"parts[{index}].annual_pence must be more than 0")
    total = sum(amounts)
    if total != gross_annual_pence:
        raise PartsDoNotAddUp(
            f"parts: the annual_pence of the parts add up to {total} but the plan's gross "
            f"annual is {gross_annual_pence}; a mix is split by amount and must add up exactly"
        )
    return list(zip(options, amounts, strict=True))


@dataclass(frozen=True)
class Part:
    option: DeploymentOption
    annual_pence: int
    net_annual_pence: int

    def as_event(self) -> DeploymentPart:
        return DeploymentPart(option=self.option, annual_pence=self.annual_pence)


@dataclass
class Instalment:
    instalment_id: UUID
    schedule_id: UUID
    number: int
    option: DeploymentOption
    due_on: date
    amount_pence: int
    status: InstalmentStatus = InstalmentStatus.SCHEDULED
    payment_id: UUID | None = None
    released_on: date | None = None
    released_by: str | None = None


@dataclass
class Schedule:
    schedule_id: UUID
    option: DeploymentOption
    frequency: Frequency
    kind: ScheduleKind
    first_due_on: date
    total_pence: int
    instalments: list[Instalment]
    created_by: str

    @classmethod
    def plan(
        cls,
        *,
        option: DeploymentOption,
        frequency: Frequency,
        kind: ScheduleKind,
        first_due_on: date,
        total_pence: int,
        count: int,
        created_by: str,
    ) -> Schedule:
        """Instalments of split_evenly(total, count), so they add up to the total exactly."""
        schedule_id = uuid4()
        step = timedelta(days=PERIOD_DAYS.get(frequency, 0))
        instalments = [
            Instalment(
                instalment_id=uuid4(),
                schedule_id=schedule_id,
                number=index + 1,
                option=option,
                due_on=first_due_on + step * index,
                amount_pence=amount,
            )
            for index, amount in enumerate(split_evenly(total_pence, count))
        ]
        return cls(
            schedule_id=schedule_id,
            option=option,
            frequency=frequency,
            kind=kind,
            first_due_on=first_due_on,
            total_pence=total_pence,
            instalments=instalments,
            created_by=created_by,
        )

    def pence(self, status: InstalmentStatus) -> int:
        return sum(i.amount_pence for i in self.instalments if i.status is status)


def one_off_schedule(
    parts: Sequence[Part], due_on: date, one_off_pence: int, actor: str
) -> Schedule:
    """The plan's one-off cost, paid once with the first instalment, in full (no
    contribution is taken from it), to the direct payment if there is one, else to
    the first part."""
    options = [p.option for p in parts]
    option = (
        DeploymentOption.DIRECT_PAYMENT
        if DeploymentOption.DIRECT_PAYMENT in options
        else options[0]
    )
    return Schedule.plan(
        option=option,
        frequency=Frequency.ONE_OFF,
        kind=ScheduleKind.ONE_OFF,
        first_due_on=due_on,
        total_pence=one_off_pence,
        count=1,
        created_by=actor,
    )
