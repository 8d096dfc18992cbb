"""Who may decide what: agree a budget in principle, sign off a support plan, agree a budget
above its ceiling as an exception.

Allocation, planning, the portal and the what-if all ask these functions, so a council's
approval rules are decided in one place. Each answers with a `Decision` that says why a role
may not decide (a refusal code the services turn into their own errors), who may, and, for a
council whose panel sits separately for larger budgets, which sitting decides.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 §iv (agreement in
principle by a team manager or panel); 004 = SCIE "Keeping personal budgets personal"
(2011), Appendix 1: Council A (limits by weekly amount), Council B (a panel approves all and
sits separately above £300 a week), Council C ("All mental health requests go to a panel").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.money import format_pounds
from contracts.policy import ApprovalLimit, Policy
from contracts.vocabulary import Role


class Act(StrEnum):
    """What is being decided."""

    AGREE_IN_PRINCIPLE = "agree a budget in principle"
    SIGN_OFF = "sign off a support plan"
    CEILING_EXCEPTION = "agree a budget above its ceiling"


class Refusal(StrEnum):
    """Why a role may not decide; the value is the error code the services answer with."""

    PANEL_ONLY = "PanelOnly"
    NOT_AN_APPROVER = "NotAnApprover"
    ABOVE_APPROVAL_LIMIT = "AboveApprovalLimit"
    NOT_AN_EXCEPTION_APPROVER = "NotAnExceptionApprover"
    NEEDS_SEPARATE_PANEL = "NeedsSeparatePanel"


class Sitting(StrEnum):
    """The panel's sittings where a policy has it sit separately for larger amounts
    (seed 004 App.1 Council B: twice a week above £300 a week, once a week for the rest)."""

    ORDINARY = "ordinary"
    SEPARATE = "separate"


@dataclass(frozen=True, slots=True)
class Decision:
    """May `role` do `act` for this amount and client group, and if not, why and who may."""

    act: Act
    role: Role
    weekly_pence: int
    client_group: str | None
    refusal: Refusal | None
    needed: Role | None
    """The first role, in the policy's order, that may decide it; None: nobody may."""
    limit_pence: int | None = None
    """The role's own limit when the refusal is AboveApprovalLimit."""
    ceiling_pence: int | None = None
    ceiling_exception: bool = False
    """Agreeing it is an exception to the client group's ceiling."""
    sitting: Sitting | None = None
    """The panel sitting whose decision counts (None: the policy's panel sits once)."""

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def reason(self) -> str:
        """The decision in words a case worker understands."""
        role = self.role.value.replace("_", " ")
        group = (self.client_group or "unknown client group").replace("_", " ")
        amount = f"{format_pounds(self.weekly_pence)} a week"
        who = f"a {self.needed.value.replace('_', ' ')}" if self.needed else "nobody"
        match self.refusal:
            case None:
                sitting = f" at the panel's {self.sitting.value} sitting" if self.sitting else ""
                return f"a {role} may {self.act.value} of {amount}{sitting}"
            case Refusal.PANEL_ONLY:
                return (
                    f"a {role} may not {self.act.value} for {group}: under this council's "
                    f"policy the panel decides every one, whatever the amount"
                )
            case Refusal.NOT_AN_APPROVER:
                return f"a {role} may not {self.act.value} under this council's policy: ask {who}"
            case Refusal.ABOVE_APPROVAL_LIMIT:
                limit = format_pounds(self.limit_pence or 0)
                return (
                    f"a {role} may {self.act.value} up to {limit} a week; this one is "
                    f"{amount}: ask {who}"
                )
            case Refusal.NOT_AN_EXCEPTION_APPROVER:
                ceiling = format_pounds(self.ceiling_pence or 0)
                return (
                    f"{amount} is above the {ceiling} a week ceiling for {group}: only {who} "
                    f"may agree it as an exception, not a {role}"
                )
            case Refusal.NEEDS_SEPARATE_PANEL:
                return (
                    f"{amount} is decided at the panel's separate sitting, not its ordinary "
                    "one, under this council's policy"
                )


