"""Planning use cases: each opens the unit of work, loads, lets the domain decide, commits.

Events the domain records are written to the outbox in the same transaction as the state
(servicekit.uow). Who may see a record is decided here from the caller: another council's
record, or for a person someone else's, is "not found", so ids leak nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from contracts.envelope import Envelope
from contracts.events import (
    AssessmentValidated,
    BudgetIssued,
    CardSurplusFlagged,
    ClawbackRaised,
    DeploymentOption,
    DeploymentPart,
    DeploymentSetUp,
    DeploymentSwitched,
    Event,
    ReviewKind,
    ReviewOutcome,
    ReviewTrigger,
    StatementChallengeAnswered,
)
from contracts.money import format_pounds
from contracts.policy import Policy, PolicyBook, Questionnaire
from contracts.vocabulary import Role
from rules import authority
from rules.authority import Sitting, may_sign_off
from servicekit import clock
from servicekit.caller import Caller, asks_for_another_person, may_see, person_listed
from servicekit.policies import policy_for
from services.planning.db import PlanningUnitOfWork
from services.planning.domain import (
    SYSTEM_ACTOR,
    BudgetNotKnown,
    Check,
    Costing,
    IllegalStateChange,
    InvalidPlan,
    KnownAssessment,
    KnownBudget,
    KnownDeployment,
    KnownRisk,
    Plan,
    PlanContent,
    PlanNotFound,
    PlanStatus,
    Review,
    ReviewNotFound,
    ReviewStatus,
    run_checks,
)

RUN_DUE_BATCH = 500


def _questionnaire(
    policies: PolicyBook, council: str, assessment: KnownAssessment | None
) -> Questionnaire:
    """The questionnaire the assessment was scored with, else the council's current one."""
    if assessment is not None:
        try:
            return policies.version(assessment.policy_version).questionnaire
        except KeyError:
            pass
    return policy_for(policies, council).questionnaire


async def _load_plan(uow: PlanningUnitOfWork, plan_id: UUID, actor: Caller) -> Plan:
    plan = await uow.plans.get(plan_id)
    if plan is None or not may_see(actor, plan.council, plan.person_id):
        raise PlanNotFound(plan_id)
    return plan


async def _load_review(uow: PlanningUnitOfWork, review_id: UUID, actor: Caller) -> Review:
    review = await uow.reviews.get(review_id)
    if review is None or not may_see(actor, review.council, review.person_id):
        raise ReviewNotFound(review_id)
    return review


async def _budget_for(
    uow: PlanningUnitOfWork, budget_id: UUID, person_id: str, council: str
) -> KnownBudget:
    budget = await uow.budgets.get(budget_id)
    if budget is None or budget.person_id != person_id or budget.council != council:
        raise BudgetNotKnown(budget_id, person_id)
    return budget


@dataclass(frozen=True)
class PlanView:
    """A plan as the API shows it: with its costing, its checks and its budget."""

    plan: Plan
    costing: Costing
    checks: list[Check]
    budget: KnownBudget | None


async def _checks(
    uow: PlanningUnitOfWork, policies: PolicyBook, plan: Plan
) -> tuple[list[Check], KnownBudget | None]:
    budget = await uow.budgets.get(plan.budget_id)
    assessment = None if budget is None else await uow.assessments.get(budget.assessment_id)
    return _checks_against(policies, plan, budget, assessment), budget


def _checks_against(
    policies: PolicyBook,
    plan: Plan,
    budget: KnownBudget | None,
    assessment: KnownAssessment | None,
) -> list[Check]:
    return run_checks(
        person_id=plan.person_id,
        content=plan.content,
        costing=plan.costing,
        budget=budget,
        assessment=assessment,
        questionnaire=_questionnaire(policies, plan.council, assessment),
    )


async def _client_group(uow: PlanningUnitOfWork, budget: KnownBudget | None) -> str | None:
    assessment = None if budget is None else await uow.assessments.get(budget.assessment_id)
    return None if assessment is None else assessment.client_group


async def _view(uow: PlanningUnitOfWork, policies: PolicyBook, plan: Plan) -> PlanView:
    checks, budget = await _checks(uow, policies, plan)
    return PlanView(plan=plan, costing=plan.costing, checks=checks, budget=budget)


