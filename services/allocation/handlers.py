"""Allocation use cases: load through the unit of work, let the domain decide, commit once.

API use cases open their own unit of work. Event use cases run inside the one the
consumer opened (its inbox row is already added), so the effect and the record that the
event was applied commit together.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from contracts.events import AssessmentValidated, PlanSignedOff
from contracts.policy import Policy, PolicyBook
from services.allocation.db import AllocationUnitOfWork
from services.allocation.domain import (
    Approver,
    Budget,
    BudgetInputs,
    BudgetNotFound,
    Calculation,
    FundingStream,
    NoPolicyForCouncil,
    SignedOffPlan,
    calculate_budget,
    revised_inputs,
)


def _now() -> datetime:
    return datetime.now(UTC)


def policy_for(policies: PolicyBook, council: str, policy_version: str | None = None) -> Policy:
    """The named policy version of the council if known, else the one in force today."""
    if policy_version and policy_version.partition("/")[0] == council:
        try:
            return policies.version(policy_version)
        except KeyError:
            pass
    try:
        return policies.current(council)
    except KeyError as err:
        raise NoPolicyForCouncil(council) from err


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


async def record_validated_assessment(
    *, event: AssessmentValidated, uow: AllocationUnitOfWork, policies: PolicyBook
) -> None:
    """Open a budget awaiting agreement, or revise the person's budget on reassessment."""
    policy = policy_for(policies, event.council, event.policy_version)
    inputs = inputs_from_assessment(event)
    calculation = calculate_budget(inputs, policy)
    now = _now()
    budget = await uow.budgets.for_person(event.council, event.person_id)
    if budget is None:
        budget = Budget.open(
            budget_id=uuid.uuid4(),
            council=event.council,
            person_id=event.person_id,
            assessment_id=event.assessment_id,
            inputs=inputs,
            calculation=calculation,
            by=event.validated_by,
            at=now,
        )
        await uow.budgets.add(budget)
    elif not budget.already_has(event.assessment_id, inputs):
        budget.reassess(
            assessment_id=event.assessment_id,
            inputs=inputs,
            calculation=calculation,
            by=event.validated_by,
            at=now,
        )
        await uow.budgets.save(budget)
    await uow.commit()


async def finalise_budget(*, event: PlanSignedOff, uow: AllocationUnitOfWork) -> None:
    """A signed-off plan makes the budget final at the plan's cost and issues it."""
    budget = await uow.budgets.get(event.budget_id)
    if budget is None:
        raise BudgetNotFound(event.budget_id)
    if budget.has_plan(event.plan_id, event.plan_version):
        return
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
        at=_now(),
    )
    await uow.budgets.save(budget)
    uow.emit_all(budget.events)
    await uow.commit()


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
    by: Approver,
    ceiling_exception_reason: str | None,
    expected_version: int | None,
) -> Budget:
    """Agree the current revision in principle and issue it as the indicative budget."""
    async with uow:
        budget = await uow.budgets.get(budget_id)
        if budget is None:
            raise BudgetNotFound(budget_id)
        budget.check_council(by.council)
        policy = policy_for(policies, budget.council, budget.current.policy_version)
        budget.agree(
            by=by,
            approvals=policy.approvals,
            policy_version=policy.policy_version,
            at=_now(),
            ceiling_exception_reason=ceiling_exception_reason,
            expected_version=expected_version,
        )
        await uow.budgets.save(budget)
        uow.emit_all(budget.events)
        await uow.commit()
    return budget


async def revise_budget(
    *,
    uow: AllocationUnitOfWork,
    policies: PolicyBook,
    budget_id: UUID,
    by: Approver,
    reason: str,
    additional_weekly_pence: int | None,
    carer_support_weekly_pence: int | None,
    other_funding: list[FundingStream] | None,
    expected_version: int | None,
) -> Budget:
    """Recompute from the stored inputs plus the changes; the new revision awaits agreement."""
    async with uow:
        budget = await uow.budgets.get(budget_id)
        if budget is None:
            raise BudgetNotFound(budget_id)
        budget.check_council(by.council)
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
            at=_now(),
            expected_version=expected_version,
        )
        await uow.budgets.save(budget)
        await uow.commit()
    return budget
