"""Payments' use cases on a unit of work over dicts: money leaves only when due, arrears
need a reason and a role whose limit covers them; no database or app.

Seed 004 = SCIE "Keeping personal budgets personal" (2011): Council A's limits (care
manager £250, team manager £415), applied to an arrears total. The HTTP tests in
test_money_out.py check the same rules through the routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID, uuid4

import pytest

from contracts import events as ev
from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.caller import Caller
from servicekit.clock import SettableClock
from servicekit.testing import POLICIES_DIR
from services.payments.errors import (
    AboveArrearsLimit,
    AgreementNotSigned,
    ArrearsNeedReason,
    DeploymentNotFound,
    ReleaseDateInFuture,
    SignedInFuture,
)
from services.payments.handlers import (
    apply_financial_assessment,
    arrange_deployment,
    open_deployment_for_plan,
    release_due,
    release_for_deployment,
    sign_agreement,
)
from services.payments.lifecycle import Status
from services.payments.schedules import PartRequest, PaymentFrequency
from services.payments.tests.fakes import FakePaymentsUnitOfWork
from services.payments.tests.test_api import SIGNED_ON, START, signed_plan

POLICIES = PolicyBook.from_directory(POLICIES_DIR)
WEEKLY_200 = 1_040_000  # £10,400 a year: £200 a week


@pytest.fixture
def today() -> Iterator[SettableClock]:
    """The service's clock, starting on the day agreements are signed."""
    at = SettableClock(datetime.combine(SIGNED_ON, time(9), UTC))
    with clock.using(at):
        yield at


def today_is(at: SettableClock, day: date) -> None:
    at.set(datetime.combine(day, time(9), UTC))


@pytest.fixture
def uow(today: SettableClock) -> FakePaymentsUnitOfWork:
    return FakePaymentsUnitOfWork()


def actor(role: str, council: str = "lancashire") -> Caller:
    return Caller.of(user_id=f"{role}-1", role=Role(role), council=council)


async def opened(uow: FakePaymentsUnitOfWork, council: str = "lancashire") -> UUID:
    """The deployment a signed-off plan opens, applied as the consumer applies it."""
    async with uow:
        dep = await open_deployment_for_plan(
            plan=signed_plan(council, annual_pence=WEEKLY_200),
            uow=uow,
            policies=POLICIES,
            recorded_by="payments",
        )
        await uow.commit()
    assert dep is not None
    return dep.deployment_id


async def arranged(uow: FakePaymentsUnitOfWork, council: str = "lancashire") -> UUID:
    """Weekly direct payments of £200 from START."""
    deployment_id = await opened(uow, council)
    await arrange_deployment(
        uow=uow,
        policies=POLICIES,
        actor=actor("care_manager", council),
        deployment_id=deployment_id,
        parts=[PartRequest(ev.DeploymentOption.DIRECT_PAYMENT)],
        frequency=PaymentFrequency.WEEKLY,
        first_due_on=START,
        assessed_max_weekly_contribution_pence=0,
        expected_version=None,
    )
    return deployment_id


async def agree(
    uow: FakePaymentsUnitOfWork,
    deployment_id: UUID,
    role: str = "care_manager",
    council: str = "lancashire",
    *,
    signed_on: date | None = None,
    arrears_reason: str | None = None,
) -> None:
    await sign_agreement(
        uow=uow,
        policies=POLICIES,
        actor=actor(role, council),
        deployment_id=deployment_id,
        signed_on=signed_on,
        expected_version=None,
        arrears_reason=arrears_reason,
    )


async def test_a_signed_off_plan_opens_one_deployment_however_often_it_is_delivered(
    uow: FakePaymentsUnitOfWork,
) -> None:
    plan = signed_plan()
    for _ in range(2):
        async with uow:
            await open_deployment_for_plan(
                plan=plan, uow=uow, policies=POLICIES, recorded_by="payments"
            )
            await uow.commit()
    async with uow:
        [dep] = await uow.deployments.live_for_person("lancashire", plan.person_id)
    assert dep.status is Status.AWAITING_ARRANGEMENT


