"""Signed-off plans applied a batch at a time leave exactly what one at a time leaves: the
same deployments (opened, superseded, or none for a plan version seen before), the same
rows in every table and the same events in the same order."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import Event
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import Tokens, deliver, deliver_all, outbox_events, running, runtime_of
from services.payments import domain
from services.payments.api import create_app
from services.payments.settings import Settings
from services.payments.tests.test_api import signed_plan

AT = datetime(2010, 6, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
async def two_services(
    data_dir: Path, policies_dir: Path
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    apps = []
    for name in ("one-by-one", "batched"):
        (data_dir / name).mkdir()
        Tokens(data_dir / name)  # the service reads the signing key at start
        apps.append(create_app(Settings(data_dir=data_dir / name, policies_dir=policies_dir)))
    with clock.using(SettableClock(AT)):
        async with running(apps[0]), running(apps[1]):
            yield apps[0], apps[1]


def same_new_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each service numbers its new deployments 1, 2, 3...: the two runs are comparable."""
    numbers = itertools.count(1)
    monkeypatch.setattr(domain, "uuid4", lambda: UUID(int=next(numbers)))
    yield


def only_in_batches(app: FastAPI) -> None:
    """From now on the app's consumers may not fall back to one event at a time, so what
    they leave is the batch handler's own work."""

    async def one_at_a_time(*args: Any) -> None:
        raise AssertionError("the batch fell back to one event at a time")

    for consumer in runtime_of(app).consumers:
        consumer._handle_decoded = one_at_a_time  # type: ignore[method-assign]


async def _state(app: FastAPI) -> dict[str, list[dict[str, Any]]]:
    runtime = runtime_of(app)
    names = ("deployments", "schedules", "instalments", "budget_statements")
    async with runtime.database.sessions() as session:
        return {
            name: sorted(
                (
                    dict(row)
                    for row in (await session.execute(sa.text(f"SELECT * FROM {name}")))
                    .mappings()
                    .all()
                ),
                key=repr,
            )
            for name in names
        }


def _told(envelopes: list[Envelope]) -> list[tuple[str, Any]]:
    return [(e.type, e.event.model_dump(mode="json")) for e in envelopes]


async def test_signed_off_plans_in_a_batch_leave_the_deployments_one_at_a_time_leaves(
    two_services: tuple[FastAPI, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one, batched = two_services
    known_plan, new_plan = uuid4(), uuid4()
    before: list[Event] = [signed_plan(person_id="p-known", plan_id=known_plan)]
    first = signed_plan(person_id="p-new", plan_id=new_plan)
    poll: list[Event] = [
        first,
        # A revised plan supersedes the deployment never agreed, one already in the store...
        signed_plan(person_id="p-known", plan_id=known_plan, plan_version=2),
        # ...the same plan version again (a new event) changes nothing...
        first.model_copy(),
        # ...and a revision supersedes the one this batch opened.
        signed_plan(person_id="p-new", plan_id=new_plan, plan_version=2, annual_pence=520_000),
        # The same person id in another council is another person.
        signed_plan("council_a", person_id="p-new"),
        # An older version arriving late changes nothing.
        signed_plan(person_id="p-known", plan_id=known_plan, plan_version=1),
    ]
    envelopes: list[Event | Envelope] = [Envelope(event=event) for event in poll]
    for app in (one_by_one, batched):
        numbering = same_new_ids(monkeypatch)
        next(numbering)
        for event in before:
            await deliver(app, Envelope(event=event))
        if app is one_by_one:
            for envelope in envelopes:
                await deliver(app, envelope)
        else:
            only_in_batches(app)
            await deliver_all(app, envelopes)

    assert await _state(batched) == await _state(one_by_one)
    assert _told(await outbox_events(batched)) == _told(await outbox_events(one_by_one))
    statuses = sorted(row["status"] for row in (await _state(batched))["deployments"])
    assert statuses.count("superseded") == 2 and len(statuses) == 5
