"""Planning's use cases on a unit of work over dicts: sign-off authority and the checks,
with no database or app.

Seed 004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
The HTTP tests in test_api.py check the same rules through the routes.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest

from contracts.envelope import Envelope
from contracts.events import BudgetIssued, PlanSignedOff, PlanSubmitted, ReviewScheduled, Risk
from contracts.policy import PolicyBook
from contracts.vocabulary import ClientGroup, Role
from rules.authority import Sitting
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.planning.domain import (
    AboveApprovalLimit,
    BudgetNotKnown,
    ChecksFailed,
    NeedsSeparatePanel,
    PanelOnly,
    PlanNotFound,
    PlanStatus,
)
from services.planning.handlers import (
    create_plan,
    record_assessment_validated,
    record_budget_issued,
    sign_off_plan,
    submit_plan,
)
from services.planning.schemas import PlanIn, plan_content
from services.planning.tests.fakes import FakePlanningUnitOfWork
from services.planning.tests.test_api import a_line, issued, plan_body, validated

POLICIES = PolicyBook.from_directory(POLICIES_DIR)
SIGN_OFF_DAY = date(2010, 5, 3)


@pytest.fixture
def uow() -> FakePlanningUnitOfWork:
    return FakePlanningUnitOfWork()


def actor(role: str, council: str = "lancashire") -> Caller:
    return Caller.of(user_id=f"{role}-1", role=Role(role), council=council)


async def budget_for(
    uow: FakePlanningUnitOfWork,
    person_id: str,
    weekly_pence: int,
    council: str = "lancashire",
    *,
    levels: dict[str, int] | None = None,
    risks: list[Risk] | None = None,
    client_group: ClientGroup = ClientGroup.LEARNING_DISABILITY,
) -> BudgetIssued:
    """An assessment and its budget, applied as planning's consumer applies them."""
    assessment = validated(person_id, council, levels, risks, client_group=client_group)
    budget = issued(assessment, weekly_pence)
    async with uow:
        await record_assessment_validated(envelope=Envelope(event=assessment), uow=uow)
        await record_budget_issued(envelope=Envelope(event=budget), uow=uow)
        await uow.commit()
    return budget


async def submitted(
    uow: FakePlanningUnitOfWork, budget: BudgetIssued, *lines: dict[str, Any], **rest: Any
) -> UUID:
    by = actor("care_manager", budget.council)
    view = await create_plan(
        uow=uow,
        policies=POLICIES,
        actor=by,
        person_id=budget.person_id,
        budget_id=budget.budget_id,
        content=plan_content(PlanIn.model_validate(plan_body(budget, *lines, **rest))),
    )
    plan_id = view.plan.plan_id
    await submit_plan(uow=uow, policies=POLICIES, actor=by, plan_id=plan_id, expected_version=None)
    return plan_id


async def sign_off(
    uow: FakePlanningUnitOfWork,
    plan_id: UUID,
    role: str,
    council: str = "lancashire",
    *,
    expected_version: int | None = None,
    panel_sitting: Sitting | None = None,
) -> None:
    await sign_off_plan(
        uow=uow,
        policies=POLICIES,
        actor=actor(role, council),
        plan_id=plan_id,
        on=SIGN_OFF_DAY,
        expected_version=expected_version,
        panel_sitting=panel_sitting,
    )


async def status_of(uow: FakePlanningUnitOfWork, plan_id: UUID) -> PlanStatus:
    async with uow:
        plan = await uow.plans.get(plan_id)
    assert plan is not None
    return plan.status