async def test_nothing_is_released_before_it_is_due(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    deployment_id = await arranged(uow)
    await agree(uow, deployment_id)
    today_is(today, START + timedelta(days=14))  # weeks 1, 2 and 3 are due
    released = await release_due(uow=uow, actor=actor("finance"), as_of=None)
    assert [r.instalment.due_on for r in released] == [
        START + timedelta(days=d) for d in (0, 7, 14)
    ]
    assert [e.due_on for e in uow.events(ev.PaymentReleased)] == [
        START + timedelta(days=d) for d in (0, 7, 14)
    ]
    assert len(uow.ledger.feed) == 3
    assert await release_due(uow=uow, actor=actor("finance"), as_of=None) == []


async def test_a_release_dated_after_today_is_refused_and_nothing_is_released(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    deployment_id = await arranged(uow)
    await agree(uow, deployment_id)
    today_is(today, START + timedelta(days=14))
    with pytest.raises(ReleaseDateInFuture):
        await release_due(uow=uow, actor=actor("finance"), as_of=date(2099, 1, 1))
    assert uow.events(ev.PaymentReleased) == [] and uow.ledger.feed == []


async def test_no_money_is_released_before_the_agreement_is_signed(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    deployment_id = await arranged(uow)
    today_is(today, START + timedelta(days=14))
    with pytest.raises(AgreementNotSigned):
        await release_for_deployment(
            uow=uow,
            actor=actor("finance"),
            deployment_id=deployment_id,
            as_of=None,
            expected_version=None,
        )
    assert uow.events(ev.PaymentReleased) == []


async def test_an_agreement_signed_in_the_future_is_refused_and_nothing_is_scheduled(
    uow: FakePaymentsUnitOfWork,
) -> None:
    deployment_id = await arranged(uow)
    with pytest.raises(SignedInFuture):
        await agree(uow, deployment_id, signed_on=date(2030, 1, 1))
    assert uow.events(ev.AgreementSigned) == []
    async with uow:
        dep = await uow.deployments.get(deployment_id)
    assert dep is not None and dep.schedules == [] and dep.agreement is None


async def test_arrears_without_a_reason_are_refused_and_nothing_is_agreed(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    deployment_id = await arranged(uow, "council_a")
    today_is(today, START + timedelta(days=14))  # START and START + 7 already past due
    with pytest.raises(ArrearsNeedReason, match="40000 pence"):
        await agree(uow, deployment_id, "team_manager", "council_a")
    assert uow.events(ev.AgreementSigned) == [] and uow.events(ev.ArrearsApproved) == []


async def test_arrears_above_the_roles_limit_are_refused_and_within_it_are_recorded(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    # Seed 004 Council A: £400 of arrears is above a care manager's £250, within a team
    # manager's £415.
    deployment_id = await arranged(uow, "council_a")
    today_is(today, START + timedelta(days=14))
    reason = "Agreement came back late; the PA has worked since the first payment date"
    with pytest.raises(AboveArrearsLimit, match="team_manager"):
        await agree(uow, deployment_id, "care_manager", "council_a", arrears_reason=reason)
    assert uow.events(ev.AgreementSigned) == []
    await agree(uow, deployment_id, "team_manager", "council_a", arrears_reason=reason)
    [arrears] = uow.events(ev.ArrearsApproved)
    assert (arrears.instalments, arrears.amount_pence, arrears.earliest_due_on) == (
        2,
        40_000,
        START,
    )
    assert (arrears.reason, arrears.approved_by_role) == (reason, Role.TEAM_MANAGER)


async def test_another_councils_staff_cannot_find_the_deployment_to_release_it(
    uow: FakePaymentsUnitOfWork, today: SettableClock
) -> None:
    deployment_id = await arranged(uow)
    await agree(uow, deployment_id)
    today_is(today, START + timedelta(days=14))
    with pytest.raises(DeploymentNotFound):
        await release_for_deployment(
            uow=uow,
            actor=actor("finance", "council_a"),
            deployment_id=deployment_id,
            as_of=None,
            expected_version=None,
        )
    assert await release_due(uow=uow, actor=actor("finance", "council_a"), as_of=None) == []
    assert uow.events(ev.PaymentReleased) == []


# --- the assessed charge (docs/charging.md, "The charge in payments") --------------------------


def assessed_charge(
    council: str, weekly_charge_pence: int | None, outcome: ev.FinancialAssessmentOutcome
) -> ev.FinancialAssessmentCompleted:
    return ev.FinancialAssessmentCompleted(
        person_id="p-1",
        council=council,
        financial_assessment_id=uuid4(),
        assessment_id=uuid4(),
        outcome=outcome,
        assessed_on=SIGNED_ON,
        cost_of_support_weekly_pence=None,
        capital=[],
        capital_counted_pence=0,
        tariff_income_weekly_pence=0,
        income_weekly=[],
        income_counted_weekly_pence=0,
        mig_circumstance=None,
        minimum_income_guarantee_weekly_pence=0,
        housing_costs_weekly_pence=0,
        disability_related_expenditure=[],
        disability_related_expenditure_weekly_pence=0,
        weekly_charge_pence=weekly_charge_pence,
        lines=[],
        figures_to_confirm=[],
        reason="Recorded for the test",
        assessed_by="finance:fin-1",
        policy_version=f"{council}/2010.1",
    )


async def test_council_c_takes_three_quarters_of_the_plan_from_a_full_cost_payer(
    uow: FakePaymentsUnitOfWork,
) -> None:
    deployment_id = await arranged(uow, "council_c")
    await agree(uow, deployment_id, council="council_c")
    full_cost = assessed_charge(
        "council_c", WEEKLY_200 // 52, ev.FinancialAssessmentOutcome.FULL_COST_PAYER
    )
    for _ in range(2):  # the same assessment twice changes nothing the second time
        async with uow:
            await apply_financial_assessment(
                assessment=full_cost, uow=uow, policies=POLICIES, recorded_by="payments"
            )
            await uow.commit()
    async with uow:
        dep = await uow.deployments.get(deployment_id)
    assert dep is not None and dep.contribution_annual_pence == WEEKLY_200 * 3 // 4
    [recalculated] = uow.events(ev.ContributionRecalculated)
    assert recalculated.cancelled_instalments == 52
    issued = uow.events(ev.BudgetStatementIssued)
    assert [s.person_pays_weekly_pence for s in issued] == [0, 15_000]