async def _validate_content(
    uow: PlanningUnitOfWork, policies: PolicyBook, budget: KnownBudget, content: PlanContent
) -> Policy:
    assessment = await uow.assessments.get(budget.assessment_id)
    return _validated_against(policies, budget, assessment, content)


def _validated_against(
    policies: PolicyBook,
    budget: KnownBudget,
    assessment: KnownAssessment | None,
    content: PlanContent,
) -> Policy:
    policy = policy_for(policies, budget.council)
    known_risks = None if assessment is None else [r.risk_id for r in assessment.risks]
    content.validate_against(_questionnaire(policies, budget.council, assessment), known_risks)
    return policy


# --- events from other services -----------------------------------------------------------


def _known_assessment(envelope: Envelope) -> KnownAssessment:
    event = envelope.event
    assert isinstance(event, AssessmentValidated)
    return KnownAssessment(
        assessment_id=event.assessment_id,
        person_id=event.person_id,
        council=event.council,
        client_group=event.client_group.value,
        domain_levels=dict(event.domain_levels),
        risks=tuple(KnownRisk(r.risk_id, r.description, r.flagged) for r in event.risks),
        policy_version=event.policy_version,
    )


def _known_budget(envelope: Envelope) -> KnownBudget:
    event = envelope.event
    assert isinstance(event, BudgetIssued)
    return KnownBudget(
        budget_id=event.budget_id,
        assessment_id=event.assessment_id,
        person_id=event.person_id,
        council=event.council,
        stage=event.stage.value,
        revision=event.revision,
        weekly_pence=event.weekly_pence,
        annual_pence=event.annual_pence,
        policy_version=event.policy_version,
    )


async def record_assessment_validated(*, envelope: Envelope, uow: PlanningUnitOfWork) -> None:
    """Keep an assessment's validated levels and risks (the consumer commits)."""
    await uow.assessments.put(_known_assessment(envelope), at=clock.now())


async def record_assessments_validated(
    *, envelopes: Sequence[Envelope], uow: PlanningUnitOfWork
) -> None:
    """`record_assessment_validated` for many events in log order, with one read and one
    write a kind: a revalidation later in the batch replaces the earlier one, as it would
    one after another."""
    await uow.assessments.put_all([_known_assessment(e) for e in envelopes], at=clock.now())


async def record_budget_issued(*, envelope: Envelope, uow: PlanningUnitOfWork) -> None:
    """Keep the latest revision of a budget (the consumer commits)."""
    await uow.budgets.put_if_newer(_known_budget(envelope), at=clock.now())


async def record_budgets_issued(*, envelopes: Sequence[Envelope], uow: PlanningUnitOfWork) -> None:
    """`record_budget_issued` for many events in log order, with one read and one write a
    kind: each budget keeps its latest revision, whatever order they came in."""
    await uow.budgets.put_all_if_newer([_known_budget(e) for e in envelopes], at=clock.now())


# --- events from payments: direct payments and surpluses ----------------------------------


def _holds_a_direct_payment(parts: list[DeploymentPart]) -> bool:
    return any(part.option is DeploymentOption.DIRECT_PAYMENT for part in parts)


async def _schedule_direct_payment_review(
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    deployment: KnownDeployment,
    starts_on: date,
) -> Review | None:
    """Book the first review of a direct payment, unless one is already open for the
    person (a revised plan's new deployment, or a switch back, continues the cycle)."""
    open_reviews = await uow.reviews.open_of_kind(
        council=deployment.council, person_id=deployment.person_id, kind=ReviewKind.DIRECT_PAYMENT
    )
    if open_reviews:
        return None
    plan = await uow.plans.get(deployment.plan_id)
    if plan is None or plan.council != deployment.council:
        return None  # not a plan planning wrote: nothing of ours to review
    policy = policy_for(policies, deployment.council, on=starts_on)
    review = Review.of_direct_payment(
        plan=plan,
        deployment_id=deployment.deployment_id,
        starts_on=starts_on,
        reviews=policy.reviews,
        policy_version=policy.policy_version,
        at=clock.now(),
    )
    await uow.reviews.add(review)
    return review


