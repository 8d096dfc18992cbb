"""Operators redeliver events and re-drive dead letters; audit records who did it and why.

The services run in-process on one embedded log (servicekit.testing), and the actions go
through pbj/log_operations.py, the code `pbj events` and `pbj dead-letters` run.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from typer.testing import CliRunner

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.policy import PolicyBook
from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from pbj.cli import app as pbj_app
from pbj.journey import Staff, walk_journey
from pbj.log_operations import (
    OPERATIONS_TOPIC,
    OperationRefused,
    Selection,
    dead_letters,
    read_topics,
    redeliver,
    redrive,
)
from servicekit.errors import DomainError
from servicekit.eventlog import EventLog, OutgoingRecord, open_event_log
from servicekit.eventlog.embedded import stored_records
from servicekit.metrics import EVENTS_CONSUMED
from servicekit.testing import POLICIES_DIR, Tokens, running, runtime_of
from services.audit import handlers as audit_handlers

T = TypeVar("T")
SERVICES = ("assessment", "allocation", "planning", "payments", "audit")
COUNCIL = "lancashire"
OPERATIONS_CHAIN = f"operations:{COUNCIL}"


def service_app(name: str, data_dir: Path) -> FastAPI:
    api = importlib.import_module(f"services.{name}.api")
    settings = importlib.import_module(f"services.{name}.settings")
    app: FastAPI = api.create_app(settings.Settings(data_dir=data_dir, policies_dir=POLICIES_DIR))
    return app


async def eventually(
    what: str, attempt: Callable[[], Awaitable[T | None]], timeout: float = 30
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await attempt()
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def on_log(data_dir: Path) -> AsyncIterator[EventLog]:
    log = open_event_log(f"sqlite:///{data_dir}/eventlog.db")
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def history(client: httpx.AsyncClient, headers: dict[str, str], chain: str) -> list[Any]:
    response = await client.get(f"/v1/people/{chain}/history?limit=200", headers=headers)
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def started(person_id: str) -> ev.AssessmentStarted:
    return ev.AssessmentStarted(
        person_id=person_id,
        council=COUNCIL,
        assessment_id=uuid.uuid4(),
        client_group=ClientGroup.OLDER_PEOPLE,
        completed_by=CompletedBy.SUPPORTED,
        team="North",
        key_worker_id="KW7",
        age_band=AgeBand.AGE_75_84,
        community_based=True,
        policy_version="lancashire/2009.1",
    )


# --- a dead letter re-driven once -----------------------------------------------------------


class AuditStoreNotReady(DomainError):
    """Stands for the defect a fix removes: audit refuses this event until then."""


async def test_a_refused_event_is_dead_lettered_then_redriven_once_and_recorded_with_who_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = Envelope(event=started("P-REDRIVE"))
    fixed = False
    record_event = audit_handlers.record_event

    async def refusing_until_fixed(*, envelope: Envelope, uow: Any) -> Any:
        if envelope.id == refused.id and not fixed:
            raise AuditStoreNotReady("the audit store cannot take this event yet")
        return await record_event(envelope=envelope, uow=uow)

    monkeypatch.setattr(audit_handlers, "record_event", refusing_until_fixed)
    auditor = Tokens(tmp_path).headers(Role.AUDITOR, COUNCIL)
    app = service_app("audit", tmp_path)
    async with running(app) as client, on_log(tmp_path) as log:
        await log.publish(
            [OutgoingRecord(refused.topic, refused.subject, refused.to_message().value or b"")]
        )

        async def one_dead_letter() -> Any:
            letters = await dead_letters(log)
            return letters[0] if letters else None

        letter = await eventually("the dead letter", one_dead_letter)
        assert (letter.consumer, letter.topic, letter.event_id) == (
            "audit",
            "pb.assessment",
            refused.id,
        )
        assert "AuditStoreNotReady" in letter.reason and letter.redriven is None
        assert await history(client, auditor, "P-REDRIVE") == []

        fixed = True
        done = await redrive(
            log,
            dead_letter_ids=[letter.dead_letter_id],
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Audit store fixed in release 2.4",
        )
        assert done is not None and done.records == 1

        async def applied() -> list[Any] | None:
            items = await history(client, auditor, "P-REDRIVE")
            return items or None

        assert [item["event_id"] for item in await eventually("the re-drive", applied)] == [
            refused.id
        ]
        assert (
            await redrive(
                log,
                dead_letter_ids=[letter.dead_letter_id],
                council=COUNCIL,
                performed_by="operations:ops-ann",
                reason="Again, by mistake",
            )
            is None
        )
        assert (
            await redrive(
                log,
                dead_letter_ids=None,
                council=COUNCIL,
                performed_by="operations:ops-bo",
                reason="All",
            )
            is None
        )
        [listed] = await dead_letters(log)
        assert listed.redriven is not None and listed.redriven.performed_by == "operations:ops-ann"

        actions = await eventually(
            "the action in the audit",
            lambda: _nonempty(history(client, auditor, OPERATIONS_CHAIN)),
        )
        await asyncio.sleep(0.5)  # time for anything more to arrive: nothing should
        assert len(await history(client, auditor, "P-REDRIVE")) == 1
        actions = await history(client, auditor, OPERATIONS_CHAIN)
        # The record of the action is on the log: a rebuild of audit from it keeps it.
        operations = Tokens(tmp_path).headers(Role.OPERATIONS, COUNCIL)
        live = (await client.get("/v1/projections/digest", headers=operations)).json()["digest"]
        replay = (await client.post("/v1/replay", json={}, headers=operations)).json()

        async def replayed() -> Any:
            state = (
                await client.get(f"/v1/replay/{replay['replay_id']}", headers=operations)
            ).json()
            return None if state["status"] == "running" else state

        assert (await eventually("the replay", replayed))["status"] == "done"
        rebuilt = (await client.get("/v1/projections/digest", headers=operations)).json()
        assert rebuilt["digest"] == live
    [action] = actions
    assert action["type"] == ev.OperatorActionRecorded.type
    assert action["actor"] == "operations:ops-ann"
    assert action["data"]["action"] == "dead_letters_redriven"
    assert action["data"]["performed_by"] == "operations:ops-ann"
    assert action["data"]["reason"] == "Audit store fixed in release 2.4"
    assert action["data"]["dead_letter_ids"] == [letter.dead_letter_id]
    assert action["data"]["event_ids"] == [refused.id]


async def _nonempty(items: Awaitable[list[Any]]) -> list[Any] | None:
    found = await items
    return found or None


async def test_the_operations_history_is_for_auditors_and_operations_and_is_no_ones_case(
    tmp_path: Path,
) -> None:
    tokens = Tokens(tmp_path)
    app = service_app("audit", tmp_path)
    async with running(app) as client, on_log(tmp_path) as log:
        await log.publish(
            [
                OutgoingRecord(
                    "pb.assessment", "P-1", Envelope(event=started("P-1")).to_message().value or b""
                )
            ]
        )
        await redeliver(
            log,
            selection=Selection(person_id="P-1"),
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Checking the planning consumer after its restart",
        )
        for role in (Role.AUDITOR, Role.OPERATIONS):
            await eventually(
                f"{role} reading the operations history",
                lambda role=role: _nonempty(
                    history(client, tokens.headers(role), OPERATIONS_CHAIN)
                ),
            )
        for role in (Role.CARE_MANAGER, Role.FINANCE):
            response = await client.get(
                f"/v1/people/{OPERATIONS_CHAIN}/history", headers=tokens.headers(role)
            )
            assert response.status_code == 403, role
        caseload = await client.get("/v1/caseload", headers=tokens.headers(Role.OPERATIONS))
        assert [item["person_id"] for item in caseload.json()["items"]] == ["P-1"]
        elsewhere = await client.get(
            f"/v1/people/{OPERATIONS_CHAIN}/history",
            headers=tokens.headers(Role.AUDITOR, "council_a"),
        )
        assert elsewhere.status_code == 404


async def test_a_redelivery_is_refused_when_nothing_of_the_council_matches(tmp_path: Path) -> None:
    async with on_log(tmp_path) as log:
        await log.publish(
            [
                OutgoingRecord(
                    "pb.assessment", "P-1", Envelope(event=started("P-1")).to_message().value or b""
                )
            ]
        )
        with pytest.raises(OperationRefused, match="no event matched"):
            await redeliver(
                log,
                selection=Selection(person_id="P-1"),
                council="council_a",
                performed_by="operations:ops-ann",
                reason="Wrong council",
            )
        with pytest.raises(OperationRefused, match="one way"):
            Selection(person_id="P-1", event_ids=frozenset({"x"}))
        records = await _all_records(log)
    assert [r.topic for r in records] == ["pb.assessment"]  # nothing published, no action


async def _all_records(log: EventLog) -> list[Any]:
    return await read_topics(log, ALL_TOPICS)


# --- redelivering a whole person changes nothing -------------------------------------------


async def service_rows(
    apps: dict[str, FastAPI], skip: set[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every service, leaving out rows holding a value in
    `skip` (the operator action's own chain and inbox rows)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for name, app in apps.items():
        runtime = runtime_of(app)
        async with runtime.database.sessions() as session:
            for table in runtime.metadata.sorted_tables:
                found = (await session.execute(sa.select(table))).all()
                rows[f"{name}.{table.name}"] = sorted(
                    (tuple(row) for row in found if not skip & {str(v) for v in row}),
                    key=repr,
                )
    return rows


def lagging_groups(log_file: Path) -> list[str]:
    """Consumer groups whose committed offsets are behind the end of a partition they read."""
    ends: dict[tuple[str, int], int] = {}
    for record in stored_records(log_file):
        ends[(record.topic, record.partition)] = record.offset + 1
    with sqlite3.connect(log_file) as conn:
        return [
            group
            for group, topic, partition, committed in conn.execute(
                "SELECT group_id, topic, partition, next_offset FROM group_offsets"
            )
            if committed < ends.get((topic, partition), 0)
        ]


def duplicates_seen(consumer: str) -> float:
    return EVENTS_CONSUMED.labels(consumer, "duplicate")._value.get()  # type: ignore[attr-defined]


async def test_redelivering_a_whole_persons_events_changes_nothing_in_any_service(
    tmp_path: Path,
) -> None:
    Tokens(tmp_path)  # the development key pair the services trust and Staff signs with
    apps = {name: service_app(name, tmp_path) for name in SERVICES}
    book = PolicyBook.from_directory(POLICIES_DIR)
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                mounts={
                    f"http://{name}": httpx.ASGITransport(app=app) for name, app in apps.items()
                },
                timeout=30,
            )
        )
        log = await stack.enter_async_context(on_log(tmp_path))
        urls = {name: f"http://{name}" for name in SERVICES}
        journey = await walk_journey(client, urls, Staff(tmp_path, COUNCIL), book.current(COUNCIL))
        assert journey.stage == "complete"
        log_file = tmp_path / "eventlog.db"
        await eventually("every consumer caught up", lambda: _none_if(lagging_groups(log_file)))
        before = await service_rows(apps, skip=set())
        audit_duplicates = duplicates_seen("audit")

        done = await redeliver(
            log,
            selection=Selection(person_id=journey.person_id),
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Payments missed a partition after the broker move; checking",
        )
        assert done.records == journey.audit_events > 10

        await eventually(
            "audit to see every copy",
            lambda: _true_or_none(duplicates_seen("audit") >= audit_duplicates + done.records),
        )
        await eventually("every consumer caught up", lambda: _none_if(lagging_groups(log_file)))
        after = await service_rows(apps, skip={OPERATIONS_CHAIN, done.envelope_id})
        auditor = Staff(tmp_path, COUNCIL)(Role.AUDITOR)
        audit_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps["audit"]), base_url="http://audit"
        )
        async with audit_client:
            actions = await eventually(
                "the action in the audit",
                lambda: _nonempty(history(audit_client, auditor, OPERATIONS_CHAIN)),
            )
    changed = [table for table in before if before[table] != after[table]]
    assert changed == [], f"redelivery changed {changed}"
    assert duplicates_seen("audit") == audit_duplicates + done.records
    [action] = actions
    assert action["actor"] == "operations:ops-ann"
    assert action["data"]["action"] == "events_redelivered"
    assert action["data"]["reason"] == "Payments missed a partition after the broker move; checking"
    assert len(action["data"]["event_ids"]) == done.records


async def _none_if(lagging: list[str]) -> bool | None:
    return None if lagging else True


async def _true_or_none(value: bool) -> bool | None:
    return True if value else None


# --- the command line ------------------------------------------------------------------------


def test_pbj_dead_letters_list_shows_each_with_its_reason_and_show_gives_the_record(
    tmp_path: Path,
) -> None:
    envelope = Envelope(event=started("P-CLI"))
    body = {
        "reason": "AuditStoreNotReady: the audit store cannot take this event yet",
        "consumer": "audit",
        "topic": "pb.assessment",
        "partition": 1,
        "offset": 4,
        "key": "P-CLI",
    }

    async def seed() -> None:
        async with on_log(tmp_path) as log:
            value = envelope.to_message().value or b""
            letter = {**body, "value_base64": base64.b64encode(value).decode()}
            await log.publish(
                [OutgoingRecord("pb.dead-letter", "P-CLI", json.dumps(letter).encode())]
            )

    asyncio.run(seed())

    async def the_only_letter() -> Any:
        async with on_log(tmp_path) as log:
            [letter] = await dead_letters(log)
        return letter

    letter = asyncio.run(the_only_letter())
    runner = CliRunner()
    wide = {"COLUMNS": "250"}
    listed = runner.invoke(pbj_app, ["dead-letters", "list", "--data-dir", str(tmp_path)], env=wide)
    assert listed.exit_code == 0, listed.output
    for shown_there in (letter.dead_letter_id, "pb.assessment", "audit", envelope.id, "waiting"):
        assert shown_there in listed.output
    assert "AuditStoreNotReady: the audit store cannot take this event yet" in listed.output
    shown = runner.invoke(
        pbj_app, ["dead-letters", "show", letter.dead_letter_id, "--data-dir", str(tmp_path)]
    )
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["reason"] == body["reason"] and document["redriven"] is None
    assert document["record"]["id"] == envelope.id
    without_reason = runner.invoke(
        pbj_app,
        [
            "dead-letters",
            "redrive",
            letter.dead_letter_id,
            "--council",
            COUNCIL,
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert without_reason.exit_code != 0
    redriven = runner.invoke(
        pbj_app,
        [
            "dead-letters",
            "redrive",
            letter.dead_letter_id,
            "--council",
            COUNCIL,
            "--reason",
            "Fixed in 2.4",
            "--user",
            "ops-ann",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert redriven.exit_code == 0, redriven.output
    assert "Re-drove 1 dead letter(s)" in redriven.output
    again = runner.invoke(
        pbj_app,
        [
            "dead-letters",
            "redrive",
            "--all",
            "--council",
            COUNCIL,
            "--reason",
            "Fixed in 2.4",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert again.exit_code == 0 and "Nothing to re-drive" in again.output


# --- the same on Kafka -------------------------------------------------------------------------


@pytest.mark.kafka
async def test_on_kafka_a_redelivery_and_a_redrive_republish_the_records_and_record_the_actions(
    kafka_bootstrap: str,
) -> None:
    namespace = f"ops-{uuid.uuid4().hex[:8]}"
    log = open_event_log(f"kafka://{kafka_bootstrap}?namespace={namespace}")
    await log.start()
    try:
        await log.ensure_topics([*ALL_TOPICS, DEAD_LETTER_TOPIC])
        event = Envelope(event=started("P-KAFKA"))
        value = event.to_message().value or b""
        letter = {
            "reason": "AuditStoreNotReady: the audit store cannot take this event yet",
            "consumer": "audit",
            "topic": event.topic,
            "partition": 0,
            "offset": 0,
            "key": event.subject,
            "value_base64": base64.b64encode(value).decode(),
        }
        await log.publish(
            [
                OutgoingRecord(event.topic, event.subject, value),
                OutgoingRecord(DEAD_LETTER_TOPIC, event.subject, json.dumps(letter).encode()),
            ]
        )
        redelivered = await redeliver(
            log,
            selection=Selection(event_ids=frozenset({event.id})),
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Checking the consumers after the broker move",
        )
        [dead] = await dead_letters(log)
        redriven = await redrive(
            log,
            dead_letter_ids=[dead.dead_letter_id],
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Audit store fixed in release 2.4",
        )
        again = await redrive(
            log,
            dead_letter_ids=None,
            council=COUNCIL,
            performed_by="operations:ops-ann",
            reason="Again",
        )
        records = await read_topics(log, [event.topic, OPERATIONS_TOPIC])
    finally:
        await log.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(
                [f"{namespace}.{t}" for t in (*ALL_TOPICS, DEAD_LETTER_TOPIC)]
            )
        finally:
            await admin.close()
    assert redelivered.records == 1 and redriven is not None and again is None
    copies = [r for r in records if r.topic == event.topic]
    assert [r.value for r in copies] == [value] * 3  # the original, redelivered, re-driven
    actions = [json.loads(r.value)["data"] for r in records if r.topic == OPERATIONS_TOPIC]
    assert [a["action"] for a in actions] == ["events_redelivered", "dead_letters_redriven"]
    assert actions[1]["dead_letter_ids"] == [dead.dead_letter_id]


@pytest.mark.parametrize(
    ("choice", "says"),
    [
        (["--since", "23/11/2026 09:00"], "RFC 3339"),
        (["--person", "P-1", "--event-id", "e-1"], "one way"),
        (["--until", "2026-11-23T10:00:00Z"], "one way"),
        (["--since", "2026-11-23T10:00:00Z", "--until", "2026-11-23T09:00:00Z"], "after --since"),
        (["--person", "P-1", "--council", "Lancashire"], "council's slug"),
    ],
)
def test_pbj_events_redeliver_refuses_an_unclear_choice_and_publishes_nothing(
    tmp_path: Path, choice: list[str], says: str
) -> None:
    council = [] if "--council" in choice else ["--council", COUNCIL]
    refused = CliRunner().invoke(
        pbj_app,
        [
            "events",
            "redeliver",
            *choice,
            *council,
            "--reason",
            "Checking",
            "--data-dir",
            str(tmp_path),
        ],
        env={"COLUMNS": "250"},
    )
    assert refused.exit_code == 1
    assert says in refused.output
    assert not (tmp_path / "eventlog.db").exists()
