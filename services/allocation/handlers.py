"""Allocation use cases: load through the unit of work, let the domain decide, commit once.

API use cases open their own unit of work. Event use cases run inside the one the
consumer opened (its inbox row is already added), so the effect and the record that the
event was applied commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from contracts.events import AssessmentValidated, PlanSignedOff, ReviewCompleted
from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import Role
from rules.authority import Sitting
from servicekit import clock
from servicekit.caller import Caller
from servicekit.errors import Conflict, Invalid, NotFound
from servicekit.policies import (
    AdoptedRow,
    adopted_policy,
    adopted_rows,
    adoption_event,
    find_adoption,
    policy_for,
    record_adoption,
)
from services.allocation.db import AllocationUnitOfWork
from services.allocation.domain import (
    AllocationError,
    Budget,
    BudgetInputs,
    BudgetNotFound,
    Calculation,
    FundingStream,
    SignedOffPlan,
    calculate_budget,
    revised_inputs,
)


def inputs_from_assessment(event: AssessmentValidated) -> BudgetInputs:
    """The RAS inputs a validated assessment carries."""
    return BudgetInputs(
        client_group=event.client_group,
        domain_levels=dict(event.domain_levels),
        significant_informal_support=event.significant_informal_support,
        needs_24_7=event.needs_24_7,
        carer_support_weekly_pence=event.carer_support_weekly_pence,
        other_funding=tuple(
            FundingStream(source=f.source, weekly_pence=f.weekly_pence) for f in event.other_funding
        ),
    )


def preview_calculation(*, inputs: BudgetInputs, council: str, policies: PolicyBook) -> Calculation:
    """The RAS for a set of inputs under the council's current policy; nothing is stored."""
    return calculate_budget(inputs, policy_for(policies, council))


def calculate_in_force(
    inputs: BudgetInputs, policies: PolicyBook, council: str, on: date, fallback_version: str
) -> Calculation:
    """The RAS under the policy in force on a date.

    When that policy cannot score the inputs (an adopted policy changed the questionnaire
    after the assessment was answered), the policy the assessment was scored with is used.
    """
    in_force = policy_for(policies, council, on=on)
    try:
        return calculate_budget(inputs, in_force)
    except AllocationError:
        if fallback_version == in_force.policy_version:
            raise
        return calculate_budget(inputs, policy_for(policies, council, version=fallback_version))


def assess_budget(
    *, event: AssessmentValidated, budget: Budget | None, policies: PolicyBook, on: date
) -> Budget | None:
    """The budget a validated assessment leaves: a new one when the person has none, the
    person's budget reassessed, or None when it is the same assessment again.

    The budget is computed under the policy in force on the day the assessment was
    validated (`on`, the event's date), so a policy adopted from a date applies to every
    budget computed from then on.
    """
    inputs = inputs_from_assessment(event)
    calculation = calculate_in_force(inputs, policies, event.council, on, event.policy_version)
    now = clock.now()
    if budget is None:
        return Budget.open(
            budget_id=uuid.uuid4(),
            council=event.council,
            person_id=event.person_id,
            assessment_id=event.assessment_id,
            inputs=inputs,
            calculation=calculation,
            by=event.validated_by,
            at=now,
        )
    if budget.already_has(event.assessment_id, inputs):
        return None
    budget.reassess(
        assessment_id=event.assessment_id,
        inputs=inputs,
        calculation=calculation,
        by=event.validated_by,
        at=now,
    )
    return budget


async def record_validated_assessment(
    *,
    event: AssessmentValidated,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    on: date | None = None,
) -> None:
    """Open a budget awaiting agreement, or revise the person's budget on reassessment."""
    budget = await uow.budgets.for_person(event.council, event.person_id)
    assessed = assess_budget(event=event, budget=budget, policies=policies, on=on or clock.today())
    if assessed is not None and budget is None:
        await uow.budgets.add(assessed)
    elif assessed is not None:
        await uow.budgets.save(assessed)
    await uow.commit()


@dataclass(frozen=True)
class ValidatedAssessment:
    """One AssessmentValidated of a batch: the event, the day it was validated, and the
    context it is decided in (the consumer's trace span and causation for it)."""

    event: AssessmentValidated
    on: date
    applying: AbstractContextManager[None] = field(default_factory=nullcontext)