async def record_deployment_set_up(
    *, envelope: Envelope, uow: PlanningUnitOfWork, policies: PolicyBook
) -> Review | None:
    """Keep the deployment; one holding a direct payment books its first review within
    the policy's months of the day it was set up (no payment is made before that day)."""
    event = envelope.event
    assert isinstance(event, DeploymentSetUp)
    deployment = KnownDeployment(
        deployment_id=event.deployment_id,
        plan_id=event.plan_id,
        person_id=event.person_id,
        council=event.council,
        direct_payment=_holds_a_direct_payment(event.parts),
    )
    await uow.deployments.put(deployment, at=clock.now())
    if not deployment.direct_payment:
        return None
    return await _schedule_direct_payment_review(
        uow, policies, deployment, starts_on=envelope.time.date()
    )


def _known_deployment(envelope: Envelope) -> KnownDeployment:
    event = envelope.event
    assert isinstance(event, DeploymentSetUp)
    return KnownDeployment(
        deployment_id=event.deployment_id,
        plan_id=event.plan_id,
        person_id=event.person_id,
        council=event.council,
        direct_payment=_holds_a_direct_payment(event.parts),
    )


async def record_deployments_set_up(
    *,
    envelopes: Sequence[Envelope],
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    applying: Callable[[Envelope], AbstractContextManager[None]],
) -> list[Review]:
    """`record_deployment_set_up` for many events in log order, reading the deployments,
    the people's open direct-payment reviews and the plans once for all of them: a person
    whose first direct payment books a review earlier in the batch gets no second one, as
    one after another. Each review is booked in its own event's span and causation."""
    known = [_known_deployment(envelope) for envelope in envelopes]
    direct = [deployment for deployment in known if deployment.direct_payment]
    people: dict[str, set[str]] = {}
    for deployment in direct:
        people.setdefault(deployment.council, set()).add(deployment.person_id)
    reviewed: set[tuple[str, str]] = set()
    for council, person_ids in people.items():
        open_ones = await uow.reviews.people_with_open(
            council=council, person_ids=person_ids, kind=ReviewKind.DIRECT_PAYMENT
        )
        reviewed.update((council, person_id) for person_id in open_ones)
    signed = await uow.plans.get_many(deployment.plan_id for deployment in direct)
    booked: list[Review] = []
    for envelope, deployment in zip(envelopes, known, strict=True):
        if not deployment.direct_payment:
            continue
        with applying(envelope):
            person = (deployment.council, deployment.person_id)
            if person in reviewed:
                continue
            plan = signed.get(deployment.plan_id)
            if plan is None or plan.council != deployment.council:
                continue  # not a plan planning wrote: nothing of ours to review
            starts_on = envelope.time.date()
            policy = policy_for(policies, deployment.council, on=starts_on)
            review = Review.of_direct_payment(
                plan=plan,
                deployment_id=deployment.deployment_id,
                starts_on=starts_on,
                reviews=policy.reviews,
                policy_version=policy.policy_version,
                at=clock.now(),
            )
            reviewed.add(person)
            booked.append(review)
            uow.track(review)
            uow.collect_new_events()  # recorded in this event's span and causation
    await uow.deployments.put_all(known, at=clock.now())
    await uow.reviews.add_all(booked)
    await uow.commit()
    return booked


async def record_deployment_switched(
    *, envelope: Envelope, uow: PlanningUnitOfWork, policies: PolicyBook
) -> Review | None:
    """A switch to a direct payment books its first review, counted from the later of the
    switch's effective date and the day it was recorded (the first payment is neither)."""
    event = envelope.event
    assert isinstance(event, DeploymentSwitched)
    known = await uow.deployments.get(event.deployment_id)
    if known is None or known.council != event.council:
        return None  # set up before planning followed deployments: its plan is not known
    now_direct = _holds_a_direct_payment(event.parts)
    was_direct = _holds_a_direct_payment(event.previous_parts)
    deployment = KnownDeployment(
        deployment_id=known.deployment_id,
        plan_id=known.plan_id,
        person_id=known.person_id,
        council=known.council,
        direct_payment=now_direct,
    )
    await uow.deployments.put(deployment, at=clock.now())
    if not now_direct or was_direct:
        return None
    starts_on = max(event.effective_from, envelope.time.date())
    return await _schedule_direct_payment_review(uow, policies, deployment, starts_on=starts_on)


