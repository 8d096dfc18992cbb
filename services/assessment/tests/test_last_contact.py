"""Each person's last contact, which their retention period counts from (docs/privacy.md):
the time of the latest event about them from any service, however the events arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import structlog.testing
from fastapi import FastAPI

import contracts.events as ev
from contracts.envelope import Envelope, decode
from contracts.golden.make_golden import golden_file
from servicekit.testing import Tokens, deliver, deliver_all, named_public_key, running, runtime_of
from services.assessment.api import create_app
from services.assessment.db import person_activity
from services.assessment.settings import Settings

MONDAY = datetime(2026, 3, 2, 9, tzinfo=UTC)


def contact(council: str, person_id: str, hours: int) -> Envelope:
    """An event about the person from another service, `hours` after Monday 09:00."""
    golden = decode(golden_file(ev.BudgetIssued.type).read_bytes()).event
    event = golden.model_copy(update={"council": council, "person_id": person_id})
    return Envelope(event=event, time=MONDAY + timedelta(hours=hours))


async def last_contacts(app: FastAPI) -> list[tuple[str, str, datetime]]:
    async with runtime_of(app).database.sessions() as session:
        rows = await session.execute(
            sa.select(person_activity).order_by(
                person_activity.c.council, person_activity.c.person_id
            )
        )
        return [(council, person, at.replace(tzinfo=UTC)) for council, person, at in rows]


async def test_a_poll_leaves_each_persons_last_contact_as_one_event_at_a_time_does(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    # Held before the poll: p-1 last seen at hour 50 (the poll's p-1 events are earlier),
    # p-2 at hour 1 (the poll's are later). In the poll, out of order: p-3's latest comes
    # first; p-1 of another council is another person.
    held = [contact("lancashire", "p-1", 50), contact("lancashire", "p-2", 1)]
    poll = [
        contact("lancashire", "p-3", 30),
        contact("lancashire", "p-1", 10),
        contact("lancashire", "p-2", 5),
        contact("council_b", "p-1", 70),
        contact("lancashire", "p-3", 20),
        contact("lancashire", "p-2", 40),
        contact("lancashire", "p-2", 12),
    ]
    found = []
    for name in ("one-by-one", "one-poll"):
        settings = Settings(
            data_dir=data_dir / name,
            policies_dir=policies_dir,
            jwt_public_key_file=named_public_key(data_dir),
        )
        app = create_app(settings)
        async with running(app):
            for envelope in held:
                await deliver(app, envelope)
            with structlog.testing.capture_logs() as logged:
                if name == "one-by-one":
                    for envelope in poll:
                        await deliver(app, envelope)
                else:
                    await deliver_all(app, list(poll))
            assert not [entry for entry in logged if entry["event"] == "consumer_batch_fallback"]
            found.append(await last_contacts(app))
    hours = {
        (council, person): (at - MONDAY) / timedelta(hours=1) for council, person, at in found[1]
    }
    assert found[0] == found[1]
    assert hours == {
        ("council_b", "p-1"): 70,
        ("lancashire", "p-1"): 50,
        ("lancashire", "p-2"): 40,
        ("lancashire", "p-3"): 30,
    }
