"""Events in: PlanSignedOff (topic pb.planning) opens a deployment for the plan;
FinancialAssessmentCompleted (topic pb.assessment) sets the charge the person's
deployments take and recalculates them from the day it applies.

The consumer's unit of work already holds the inbox row for the event, so a redelivered
event is recognised and changes nothing; a plan version seen before under another event
id changes nothing either (handlers.open_deployment_for_plan). A stale-version conflict
(someone changed the person's earlier deployment meanwhile) is raised as a plain error, so
the consumer retries the event with backoff instead of dead-lettering it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.envelope import Envelope
from contracts.events import FinancialAssessmentCompleted, PlanSignedOff
from contracts.registry import topic_for
from servicekit.consumer import Applying
from servicekit.errors import StaleVersion
from servicekit.runtime import ServiceRuntime
from services.payments import handlers
from services.payments.db import PaymentsUnitOfWork


class RetryLater(RuntimeError):
    """A transient conflict: the consumer retries the event rather than dead-letter it."""


def register(runtime: ServiceRuntime[Any]) -> None:
    """Add the payments consumer of signed-off plans and financial assessments."""

    async def plan_signed_off(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
        assert isinstance(envelope.event, PlanSignedOff)
        try:
            await handlers.open_deployment_for_plan(
                plan=envelope.event,
                uow=uow,
                policies=runtime.policies,
                recorded_by=f"event:{envelope.type}:{envelope.id}"[:200],
            )
        except StaleVersion as err:
            raise RetryLater(str(err)) from err

    async def plans_signed_off(
        envelopes: Sequence[Envelope], uow: PaymentsUnitOfWork, applying: Applying
    ) -> None:
        plans = []
        for envelope in envelopes:
            assert isinstance(envelope.event, PlanSignedOff)
            recorded_by = f"event:{envelope.type}:{envelope.id}"[:200]
            plans.append((envelope.event, recorded_by, applying(envelope)))
        # A stale version fails the batch; the one-by-one pass then retries that event.
        await handlers.open_deployments_for_plans(plans=plans, uow=uow, policies=runtime.policies)

    async def financial_assessment_completed(envelope: Envelope, uow: PaymentsUnitOfWork) -> None:
        assert isinstance(envelope.event, FinancialAssessmentCompleted)
        try:
            await handlers.apply_financial_assessment(
                assessment=envelope.event,
                uow=uow,
                policies=runtime.policies,
                recorded_by=f"event:{envelope.type}:{envelope.id}"[:200],
            )
        except StaleVersion as err:
            raise RetryLater(str(err)) from err

    runtime.add_consumer(
        topics=[topic_for(PlanSignedOff), topic_for(FinancialAssessmentCompleted)],
        handlers={
            PlanSignedOff: plan_signed_off,
            FinancialAssessmentCompleted: financial_assessment_completed,
        },
        batch_handlers={PlanSignedOff: plans_signed_off},
    )