@dataclass(frozen=True)
class SurplusFound:
    """A surplus payments found on a deployment: what an unscheduled review needs of it."""

    deployment_id: UUID
    found_on: date
    reason: str


def _clawback_surplus(event: Event, envelope: Envelope) -> SurplusFound:
    assert isinstance(event, ClawbackRaised)
    return SurplusFound(
        deployment_id=event.deployment_id,
        found_on=envelope.time.date(),
        reason=(
            f"a surplus was found: an unspent balance of "
            f"{format_pounds(event.unspent_balance_pence)}, "
            f"{format_pounds(event.amount_pence)} of it above what the council allows"
        ),
    )


def _card_surplus(event: Event, envelope: Envelope) -> SurplusFound:
    assert isinstance(event, CardSurplusFlagged)
    return SurplusFound(
        deployment_id=event.deployment_id,
        found_on=event.balance_on,
        reason=(
            f"a surplus was found on the payment card: a balance of "
            f"{format_pounds(event.balance_pence)}, {format_pounds(event.surplus_pence)} of it "
            f"above what the council allows"
        ),
    )


SURPLUS_FINDINGS: dict[type[Event], Callable[[Event, Envelope], SurplusFound]] = {
    ClawbackRaised: _clawback_surplus,
    CardSurplusFlagged: _card_surplus,
}
"""Each payments event that reports a surplus, and how to read it; the consumer
subscribes to every type listed."""


async def record_statement_challenge_answered(
    *, envelope: Envelope, uow: PlanningUnitOfWork, policies: PolicyBook
) -> Review | None:
    """An upheld challenge to the personal budget statement asks for a review of the
    person's needs and budget (docs/charging.md): an unscheduled review of their latest
    signed-off plan, due by the policy's days for any other change."""
    event = envelope.event
    assert isinstance(event, StatementChallengeAnswered)
    if not event.review_requested:
        return None
    signed_off = await uow.plans.list(
        council=event.council,
        person_id=event.person_id,
        status=PlanStatus.SIGNED_OFF,
        after=None,
        limit=_PLANS_OF_ONE_PERSON,
    )
    if not signed_off:
        return None  # nothing signed off to review: the challenge is answered in payments
    plan = signed_off[-1]
    policy = policy_for(policies, plan.council, on=event.answered_on)
    review = Review.on_change(
        plan=plan,
        trigger=ReviewTrigger.OTHER,
        happened_on=event.answered_on,
        reason=(
            "the person's challenge to their personal budget statement was upheld: "
            f"{event.response}"
        ),
        by=f"{event.answered_by_role.value}:{event.answered_by}",
        reviews=policy.reviews,
        policy_version=policy.policy_version,
        at=clock.now(),
    )
    await uow.reviews.add(review)
    return review


_PLANS_OF_ONE_PERSON = 1_000
"""More plans than one person ever has (each revision is a plan)."""


async def record_surplus_found(
    *, envelope: Envelope, uow: PlanningUnitOfWork, policies: PolicyBook
) -> Review | None:
    """A surplus on a deployment brings the plan's review forward (seed 003 step 7), once
    while that review is open."""
    found = SURPLUS_FINDINGS[type(envelope.event)](envelope.event, envelope)
    deployment = await uow.deployments.get(found.deployment_id)
    if deployment is None or deployment.council != envelope.event.council:
        return None  # set up before planning followed deployments: its plan is not known
    open_reviews = await uow.reviews.open_of_kind(
        council=deployment.council, person_id=deployment.person_id, kind=ReviewKind.UNSCHEDULED
    )
    if any(
        r.trigger is ReviewTrigger.SURPLUS_FOUND and r.deployment_id == deployment.deployment_id
        for r in open_reviews
    ):
        return None  # the surplus is already to be reviewed: a later check adds nothing
    plan = await uow.plans.get(deployment.plan_id)
    if plan is None or plan.signed_off is None:
        return None
    policy = policy_for(policies, plan.council, on=found.found_on)
    review = Review.on_change(
        plan=plan,
        trigger=ReviewTrigger.SURPLUS_FOUND,
        happened_on=found.found_on,
        reason=found.reason,
        by=SYSTEM_ACTOR,
        reviews=policy.reviews,
        policy_version=policy.policy_version,
        at=clock.now(),
        deployment_id=deployment.deployment_id,
    )
    await uow.reviews.add(review)
    return review


