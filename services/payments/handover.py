"""Revised plans: a newer PlanSignedOff for the same person opens a new deployment that
replaces the old one's future instalments.

The handover happens when the new deployment's agreement is signed: every unreleased
instalment of the old deployment due on or after the new first payment is cancelled, and
the handover is refused while any old instalment due on or after that date has already
been released, or while a plan superseded before pays (or will still pay) a week from that
date, so the same weeks are never paid twice. Until then the old deployment goes on
paying, so support does not stop while the revised plan is arranged. A deployment that
never had a signed agreement is superseded at once (it has nothing scheduled).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from contracts import events as ev
from services.payments.errors import AgreementAlreadySigned, HandoverBlocked
from services.payments.lifecycle import Status
from services.payments.schedules import Instalment, InstalmentStatus

if TYPE_CHECKING:
    from services.payments.domain import Deployment


def check_handover(dep: Deployment, effective_from: date) -> None:
    released = [
        i
        for i in dep.instalments
        if i.status is InstalmentStatus.RELEASED and i.due_on >= effective_from
    ]
    if released:
        last = max(i.due_on for i in released)
        raise HandoverBlocked(
            f"the previous plan's deployment {dep.deployment_id} has already released "
            f"instalments due up to {last}; the revised plan's first_due_on must fall "
            "after that so the same weeks are not paid twice"
        )


def check_no_week_paid_twice(dep: Deployment, first_due_on: date) -> None:
    """A superseded deployment still pays what it released and what was due before its
    handover; a later plan dated back must start after all of that."""
    paying = [i.due_on for i in dep.instalments if i.status is not InstalmentStatus.CANCELLED]
    if paying and first_due_on <= max(paying):
        raise HandoverBlocked(
            f"an earlier plan's deployment {dep.deployment_id} pays instalments due up "
            f"to {max(paying)}; the revised plan's first_due_on must fall after that so "
            "the same weeks are not paid twice"
        )


def hand_over_to(
    dep: Deployment, successor: Deployment, *, effective_from: date, actor: str
) -> None:
    """Cancel this deployment's instalments from the successor's first payment on."""
    check_handover(dep, effective_from)
    cancelled = [
        i
        for i in dep.instalments
        if i.status is InstalmentStatus.SCHEDULED and i.due_on >= effective_from
    ]
    for instalment in cancelled:
        instalment.status = InstalmentStatus.CANCELLED
    _superseded(dep, successor, effective_from, cancelled, actor)


def supersede_unstarted(dep: Deployment, successor: Deployment, *, actor: str) -> None:
    """A deployment never agreed has nothing scheduled: the revised plan replaces it."""
    if dep.agreement is not None:
        raise AgreementAlreadySigned("a signed deployment is handed over, not dropped")
    _superseded(dep, successor, None, [], actor)


def await_successor(dep: Deployment, successor: Deployment, *, actor: str) -> None:
    """A revised plan is on its way: keep paying until its agreement is signed."""
    dep.successor_id = successor.deployment_id
    successor.predecessor_id = dep.deployment_id
    dep.touch(actor)


def _superseded(
    dep: Deployment,
    successor: Deployment,
    effective_from: date | None,
    cancelled: list[Instalment],
    actor: str,
) -> None:
    dep.status = Status.SUPERSEDED
    dep.superseded_by = successor.deployment_id
    dep.successor_id = successor.deployment_id
    dep.events.append(
        ev.DeploymentSuperseded(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            superseded_by=successor.deployment_id,
            plan_id=successor.plan_id,
            effective_from=effective_from,
            cancelled_instalments=len(cancelled),
            cancelled_pence=sum(i.amount_pence for i in cancelled),
        )
    )
    dep.touch(actor)
