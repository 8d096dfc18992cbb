"""Which reviews planning books beyond the plan's own: a direct payment's (Care and Support
(Direct Payments) Regulations 2014, reg. 7: within the first 6 months, then at intervals
of no more than 12), and unscheduled ones on a change of circumstances or a surplus
(seed 003 step 7). Handlers on a unit of work over dicts; the routes in test_api.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from contracts.envelope import Envelope
from contracts.events import (
    CardSurplusFlagged,
    ChallengeOutcome,
    ClawbackRaised,
    DeploymentOption,
    DeploymentPart,
    DeploymentSetUp,
    DeploymentSwitched,
    ReviewDue,
    ReviewKind,
    ReviewOutcome,
    ReviewScheduled,
    ReviewTrigger,
    StatementChallengeAnswered,
)
from servicekit import clock
from servicekit.clock import SettableClock
from services.planning.domain import IllegalStateChange, Review
from services.planning.handlers import (
    complete_review,
    record_change_of_circumstances,
    record_deployment_set_up,
    record_deployment_switched,
    record_statement_challenge_answered,
    record_surplus_found,
    run_due_reviews,
)
from services.planning.tests.fakes import FakePlanningUnitOfWork
from services.planning.tests.test_handlers import (
    POLICIES,
    actor,
    budget_for,
    sign_off,
    submitted,
)

ANNUAL = 1_040_000
SET_UP_AT = datetime(2010, 8, 31, 11, 0, tzinfo=UTC)


@pytest.fixture
def uow() -> FakePlanningUnitOfWork:
    return FakePlanningUnitOfWork()


async def signed_off_plan(uow: FakePlanningUnitOfWork, person_id: str = "p-1") -> UUID:
    budget = await budget_for(uow, person_id, 25_000)
    plan_id = await submitted(uow, budget)
    await sign_off(uow, plan_id, "team_manager")
    return plan_id


def parts(*options: DeploymentOption) -> list[DeploymentPart]:
    share = ANNUAL // len(options)
    return [DeploymentPart(option=option, annual_pence=share) for option in options]


def set_up(
    plan_id: UUID, *options: DeploymentOption, person_id: str = "p-1", at: datetime = SET_UP_AT
) -> Envelope:
    return Envelope(
        event=DeploymentSetUp(
            person_id=person_id,
            council="lancashire",
            deployment_id=uuid.uuid5(plan_id, "deployment"),
            plan_id=plan_id,
            parts=parts(*options),
            gross_annual_pence=ANNUAL,
            contribution_annual_pence=0,
            net_annual_pence=ANNUAL,
            audit_tier="light_touch",
            policy_version="lancashire/2009.1",
        ),
        time=at,
    )


def switched(
    plan_id: UUID,
    before: tuple[DeploymentOption, ...],
    after: tuple[DeploymentOption, ...],
    effective_from: date,
    at: datetime,
) -> Envelope:
    return Envelope(
        event=DeploymentSwitched(
            person_id="p-1",
            council="lancashire",
            deployment_id=uuid.uuid5(plan_id, "deployment"),
            previous_parts=parts(*before),
            parts=parts(*after),
            effective_from=effective_from,
            cancelled_instalments=0,
            cancelled_pence=0,
            released_pence=0,
            remaining_net_pence=ANNUAL,
        ),
        time=at,
    )


async def apply(
    uow: FakePlanningUnitOfWork,
    handler: Callable[..., Awaitable[Review | None]],
    envelope: Envelope,
) -> Review | None:
    """As planning's consumer applies an event: one transaction, committed."""
    async with uow:
        review = await handler(envelope=envelope, uow=uow, policies=POLICIES)
        await uow.commit()
    return review


def booked(uow: FakePlanningUnitOfWork, kind: ReviewKind) -> list[ReviewScheduled]:
    return [e for e in uow.events(ReviewScheduled) if e.kind is kind]


# --- direct payments ----------------------------------------------------------------------