# --- plans --------------------------------------------------------------------------------


async def create_plan(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    person_id: str,
    budget_id: UUID,
    content: PlanContent,
) -> PlanView:
    """Write a new draft plan against a budget issued for the person."""
    async with uow:
        budget = await _budget_for(uow, budget_id, person_id, actor.council)
        policy = await _validate_content(uow, policies, budget, content)
        plan = Plan.draft(
            person_id=person_id,
            council=actor.council,
            budget=budget,
            content=content,
            fee_basis_points=policy.planning.provider_management_fee_basis_points,
            by=actor.as_record(),
            at=clock.now(),
        )
        await uow.plans.add(plan)
        view = await _view(uow, policies, plan)
        await uow.commit()
        return view


async def amend_plan(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    plan_id: UUID,
    person_id: str,
    budget_id: UUID,
    content: PlanContent,
    expected_version: int | None,
) -> PlanView:
    """Replace a draft or returned plan's content."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        if person_id != plan.person_id:
            raise InvalidPlan("person_id: a plan cannot be moved to another person")
        plan.check_version(expected_version)
        budget = await _budget_for(uow, budget_id, plan.person_id, plan.council)
        policy = await _validate_content(uow, policies, budget, content)
        plan.amend(
            budget=budget,
            content=content,
            fee_basis_points=policy.planning.provider_management_fee_basis_points,
            by=actor.as_record(),
            at=clock.now(),
            expected_version=expected_version,
        )
        await uow.plans.save(plan)
        view = await _view(uow, policies, plan)
        await uow.commit()
        return view


async def get_plan(
    *, uow: PlanningUnitOfWork, policies: PolicyBook, actor: Caller, plan_id: UUID
) -> PlanView:
    """A plan with its costing, live checks and history."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        return await _view(uow, policies, plan)


async def list_plans(
    *,
    uow: PlanningUnitOfWork,
    actor: Caller,
    person_id: str | None,
    status: PlanStatus | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Plan]:
    """One page of the council's plans (a person sees only their own)."""
    if asks_for_another_person(actor, person_id):
        return []
    async with uow:
        return await uow.plans.list(
            council=actor.council,
            person_id=person_listed(actor, person_id),
            status=status,
            after=after,
            limit=limit,
        )


async def submit_plan(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    plan_id: UUID,
    expected_version: int | None,
) -> PlanView:
    """Submit a plan for sign-off once every check passes (PlanSubmitted)."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        plan.check_version(expected_version)
        checks, _ = await _checks(uow, policies, plan)
        plan.submit(
            checks=checks, by=actor.as_record(), at=clock.now(), expected_version=expected_version
        )
        await uow.plans.save(plan)
        view = await _view(uow, policies, plan)
        await uow.commit()
        return view


async def return_plan(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    plan_id: UUID,
    reasons: list[str],
    expected_version: int | None,
) -> PlanView:
    """Send a submitted plan back to its author with reasons (PlanReturned)."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        plan.return_to_author(
            reasons=reasons, by=actor, at=clock.now(), expected_version=expected_version
        )
        await uow.plans.save(plan)
        view = await _view(uow, policies, plan)
        await uow.commit()
        return view


