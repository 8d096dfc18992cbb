"""Events planning applies: validated assessments and issued budgets, each exactly once.

The consumer opens the unit of work and adds the inbox row before calling a handler, and
commits after it, so a redelivered event changes nothing (servicekit.consumer).
"""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope
from contracts.events import AssessmentValidated, BudgetIssued
from contracts.registry import topic_for
from servicekit.runtime import ServiceRuntime
from services.planning import handlers


async def on_assessment_validated(envelope: Envelope, uow: Any) -> None:
    await handlers.record_assessment_validated(envelope=envelope, uow=uow)


async def on_budget_issued(envelope: Envelope, uow: Any) -> None:
    await handlers.record_budget_issued(envelope=envelope, uow=uow)


def register(runtime: ServiceRuntime[Any]) -> None:
    """Subscribe planning to the assessment and allocation topics."""
    runtime.add_consumer(
        topics=[topic_for(AssessmentValidated), topic_for(BudgetIssued)],
        handlers={
            AssessmentValidated: on_assessment_validated,
            BudgetIssued: on_budget_issued,
        },
    )