async def record_validated_assessments(
    *,
    assessments: Sequence[ValidatedAssessment],
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
) -> None:
    """`record_validated_assessment` for many events, in order, with one read of their
    people's budgets and one insert per table for the budgets they open.

    The same budgets as applying them one after another: a person assessed twice in the
    batch gets one budget, opened by the first and reassessed by the second.
    """
    people: dict[str, set[str]] = {}
    for item in assessments:
        people.setdefault(item.event.council, set()).add(item.event.person_id)
    current: dict[tuple[str, str], Budget] = {}
    for council, person_ids in people.items():
        found = await uow.budgets.for_people(council, person_ids)
        current.update(((council, person_id), budget) for person_id, budget in found.items())
    opened: dict[UUID, Budget] = {}
    reassessed: dict[UUID, Budget] = {}
    for item in assessments:
        with item.applying:
            key = (item.event.council, item.event.person_id)
            budget = current.get(key)
            assessed = assess_budget(event=item.event, budget=budget, policies=policies, on=item.on)
            if assessed is None:
                continue
            current[key] = assessed
            if budget is None:
                opened[assessed.budget_id] = assessed
            elif assessed.budget_id not in opened:
                reassessed[assessed.budget_id] = assessed
    await uow.budgets.add_all(list(opened.values()))
    for budget in reassessed.values():
        await uow.budgets.save(budget)
    await uow.commit()


async def finalise_budget(*, event: PlanSignedOff, uow: AllocationUnitOfWork) -> None:
    """A signed-off plan makes the budget final at the plan's cost and issues it."""
    budget = await uow.budgets.get(event.budget_id)
    if budget is None:
        raise BudgetNotFound(event.budget_id)
    if _finalise(budget, event):
        await uow.budgets.save(budget)
    await uow.commit()


@dataclass(frozen=True)
class SignedOffPlanEvent:
    """One PlanSignedOff of a batch, and the context it is decided in (the consumer's trace
    span and causation for it)."""

    event: PlanSignedOff
    applying: AbstractContextManager[None] = field(default_factory=nullcontext)


async def finalise_budgets(
    *, plans: Sequence[SignedOffPlanEvent], uow: AllocationUnitOfWork
) -> None:
    """`finalise_budget` for many events, in order, with one read of their budgets and one
    save of each budget they change. A plan whose budget is not held raises BudgetNotFound,
    as one at a time does: the consumer then applies the batch one event at a time, and that
    event is dead-lettered."""
    held = await uow.budgets.by_ids({item.event.budget_id for item in plans})
    changed: dict[UUID, Budget] = {}
    for item in plans:
        with item.applying:
            budget = held.get(item.event.budget_id)
            if budget is None:
                raise BudgetNotFound(item.event.budget_id)
            if _finalise(budget, item.event):
                changed[budget.budget_id] = budget
                uow.collect_new_events()  # in this event's span and causation
    for budget in changed.values():
        await uow.budgets.save(budget)
    await uow.commit()


def _finalise(budget: Budget, event: PlanSignedOff) -> bool:
    """The budget made final at the plan's cost, unless this plan version already did."""
    if budget.has_plan(event.plan_id, event.plan_version):
        return False
    budget.finalise(
        plan=SignedOffPlan(
            plan_id=event.plan_id,
            plan_version=event.plan_version,
            person_id=event.person_id,
            council=event.council,
            weekly_pence=event.weekly_pence,
            annual_pence=event.annual_pence,
            one_off_pence=event.one_off_pence,
            signed_off_by=event.signed_off_by,
            signed_off_by_role=event.signed_off_by_role,
        ),
        at=clock.now(),
    )
    return True


async def _council_budget(uow: AllocationUnitOfWork, budget_id: UUID, council: str) -> Budget:
    """The budget, if the council holds it; another council's is not found."""
    budget = await uow.budgets.get(budget_id)
    if budget is None:
        raise BudgetNotFound(budget_id)
    budget.check_council(council)
    return budget


async def get_budget(*, uow: AllocationUnitOfWork, budget_id: UUID) -> Budget:
    """One budget with all its revisions (the caller checks who may see it)."""
    async with uow:
        budget = await uow.budgets.get(budget_id)
    if budget is None:
        raise BudgetNotFound(budget_id)
    return budget


async def list_budgets(
    *,
    uow: AllocationUnitOfWork,
    council: str,
    person_id: str | None,
    status: str | None,
    issued_only: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Budget]:
    """A page of the council's budgets, oldest first."""
    async with uow:
        return await uow.budgets.list(
            council=council,
            person_id=person_id,
            status=status,
            issued_only=issued_only,
            after=after,
            limit=limit,
        )