async def sign_off_plan(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    plan_id: UUID,
    on: date,
    expected_version: int | None,
    panel_sitting: Sitting | None = None,
) -> tuple[PlanView, Review]:
    """Sign off a submitted plan within the caller's limit (PlanSignedOff, ReviewScheduled)."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        policy = policy_for(policies, plan.council, on=on)
        checks, budget = await _checks(uow, policies, plan)
        review = plan.sign_off(
            client_group=await _client_group(uow, budget),
            approver=actor,
            policy=policy,
            checks=checks,
            budget=budget,
            on=on,
            first_review_after_days=policy.reviews.first_after_days,
            policy_version=policy.policy_version,
            at=clock.now(),
            expected_version=expected_version,
            panel_sitting=panel_sitting,
        )
        await uow.plans.save(plan)
        await uow.reviews.add(review)
        view = await _view(uow, policies, plan)
        await uow.commit()
        return view, review


class PlanSignOffs:
    """Many plans written, submitted and signed off in one unit of work, each decided as
    create_plan, submit_plan and sign_off_plan one after another would (the same checks,
    authority and events, in the same order per plan), read and written as a set:
    `prepare` reads the budgets and assessments of all of them with one query each,
    `sign_off` decides one plan in memory, `finish` writes the plans, their history and
    their first reviews with one insert each, and their events with one outbox insert.

    `prepare` starts afresh, so the same object serves a batch applied again without a
    refused row."""

    def __init__(self, *, policies: PolicyBook, actor: Caller) -> None:
        self._policies = policies
        self._actor = actor
        self._budgets: dict[UUID, KnownBudget] = {}
        self._assessments: dict[UUID, KnownAssessment] = {}
        self._signed: list[tuple[Plan, Review]] = []

    async def prepare(self, uow: PlanningUnitOfWork, budget_ids: Sequence[UUID]) -> None:
        self._signed = []
        self._budgets = await uow.budgets.get_many(budget_ids)
        self._assessments = await uow.assessments.get_many(
            budget.assessment_id for budget in self._budgets.values()
        )

    def budget(self, budget_id: UUID) -> KnownBudget | None:
        return self._budgets.get(budget_id)

    def assessment(self, assessment_id: UUID) -> KnownAssessment | None:
        return self._assessments.get(assessment_id)

    def sign_off(
        self,
        uow: PlanningUnitOfWork,
        *,
        person_id: str,
        budget_id: UUID,
        content: PlanContent,
        on: date,
    ) -> tuple[Plan, Review]:
        """Draft, submit and sign off one plan; nothing of it is kept if a rule refuses it."""
        actor, policies = self._actor, self._policies
        budget = self._budgets.get(budget_id)
        if budget is None or budget.person_id != person_id or budget.council != actor.council:
            raise BudgetNotKnown(budget_id, person_id)
        assessment = self._assessments.get(budget.assessment_id)
        policy = _validated_against(policies, budget, assessment, content)
        plan = Plan.draft(
            person_id=person_id,
            council=actor.council,
            budget=budget,
            content=content,
            fee_basis_points=policy.planning.provider_management_fee_basis_points,
            by=actor.as_record(),
            at=clock.now(),
        )
        checks = _checks_against(policies, plan, budget, assessment)
        plan.submit(checks=checks, by=actor.as_record(), at=clock.now(), expected_version=None)
        signing_policy = policy_for(policies, plan.council, on=on)
        review = plan.sign_off(
            client_group=None if assessment is None else assessment.client_group,
            approver=actor,
            policy=signing_policy,
            # Submitting changed neither the content nor the budget: the same checks.
            checks=checks,
            budget=budget,
            on=on,
            first_review_after_days=signing_policy.reviews.first_after_days,
            policy_version=signing_policy.policy_version,
            at=clock.now(),
            expected_version=None,
        )
        # Tracked in row order, so the outbox holds each plan's events, then its review's,
        # plan after plan, as the use cases one after another would have written them.
        uow.track(plan)
        uow.track(review)
        self._signed.append((plan, review))
        return plan, review

    async def finish(self, uow: PlanningUnitOfWork) -> None:
        await uow.plans.add_all([plan for plan, _ in self._signed])
        await uow.reviews.add_all([review for _, review in self._signed])
        await uow.commit()


@dataclass(frozen=True)
class ApprovalItem:
    plan: Plan
    role_needed: Role | None
    can_sign_off: bool
    panel_sitting: Sitting | None


async def approvals_queue(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[list[ApprovalItem], datetime | None, UUID | None]:
    """One page of submitted plans, each marked as the caller's to sign off or to refer up."""
    policy = policy_for(policies, actor.council)
    async with uow:
        found = await uow.plans.list(
            council=actor.council,
            person_id=None,
            status=PlanStatus.SUBMITTED,
            after=after,
            limit=limit + 1,
        )
        page = found[:limit]
        groups = [await _client_group(uow, await uow.budgets.get(plan.budget_id)) for plan in page]
    items = []
    for plan, group in zip(page, groups, strict=True):
        weekly = plan.costing.weekly_pence
        decision = may_sign_off(policy, actor.role, weekly, group)
        items.append(
            ApprovalItem(
                plan=plan,
                role_needed=decision.needed,
                can_sign_off=decision.allowed,
                panel_sitting=authority.panel_sitting(policy, weekly),
            )
        )
    if len(found) > limit:
        return items, page[-1].created_at, page[-1].plan_id
    return items, None, None


