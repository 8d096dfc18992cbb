"""Allocation's use cases on a unit of work over dicts: the rules, with no database or app.

Seed 004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
The HTTP tests in test_api.py check the same rules through the routes.
"""

from __future__ import annotations

import uuid

import pytest

from contracts.events import BudgetIssued, BudgetStage
from contracts.policy import PolicyBook
from contracts.vocabulary import ClientGroup, Role
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.allocation.domain import (
    AboveAgreementLimit,
    Budget,
    BudgetNotFound,
    BudgetStatus,
    CeilingExceptionReasonRequired,
    PanelOnly,
)
from services.allocation.handlers import (
    agree_budget,
    finalise_budget,
    record_validated_assessment,
    revise_budget,
)
from services.allocation.tests.fakes import FakeAllocationUnitOfWork
from services.allocation.tests.test_api import (
    LOWEST,
    THIRTEEN_POINTS,
    TWENTY_FIVE_POINTS,
    signed_off,
    validated,
)

POLICIES = PolicyBook.from_directory(POLICIES_DIR)


@pytest.fixture
def uow() -> FakeAllocationUnitOfWork:
    return FakeAllocationUnitOfWork()


def caller(role: str, council: str) -> Caller:
    return Caller(record=f"{role}:{role}-1", role=Role(role), council=council)


async def budget_for(
    uow: FakeAllocationUnitOfWork,
    person_id: str,
    council: str,
    levels: dict[str, int],
    group: ClientGroup = ClientGroup.OLDER_PEOPLE,
) -> Budget:
    """The budget a validated assessment opens, as the consumer would apply it."""
    event = validated(person_id, council, domain_levels=levels, group=group)
    async with uow:
        await record_validated_assessment(event=event, uow=uow, policies=POLICIES)
    async with uow:
        budget = await uow.budgets.for_person(council, person_id)
    assert budget is not None
    return budget


async def agree(
    uow: FakeAllocationUnitOfWork, budget: Budget, role: str, reason: str | None = None
) -> Budget:
    return await agree_budget(
        uow=uow,
        policies=POLICIES,
        budget_id=budget.budget_id,
        by=caller(role, budget.council),
        ceiling_exception_reason=reason,
        expected_version=None,
    )


async def stored(uow: FakeAllocationUnitOfWork, budget: Budget) -> Budget:
    async with uow:
        found = await uow.budgets.get(budget.budget_id)
    assert found is not None
    return found


async def test_a_validated_assessment_opens_a_budget_awaiting_agreement_and_issues_nothing(
    uow: FakeAllocationUnitOfWork,
) -> None:
    budget = await budget_for(uow, "A-1", "council_a", TWENTY_FIVE_POINTS)
    assert budget.status is BudgetStatus.AWAITING_AGREEMENT
    assert budget.current.weekly_pence == 25_000  # seed 004 App.1 Council A's scale
    assert uow.event_types == []


async def test_the_same_assessment_delivered_again_changes_nothing(
    uow: FakeAllocationUnitOfWork,
) -> None:
    event = validated("A-1", "council_a", domain_levels=TWENTY_FIVE_POINTS)
    for _ in range(2):
        async with uow:
            await record_validated_assessment(event=event, uow=uow, policies=POLICIES)
    async with uow:
        budget = await uow.budgets.for_person("council_a", "A-1")
    assert budget is not None and len(budget.revisions) == 1 and budget.version == 1


async def test_council_a_care_manager_agrees_250_a_week_and_the_budget_is_issued(
    uow: FakeAllocationUnitOfWork,
) -> None:
    # Seed 004 App.1 Council A: care manager up to £250 a week.
    budget = await budget_for(uow, "A-1", "council_a", TWENTY_FIVE_POINTS)
    await agree(uow, budget, "care_manager")
    [issued] = uow.events(BudgetIssued)
    assert (issued.weekly_pence, issued.stage, issued.agreed_by_role) == (
        25_000,
        BudgetStage.INDICATIVE,
        Role.CARE_MANAGER,
    )


async def test_a_care_manager_above_their_limit_is_refused_and_nothing_is_issued(
    uow: FakeAllocationUnitOfWork,
) -> None:
    budget = await budget_for(uow, "A-1", "council_a", TWENTY_FIVE_POINTS)
    await revise_budget(
        uow=uow,
        policies=POLICIES,
        budget_id=budget.budget_id,
        by=caller("care_manager", "council_a"),
        reason="a penny of transport",
        additional_weekly_pence=1,
        carer_support_weekly_pence=None,
        other_funding=None,
        expected_version=None,
    )
    with pytest.raises(AboveAgreementLimit):
        await agree(uow, budget, "care_manager")
    assert uow.event_types == []
    assert (await stored(uow, budget)).status is BudgetStatus.AWAITING_AGREEMENT
    await agree(uow, budget, "team_manager")
    assert [e.weekly_pence for e in uow.events(BudgetIssued)] == [25_001]


