"""Assessment's event consumer: the last contact with each person, for retention.

Assessment starts the journey (seed 003 step 1a) and acts on no other service's events.
It does read every topic for one thing: the time of the latest event about each person,
because the council's retention period runs from the last contact with the person,
whichever service it was (docs/privacy.md).

PolicyAdopted and OperatorActionRecorded are no contact with anyone. servicekit's runtime
follows PolicyAdopted for every service whose database has the adopted_policies table
(ADR 10). Audit's tamper findings are about the record, not contacts with the
person either.
"""

from __future__ import annotations

from contracts.envelope import Envelope
from contracts.events import (
    OperatorActionRecorded,
    PersonalDataErased,
    PolicyAdopted,
    TamperAcknowledged,
    TamperDetected,
)
from contracts.registry import ALL_TOPICS, EVENT_CLASSES
from servicekit.consumer import Handler
from servicekit.runtime import ServiceRuntime
from services.assessment import handlers
from services.assessment.db import AssessmentUnitOfWork

CONTACT_CONSUMER = "assessment-last-contact"


async def on_any_event(envelope: Envelope, uow: AssessmentUnitOfWork) -> None:
    """Any event about a person is a contact with them."""
    event = envelope.event
    await handlers.record_contact(
        uow=uow, council=event.council, person_id=event.person_id, at=envelope.time
    )


def register(runtime: ServiceRuntime[AssessmentUnitOfWork]) -> None:
    """Consume every topic for the last contact; the erasure itself is no contact."""
    contact_events: dict[type, Handler] = {
        event_cls: on_any_event
        for event_cls in EVENT_CLASSES
        if event_cls
        not in (
            PersonalDataErased,
            PolicyAdopted,
            OperatorActionRecorded,
            TamperDetected,
            TamperAcknowledged,
        )
    }
    runtime.add_consumer(topics=list(ALL_TOPICS), handlers=contact_events, name=CONTACT_CONSUMER)