# --- reviews ------------------------------------------------------------------------------


async def schedule_review(
    *,
    uow: PlanningUnitOfWork,
    actor: Caller,
    plan_id: UUID,
    due_on: date,
    reason: str,
) -> Review:
    """An unscheduled review of a signed-off plan, e.g. after an event in the person's life."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        if plan.signed_off is None:
            raise IllegalStateChange(
                f"plan {plan.plan_id} has never been signed off, so there is nothing to review"
            )
        review = Review.schedule(
            plan=plan,
            kind=ReviewKind.UNSCHEDULED,
            due_on=due_on,
            by=actor.as_record(),
            at=clock.now(),
            reason=reason,
        )
        await uow.reviews.add(review)
        await uow.commit()
        return review


async def record_change_of_circumstances(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    plan_id: UUID,
    change: ReviewTrigger,
    happened_on: date,
    details: str | None,
) -> Review:
    """A change in the person's circumstances (a carer stops, a hospital admission, …)
    books an unscheduled review, due by the policy's days for that change."""
    async with uow:
        plan = await _load_plan(uow, plan_id, actor)
        policy = policy_for(policies, plan.council, on=happened_on)
        what = change.value.replace("_", " ")
        review = Review.on_change(
            plan=plan,
            trigger=change,
            happened_on=happened_on,
            reason=f"{what} on {happened_on.isoformat()}" + (f": {details}" if details else ""),
            by=actor.as_record(),
            reviews=policy.reviews,
            policy_version=policy.policy_version,
            at=clock.now(),
        )
        await uow.reviews.add(review)
        await uow.commit()
        return review


async def run_due_reviews(
    *, uow: PlanningUnitOfWork, actor: Caller, as_of: date
) -> tuple[list[Review], bool]:
    """Announce, once each, the council's scheduled reviews due on or before a date."""
    async with uow:
        found = await uow.reviews.scheduled_due(
            council=actor.council, as_of=as_of, limit=RUN_DUE_BATCH + 1
        )
        batch = found[:RUN_DUE_BATCH]
        at = clock.now()
        announced = []
        for review in batch:
            if review.announce_if_due(as_of=as_of, by=actor.as_record(), at=at):
                await uow.reviews.save(review)
                announced.append(review)
        await uow.commit()
        return announced, len(found) > RUN_DUE_BATCH


async def complete_review(
    *,
    uow: PlanningUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    review_id: UUID,
    outcome: ReviewOutcome,
    completed_on: date,
    notes: str,
    expected_version: int | None,
) -> tuple[Review, Review]:
    """Record a review's outcome and schedule the next one (ReviewCompleted, ReviewScheduled)."""
    async with uow:
        review = await _load_review(uow, review_id, actor)
        review.check_version(expected_version)
        plan = await _load_plan(uow, review.plan_id, actor)
        policy = policy_for(policies, review.council, on=completed_on)
        plan_version_before = plan.version
        following = review.complete(
            outcome=outcome,
            completed_on=completed_on,
            notes=notes,
            by=actor.as_record(),
            plan=plan,
            reviews=policy.reviews,
            policy_version=policy.policy_version,
            at=clock.now(),
        )
        await uow.reviews.save(review)
        await uow.reviews.add(following)
        if plan.version != plan_version_before:
            await uow.plans.save(plan)
        await uow.commit()
        return review, following


async def get_review(*, uow: PlanningUnitOfWork, actor: Caller, review_id: UUID) -> Review:
    """One review."""
    async with uow:
        return await _load_review(uow, review_id, actor)


async def list_reviews(
    *,
    uow: PlanningUnitOfWork,
    actor: Caller,
    person_id: str | None,
    due_on_or_before: date | None,
    status: ReviewStatus | None,
    after: tuple[date, UUID] | None,
    limit: int,
) -> list[Review]:
    """One page of the council's reviews by due date (a person sees only their own)."""
    if asks_for_another_person(actor, person_id):
        return []
    async with uow:
        return await uow.reviews.list(
            council=actor.council,
            person_id=person_listed(actor, person_id),
            due_on_or_before=due_on_or_before,
            status=status,
            after=after,
            limit=limit,
        )