async def test_a_team_manager_above_415_a_week_is_refused_and_only_the_panel_agrees(
    uow: FakeAllocationUnitOfWork,
) -> None:
    # Seed 004 App.1 Council A: team manager up to £415 a week, the panel above.
    budget = await budget_for(uow, "A-1", "council_a", TWENTY_FIVE_POINTS)
    await revise_budget(
        uow=uow,
        policies=POLICIES,
        budget_id=budget.budget_id,
        by=caller("care_manager", "council_a"),
        reason="two carers for moving and handling",
        additional_weekly_pence=16_501,
        carer_support_weekly_pence=None,
        other_funding=None,
        expected_version=None,
    )
    with pytest.raises(AboveAgreementLimit, match="team_manager"):
        await agree(uow, budget, "team_manager")
    assert uow.event_types == []
    await agree(uow, budget, "panel")
    assert [(e.weekly_pence, e.agreed_by_role) for e in uow.events(BudgetIssued)] == [
        (41_501, Role.PANEL)
    ]


async def test_council_c_mental_health_is_agreed_by_the_panel_only_whatever_the_amount(
    uow: FakeAllocationUnitOfWork,
) -> None:
    # Seed 004 App.1 Council C: "All mental health requests go to a panel"; £120 a week is
    # well within the team manager's £300.
    budget = await budget_for(uow, "C-1", "council_c", LOWEST, ClientGroup.MENTAL_HEALTH)
    assert budget.current.weekly_pence == 12_000
    with pytest.raises(PanelOnly):
        await agree(uow, budget, "team_manager")
    assert uow.event_types == []
    await agree(uow, budget, "panel")
    assert [e.agreed_by_role for e in uow.events(BudgetIssued)] == [Role.PANEL]


async def test_above_council_bs_mental_health_ceiling_the_panel_must_give_a_reason(
    uow: FakeAllocationUnitOfWork,
) -> None:
    # Seed 004 App.1 Council B: a £120 a week ceiling for mental health budgets.
    budget = await budget_for(uow, "B-1", "council_b", THIRTEEN_POINTS, ClientGroup.MENTAL_HEALTH)
    assert budget.current.weekly_pence == 13_000
    with pytest.raises(CeilingExceptionReasonRequired):
        await agree(uow, budget, "panel")
    assert uow.event_types == []
    await agree(uow, budget, "panel", reason="crisis cover")
    [issued] = uow.events(BudgetIssued)
    assert issued.ceiling_exception is True and issued.ceiling_weekly_pence == 12_000


async def test_another_councils_staff_cannot_find_the_budget_to_agree_it(
    uow: FakeAllocationUnitOfWork,
) -> None:
    budget = await budget_for(uow, "P-1", "council_a", LOWEST)
    with pytest.raises(BudgetNotFound):
        await agree_budget(
            uow=uow,
            policies=POLICIES,
            budget_id=budget.budget_id,
            by=caller("team_manager", "council_b"),
            ceiling_exception_reason=None,
            expected_version=None,
        )
    assert uow.event_types == []


async def test_agreeing_a_budget_changed_since_it_was_read_is_refused_as_stale(
    uow: FakeAllocationUnitOfWork,
) -> None:
    budget = await budget_for(uow, "A-1", "council_a", LOWEST)
    await agree(uow, budget, "care_manager")
    with pytest.raises(StaleVersion):
        await agree_budget(
            uow=uow,
            policies=POLICIES,
            budget_id=budget.budget_id,
            by=caller("care_manager", "council_a"),
            ceiling_exception_reason=None,
            expected_version=budget.version,  # the version read before the agreement
        )
    assert len(uow.events(BudgetIssued)) == 1


async def test_a_signed_off_plan_issues_the_final_budget_once(
    uow: FakeAllocationUnitOfWork,
) -> None:
    budget = await budget_for(uow, "P-1", "lancashire", LOWEST)
    plan = signed_off(str(budget.budget_id), "P-1", plan_id=uuid.uuid4())
    for _ in range(2):  # the same sign-off delivered twice
        async with uow:
            await finalise_budget(event=plan, uow=uow)
    [final] = uow.events(BudgetIssued)
    assert (final.stage, final.weekly_pence) == (BudgetStage.FINAL, 68_000)
