"""What every event log engine must do: Kafka's semantics (ADR 0001), whichever is behind.

A backend's test module subclasses EventLogContract and provides the `log` fixture (a
started EventLog) and `partition_of` (the partition its partitioner picks for a key).
Every test gets topics and consumer groups of its own, so a real broker that outlives
the test run never mixes one test's records or offsets into another's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from servicekit.eventlog import Consumer, EventLog, OutgoingRecord, Record

OpenConsumer = Callable[[str, Sequence[str]], Consumer]


async def drain(consumer: Consumer, *, expect: int, within: float = 20.0) -> list[Record]:
    """Poll until `expect` records have come or `within` seconds have passed."""
    records: list[Record] = []
    deadline = time.monotonic() + within
    while len(records) < expect and time.monotonic() < deadline:
        records.extend(await consumer.poll(timeout_ms=100))
    return records


class EventLogContract:
    @pytest.fixture
    async def log(self) -> AsyncIterator[EventLog]:
        raise NotImplementedError("a backend's test class provides the started log")
        yield  # pragma: no cover

    def partition_of(self, log: Any, key: str) -> int:
        raise NotImplementedError

    async def drop_topic(self, log: Any, topic: str) -> None:
        """Remove a test's topic afterwards, where the log outlives the test."""

    @pytest.fixture
    async def topic(self, log: EventLog) -> AsyncIterator[str]:
        name = f"pbj-test-{uuid.uuid4().hex[:12]}"
        await log.ensure_topics([name])
        yield name
        await self.drop_topic(log, name)

    @pytest.fixture
    async def open_consumer(self, log: EventLog) -> AsyncIterator[OpenConsumer]:
        prefix = uuid.uuid4().hex[:12]
        opened: list[Consumer] = []

        def open_(group: str, topics: Sequence[str]) -> Consumer:
            consumer = log.consumer(f"{prefix}-{group}", topics)
            opened.append(consumer)
            return consumer

        yield open_
        for consumer in opened:
            await consumer.close()

    async def test_one_persons_records_keep_their_order(self, log, topic, open_consumer):
        await log.publish(
            [OutgoingRecord(topic, f"person-{i % 3}", f"{i}".encode()) for i in range(30)]
        )
        records = await drain(open_consumer("g", [topic]), expect=30)
        by_person: dict[str, list[int]] = {}
        for record in records:
            by_person.setdefault(record.key, []).append(int(record.value))
        assert all(values == sorted(values) for values in by_person.values())
        assert sum(len(v) for v in by_person.values()) == 30

    async def test_a_key_always_lands_in_the_same_partition(self, log, topic, open_consumer):
        await log.publish([OutgoingRecord(topic, "P1", b"a"), OutgoingRecord(topic, "P1", b"b")])
        records = await drain(open_consumer("g", [topic]), expect=2)
        assert {r.partition for r in records} == {self.partition_of(log, "P1")}
        assert [r.offset for r in records] == [0, 1]

    async def test_a_record_keeps_its_key_value_and_headers(self, log, topic, open_consumer):
        headers = {"content-type": b"application/cloudevents+json", "reason": "café".encode()}
        await log.publish([OutgoingRecord(topic, "P1", b"\x00body\xff", headers)])
        before_ms = int(time.time() * 1000) - 60_000
        (record,) = await drain(open_consumer("g", [topic]), expect=1)
        assert (record.topic, record.key, record.value) == (topic, "P1", b"\x00body\xff")
        assert record.headers == headers
        assert record.timestamp_ms > before_ms

    async def test_a_group_resumes_after_its_committed_offset(self, log, topic, open_consumer):
        await log.publish([OutgoingRecord(topic, "P1", b"1"), OutgoingRecord(topic, "P1", b"2")])
        first = open_consumer("g", [topic])
        records = await drain(first, expect=2)
        await first.commit(records[:1])
        await first.close()
        again = await drain(open_consumer("g", [topic]), expect=1)
        assert [r.value for r in again] == [b"2"]

    async def test_groups_are_independent(self, log, topic, open_consumer):
        await log.publish([OutgoingRecord(topic, "P1", b"1")])
        one = open_consumer("one", [topic])
        await one.commit(await drain(one, expect=1))
        assert len(await drain(open_consumer("two", [topic]), expect=1)) == 1

    async def test_a_consumer_can_seek_to_a_time_and_to_the_beginning(
        self, log, topic, open_consumer
    ):
        await log.publish([OutgoingRecord(topic, "P1", b"old")])
        await asyncio.sleep(0.02)
        consumer = open_consumer("g", [topic])
        await drain(consumer, expect=1)
        boundary = int(time.time() * 1000)
        await asyncio.sleep(0.02)
        await log.publish([OutgoingRecord(topic, "P1", b"new")])
        positions = await consumer.seek_to_time(boundary)
        ends = await consumer.end_offsets()
        # It says where each partition now stands: one record (the new one) before the ends.
        assert set(positions) == set(ends)
        assert sum(ends[slot] - at for slot, at in positions.items()) == 1
        assert [r.value for r in await drain(consumer, expect=1)] == [b"new"]
        await consumer.seek_to_beginning()
        assert [r.value for r in await drain(consumer, expect=2)] == [b"old", b"new"]
        ends = await consumer.end_offsets()
        assert sum(ends.values()) == 2

    async def test_seeking_past_the_last_record_waits_for_new_ones(self, log, topic, open_consumer):
        await log.publish([OutgoingRecord(topic, "P1", b"old")])
        consumer = open_consumer("g", [topic])
        await consumer.seek_to_time(int(time.time() * 1000) + 60_000)
        assert await drain(consumer, expect=1, within=0.5) == []
        await log.publish([OutgoingRecord(topic, "P1", b"new")])
        assert [r.value for r in await drain(consumer, expect=1)] == [b"new"]
