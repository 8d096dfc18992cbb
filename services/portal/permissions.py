"""What the signed-in user may do, as `rules/authority.py` decides it, for the pages to show.

The portal decides nothing itself: it asks the same functions allocation and planning ask,
so a button, a hint or a list shows what the service will accept. The service still has
the last word; when it refuses, the page shows its reason.
"""

from __future__ import annotations

from typing import Any

from contracts.policy import Policy
from contracts.vocabulary import Role
from rules import authority
from rules.authority import Sitting
from services.portal.identity import SignedIn
from services.portal.views import Case


def may_agree(policy: Policy | None, user: SignedIn, case: Case) -> bool:
    """May the user agree the person's budget in principle (before naming a sitting)?"""
    if case.budget is None:
        return False
    return can_agree(policy, user, case.budget["current_revision"])


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


def sitting_to_name(
    policy: Policy | None,
    user: SignedIn,
    act: authority.Act,
    weekly_pence: int,
    client_group: str | None = None,
) -> Sitting | None:
    """The panel sitting the user's decision on this amount belongs to, offered first where
    the form asks which sitting took it; None when the user names no sitting (not the panel,
    or a council whose panel sits once). The sitting depends on the amount alone."""
    if policy is None:
        return None
    decide = (
        authority.may_sign_off
        if act is authority.Act.SIGN_OFF
        else authority.may_agree_in_principle
    )
    return decide(policy, user.role, weekly_pence, client_group).sitting


def agreement_sitting(policy: Policy | None, user: SignedIn, case: Case) -> Sitting | None:
    """The sitting to name when the user agrees the person's budget in principle."""
    if case.budget is None:
        return None
    budget = case.budget["current_revision"]
    return sitting_to_name(
        policy,
        user,
        authority.Act.AGREE_IN_PRINCIPLE,
        int(budget["weekly_pence"]),
        budget.get("client_group"),
    )


def sign_off_sitting(policy: Policy | None, user: SignedIn, case: Case) -> Sitting | None:
    """The sitting to name when the user signs off the person's plan."""
    if case.plan is None:
        return None
    group = case.assessment.get("client_group") if case.assessment else None
    weekly = int(case.plan["costing"]["weekly_pence"])
    return sitting_to_name(policy, user, authority.Act.SIGN_OFF, weekly, group)


def separate_sitting_above(policy: Policy | None) -> int | None:
    """The weekly amount above which the council's panel sits separately (seed 004 App.1
    Council B: £300), for the form that asks which sitting decided."""
    return None if policy is None else policy.approvals.panel_sits_separately_above_weekly_pence


def limits(policy: Policy | None, role: Role) -> dict[str, str]:
    """What the role may agree and sign off, in words."""
    if policy is None:
        return {}
    return {
        act.value: authority.limit_in_words(policy, act, role)
        for act in (authority.Act.AGREE_IN_PRINCIPLE, authority.Act.SIGN_OFF)
    }
