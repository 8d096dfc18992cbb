"""What the signed-in user may do, as `rules/authority.py` decides it, for the pages to show.

The portal decides nothing itself: it asks the same functions allocation and planning ask,
so a button, a hint or a list shows what the service will accept. The service still has
the last word; when it refuses, the page shows its reason.
"""

from __future__ import annotations

from typing import Any

from contracts.policy import Policy
from contracts.vocabulary import PRACTITIONER_ROLES, Role
from rules import authority
from rules.authority import Sitting
from services.portal.identity import SignedIn
from services.portal.views import Case


def may_agree(policy: Policy | None, user: SignedIn, case: Case) -> bool:
    """May the user agree the person's budget in principle (before naming a sitting)?"""
    budget = case.budget
    if policy is None or budget is None or user.role not in PRACTITIONER_ROLES:
        return False
    return can_agree(policy, user, budget["current_revision"])


def can_agree(policy: Policy | None, user: SignedIn, budget: dict[str, Any]) -> bool:
    """`budget`: a budget summary or revision, each with its weekly amount and client group."""
    return (
        policy is not None
        and authority.may_agree_in_principle(
            policy, user.role, int(budget["weekly_pence"]), budget.get("client_group")
        ).allowed
    )


def who_agrees(policy: Policy | None, budget: dict[str, Any]) -> dict[str, Any]:
    """A waiting budget with who may agree it and, where the panel sits separately, when."""
    if policy is None:
        return budget
    weekly = int(budget["weekly_pence"])
    return {
        **budget,
        "role_needed": authority.who_may_agree(policy, weekly, budget.get("client_group")),
        "panel_sitting": authority.panel_sitting(policy, weekly),
    }


def sign_off_role(policy: Policy | None, case: Case) -> Role | None:
    """The first role that may sign off the person's plan at its weekly cost."""
    if policy is None or case.plan is None:
        return None
    group = case.assessment.get("client_group") if case.assessment else None
    return authority.lowest_sign_off_role(policy, int(case.plan["costing"]["weekly_pence"]), group)


def separate_sitting_above(policy: Policy | None, user: SignedIn) -> int | None:
    """For a panel member of a council whose panel sits separately above a weekly amount
    (seed 004 App.1 Council B: £300), that amount; None when there is no sitting to name."""
    if policy is None or user.role is not Role.PANEL:
        return None
    return policy.approvals.panel_sits_separately_above_weekly_pence


def sitting_for(policy: Policy | None, user: SignedIn, weekly_pence: int) -> Sitting | None:
    """The sitting a panel member's decision on this amount belongs to, offered first where
    the form asks which sitting took it; None when there is no sitting to name."""
    if policy is None or separate_sitting_above(policy, user) is None:
        return None
    return authority.panel_sitting(policy, weekly_pence)


def limits(policy: Policy | None, role: Role) -> dict[str, str]:
    """What the role may agree and sign off, in words."""
    if policy is None:
        return {}
    return {
        act.value: authority.limit_in_words(policy, act, role)
        for act in (authority.Act.AGREE_IN_PRINCIPLE, authority.Act.SIGN_OFF)
    }
