"""The person's assessed charge, as payments keeps it, and what a new one does to a
deployment (docs/charging.md, "The charge in payments").

Payments keeps the charge of every completed financial assessment (assessment's
FinancialAssessmentCompleted). Arranging a deployment without a figure takes the charge in
force as the assessed maximum of the council's contribution rule (rules/contribution.py);
a new charge recalculates the person's arranged deployments from the day it applies, the
way a switch does: released money stays as it was, the scheduled instalments due from
that day are cancelled and new ones pay the new net annual's share of the weeks left.
How each outcome is taken (a refusal pays the full cost, a deferral keeps the charge
before it) is `rules/statement.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from contracts import events as ev
from contracts.events import FinancialAssessmentOutcome
from contracts.policy import ContributionKind, Policy
from rules import statement as rule
from rules.contribution import contribution_annual
from rules.schedules import PLAN_YEAR_DAYS, instalments_until, split_by_amount
from services.payments.arrangement import scheduled_event
from services.payments.lifecycle import Status
from services.payments.schedules import (
    Instalment,
    InstalmentStatus,
    Part,
    Schedule,
    ScheduleKind,
)

if TYPE_CHECKING:
    from services.payments.domain import Deployment


@dataclass(frozen=True)
class AssessedCharge:
    """What one financial assessment set the person's weekly charge to, from a day."""

    financial_assessment_id: UUID
    council: str
    person_id: str
    outcome: FinancialAssessmentOutcome
    full_cost: bool
    weekly_charge_pence: int | None
    applies_from: date
    policy_version: str

    @classmethod
    def from_event(cls, event: ev.FinancialAssessmentCompleted) -> AssessedCharge:
        """What an assessment set, kept whatever its outcome (a deferral sets nothing)."""
        return cls(
            financial_assessment_id=event.financial_assessment_id,
            council=event.council,
            person_id=event.person_id,
            outcome=event.outcome,
            full_cost=rule.pays_full_cost(event.outcome, event.light_touch_basis),
            weekly_charge_pence=event.weekly_charge_pence,
            applies_from=event.applies_from or event.assessed_on,
            policy_version=event.policy_version,
        )

    @property
    def sets_a_charge(self) -> bool:
        """A deferral keeps the charge in force before it."""
        return rule.sets_a_charge(self.outcome)

    def max_weekly_for(self, gross_annual_pence: int) -> int:
        """The assessed maximum weekly contribution towards a budget of this cost."""
        return rule.assessed_max_weekly_pence(
            full_cost=self.full_cost,
            weekly_charge_pence=self.weekly_charge_pence,
            gross_annual_pence=gross_annual_pence,
        )


def recalculate(dep: Deployment, charge: AssessedCharge, policy: Policy, actor: str) -> bool:
    """Apply a new charge to an arranged deployment; True when the contribution changed.

    A deployment not yet arranged takes the charge when it is; a superseded one pays
    nothing more. Before the agreement only the figures change; after it, the scheduled
    recurring instalments due from the day the charge applies are cancelled and replaced.
    """
    if dep.status is Status.SUPERSEDED or not dep.parts:
        return False
    if policy.contribution.kind is ContributionKind.NONE:
        return False
    assessed = charge.max_weekly_for(dep.gross_annual_pence)
    contribution = contribution_annual(dep.gross_annual_pence, policy.contribution, assessed)
    previous = dep.contribution_annual_pence or 0
    if contribution == previous:
        if assessed != dep.assessed_max_weekly_contribution_pence:
            dep.assessed_max_weekly_contribution_pence = assessed
            dep.touch(actor)
        return False
    dep.assessed_max_weekly_contribution_pence = assessed
    net = dep.gross_annual_pence - contribution
    nets = split_by_amount(net, [p.annual_pence for p in dep.parts])
    dep.parts = [
        Part(option=p.option, annual_pence=p.annual_pence, net_annual_pence=part_net)
        for p, part_net in zip(dep.parts, nets, strict=True)
    ]
    dep.contribution_annual_pence = contribution
    dep.net_annual_pence = net
    cancelled, schedules = _reschedule(dep, charge.applies_from, actor)
    dep.events.append(
        ev.ContributionRecalculated(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            financial_assessment_id=charge.financial_assessment_id,
            charge_outcome=charge.outcome,
            assessed_max_weekly_contribution_pence=assessed,
            applies_from=charge.applies_from,
            previous_contribution_annual_pence=previous,
            contribution_annual_pence=contribution,
            net_annual_pence=net,
            cancelled_instalments=len(cancelled),
            cancelled_pence=sum(i.amount_pence for i in cancelled),
            rescheduled_pence=sum(s.total_pence for s in schedules),
            policy_version=charge.policy_version,
        )
    )
    dep.events.extend(scheduled_event(dep, s) for s in schedules)
    dep.touch(actor)
    return True


def _reschedule(
    dep: Deployment, applies_from: date, actor: str
) -> tuple[list[Instalment], list[Schedule]]:
    """Replace the scheduled recurring instalments due from `applies_from` with new ones
    paying the new net annual's share of the plan year; released money is never touched."""
    if dep.agreement is None or dep.plan_year_starts_on is None or dep.frequency is None:
        return [], []
    cancelled = [
        i
        for s in dep.schedules
        if s.kind is ScheduleKind.RECURRING
        for i in s.instalments
        if i.status is InstalmentStatus.SCHEDULED and i.due_on >= applies_from
    ]
    if not cancelled:
        return [], []
    year_start = dep.plan_year_starts_on
    year_end = year_start + timedelta(days=PLAN_YEAR_DAYS)
    frequency = dep.frequency.as_money
    first = min(i.due_on for i in cancelled)
    left = instalments_until(frequency, first, year_end)
    total = rule.rescheduled_pence(
        dep.net_annual_pence or 0, left, instalments_until(frequency, year_start, year_end)
    )
    for instalment in cancelled:
        instalment.status = InstalmentStatus.CANCELLED
    by_part = split_by_amount(total, [p.annual_pence for p in dep.parts])
    schedules = [
        Schedule.plan(
            option=part.option,
            frequency=frequency,
            kind=ScheduleKind.RECURRING,
            first_due_on=first,
            total_pence=amount,
            count=left,
            created_by=actor,
        )
        for part, amount in zip(dep.parts, by_part, strict=True)
        if amount > 0
    ]
    dep.schedules.extend(schedules)
    return cancelled, schedules