async def test_a_direct_payment_is_reviewed_by_the_six_month_mark(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Reg. 7(1)(a): "at least once within the first 6 months of the direct payment being
    # made"; set up on 31 August, its first payment is no earlier, so 28 February is in time.
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.DIRECT_PAYMENT))
    [scheduled] = booked(uow, ReviewKind.DIRECT_PAYMENT)
    assert scheduled.due_on == date(2011, 2, 28)
    assert scheduled.plan_id == plan_id and scheduled.scheduled_by == "system"
    assert scheduled.deployment_id == uuid.uuid5(plan_id, "deployment")
    assert scheduled.policy_version == "lancashire/2009.1"


async def test_then_a_direct_payment_is_reviewed_within_twelve_months_of_the_last_review(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Reg. 7(1)(a): "and at intervals not exceeding 12 months thereafter".
    plan_id = await signed_off_plan(uow)
    first = await apply(
        uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.DIRECT_PAYMENT)
    )
    assert first is not None
    with clock.using(SettableClock(datetime(2011, 2, 20, tzinfo=UTC))):
        _, following = await complete_review(
            uow=uow,
            policies=POLICIES,
            actor=actor("care_manager"),
            review_id=first.review_id,
            outcome=ReviewOutcome.NO_CHANGE,
            completed_on=date(2011, 2, 20),
            notes="Receipts in order; the PA is paid through a payroll service",
            expected_version=None,
        )
    assert (following.kind, following.due_on) == (ReviewKind.DIRECT_PAYMENT, date(2012, 2, 20))
    assert following.deployment_id == first.deployment_id


async def test_a_direct_payments_review_is_announced_due_on_its_day(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.DIRECT_PAYMENT))
    operations = actor("operations")
    early, _ = await run_due_reviews(uow=uow, actor=operations, as_of=date(2011, 2, 27))
    assert [r.kind for r in early] == [ReviewKind.FIRST]  # the plan's, six weeks on
    announced, _ = await run_due_reviews(uow=uow, actor=operations, as_of=date(2011, 2, 28))
    assert [(r.kind, r.due_on) for r in announced] == [
        (ReviewKind.DIRECT_PAYMENT, date(2011, 2, 28))
    ]
    [_, due] = uow.events(ReviewDue)
    assert due.type == "pb.planning.review-due.v2" and due.kind is ReviewKind.DIRECT_PAYMENT


async def test_a_budget_held_another_way_books_no_direct_payment_review(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.COUNCIL_MANAGED))
    assert booked(uow, ReviewKind.DIRECT_PAYMENT) == []


async def test_an_open_direct_payment_review_is_not_booked_twice(
    uow: FakePlanningUnitOfWork,
) -> None:
    # A revised plan's new deployment continues the person's direct payment: the review
    # already booked still counts from the first payment.
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.DIRECT_PAYMENT))
    later = datetime(2010, 10, 1, tzinfo=UTC)
    again = set_up(plan_id, DeploymentOption.DIRECT_PAYMENT, at=later)
    assert await apply(uow, record_deployment_set_up, again) is None
    assert len(booked(uow, ReviewKind.DIRECT_PAYMENT)) == 1


async def test_a_switch_to_a_direct_payment_counts_from_its_effective_date_when_later(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.COUNCIL_MANAGED))
    managed, direct = DeploymentOption.COUNCIL_MANAGED, DeploymentOption.DIRECT_PAYMENT
    recorded = datetime(2010, 9, 10, tzinfo=UTC)
    await apply(
        uow,
        record_deployment_switched,
        switched(plan_id, (managed,), (managed, direct), date(2010, 10, 4), recorded),
    )
    [scheduled] = booked(uow, ReviewKind.DIRECT_PAYMENT)
    assert scheduled.due_on == date(2011, 4, 4)