def panel_only(policy: Policy, client_group: str | None) -> bool:
    """Only the panel decides for this client group, whatever the amount.

    An unknown client group (None) counts as panel-only wherever the policy sends any group
    to the panel: the panel may decide for every group, a team manager not for every one.
    """
    groups = policy.approvals.panel_only_client_groups
    if client_group is None:
        return bool(groups)
    return client_group in groups


def ceiling_for(policy: Policy, client_group: str | None) -> int | None:
    """The client group's weekly ceiling; for an unknown group the lowest of them."""
    ceilings = policy.ras.ceilings_weekly_pence
    if client_group is None:
        return min(ceilings.values(), default=None)
    return next((pence for group, pence in ceilings.items() if group == client_group), None)


def panel_sitting(policy: Policy, weekly_pence: int) -> Sitting | None:
    """The sitting that decides this amount, where the policy's panel sits separately above
    a weekly amount (exactly that amount still goes to the ordinary sitting)."""
    above = policy.approvals.panel_sits_separately_above_weekly_pence
    if above is None:
        return None
    return Sitting.SEPARATE if weekly_pence > above else Sitting.ORDINARY


def _limit(limits: list[ApprovalLimit], role: Role) -> ApprovalLimit | None:
    return next((limit for limit in limits if limit.role == role), None)


def _covers(limit: ApprovalLimit, weekly_pence: int) -> bool:
    return limit.max_weekly_pence is None or weekly_pence <= limit.max_weekly_pence


def _limits(policy: Policy, act: Act) -> list[ApprovalLimit]:
    if act is Act.SIGN_OFF:
        return policy.approvals.plan_sign_off
    return policy.approvals.agreement_in_principle


def _refusal(
    policy: Policy, act: Act, role: Role, weekly_pence: int, client_group: str | None
) -> tuple[Refusal | None, int | None]:
    """Why the role may not decide (and its limit, if that is why); (None, None) if it may."""
    if panel_only(policy, client_group) and role is not Role.PANEL:
        return Refusal.PANEL_ONLY, None
    if act is Act.CEILING_EXCEPTION:
        if role not in policy.approvals.ceiling_exception_roles:
            return Refusal.NOT_AN_EXCEPTION_APPROVER, None
        return None, None
    limit = _limit(_limits(policy, act), role)
    if limit is None:
        return Refusal.NOT_AN_APPROVER, None
    if not _covers(limit, weekly_pence):
        return Refusal.ABOVE_APPROVAL_LIMIT, limit.max_weekly_pence
    if act is Act.AGREE_IN_PRINCIPLE:
        ceiling = ceiling_for(policy, client_group)
        above_ceiling = ceiling is not None and weekly_pence > ceiling
        if above_ceiling and role not in policy.approvals.ceiling_exception_roles:
            return Refusal.NOT_AN_EXCEPTION_APPROVER, None
    return None, None


def _candidates(policy: Policy, act: Act) -> list[Role]:
    if act is Act.CEILING_EXCEPTION:
        return list(policy.approvals.ceiling_exception_roles)
    return [limit.role for limit in _limits(policy, act)]


def _decide(
    policy: Policy,
    act: Act,
    role: Role,
    weekly_pence: int,
    client_group: str | None,
    sitting: Sitting | None,
) -> Decision:
    refusal, limit_pence = _refusal(policy, act, role, weekly_pence, client_group)
    needed = next(
        (
            candidate
            for candidate in _candidates(policy, act)
            if _refusal(policy, act, candidate, weekly_pence, client_group)[0] is None
        ),
        None,
    )
    due = panel_sitting(policy, weekly_pence) if role is Role.PANEL else None
    held = due
    if due is not None and sitting is not None:
        held = sitting
        if refusal is None and due is Sitting.SEPARATE and sitting is Sitting.ORDINARY:
            refusal = Refusal.NEEDS_SEPARATE_PANEL
    ceiling = ceiling_for(policy, client_group)
    return Decision(
        act=act,
        role=role,
        weekly_pence=weekly_pence,
        client_group=None if client_group is None else str(client_group),
        refusal=refusal,
        needed=needed,
        limit_pence=limit_pence,
        ceiling_pence=ceiling,
        ceiling_exception=(
            act is not Act.SIGN_OFF and ceiling is not None and weekly_pence > ceiling
        ),
        sitting=held,
    )


