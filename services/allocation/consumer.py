"""Events in -> contracts model -> use case: validated assessments and signed-off plans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.envelope import Envelope
from contracts.events import AssessmentValidated, PlanSignedOff, ReviewCompleted
from contracts.registry import topic_for
from servicekit.consumer import Applying
from servicekit.runtime import ServiceRuntime
from services.allocation import handlers
from services.allocation.db import AllocationUnitOfWork


def register(runtime: ServiceRuntime[Any]) -> None:
    """Consume AssessmentValidated (pb.assessment), PlanSignedOff and ReviewCompleted
    (pb.planning)."""

    async def on_assessment_validated(envelope: Envelope, uow: AllocationUnitOfWork) -> None:
        assert isinstance(envelope.event, AssessmentValidated)
        await handlers.record_validated_assessment(
            event=envelope.event, uow=uow, policies=runtime.policies, on=envelope.time.date()
        )

    async def on_assessments_validated(
        envelopes: Sequence[Envelope], uow: AllocationUnitOfWork, applying: Applying
    ) -> None:
        assessments = []
        for envelope in envelopes:
            assert isinstance(envelope.event, AssessmentValidated)
            assessments.append(
                handlers.ValidatedAssessment(
                    event=envelope.event, on=envelope.time.date(), applying=applying(envelope)
                )
            )
        await handlers.record_validated_assessments(
            assessments=assessments, uow=uow, policies=runtime.policies
        )

    async def on_plan_signed_off(envelope: Envelope, uow: AllocationUnitOfWork) -> None:
        assert isinstance(envelope.event, PlanSignedOff)
        await handlers.finalise_budget(event=envelope.event, uow=uow)

    async def on_plans_signed_off(
        envelopes: Sequence[Envelope], uow: AllocationUnitOfWork, applying: Applying
    ) -> None:
        plans = []
        for envelope in envelopes:
            assert isinstance(envelope.event, PlanSignedOff)
            plans.append(handlers.SignedOffPlanEvent(envelope.event, applying(envelope)))
        await handlers.finalise_budgets(plans=plans, uow=uow)

    async def on_review_completed(envelope: Envelope, uow: AllocationUnitOfWork) -> None:
        assert isinstance(envelope.event, ReviewCompleted)
        await handlers.revise_at_review(event=envelope.event, uow=uow, policies=runtime.policies)

    runtime.add_consumer(
        topics=[topic_for(AssessmentValidated), topic_for(PlanSignedOff)],
        handlers={
            AssessmentValidated: on_assessment_validated,
            PlanSignedOff: on_plan_signed_off,
            ReviewCompleted: on_review_completed,
        },
        batch_handlers={
            AssessmentValidated: on_assessments_validated,
            PlanSignedOff: on_plans_signed_off,
        },
    )
