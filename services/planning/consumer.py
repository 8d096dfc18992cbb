"""Events planning applies, each exactly once: validated assessments and issued budgets
(to write and check plans); deployments set up or switched to a direct payment, surpluses
found on them and upheld challenges to the budget statement (to book their reviews).

The consumer opens the unit of work and adds the inbox row before calling a handler, and
commits after it, so a redelivered event changes nothing (servicekit.consumer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.envelope import Envelope
from contracts.events import (
    AssessmentValidated,
    BudgetIssued,
    DeploymentSetUp,
    DeploymentSwitched,
    Event,
    StatementChallengeAnswered,
)
from contracts.registry import topic_for
from servicekit.consumer import Applying
from servicekit.runtime import ServiceRuntime
from services.planning import handlers

REVIEWED_FROM_PAYMENTS: tuple[type[Event], ...] = (
    DeploymentSetUp,
    DeploymentSwitched,
    StatementChallengeAnswered,
    *handlers.SURPLUS_FINDINGS,
)
"""Payments' events that book a review: a direct payment starting, an upheld challenge to
the personal budget statement, and each surplus."""


async def on_assessment_validated(envelope: Envelope, uow: Any) -> None:
    await handlers.record_assessment_validated(envelope=envelope, uow=uow)


async def on_budget_issued(envelope: Envelope, uow: Any) -> None:
    await handlers.record_budget_issued(envelope=envelope, uow=uow)


async def on_assessments_validated(
    envelopes: Sequence[Envelope], uow: Any, applying: Applying
) -> None:
    # Nothing is emitted, so nothing needs each event's own span or causation.
    await handlers.record_assessments_validated(envelopes=envelopes, uow=uow)


async def on_budgets_issued(envelopes: Sequence[Envelope], uow: Any, applying: Applying) -> None:
    await handlers.record_budgets_issued(envelopes=envelopes, uow=uow)


def register(runtime: ServiceRuntime[Any]) -> None:
    """Subscribe planning to the assessment and allocation topics, and to payments'."""
    runtime.add_consumer(
        topics=[topic_for(AssessmentValidated), topic_for(BudgetIssued)],
        handlers={
            AssessmentValidated: on_assessment_validated,
            BudgetIssued: on_budget_issued,
        },
        batch_handlers={
            AssessmentValidated: on_assessments_validated,
            BudgetIssued: on_budgets_issued,
        },
    )

    async def on_deployment_set_up(envelope: Envelope, uow: Any) -> None:
        await handlers.record_deployment_set_up(
            envelope=envelope, uow=uow, policies=runtime.policies
        )

    async def on_deployments_set_up(
        envelopes: Sequence[Envelope], uow: Any, applying: Applying
    ) -> None:
        await handlers.record_deployments_set_up(
            envelopes=envelopes, uow=uow, policies=runtime.policies, applying=applying
        )

    async def on_deployment_switched(envelope: Envelope, uow: Any) -> None:
        await handlers.record_deployment_switched(
            envelope=envelope, uow=uow, policies=runtime.policies
        )

    async def on_statement_challenge_answered(envelope: Envelope, uow: Any) -> None:
        await handlers.record_statement_challenge_answered(
            envelope=envelope, uow=uow, policies=runtime.policies
        )

    async def on_surplus_found(envelope: Envelope, uow: Any) -> None:
        await handlers.record_surplus_found(envelope=envelope, uow=uow, policies=runtime.policies)

    runtime.add_consumer(
        name=f"{runtime.name}-reviews",
        topics=sorted({topic_for(cls) for cls in REVIEWED_FROM_PAYMENTS}),
        handlers={
            DeploymentSetUp: on_deployment_set_up,
            DeploymentSwitched: on_deployment_switched,
            StatementChallengeAnswered: on_statement_challenge_answered,
            **{finding: on_surplus_found for finding in handlers.SURPLUS_FINDINGS},
        },
        batch_handlers={DeploymentSetUp: on_deployments_set_up},
    )