def may_agree_in_principle(
    policy: Policy,
    role: Role,
    weekly_pence: int,
    client_group: str | None,
    *,
    sitting: Sitting | None = None,
) -> Decision:
    """May this role agree a budget in principle (seed 003 ch.2 §iv)?

    Within the role's limit (seed 004 Council A), by the panel alone for a panel-only client
    group (Council C), above the client group's ceiling only by an exception role. Where the
    panel sits separately above an amount (Council B), a panel decision said to be taken at
    the ordinary sitting does not count above it; `sitting` is the sitting the caller names.
    """
    return _decide(policy, Act.AGREE_IN_PRINCIPLE, role, weekly_pence, client_group, sitting)


def may_sign_off(
    policy: Policy,
    role: Role,
    weekly_pence: int,
    client_group: str | None,
    *,
    sitting: Sitting | None = None,
) -> Decision:
    """May this role sign off a support plan costing this much a week (seed 004 App.1)?"""
    return _decide(policy, Act.SIGN_OFF, role, weekly_pence, client_group, sitting)


def may_approve_exception(
    policy: Policy, role: Role, weekly_pence: int, client_group: str | None
) -> Decision:
    """May this role agree a budget above its client group's ceiling as an exception?"""
    return _decide(policy, Act.CEILING_EXCEPTION, role, weekly_pence, client_group, None)


def who_may_agree(policy: Policy, weekly_pence: int, client_group: str | None) -> Role | None:
    """The first role, in the policy's order, that may agree this budget in principle
    (an exception role above the ceiling); None when nobody may."""
    return may_agree_in_principle(policy, Role.PANEL, weekly_pence, client_group).needed


def lowest_sign_off_role(
    policy: Policy, weekly_pence: int, client_group: str | None
) -> Role | None:
    """The first role, in the policy's order, that may sign off this plan; None: nobody."""
    return may_sign_off(policy, Role.PANEL, weekly_pence, client_group).needed


def limit_in_words(policy: Policy, act: Act, role: Role) -> str:
    """What a role may decide, for a page that tells staff their limits."""
    limit = _limit(_limits(policy, act), role)
    if limit is None:
        return "not with your role"
    amount = (
        "any amount"
        if limit.max_weekly_pence is None
        else f"up to {format_pounds(limit.max_weekly_pence)} a week"
    )
    groups = policy.approvals.panel_only_client_groups
    if groups and role is not Role.PANEL:
        names = ", ".join(group.value.replace("_", " ") for group in groups)
        amount += f" (not {names}: the panel decides those)"
    return amount


def may_approve_arrears(policy: Policy, role: Role, arrears_total_pence: int) -> bool:
    """True when the role's plan sign-off limit covers the arrears total: no seed sets an
    arrears limit, so the weekly amount a role may sign off is the most it may approve to be
    paid at once for weeks already past (rules/arrears.py says what counts as arrears)."""
    limit = _limit(policy.approvals.plan_sign_off, role)
    return limit is not None and _covers(limit, arrears_total_pence)


def who_may_approve_arrears(policy: Policy, arrears_total_pence: int) -> list[Role]:
    """Every role that may approve these arrears, in the order the policy lists them."""
    return [
        limit.role
        for limit in policy.approvals.plan_sign_off
        if may_approve_arrears(policy, limit.role, arrears_total_pence)
    ]
