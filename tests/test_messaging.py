"""Outbox, relay, inbox and dead letters: the plumbing every service runs on."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.envelope import Envelope, decode
from contracts.events import AssessmentReturned, AssessmentStarted
from contracts.registry import DEAD_LETTER_TOPIC
from servicekit.consumer import EventConsumer
from servicekit.db import Database, messaging_tables
from servicekit.errors import Conflict
from servicekit.eventlog import OutgoingRecord
from servicekit.eventlog.embedded import EmbeddedEventLog
from servicekit.outbox import OutboxRelay
from servicekit.uow import UnitOfWork

metadata = sa.MetaData()
outbox, inbox, _ = messaging_tables(metadata)
effects = sa.Table("effects", metadata, sa.Column("event_id", sa.String(64)))


def returned(person: str = "P1") -> AssessmentReturned:
    return AssessmentReturned(
        person_id=person,
        council="lancashire",
        assessment_id=uuid.uuid4(),
        reasons=["Please complete the Health domain"],
        returned_by="care_manager:cm-1",
    )


def started(person: str) -> AssessmentStarted:
    return AssessmentStarted(
        person_id=person,
        council="lancashire",
        assessment_id=uuid.uuid4(),
        client_group="carers",
        completed_by="self",
        team="North",
        key_worker_id="cm-1",
        age_band="18-64",
        community_based=True,
        policy_version="lancashire/2009.1",
    )


@pytest.fixture
async def plumbing(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/svc.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    log = EmbeddedEventLog(tmp_path / "log.db")
    await log.start()
    relay = OutboxRelay(service="test", database=database, outbox=outbox, event_log=log)

    def uow() -> UnitOfWork:
        return UnitOfWork(database.sessions, outbox=outbox, inbox=inbox, on_commit=relay.wake)

    yield database, log, relay, uow
    await log.close()
    await database.dispose()


def assessment_consumer(log, uow, handlers, *, name: str = "test", **options) -> EventConsumer:
    """A consumer of the assessment topic, built as a service builds one."""
    return EventConsumer(
        name=name,
        event_log=log,
        topics=["pb.assessment"],
        handlers=handlers,
        unit_of_work=uow,
        **options,
    )


async def read_all(log, topic: str, expect: int):
    consumer = log.consumer(f"reader-{uuid.uuid4()}", [topic])
    records = []
    for _ in range(40):
        records.extend(await consumer.poll(timeout_ms=50))
        if len(records) >= expect:
            break
    return records


async def test_a_rolled_back_change_publishes_nothing(plumbing):
    _, _, relay, uow = plumbing
    async with uow() as work:
        work.emit(returned())
        await work.rollback()
    assert await relay.publish_pending() == 0


async def test_committed_events_reach_the_log_once_and_in_order(plumbing):
    _, log, relay, uow = plumbing
    async with uow() as work:
        first = work.emit(returned())
        second = work.emit(returned())
        await work.commit()
    await relay.drain()
    await relay.drain()
    records = await read_all(log, "pb.assessment", expect=2)
    assert [decode(r.value).id for r in records] == [first.id, second.id]
    assert await relay.backlog() == 0


async def test_events_wait_in_the_outbox_while_the_log_is_down(plumbing):
    _, log, relay, uow = plumbing
    await log.close()
    async with uow() as work:
        work.emit(returned())
        await work.commit()
    with pytest.raises(RuntimeError):
        await relay.publish_pending()
    assert await relay.backlog() == 1
    await log.start()
    await relay.drain()
    assert await relay.backlog() == 0
    assert len(await read_all(log, "pb.assessment", expect=1)) == 1


async def test_the_relay_publishes_within_milliseconds_of_a_commit(plumbing):
    _, _, relay, uow = plumbing
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.05)
        async with uow() as work:
            work.emit(returned())
            await work.commit()
        loop = asyncio.get_running_loop()
        started = loop.time()
        while await relay.backlog():
            await asyncio.sleep(0.005)
        assert loop.time() - started < 0.5  # the idle re-check is a full second
    finally:
        task.cancel()


async def test_a_stopped_consumer_applies_and_commits_the_batch_in_hand_before_it_returns(
    plumbing,
):
    # At shutdown a consumer is asked to stop, not cancelled inside a transaction: what it
    # has polled is applied and its offsets committed, so nothing is redelivered at start.
    database, log, _, uow = plumbing
    handling = asyncio.Event()
    release = asyncio.Event()

    async def slow_effect(envelope: Envelope, work: UnitOfWork) -> None:
        handling.set()
        await release.wait()
        await work.session.execute(effects.insert().values(event_id=envelope.id))

    consumer = assessment_consumer(log, uow, {AssessmentReturned: slow_effect}, name="stopping")
    await log.publish(
        [
            OutgoingRecord("pb.assessment", "P1", Envelope(event=returned()).to_message().value)
            for _ in range(3)
        ]
    )
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(handling.wait(), 10)
    consumer.stop()
    release.set()
    await asyncio.wait_for(running, 10)  # returns; a cancel would raise here
    async with database.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(effects)) == 3
    assert await log.consumer("stopping", ["pb.assessment"]).poll(timeout_ms=100) == []


async def test_a_consumer_waiting_for_events_and_an_idle_relay_stop_without_being_cancelled(
    plumbing,
):
    _, log, relay, uow = plumbing
    consumer = assessment_consumer(log, uow, {}, name="idle")
    workers = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
    await asyncio.sleep(0.2)  # both waiting: the consumer in poll, the relay for a commit
    consumer.stop()
    relay.stop()
    done = await asyncio.wait_for(asyncio.gather(*workers), 10)
    assert done == [None, None]


async def test_a_relay_stopped_before_it_runs_returns_and_a_later_run_publishes_again(plumbing):
    _, _, relay, uow = plumbing
    relay.stop()  # a shutdown that lands before the relay's task has started
    await asyncio.wait_for(relay.run(), 10)
    running = asyncio.create_task(relay.run())
    async with uow() as work:
        work.emit(returned())
        await work.commit()
    for _ in range(200):
        if not await relay.backlog():
            break
        await asyncio.sleep(0.02)
    relay.stop()
    await asyncio.wait_for(running, 10)
    assert await relay.backlog() == 0


async def test_a_redelivered_event_changes_nothing(plumbing):
    database, log, _, uow = plumbing

    async def record_effect(envelope: Envelope, work: UnitOfWork) -> None:
        await work.session.execute(effects.insert().values(event_id=envelope.id))

    consumer = assessment_consumer(log, uow, {AssessmentReturned: record_effect})
    envelope = Envelope(event=returned())
    value = envelope.to_message().value
    await log.publish([OutgoingRecord("pb.assessment", "P1", value)] * 2)
    for record in await read_all(log, "pb.assessment", expect=2):
        await consumer.handle(record)
    async with database.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(effects)) == 1


async def test_an_event_failing_its_schema_goes_to_the_dead_letter_topic_with_the_reason(plumbing):
    _, log, _, uow = plumbing
    good = json.loads(Envelope(event=returned()).to_message().value)
    good["data"]["reasons"] = []  # a return needs at least one reason
    await log.publish([OutgoingRecord("pb.assessment", "P1", json.dumps(good).encode())])
    consumer = assessment_consumer(log, uow, {})
    for record in await read_all(log, "pb.assessment", expect=1):
        await consumer.handle(record)
    dead = await read_all(log, DEAD_LETTER_TOPIC, expect=1)
    assert len(dead) == 1
    body = json.loads(dead[0].value)
    assert "fails its schema" in body["reason"] and "reasons" in body["reason"]
    assert body["consumer"] == "test"


async def test_a_handler_refusing_an_event_dead_letters_it_and_writes_nothing(plumbing):
    database, log, _, uow = plumbing

    async def refuse(envelope: Envelope, work: UnitOfWork) -> None:
        await work.session.execute(effects.insert().values(event_id=envelope.id))
        raise Conflict("the assessment was already validated")

    consumer = assessment_consumer(log, uow, {AssessmentReturned: refuse})
    await log.publish(
        [OutgoingRecord("pb.assessment", "P1", Envelope(event=returned()).to_message().value)]
    )
    for record in await read_all(log, "pb.assessment", expect=1):
        await consumer.handle(record)
    dead = await read_all(log, DEAD_LETTER_TOPIC, expect=1)
    assert "already validated" in json.loads(dead[0].value)["reason"]
    async with database.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(effects)) == 0


async def test_a_batch_handler_gets_consecutive_events_of_its_type_in_order_each_with_its_cause(
    plumbing,
):
    database, log, _, uow = plumbing
    calls: list[list[str]] = []

    async def one(envelope: Envelope, work: UnitOfWork) -> None:
        calls.append([envelope.id])
        await work.session.execute(effects.insert().values(event_id=envelope.id))

    async def many(envelopes, work: UnitOfWork, applying) -> None:
        calls.append([envelope.id for envelope in envelopes])
        for envelope in envelopes:
            with applying(envelope):
                work.emit(returned(envelope.subject + "-next"))
        await work.session.execute(
            effects.insert(), [{"event_id": envelope.id} for envelope in envelopes]
        )
        await work.commit()

    consumer = assessment_consumer(
        log,
        uow,
        {AssessmentReturned: one, AssessmentStarted: one},
        batch_handlers={AssessmentReturned: many},
    )
    sent = [
        Envelope(event=returned("P1")),
        Envelope(event=returned("P2")),
        Envelope(event=started("P1")),
        Envelope(event=returned("P3")),
    ]
    await log.publish([OutgoingRecord("pb.assessment", "K", e.to_message().value) for e in sent])
    await consumer.handle_all(await read_all(log, "pb.assessment", expect=4))

    assert calls == [[sent[0].id, sent[1].id], [sent[2].id], [sent[3].id]]
    async with database.sessions() as session:
        rows = (await session.execute(sa.select(outbox.c.value).order_by(outbox.c.seq))).all()
        assert await session.scalar(sa.select(sa.func.count()).select_from(effects)) == 4
    caused = [decode(row.value).causation_id for row in rows]
    assert caused == [sent[0].id, sent[1].id, sent[3].id]


async def test_a_failed_batch_is_applied_one_by_one_through_the_per_event_handler(plumbing):
    database, log, _, uow = plumbing

    async def one(envelope: Envelope, work: UnitOfWork) -> None:
        if envelope.subject == "P2":
            raise Conflict("P2 is refused")
        await work.session.execute(effects.insert().values(event_id=envelope.id))

    async def many(envelopes, work: UnitOfWork, applying) -> None:
        await work.session.execute(
            effects.insert(), [{"event_id": envelope.id} for envelope in envelopes]
        )
        raise Conflict("something in the batch is refused")

    consumer = assessment_consumer(
        log, uow, {AssessmentReturned: one}, batch_handlers={AssessmentReturned: many}
    )
    sent = [Envelope(event=returned(person)) for person in ("P1", "P2", "P3")]
    await log.publish([OutgoingRecord("pb.assessment", "K", e.to_message().value) for e in sent])
    await consumer.handle_all(await read_all(log, "pb.assessment", expect=3))

    async with database.sessions() as session:
        applied = set((await session.execute(sa.select(effects.c.event_id))).scalars())
    assert applied == {sent[0].id, sent[2].id}
    dead = await read_all(log, DEAD_LETTER_TOPIC, expect=1)
    assert "P2 is refused" in json.loads(dead[0].value)["reason"]
