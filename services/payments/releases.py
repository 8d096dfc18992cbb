"""Releasing money and holding it: money leaves only when it is due.

A release runs up to a day no later than today by the service's clock, never a date the
caller chooses, and each payment is dated today, the day the money actually leaves.
Nothing is released before the agreement is signed (seed 003 ch.4) or while payments are
suspended (seed 004 App.1 Council D: "may put a hold on future release of funds").
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING
from uuid import uuid4

from contracts import events as ev
from services.payments.errors import (
    AgreementNotSigned,
    AlreadySuspended,
    NotSuspended,
    PaymentsAreSuspended,
)
from services.payments.plausible_dates import release_date
from services.payments.schedules import Instalment, InstalmentStatus

if TYPE_CHECKING:
    from services.payments.domain import Deployment


def release_due(
    dep: Deployment,
    *,
    as_of: date,
    today: date,
    actor: str,
    strict: bool = False,
    expected_version: int | None = None,
) -> list[Instalment]:
    """Release every scheduled instalment due on or before as_of, each exactly once.

    as_of is never after today by the service's clock, so nothing leaves before it
    is due; an earlier as_of catches up to that date only. Each release is dated
    today (released_on), the day the money actually leaves, whatever as_of was.
    Nothing is released before the agreement is signed (seed 003 ch.4) or while the
    deployment is suspended; strict (one deployment asked for by name) refuses then,
    otherwise (the council-wide run) the deployment is passed over.
    """
    as_of = release_date(as_of, today)
    dep.check_version(expected_version)
    if dep.agreement is None or as_of < dep.agreement.signed_on:
        if strict:
            raise AgreementNotSigned(
                "the agreement has not been signed"
                + (
                    f" by {as_of} (it was signed on {dep.agreement.signed_on})"
                    if dep.agreement is not None
                    else ""
                )
                + ": funding is released only once the agreement is signed and returned"
            )
        return []
    if dep.suspended:
        if strict:
            raise PaymentsAreSuspended(f"payments are suspended: {dep.suspended_reason}")
        return []
    due = [
        i
        for i in dep.ordered_instalments()
        if i.status is InstalmentStatus.SCHEDULED and i.due_on <= as_of
    ]
    for instalment in due:
        instalment.status = InstalmentStatus.RELEASED
        instalment.payment_id = uuid4()
        instalment.released_on = today
        instalment.released_by = actor
        dep.events.append(
            ev.PaymentReleased(
                person_id=dep.person_id,
                council=dep.council,
                payment_id=instalment.payment_id,
                schedule_id=instalment.schedule_id,
                deployment_id=dep.deployment_id,
                instalment_number=instalment.number,
                option=instalment.option,
                amount_pence=instalment.amount_pence,
                due_on=instalment.due_on,
            )
        )
    if due:
        dep.touch(actor)
    return due


def suspend(
    dep: Deployment, *, reason: str, actor: str, expected_version: int | None = None
) -> None:
    """Hold every release until resumed (seed 004 App.1 Council D: 'put a hold')."""
    dep.check_version(expected_version)
    if dep.suspended:
        raise AlreadySuspended(f"payments are already suspended: {dep.suspended_reason}")
    dep.suspended_reason = reason
    dep.events.append(
        ev.PaymentsSuspended(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            reason=reason,
        )
    )
    dep.touch(actor)


def resume(
    dep: Deployment, *, reason: str, actor: str, expected_version: int | None = None
) -> None:
    dep.check_version(expected_version)
    if not dep.suspended:
        raise NotSuspended("payments are not suspended")
    dep.suspended_reason = None
    dep.events.append(
        ev.PaymentsResumed(
            person_id=dep.person_id,
            council=dep.council,
            deployment_id=dep.deployment_id,
            reason=reason,
        )
    )
    dep.touch(actor)
