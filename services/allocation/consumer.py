"""Events in -> contracts model -> use case: validated assessments and signed-off plans."""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope
from contracts.events import AssessmentValidated, PlanSignedOff
from contracts.registry import topic_for
from servicekit.runtime import ServiceRuntime
from services.allocation import handlers
from services.allocation.db import AllocationUnitOfWork


def register(runtime: ServiceRuntime[Any]) -> None:
    """Consume AssessmentValidated (pb.assessment) and PlanSignedOff (pb.planning)."""

    async def on_assessment_validated(envelope: Envelope, uow: AllocationUnitOfWork) -> None:
        assert isinstance(envelope.event, AssessmentValidated)
        await handlers.record_validated_assessment(
            event=envelope.event, uow=uow, policies=runtime.policies
        )

    async def on_plan_signed_off(envelope: Envelope, uow: AllocationUnitOfWork) -> None:
        assert isinstance(envelope.event, PlanSignedOff)
        await handlers.finalise_budget(event=envelope.event, uow=uow)

    runtime.add_consumer(
        topics=[topic_for(AssessmentValidated), topic_for(PlanSignedOff)],
        handlers={
            AssessmentValidated: on_assessment_validated,
            PlanSignedOff: on_plan_signed_off,
        },
    )