async def agree_budget(
    *,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    budget_id: UUID,
    by: Caller,
    ceiling_exception_reason: str | None,
    expected_version: int | None,
    panel_sitting: Sitting | None = None,
) -> Budget:
    """Agree the current revision in principle and issue it as the indicative budget."""
    async with uow:
        budget = await _council_budget(uow, budget_id, by.council)
        _agree(budget, policies, by, ceiling_exception_reason, expected_version, panel_sitting)
        await uow.budgets.save(budget)
        await uow.commit()
    return budget


async def agree_loaded_budget(
    *,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    budget: Budget,
    by: Caller,
    ceiling_exception_reason: str | None,
    expected_version: int | None,
) -> Budget:
    """agree_budget for a budget of the caller's council that this batch's unit of work
    loaded already (the conversion route reads a whole batch's budgets at once)."""
    async with uow:
        _agree(budget, policies, by, ceiling_exception_reason, expected_version, None)
        await uow.budgets.save(budget)
        await uow.commit()
    return budget


def _agree(
    budget: Budget,
    policies: PolicyBook,
    by: Caller,
    ceiling_exception_reason: str | None,
    expected_version: int | None,
    panel_sitting: Sitting | None,
) -> None:
    policy = policy_for(policies, budget.council, version=budget.current.policy_version)
    budget.agree(
        by=by,
        policy=policy,
        at=clock.now(),
        ceiling_exception_reason=ceiling_exception_reason,
        expected_version=expected_version,
        panel_sitting=panel_sitting,
    )


async def revise_budget(
    *,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    budget_id: UUID,
    by: Caller,
    reason: str,
    additional_weekly_pence: int | None,
    carer_support_weekly_pence: int | None,
    other_funding: list[FundingStream] | None,
    expected_version: int | None,
) -> Budget:
    """Recompute from the stored inputs plus the changes; the new revision awaits agreement."""
    async with uow:
        budget = await _council_budget(uow, budget_id, by.council)
        budget.check_version(expected_version)
        inputs = revised_inputs(
            budget.current.inputs,
            additional_weekly_pence=additional_weekly_pence,
            additional_reason=reason,
            carer_support_weekly_pence=carer_support_weekly_pence,
            other_funding=other_funding,
        )
        calculation = calculate_budget(inputs, policy_for(policies, budget.council))
        budget.revise(
            inputs=inputs,
            calculation=calculation,
            reason=reason,
            by=by,
            at=clock.now(),
            expected_version=expected_version,
        )
        await uow.budgets.save(budget)
        await uow.commit()
    return budget


# --- adopting a policy ----------------------------------------------------------------------


class PolicyForAnotherCouncil(AllocationError, NotFound):
    """Another council's policy is not the caller's to act on: not found, as another
    council's record is everywhere else."""

    def __init__(self, council: str, own: str) -> None:
        super().__init__(
            f"policy.council: this policy is for {council!r}; you may adopt policies for "
            f"{own!r} only"
        )


class EffectiveDateInThePast(AllocationError, Invalid):
    def __init__(self, effective_from: date, on: date) -> None:
        super().__init__(
            f"effective_from: {effective_from.isoformat()} is before today "
            f"({on.isoformat()}); an adoption cannot reach back: budgets already computed "
            "keep the policy they were computed with (revise them after adopting instead)"
        )


class VersionIsAPolicyFile(AllocationError, Conflict):
    def __init__(self, policy_version: str) -> None:
        super().__init__(
            f"policy {policy_version} is the version of a file in policies/; give the "
            "document you adopt a new version"
        )


class PolicyNotInForce(AllocationError, Conflict):
    def __init__(self, wanted: str, in_force: Policy) -> None:
        super().__init__(
            f"policy {wanted} is not the policy in force today: {in_force.policy_version} is "
            f"(in force from {in_force.effective_from.isoformat()}); revise once it is"
        )


@dataclass(frozen=True)
class Adoption:
    row: AdoptedRow
    created: bool