async def test_a_switch_dated_back_counts_from_the_day_it_was_recorded(
    uow: FakePlanningUnitOfWork,
) -> None:
    # Nothing is paid before it is recorded (money leaves only when due, ADR 19), so the
    # day of recording is no later than the first payment.
    plan_id = await signed_off_plan(uow)
    await apply(uow, record_deployment_set_up, set_up(plan_id, DeploymentOption.COUNCIL_MANAGED))
    managed, direct = DeploymentOption.COUNCIL_MANAGED, DeploymentOption.DIRECT_PAYMENT
    recorded = datetime(2010, 9, 10, tzinfo=UTC)
    await apply(
        uow,
        record_deployment_switched,
        switched(plan_id, (managed,), (direct,), date(2010, 8, 2), recorded),
    )
    [scheduled] = booked(uow, ReviewKind.DIRECT_PAYMENT)
    assert scheduled.due_on == date(2011, 3, 10)


async def test_a_switch_within_direct_payments_books_nothing_new(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    direct, managed = DeploymentOption.DIRECT_PAYMENT, DeploymentOption.COUNCIL_MANAGED
    await apply(uow, record_deployment_set_up, set_up(plan_id, direct))
    await apply(
        uow,
        record_deployment_switched,
        switched(plan_id, (direct,), (direct, managed), date(2010, 10, 4), SET_UP_AT),
    )
    assert len(booked(uow, ReviewKind.DIRECT_PAYMENT)) == 1


# --- unscheduled reviews ------------------------------------------------------------------


async def test_a_carer_stopping_brings_the_review_forward_by_the_policys_days(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    review = await record_change_of_circumstances(
        uow=uow,
        policies=POLICIES,
        actor=actor("care_manager"),
        plan_id=plan_id,
        change=ReviewTrigger.CARER_STOPPED,
        happened_on=date(2010, 9, 6),
        details="Her daughter has moved away",
    )
    within = POLICIES.current("lancashire").reviews.unscheduled
    assert within is not None and within.within_days["carer_stopped"] == 14
    assert (review.kind, review.due_on) == (ReviewKind.UNSCHEDULED, date(2010, 9, 20))
    [scheduled] = booked(uow, ReviewKind.UNSCHEDULED)
    assert scheduled.trigger is ReviewTrigger.CARER_STOPPED
    assert scheduled.happened_on == date(2010, 9, 6)
    assert scheduled.reason == "carer stopped on 2010-09-06: Her daughter has moved away"
    assert scheduled.scheduled_by == "care_manager:care_manager-1"


async def test_a_plan_never_signed_off_has_no_review_to_bring_forward(
    uow: FakePlanningUnitOfWork,
) -> None:
    budget = await budget_for(uow, "p-1", 25_000)
    plan_id = await submitted(uow, budget)
    with pytest.raises(IllegalStateChange):
        await record_change_of_circumstances(
            uow=uow,
            policies=POLICIES,
            actor=actor("care_manager"),
            plan_id=plan_id,
            change=ReviewTrigger.HOSPITAL_ADMISSION,
            happened_on=date(2010, 9, 6),
            details=None,
        )


async def test_a_surplus_payments_found_books_an_unscheduled_review(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    setup = set_up(plan_id, DeploymentOption.DIRECT_PAYMENT)
    await apply(uow, record_deployment_set_up, setup)
    assert isinstance(setup.event, DeploymentSetUp)
    clawback = ClawbackRaised(
        person_id="p-1",
        council="lancashire",
        clawback_id=uuid.uuid4(),
        deployment_id=setup.event.deployment_id,
        amount_pence=3_350,
        unspent_balance_pence=11_350,
        rule="above_contingency",
        policy_version="lancashire/2009.1",
    )
    found_at = datetime(2010, 12, 1, 9, 0, tzinfo=UTC)
    await apply(uow, record_surplus_found, Envelope(event=clawback, time=found_at))
    # A later check finds the surplus again before the review: still one review.
    again = clawback.model_copy(update={"clawback_id": uuid.uuid4()})
    later = datetime(2010, 12, 8, 9, 0, tzinfo=UTC)
    assert await apply(uow, record_surplus_found, Envelope(event=again, time=later)) is None
    [scheduled] = booked(uow, ReviewKind.UNSCHEDULED)
    assert scheduled.trigger is ReviewTrigger.SURPLUS_FOUND
    assert (scheduled.happened_on, scheduled.due_on) == (date(2010, 12, 1), date(2010, 12, 29))
    assert scheduled.deployment_id == setup.event.deployment_id
    assert scheduled.reason is not None and "£113.50" in scheduled.reason


async def test_a_surplus_on_a_deployment_planning_never_saw_books_nothing(
    uow: FakePlanningUnitOfWork,
) -> None:
    clawback = ClawbackRaised(
        person_id="p-1",
        council="lancashire",
        clawback_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        amount_pence=100,
        unspent_balance_pence=100,
        rule="above_contingency",
        policy_version="lancashire/2009.1",
    )
    assert await apply(uow, record_surplus_found, Envelope(event=clawback)) is None
    assert uow.events(ReviewScheduled) == []


async def test_a_surplus_on_a_payment_card_books_an_unscheduled_review(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    setup = set_up(plan_id, DeploymentOption.DIRECT_PAYMENT)
    await apply(uow, record_deployment_set_up, setup)
    assert isinstance(setup.event, DeploymentSetUp)
    flagged = CardSurplusFlagged(
        person_id="p-1",
        council="lancashire",
        surplus_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        deployment_id=setup.event.deployment_id,
        balance_pence=250_000,
        balance_on=date(2010, 11, 30),
        allowance_pence=200_000,
        surplus_pence=50_000,
        rule="above_contingency",
        policy_version="lancashire/2009.1",
    )
    found_at = datetime(2010, 12, 1, 9, 0, tzinfo=UTC)
    await apply(uow, record_surplus_found, Envelope(event=flagged, time=found_at))
    [scheduled] = booked(uow, ReviewKind.UNSCHEDULED)
    assert scheduled.trigger is ReviewTrigger.SURPLUS_FOUND
    assert scheduled.happened_on == date(2010, 11, 30)
    assert scheduled.reason is not None and "payment card" in scheduled.reason
    assert "£500.00" in scheduled.reason


# --- a challenge to the personal budget statement ---------------------------------------------


def answered(outcome: ChallengeOutcome, person_id: str = "p-1") -> Envelope:
    return Envelope(
        event=StatementChallengeAnswered(
            person_id=person_id,
            council="lancashire",
            challenge_id=uuid.uuid4(),
            statement_id=uuid.uuid4(),
            outcome=outcome,
            response="The evening visits were left out of the plan's cost",
            review_requested=outcome is ChallengeOutcome.UPHELD,
            answered_on=date(2010, 12, 1),
            answered_by="tm-1",
            answered_by_role="team_manager",
        ),
        time=datetime(2010, 12, 1, 9, 0, tzinfo=UTC),
    )


async def test_an_upheld_challenge_to_the_statement_books_a_review_of_the_signed_off_plan(
    uow: FakePlanningUnitOfWork,
) -> None:
    plan_id = await signed_off_plan(uow)
    upheld = answered(ChallengeOutcome.UPHELD)
    review = await apply(uow, record_statement_challenge_answered, upheld)
    assert review is not None and review.plan_id == plan_id
    [scheduled] = booked(uow, ReviewKind.UNSCHEDULED)
    assert scheduled.trigger is ReviewTrigger.OTHER
    assert scheduled.happened_on == date(2010, 12, 1)
    assert scheduled.due_on > scheduled.happened_on
    assert scheduled.scheduled_by == "team_manager:tm-1"
    assert scheduled.reason is not None and "challenge" in scheduled.reason
    assert "evening visits" in scheduled.reason


async def test_a_challenge_not_upheld_or_without_a_signed_off_plan_books_nothing(
    uow: FakePlanningUnitOfWork,
) -> None:
    await signed_off_plan(uow)
    refused = answered(ChallengeOutcome.NOT_UPHELD)
    assert await apply(uow, record_statement_challenge_answered, refused) is None
    elsewhere = answered(ChallengeOutcome.UPHELD, person_id="p-2")
    assert await apply(uow, record_statement_challenge_answered, elsewhere) is None
    assert booked(uow, ReviewKind.UNSCHEDULED) == []
