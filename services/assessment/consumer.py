"""Assessment's event consumer: the last contact with each person, for retention.

Assessment starts the journey (seed 003 step 1a) and acts on no other service's events.
It does read every topic for one thing: the time of the latest event about each person,
because the council's retention period runs from the last contact with the person,
whichever service it was (docs/privacy.md).

PolicyAdopted and OperatorActionRecorded are no contact with anyone. servicekit's runtime
follows PolicyAdopted for every service whose database has the adopted_policies table
(ADR 10). Audit's tamper findings are about the record, not contacts with the
person either.

PolicyAdopted does one thing here: a policy whose charging figures differ from those a
person's latest financial assessment used restates that person's charge from its date
(the April uprating, docs/charging.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.envelope import Envelope
from contracts.events import (
    OperatorActionRecorded,
    PersonalDataErased,
    PolicyAdopted,
    TamperAcknowledged,
    TamperDetected,
)
from contracts.registry import ALL_TOPICS, EVENT_CLASSES, topic_for
from servicekit.consumer import Applying, Handler
from servicekit.runtime import ServiceRuntime
from services.assessment import handlers
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.settings import Settings

CONTACT_CONSUMER = "assessment-last-contact"
UPRATING_CONSUMER = "assessment-uprating"


async def on_any_event(envelope: Envelope, uow: AssessmentUnitOfWork) -> None:
    """Any event about a person is a contact with them."""
    event = envelope.event
    await handlers.record_contact(
        uow=uow, council=event.council, person_id=event.person_id, at=envelope.time
    )


async def on_events(
    envelopes: Sequence[Envelope], uow: AssessmentUnitOfWork, applying: Applying
) -> None:
    """A batch's run of events about people, of any types: each person's last contact
    written once for the run."""
    await handlers.record_contacts(uow=uow, events=envelopes)


def register(runtime: ServiceRuntime[AssessmentUnitOfWork]) -> None:
    """Consume every topic for the last contact (the erasure itself is no contact), and
    policy adoptions for the uprating of charges."""
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
    runtime.add_consumer(
        topics=list(ALL_TOPICS),
        handlers=contact_events,
        batch_handlers=dict.fromkeys(contact_events, on_events),
        name=CONTACT_CONSUMER,
    )
    settings = runtime.settings
    assert isinstance(settings, Settings)
    keys = settings.master_key()

    async def on_policy_adopted(envelope: Envelope, uow: AssessmentUnitOfWork) -> None:
        assert isinstance(envelope.event, PolicyAdopted)
        await handlers.uprate_charges(
            uow=uow, keys=keys, policies=runtime.policies, adopted=envelope.event
        )

    runtime.add_consumer(
        topics=[topic_for(PolicyAdopted)],
        handlers={PolicyAdopted: on_policy_adopted},
        name=UPRATING_CONSUMER,
    )