async def adopt_policy(
    *,
    uow: AllocationUnitOfWork,
    table: sa.Table,
    policies: PolicyBook,
    document: dict[str, Any],
    effective_from: date,
    by: Caller,
) -> Adoption:
    """Validate and record an adoption (PolicyAdopted); the same adoption again changes nothing."""
    policy = adopted_policy(document, effective_from)
    if policy.council != by.council:
        raise PolicyForAnotherCouncil(policy.council, by.council)
    if effective_from < clock.today():
        raise EffectiveDateInThePast(effective_from, clock.today())
    event = adoption_event(policy, adopted_by=by.record)
    async with uow:
        known = await find_adoption(uow.session, table, policy.council, policy.version)
        if known is None:
            try:
                policies.version(policy.policy_version)
            except KeyError:
                pass
            else:
                raise VersionIsAPolicyFile(policy.policy_version)
        envelope = uow.emit(event)
        if await record_adoption(uow.session, table, event, envelope.id) is None:
            assert known is not None
            return Adoption(row=known, created=False)
        await uow.commit()
        row = await find_adoption(uow.session, table, policy.council, policy.version)
    assert row is not None
    return Adoption(row=row, created=True)


async def adopted_policies(*, uow: AllocationUnitOfWork, table: sa.Table) -> list[AdoptedRow]:
    async with uow:
        return await adopted_rows(uow.session, table)


# --- revising budgets under the policy in force ---------------------------------------------


@dataclass
class RevisionBatch:
    """What one batch of a bulk revision did, and where the next batch starts."""

    policy: Policy
    checked: int = 0
    issued: int = 0
    awaiting_agreement: int = 0
    already_on_policy: int = 0
    needs_reassessment: int = 0
    revised_budget_ids: list[UUID] = field(default_factory=list)
    next_after: tuple[datetime, str] | None = None
    total: int = 0


def policy_revision_reason(policy: Policy, why: str) -> str:
    return (
        f"{why}: policy {policy.policy_version} in force from {policy.effective_from.isoformat()}"
    )


async def revise_budgets_for_policy(
    *,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    by: Caller,
    expected_policy_version: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> RevisionBatch:
    """Revise one page of the council's budgets under the policy in force today.

    One transaction per page; budgets already on that policy are left alone, so running
    it again, or resuming after a failure, revises nobody twice.
    """
    policy = policy_for(policies, by.council)
    if expected_policy_version and expected_policy_version != policy.policy_version:
        raise PolicyNotInForce(expected_policy_version, policy)
    batch = RevisionBatch(policy=policy)
    reason = policy_revision_reason(policy, f"bulk revision by {by.record}")
    async with uow:
        batch.total = await uow.budgets.count(council=by.council)
        found = await uow.budgets.list(
            council=by.council,
            person_id=None,
            status=None,
            issued_only=False,
            after=after,
            limit=limit + 1,
        )
        page = found[:limit]
        now = clock.now()
        for budget in page:
            batch.checked += 1
            try:
                calculation = calculate_budget(budget.current.inputs, policy)
            except AllocationError:  # the new questionnaire cannot score the old answers
                batch.needs_reassessment += 1
                continue
            revision = budget.revise_for_policy(
                calculation=calculation, reason=reason, by=by, at=now
            )
            if revision is None:
                batch.already_on_policy += 1
                continue
            batch.revised_budget_ids.append(budget.budget_id)
            if revision.issued:
                batch.issued += 1
            else:
                batch.awaiting_agreement += 1
            await uow.budgets.save(budget)
        await uow.commit()
    if len(found) > limit and page:
        batch.next_after = (page[-1].created_at, str(page[-1].budget_id))
    return batch


def _reviewer(completed_by: str, council: str) -> Caller:
    """The reviewer recorded as `role:user-id` (planning's actor record)."""
    try:
        role = Role(completed_by.partition(":")[0])
    except ValueError:  # a review recorded by a system, not a person
        role = Role.CARE_MANAGER
    return Caller(record=completed_by, role=role, council=council)


async def revise_at_review(
    *, event: ReviewCompleted, uow: AllocationUnitOfWork, policies: PolicyBook
) -> None:
    """A completed review brings the budget under the policy in force on the review's date."""
    budget = await uow.budgets.for_person(event.council, event.person_id)
    if budget is None:
        return
    policy = policy_for(policies, event.council, on=event.completed_on)
    try:
        calculation = calculate_budget(budget.current.inputs, policy)
    except AllocationError:
        return  # the new questionnaire cannot score the old answers: a reassessment will
    reason = policy_revision_reason(policy, f"review completed on {event.completed_on.isoformat()}")
    if budget.revise_for_policy(
        calculation=calculation,
        reason=reason,
        by=_reviewer(event.completed_by, event.council),
        at=clock.now(),
    ):
        await uow.budgets.save(budget)
    await uow.commit()
