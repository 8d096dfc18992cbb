"""One rulebook decides authority: who may agree a budget in principle, sign off a plan or
agree a ceiling exception (rules/authority.py), and every service that decides it agrees.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 §iv; 004 = SCIE
"Keeping personal budgets personal" (2011), Appendix 1, Councils A, B and C.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import events as ev
from contracts.events import DeploymentOption, ProviderKind
from contracts.money import Frequency
from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import ClientGroup, Role
from rules.authority import (
    Refusal,
    Sitting,
    lowest_sign_off_role,
    may_agree_in_principle,
    may_approve_arrears,
    may_approve_exception,
    may_sign_off,
    panel_sitting,
    who_may_agree,
)
from servicekit.caller import Caller
from servicekit.errors import Forbidden
from servicekit.testing import POLICIES_DIR
from services.allocation import domain as allocation
from services.payments import domain as payments
from services.planning import domain as planning
from services.portal import permissions as portal
from services.portal.identity import SignedIn
from services.portal.views import Case
from whatif import compare

BOOK = PolicyBook.from_directory(POLICIES_DIR)
POLICIES = [policy for council in BOOK.councils for policy in BOOK.versions(council)]
COUNCIL_A = BOOK.current("council_a")
COUNCIL_B = BOOK.current("council_b")
COUNCIL_C = BOOK.current("council_c")
AT = datetime(2010, 6, 1, tzinfo=UTC)
BIG = 10_000_000  # £100,000 a week


# --- the rules, with the seeds' own figures ---------------------------------------------------


def test_council_a_limits_follow_the_seed_to_the_penny() -> None:
    # Seed 004 App.1 Council A: care manager up to £250 a week, team manager up to £415.
    assert may_sign_off(COUNCIL_A, Role.CARE_MANAGER, 25_000, "older_people").allowed
    refused = may_sign_off(COUNCIL_A, Role.CARE_MANAGER, 25_001, "older_people")
    assert refused.refusal is Refusal.ABOVE_APPROVAL_LIMIT
    assert refused.needed is Role.TEAM_MANAGER and refused.limit_pence == 25_000
    assert lowest_sign_off_role(COUNCIL_A, 41_501, "older_people") is Role.PANEL


def test_council_c_sends_every_mental_health_budget_to_the_panel_whatever_the_amount() -> None:
    # Seed 004 App.1 Council C: "All mental health requests go to a panel".
    refused = may_agree_in_principle(COUNCIL_C, Role.TEAM_MANAGER, 12_000, "mental_health")
    assert refused.refusal is Refusal.PANEL_ONLY and refused.needed is Role.PANEL
    assert "panel" in refused.reason
    assert may_sign_off(COUNCIL_C, Role.TEAM_MANAGER, 1, "mental_health").refusal is (
        Refusal.PANEL_ONLY
    )
    assert may_agree_in_principle(COUNCIL_C, Role.PANEL, 12_000, "mental_health").allowed
    assert may_agree_in_principle(COUNCIL_C, Role.TEAM_MANAGER, 12_000, "older_people").allowed
    assert who_may_agree(COUNCIL_C, 12_000, "mental_health") is Role.PANEL
    assert who_may_agree(COUNCIL_C, 12_000, "older_people") is Role.TEAM_MANAGER


def test_an_unknown_client_group_goes_to_the_panel_where_some_groups_are_panel_only() -> None:
    assert may_sign_off(COUNCIL_C, Role.TEAM_MANAGER, 1, None).refusal is Refusal.PANEL_ONLY
    assert may_sign_off(COUNCIL_A, Role.CARE_MANAGER, 1, None).allowed


def test_above_the_ceiling_only_an_exception_role_agrees() -> None:
    # Seed 004 App.1 Council B: a £120 a week mental health ceiling; the panel agrees all.
    decision = may_agree_in_principle(COUNCIL_B, Role.PANEL, 12_001, "mental_health")
    assert decision.allowed and decision.ceiling_exception
    assert not may_agree_in_principle(
        COUNCIL_B, Role.PANEL, 12_000, "mental_health"
    ).ceiling_exception
    exception = may_approve_exception(COUNCIL_C, Role.TEAM_MANAGER, 50_000, "older_people")
    assert exception.refusal is Refusal.NOT_AN_EXCEPTION_APPROVER
    assert exception.needed is Role.PANEL


def test_council_b_panel_decides_above_300_a_week_at_its_separate_sitting() -> None:
    # Seed 004 App.1 Council B: "twice for budgets greater than £300 per week and once for
    # budgets less than this"; exactly £300 goes to the ordinary sitting (policy assumption).
    assert panel_sitting(COUNCIL_B, 30_000) is Sitting.ORDINARY
    assert panel_sitting(COUNCIL_B, 30_001) is Sitting.SEPARATE
    assert panel_sitting(COUNCIL_A, 30_001) is None
    derived = may_sign_off(COUNCIL_B, Role.PANEL, 30_001, "older_people")
    assert derived.allowed and derived.sitting is Sitting.SEPARATE
    at_ordinary = may_sign_off(
        COUNCIL_B, Role.PANEL, 30_001, "older_people", sitting=Sitting.ORDINARY
    )
    assert at_ordinary.refusal is Refusal.NEEDS_SEPARATE_PANEL
    assert may_agree_in_principle(
        COUNCIL_B, Role.PANEL, 30_000, "older_people", sitting=Sitting.ORDINARY
    ).allowed


# --- every caller decides as the rules do -----------------------------------------------------


def _amounts(policy: Policy) -> list[int]:
    """0, a big amount, and one penny either side of every limit, ceiling and sitting."""
    approvals = policy.approvals
    edges = [
        limit.max_weekly_pence
        for limit in [*approvals.plan_sign_off, *approvals.agreement_in_principle]
    ]
    edges += list(policy.ras.ceilings_weekly_pence.values())
    edges.append(approvals.panel_sits_separately_above_weekly_pence)
    amounts = {0, 1, BIG}
    for edge in edges:
        if edge is not None:
            amounts.update({edge - 1, edge, edge + 1})
    return sorted(amounts)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Policy, Role, ClientGroup | None, int]:
    policy = draw(st.sampled_from(POLICIES))
    role = draw(st.sampled_from(list(Role)))
    group = draw(st.sampled_from([*policy.client_groups, None]))
    weekly = draw(st.sampled_from(_amounts(policy)))
    return policy, role, group, weekly


def _inputs(policy: Policy, group: ClientGroup) -> allocation.BudgetInputs:
    return allocation.BudgetInputs(
        client_group=group,
        domain_levels={d.key: d.levels[0].level for d in policy.questionnaire.domains},
        significant_informal_support=False,
        needs_24_7=False,
    )


def _allocation_allows(
    policy: Policy, role: Role, group: ClientGroup, weekly: int, sitting: Sitting | None
) -> bool:
    inputs = _inputs(policy, group)
    budget = allocation.Budget.open(
        budget_id=uuid.uuid4(),
        council=policy.council,
        person_id="p-1",
        assessment_id=uuid.uuid4(),
        inputs=inputs,
        calculation=allocation.calculate_budget(inputs, policy),
        by="assessment",
        at=AT,
    )
    budget.current.weekly_pence = weekly
    above = budget.current.above_ceiling
    try:
        budget.agree(
            by=Caller(f"{role.value}:u-1", role, policy.council),
            policy=policy,
            at=AT,
            ceiling_exception_reason="needs agreed at panel" if above else None,
            panel_sitting=sitting,
        )
    except Forbidden:
        return False
    return bool(budget.events)


def _planning_allows(
    policy: Policy, role: Role, group: ClientGroup | None, weekly: int, sitting: Sitting | None
) -> bool:
    known = planning.KnownBudget(
        budget_id=uuid.uuid4(),
        assessment_id=uuid.uuid4(),
        person_id="p-1",
        council=policy.council,
        stage="indicative",
        revision=1,
        weekly_pence=weekly,
        annual_pence=weekly * 52,
        policy_version=policy.policy_version,
    )
    line = planning.PlanLine.costed(
        description="Personal assistant",
        provider_kind=ProviderKind.PERSONAL_ASSISTANT,
        frequency=Frequency.WEEKLY,
        amount_pence=weekly,
        domains=(),
    )
    plan = planning.Plan.draft(
        person_id="p-1",
        council=policy.council,
        budget=known,
        content=planning.PlanContent(outcomes=("Live in my own flat",), lines=(line,)),
        fee_basis_points=0,
        by="care_manager:cm-1",
        at=AT,
    )
    plan.submit(checks=[], by="care_manager:cm-1", at=AT)
    assert plan.costing.weekly_pence == weekly
    try:
        plan.sign_off(
            approver=Caller(f"{role.value}:u-1", role, policy.council),
            policy=policy,
            checks=[planning.Check(name, True, "ok") for name in planning.CheckName],
            budget=known,
            on=date(2010, 6, 1),
            first_review_after_days=42,
            policy_version=policy.policy_version,
            at=AT,
            client_group=group,
            panel_sitting=sitting,
        )
    except Forbidden:
        return False
    return plan.status is planning.PlanStatus.SIGNED_OFF


def _portal_may_agree(policy: Policy, role: Role, group: ClientGroup | None, weekly: int) -> bool:
    user = SignedIn(token="t", user_id="u-1", role=role, council=policy.council, person_id=None)
    revision: dict[str, Any] = {"weekly_pence": weekly, "client_group": group}
    return portal.may_agree(
        policy, user, Case(person_id="p-1", budget={"current_revision": revision})
    )


SITTINGS = st.sampled_from([None, Sitting.ORDINARY, Sitting.SEPARATE])


def _payments_allows_arrears(policy: Policy, role: Role, arrears_pence: int) -> bool:
    """An agreement signed a week after the first payment fell due: the annual instalment,
    arrears_pence, is already owed, with a reason given and `role` approving."""
    signed_on = date(2010, 4, 2)
    plan_signed_off_on = signed_on - timedelta(days=10)
    plan = ev.PlanSignedOff(
        person_id="p-1",
        council=policy.council,
        plan_id=uuid.uuid4(),
        budget_id=uuid.uuid4(),
        assessment_id=uuid.uuid4(),
        plan_version=1,
        weekly_pence=arrears_pence // 52,
        annual_pence=arrears_pence,
        one_off_pence=0,
        contingency_weekly_pence=0,
        lines=[],
        request_for_more=False,
        signed_off_by="panel:p-1",
        signed_off_by_role=Role.PANEL,
        first_review_on=plan_signed_off_on + timedelta(days=policy.reviews.first_after_days),
        policy_version=policy.policy_version,
    )
    deployment = payments.Deployment.for_signed_plan(plan, policy=policy, recorded_by="event:t")
    deployment.arrange(
        parts=[payments.PartRequest(DeploymentOption.DIRECT_PAYMENT)],
        frequency=payments.PaymentFrequency.ANNUAL,
        first_due_on=signed_on - timedelta(days=7),
        assessed_max_weekly_contribution_pence=0,
        policy=policy,
        actor="care_manager:cm-1",
        today=signed_on,
    )
    decision = payments.ArrearsDecision(
        today=signed_on, approver=role, reason="the agreement came back late", policy=policy
    )
    try:
        deployment.sign_agreement(signed_on=signed_on, actor="care_manager:cm-1", arrears=decision)
    except Forbidden:
        return False
    return any(isinstance(event, ev.ArrearsApproved) for event in deployment.events)


@settings(max_examples=400, deadline=None)
@given(cases(), SITTINGS)
def test_every_caller_decides_agreement_in_principle_as_the_rules_do(
    case: tuple[Policy, Role, ClientGroup | None, int], sitting: Sitting | None
) -> None:
    policy, role, group, weekly = case
    named = may_agree_in_principle(policy, role, weekly, group, sitting=sitting)
    if group is not None:  # allocation always knows the client group (it is in the inputs)
        allowed = _allocation_allows(policy, role, group, weekly, sitting)
        assert allowed == named.allowed, named.reason
    # The portal and the what-if ask before anyone names a sitting.
    rule = may_agree_in_principle(policy, role, weekly, group)
    assert _portal_may_agree(policy, role, group, weekly) == rule.allowed, rule.reason
    if group is not None:  # the what-if knows it too: it works budgets out from assessments
        calculated = allocation.calculate_budget(_inputs(policy, group), policy)
        whatif_budget = calculated.model_copy(update={"weekly_pence": weekly})
        assert compare.approver(whatif_budget, policy) == who_may_agree(policy, weekly, group)


@settings(max_examples=400, deadline=None)
@given(cases(), SITTINGS)
def test_every_caller_decides_sign_off_as_the_rules_do(
    case: tuple[Policy, Role, ClientGroup | None, int], sitting: Sitting | None
) -> None:
    policy, role, group, weekly = case
    named = may_sign_off(policy, role, weekly, group, sitting=sitting)
    assert _planning_allows(policy, role, group, weekly, sitting) == named.allowed, named.reason
    assert portal.sign_off_role(
        policy,
        Case(
            person_id="p-1",
            plan={"costing": {"weekly_pence": weekly}},
            assessment={"client_group": group},
        ),
    ) == lowest_sign_off_role(policy, weekly, group)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_payments_decides_arrears_as_the_rules_do(
    case: tuple[Policy, Role, ClientGroup | None, int],
) -> None:
    policy, role, _, amount = case
    arrears = max(amount, 1)  # a schedule owes at least a penny
    assert _payments_allows_arrears(policy, role, arrears) == may_approve_arrears(
        policy, role, arrears
    )


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.policy_version)
def test_every_policy_has_someone_who_may_agree_and_sign_off_every_group(policy: Policy) -> None:
    for group in policy.client_groups:
        assert who_may_agree(policy, BIG, group) is not None
        assert lowest_sign_off_role(policy, BIG, group) is not None
