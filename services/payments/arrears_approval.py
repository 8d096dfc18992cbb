"""Approving arrears: instalments already past due when an agreement or a switch
schedules them are paid at once by the next release, so they need a reason and a role
whose limit covers their total. Which instalments are arrears is `rules/arrears.py`; who
may approve them is `rules/authority.py`. The approval is recorded as ArrearsApproved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol
from uuid import UUID

from contracts import events as ev
from contracts.policy import Policy
from contracts.vocabulary import Role
from rules import arrears as arrears_rule
from rules import authority
from services.payments.errors import AboveArrearsLimit, ArrearsNeedReason
from services.payments.schedules import Schedule


@dataclass(frozen=True)
class ArrearsDecision:
    """What deciding on arrears needs: today, who asks, why, and the council's limits."""

    today: date
    approver: Role | None
    reason: str | None
    policy: Policy


class ArrearsOf(Protocol):
    """Whose schedules are being decided on: the deployment the approval is recorded for."""

    person_id: str
    council: str
    deployment_id: UUID


def approve_arrears(
    whose: ArrearsOf, schedules: Sequence[Schedule], decision: ArrearsDecision, actor: str
) -> ev.ArrearsApproved | None:
    """Refuse arrears without a reason or above the approver's limit; else record them."""
    due = [
        arrears_rule.DueAmount(i.due_on, i.amount_pence) for s in schedules for i in s.instalments
    ]
    arrears = arrears_rule.arrears_among(due, decision.today)
    if not arrears:
        return None
    earliest = arrears.earliest_due_on
    assert earliest is not None
    what = (
        f"{len(arrears.instalments)} instalment(s) of {arrears.total_pence} pence were due "
        f"before today ({decision.today.isoformat()}), from {earliest.isoformat()}, and "
        "would be paid at once"
    )
    reason = (decision.reason or "").strip()
    if not reason:
        raise ArrearsNeedReason(f"{what}: give arrears_reason, or a first_due_on from today on")
    if decision.approver is None or not authority.may_approve_arrears(
        decision.policy, decision.approver, arrears.total_pence
    ):
        who = ", ".join(
            r.value for r in authority.who_may_approve_arrears(decision.policy, arrears.total_pence)
        )
        raise AboveArrearsLimit(
            f"{what}; arrears of that size are approved by: {who or 'no role'} "
            f"(policy {decision.policy.policy_version})"
        )
    return ev.ArrearsApproved(
        person_id=whose.person_id,
        council=whose.council,
        deployment_id=whose.deployment_id,
        instalments=len(arrears.instalments),
        amount_pence=arrears.total_pence,
        earliest_due_on=earliest,
        recorded_on=decision.today,
        reason=reason,
        approved_by=actor[:200],
        approved_by_role=decision.approver,
        policy_version=decision.policy.policy_version,
    )