async def test_sign_off_within_authority_emits_the_plan_and_schedules_the_first_review(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    plan_id = await submitted(uow, budget)
    await sign_off(uow, plan_id, "team_manager")
    [signed] = uow.events(PlanSignedOff)
    assert (signed.plan_id, signed.weekly_pence) == (plan_id, 20_000)
    # Lancashire's policy: the first review six weeks (42 days) after sign-off.
    assert [(e.kind, e.due_on) for e in uow.events(ReviewScheduled)] == [
        ("first", date(2010, 6, 14))
    ]
    assert uow.event_types == ["PlanSubmitted", "PlanSignedOff", "ReviewScheduled"]


async def test_council_a_team_manager_above_415_a_week_is_refused_and_nothing_is_signed_off(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Seed 004 App.1 Council A: team manager up to £415 a week, the panel above.
    budget = await budget_for(uow, "p-1", 50_000, "council_a")
    plan_id = await submitted(uow, budget, a_line(41_501))
    with pytest.raises(AboveApprovalLimit, match="panel"):
        await sign_off(uow, plan_id, "team_manager", "council_a")
    assert uow.events(PlanSignedOff) == [] and uow.events(ReviewScheduled) == []
    assert await status_of(uow, plan_id) is PlanStatus.SUBMITTED
    await sign_off(uow, plan_id, "panel", "council_a")
    assert [e.signed_off_by_role for e in uow.events(PlanSignedOff)] == [Role.PANEL]


async def test_in_council_c_a_mental_health_plan_is_signed_off_by_the_panel_only(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Seed 004 App.1 Council C: "All mental health requests go to a panel".
    budget = await budget_for(
        uow, "p-1", 50_000, "council_c", client_group=ClientGroup.MENTAL_HEALTH
    )
    plan_id = await submitted(uow, budget, a_line(5_000))
    with pytest.raises(PanelOnly, match="mental health"):
        await sign_off(uow, plan_id, "team_manager", "council_c")
    assert uow.events(PlanSignedOff) == []
    await sign_off(uow, plan_id, "panel", "council_c")
    assert len(uow.events(PlanSignedOff)) == 1


async def test_in_council_b_a_plan_above_300_a_week_is_not_signed_off_at_the_ordinary_sitting(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Seed 004 App.1 Council B: the panel meets twice for budgets above £300 a week.
    budget = await budget_for(uow, "p-1", 50_000, "council_b")
    plan_id = await submitted(uow, budget, a_line(30_001))
    with pytest.raises(NeedsSeparatePanel):
        await sign_off(uow, plan_id, "panel", "council_b", panel_sitting=Sitting.ORDINARY)
    assert uow.events(PlanSignedOff) == []
    await sign_off(uow, plan_id, "panel", "council_b")
    assert len(uow.events(PlanSignedOff)) == 1


async def test_a_plan_failing_its_checks_is_not_submitted_and_every_failure_is_named(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Seed 003 ch.2 §ii: Staying Safe scored high must be addressed by spend.
    seizures = Risk(risk_id="r-1", description="Falls after night seizures", flagged=True)
    budget = await budget_for(uow, "p-1", 10_000, levels={"staying_safe": 5}, risks=[seizures])
    with pytest.raises(ChecksFailed) as refused:
        await submitted(uow, budget, a_line(20_000))
    assert {c.name.value for c in refused.value.failures} == {
        "within_budget",
        "high_domains_addressed",
        "flagged_risks_mitigated",
    }
    assert uow.events(PlanSubmitted) == []


async def test_a_plan_for_a_budget_not_issued_to_the_person_is_refused(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    someone_else = plan_body(budget, person_id="p-2")
    with pytest.raises(BudgetNotKnown):
        await create_plan(
            uow=uow,
            policies=POLICIES,
            actor=actor("care_manager"),
            person_id="p-2",
            budget_id=budget.budget_id,
            content=plan_content(PlanIn.model_validate(someone_else)),
        )
    async with uow:
        assert (
            await uow.plans.list(
                council="lancashire", person_id=None, status=None, after=None, limit=10
            )
            == []
        )


async def test_another_councils_staff_cannot_find_the_plan_to_sign_it_off(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    plan_id = await submitted(uow, budget)
    with pytest.raises(PlanNotFound):
        await sign_off(uow, plan_id, "panel", "council_a")
    assert uow.events(PlanSignedOff) == []


async def test_signing_off_a_plan_changed_since_it_was_read_is_refused_as_stale(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    plan_id = await submitted(uow, budget)
    with pytest.raises(StaleVersion):
        await sign_off(uow, plan_id, "team_manager", expected_version=1)  # read before submit
    assert uow.events(PlanSignedOff) == []


async def test_a_budget_revision_arriving_late_does_not_replace_a_newer_one(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    newer = budget.model_copy(update={"revision": 2, "weekly_pence": 30_000})
    for event in (newer, budget):  # revision 2 delivered before revision 1
        async with uow:
            await record_budget_issued(envelope=Envelope(event=event), uow=uow)
            await uow.commit()
    async with uow:
        known = await uow.budgets.get(budget.budget_id)
    assert known is not None and (known.revision, known.weekly_pence) == (2, 30_000)
