"""Arranging a deployment and signing its agreement: choosing how the budget is held
and paid, scheduling the money once the agreement is signed (seed 003 ch.4: "Funding
released once agreement signed and returned"), and switching options on a signed
deployment without a reassessment (seed 004 §6.1).

A plan year is 52 weeks (364 days) from the first payment when the agreement is signed;
weekly pays 52 instalments, four-weekly 13, annual one up front (rules/schedules.py).
Instalments already past due when they are scheduled are arrears (arrears_approval.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from contracts import events as ev
from contracts.policy import ContributionKind, Policy
from contracts.vocabulary import Role
from rules import audit_tiers
from rules.contribution import contribution_annual
from rules.schedules import PLAN_YEAR_DAYS, instalments_until, split_by_amount
from services.payments.arrears_approval import ArrearsDecision, approve_arrears
from services.payments.errors import (
    AgreementAlreadySigned,
    ArrangementMissing,
    InvalidArrangement,
    OverReleased,
    SignedBeforeSignOff,
    SignedInFuture,
)
from services.payments.lifecycle import Agreement, Status
from services.payments.plausible_dates import FIRST_DUE, UP_TO_TODAY, check_date
from services.payments.schedules import (
    InstalmentStatus,
    Part,
    PartRequest,
    PaymentFrequency,
    Schedule,
    ScheduleKind,
    one_off_schedule,
    resolve_parts,
)

if TYPE_CHECKING:
    from services.payments.domain import Deployment


def arrange(
    dep: Deployment,
    *,
    parts: Sequence[PartRequest],
    frequency: PaymentFrequency,
    first_due_on: date,
    assessed_max_weekly_contribution_pence: int | None,
    policy: Policy,
    actor: str,
    today: date,
    approver: Role | None = None,
    arrears_reason: str | None = None,
    expected_version: int | None = None,
) -> None:
    """Choose how the budget is held and paid; on a signed deployment, switch options.

    A switch needs no reassessment (seed 004 §6.1): the gross and, unless a new means
    figure is given, the contribution stay; released instalments stay; every unreleased
    instalment is cancelled and new schedules pay what is left of the net annual from
    first_due_on to the end of the plan year. A switch dated back schedules arrears,
    which need a reason and an approver (rules/arrears.py), as an agreement's do.
    """
    dep.check_version(expected_version)
    dep.refuse_if_superseded()
    check_date("first_due_on", first_due_on, FIRST_DUE, today)
    resolved = resolve_parts(parts, dep.gross_annual_pence)
    assessed = assessed_max_weekly_contribution_pence
    if assessed is None:
        assessed = dep.assessed_max_weekly_contribution_pence
    if assessed is None:
        if policy.contribution.kind is not ContributionKind.NONE:
            raise InvalidArrangement(
                "assessed_max_weekly_contribution_pence is required: the most the "
                "financial assessment says the person can pay a week (0 if none)"
            )
        assessed = 0
    contribution = contribution_annual(dep.gross_annual_pence, policy.contribution, assessed)
    net = dep.gross_annual_pence - contribution
    nets = split_by_amount(net, [amount for _, amount in resolved])
    new_parts = [
        Part(option=option, annual_pence=amount, net_annual_pence=part_net)
        for (option, amount), part_net in zip(resolved, nets, strict=True)
    ]
    if dep.agreement is not None:
        switch(
            dep,
            new_parts,
            frequency,
            first_due_on,
            net,
            actor,
            arrears=ArrearsDecision(
                today=today, approver=approver, reason=arrears_reason, policy=policy
            ),
        )
    else:
        dep.status = Status.AWAITING_AGREEMENT
    dep.parts = new_parts
    dep.frequency = frequency
    dep.first_due_on = first_due_on
    dep.assessed_max_weekly_contribution_pence = assessed
    dep.contribution_annual_pence = contribution
    dep.net_annual_pence = net
    dep.audit_tier = audit_tiers.audit_tier(new_parts, dep.gross_annual_pence, policy.monitoring)
    dep.events.append(
        ev.DeploymentSetUp(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            plan_id=dep.plan_id,
            parts=[p.as_event() for p in new_parts],
            gross_annual_pence=dep.gross_annual_pence,
            contribution_annual_pence=contribution,
            net_annual_pence=net,
            audit_tier=dep.audit_tier,
            policy_version=dep.policy_version,
        )
    )
    dep.touch(actor)


def switch(
    dep: Deployment,
    new_parts: list[Part],
    frequency: PaymentFrequency,
    first_due_on: date,
    net_annual_pence: int,
    actor: str,
    arrears: ArrearsDecision,
) -> None:
    assert dep.plan_year_starts_on is not None
    year_start = dep.plan_year_starts_on
    year_end = year_start + timedelta(days=PLAN_YEAR_DAYS)
    if not year_start <= first_due_on < year_end:
        raise InvalidArrangement(
            f"first_due_on must fall within the plan year, {year_start} to "
            f"{year_end - timedelta(days=1)}"
        )
    recurring = [s for s in dep.schedules if s.kind is ScheduleKind.RECURRING]
    released = [
        i for s in recurring for i in s.instalments if i.status is InstalmentStatus.RELEASED
    ]
    last_released = max((i.due_on for i in released), default=None)
    if last_released is not None and first_due_on <= last_released:
        raise InvalidArrangement(
            f"first_due_on must fall after the last released instalment, due on "
            f"{last_released}: released payments stay as they are"
        )
    released_pence = sum(i.amount_pence for i in released)
    remaining = net_annual_pence - released_pence
    if remaining < 0:
        raise OverReleased(
            f"{released_pence} pence has already been released, more than the new net "
            f"annual of {net_annual_pence}"
        )
    cancelled = [i for i in dep.instalments if i.status is InstalmentStatus.SCHEDULED]
    one_off_pending = any(
        i.status is InstalmentStatus.SCHEDULED
        for s in dep.schedules
        if s.kind is ScheduleKind.ONE_OFF
        for i in s.instalments
    )
    count = instalments_until(frequency.as_money, first_due_on, year_end)
    remaining_by_part = split_by_amount(remaining, [p.annual_pence for p in new_parts])
    new_schedules = [
        Schedule.plan(
            option=part.option,
            frequency=frequency.as_money,
            kind=ScheduleKind.RECURRING,
            first_due_on=first_due_on,
            total_pence=amount,
            count=count,
            created_by=actor,
        )
        for part, amount in zip(new_parts, remaining_by_part, strict=True)
        if amount > 0
    ]
    if one_off_pending:
        new_schedules.append(one_off_schedule(new_parts, first_due_on, dep.one_off_pence, actor))
    arrears_approved = approve_arrears(dep, new_schedules, arrears, actor)
    for instalment in cancelled:
        instalment.status = InstalmentStatus.CANCELLED
    previous_parts = [p.as_event() for p in dep.parts]
    dep.schedules.extend(new_schedules)
    dep.events.append(
        ev.DeploymentSwitched(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            previous_parts=previous_parts,
            parts=[p.as_event() for p in new_parts],
            effective_from=first_due_on,
            cancelled_instalments=len(cancelled),
            cancelled_pence=sum(i.amount_pence for i in cancelled),
            released_pence=released_pence,
            remaining_net_pence=remaining,
        )
    )
    if arrears_approved is not None:
        dep.events.append(arrears_approved)
    dep.events.extend(scheduled_event(dep, s) for s in new_schedules)


def scheduled_event(dep: Deployment, schedule: Schedule) -> ev.PaymentScheduled:
    return ev.PaymentScheduled(
        person_id=dep.person_id,
        council=dep.council,
        schedule_id=schedule.schedule_id,
        deployment_id=dep.deployment_id,
        option=schedule.option,
        frequency=schedule.frequency,
        total_pence=schedule.total_pence,
        instalments=len(schedule.instalments),
        first_due_on=schedule.first_due_on,
    )


def sign_agreement(
    dep: Deployment,
    *,
    signed_on: date,
    actor: str,
    arrears: ArrearsDecision,
    expected_version: int | None = None,
    predecessor: Deployment | None = None,
    earlier: Sequence[Deployment] = (),
) -> None:
    """Record the signed agreement and schedule the money (seed 003 ch.4).

    One schedule per part (weekly 52, four-weekly 13, annual 1 instalment from
    first_due_on), plus a one-off instalment for the plan's one-off cost. If this
    deployment replaces an older one, the older one's instalments from first_due_on on
    are cancelled in the same step; `earlier`, the person's deployments superseded
    before, may still pay up to their own handover, so first_due_on must fall after
    every week they paid or will pay. The agreement is not signed in the future nor
    before the plan was signed off; instalments already past due are arrears
    (rules/arrears.py).
    """
    dep.check_version(expected_version)
    dep.refuse_if_superseded()
    today = arrears.today
    if signed_on > today:
        raise SignedInFuture(
            f"signed_on {signed_on.isoformat()} is after today ({today.isoformat()}): "
            "record the agreement once the person has signed it"
        )
    check_date("signed_on", signed_on, UP_TO_TODAY, today)
    if dep.plan_signed_off_on is not None and signed_on < dep.plan_signed_off_on:
        raise SignedBeforeSignOff(
            f"signed_on {signed_on.isoformat()} is before the plan was signed off "
            f"({dep.plan_signed_off_on.isoformat()}): the agreement funds that plan"
        )
    if dep.agreement is not None:
        raise AgreementAlreadySigned(
            f"the agreement was already signed on {dep.agreement.signed_on}"
        )
    if not dep.parts or dep.frequency is None or dep.first_due_on is None:
        raise ArrangementMissing(
            "set the arrangement (options, frequency, first payment) before the agreement"
        )
    check_date("first_due_on", dep.first_due_on, FIRST_DUE, today)
    if predecessor is not None:
        predecessor.check_handover(dep.first_due_on)
    for other in earlier:
        other.check_no_week_paid_twice(dep.first_due_on)
    start = dep.first_due_on
    year_end = start + timedelta(days=PLAN_YEAR_DAYS)
    count = instalments_until(dep.frequency.as_money, start, year_end)
    schedules = [
        Schedule.plan(
            option=part.option,
            frequency=dep.frequency.as_money,
            kind=ScheduleKind.RECURRING,
            first_due_on=start,
            total_pence=part.net_annual_pence,
            count=count,
            created_by=actor,
        )
        for part in dep.parts
        if part.net_annual_pence > 0
    ]
    if dep.one_off_pence > 0:
        schedules.append(one_off_schedule(dep.parts, start, dep.one_off_pence, actor))
    arrears_approved = approve_arrears(dep, schedules, arrears, actor)
    dep.agreement = Agreement(signed_on=signed_on, recorded_by=actor)
    dep.plan_year_starts_on = start
    dep.status = Status.ACTIVE
    dep.schedules.extend(schedules)
    dep.events.append(
        ev.AgreementSigned(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            signed_on=signed_on,
            recorded_by=actor,
        )
    )
    if arrears_approved is not None:
        dep.events.append(arrears_approved)
    dep.events.extend(scheduled_event(dep, s) for s in schedules)
    dep.touch(actor)
    if predecessor is not None:
        predecessor.hand_over_to(dep, effective_from=start, actor=actor)
