"""The embedded event log keeps Kafka's semantics (ADR 0001)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servicekit.eventlog import OutgoingRecord, open_event_log, partition_for
from servicekit.eventlog.embedded import EmbeddedEventLog


@pytest.fixture
async def log(tmp_path: Path):
    event_log = EmbeddedEventLog(tmp_path / "log.db")
    await event_log.start()
    yield event_log
    await event_log.close()


async def drain(consumer, *, expect: int) -> list:
    records: list = []
    for _ in range(50):
        records.extend(await consumer.poll(timeout_ms=50))
        if len(records) >= expect:
            break
    return records


async def test_one_persons_records_keep_their_order(log):
    await log.publish(
        [OutgoingRecord("pb.t", f"person-{i % 3}", f"{i}".encode()) for i in range(30)]
    )
    records = await drain(log.consumer("g", ["pb.t"]), expect=30)
    by_person: dict[str, list[int]] = {}
    for record in records:
        by_person.setdefault(record.key, []).append(int(record.value))
    assert all(values == sorted(values) for values in by_person.values())
    assert sum(len(v) for v in by_person.values()) == 30


async def test_a_key_always_lands_in_the_same_partition(log):
    await log.publish([OutgoingRecord("pb.t", "P1", b"a"), OutgoingRecord("pb.t", "P1", b"b")])
    records = await drain(log.consumer("g", ["pb.t"]), expect=2)
    assert {r.partition for r in records} == {partition_for("P1", log.partitions)}
    assert [r.offset for r in records] == [0, 1]


async def test_a_group_resumes_after_its_committed_offset(log):
    await log.publish([OutgoingRecord("pb.t", "P1", b"1"), OutgoingRecord("pb.t", "P1", b"2")])
    first = log.consumer("g", ["pb.t"])
    records = await drain(first, expect=2)
    await first.commit(records[:1])
    await first.close()
    again = await drain(log.consumer("g", ["pb.t"]), expect=1)
    assert [r.value for r in again] == [b"2"]


async def test_groups_are_independent(log):
    await log.publish([OutgoingRecord("pb.t", "P1", b"1")])
    one = log.consumer("one", ["pb.t"])
    await one.commit(await drain(one, expect=1))
    assert len(await drain(log.consumer("two", ["pb.t"]), expect=1)) == 1


async def test_a_consumer_can_seek_to_a_time_and_to_the_beginning(log):
    await log.publish([OutgoingRecord("pb.t", "P1", b"old")])
    await asyncio.sleep(0.02)
    consumer = log.consumer("g", ["pb.t"])
    await drain(consumer, expect=1)
    boundary = int(time.time() * 1000)
    await asyncio.sleep(0.02)
    await log.publish([OutgoingRecord("pb.t", "P1", b"new")])
    await consumer.seek_to_time(boundary)
    assert [r.value for r in await drain(consumer, expect=1)] == [b"new"]
    await consumer.seek_to_beginning()
    assert [r.value for r in await drain(consumer, expect=2)] == [b"old", b"new"]
    ends = await consumer.end_offsets()
    assert sum(ends.values()) == 2


async def test_several_processes_append_to_one_log_without_losing_a_record(tmp_path: Path):
    path = tmp_path / "shared.db"
    script = (
        "import asyncio, sys\n"
        "from servicekit.eventlog.embedded import EmbeddedEventLog\n"
        "from servicekit.eventlog import OutgoingRecord\n"
        "async def main():\n"
        f"    log = EmbeddedEventLog(__import__('pathlib').Path({str(path)!r}))\n"
        "    await log.start()\n"
        "    for i in range(50):\n"
        "        await log.publish([OutgoingRecord('pb.t', f'P{i % 5}', sys.argv[1].encode())])\n"
        "asyncio.run(main())\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(3)]
    assert [w.wait(60) for w in writers] == [0, 0, 0]
    log = open_event_log(f"sqlite:///{path}")
    await log.start()
    records = await drain(log.consumer("g", ["pb.t"]), expect=150)
    await log.close()
    assert len(records) == 150
    offsets = {(r.partition, r.offset) for r in records}
    assert len(offsets) == 150


def test_an_unknown_log_url_is_refused_with_the_forms_it_accepts():
    with pytest.raises(ValueError, match="sqlite:///PATH or kafka://HOST:PORT"):
        open_event_log("redis://localhost")
