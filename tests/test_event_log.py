"""The embedded event log keeps Kafka's semantics (ADR 0001): tests/event_log_contract.py."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicekit.eventlog import (
    Consumer,
    OutgoingRecord,
    Record,
    embedded,
    open_event_log,
    partition_for,
)
from servicekit.eventlog.embedded import EmbeddedEventLog, stored_records
from tests.event_log_contract import EventLogContract, drain


class TestEmbeddedEventLog(EventLogContract):
    @pytest.fixture
    async def log(self, tmp_path: Path) -> AsyncIterator[EmbeddedEventLog]:
        event_log = EmbeddedEventLog(tmp_path / "log.db")
        await event_log.start()
        yield event_log
        await event_log.close()

    def partition_of(self, log: EmbeddedEventLog, key: str) -> int:
        return partition_for(key, log.partitions)


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


def test_logs_opened_together_on_a_new_file_all_open(tmp_path: Path) -> None:
    """A service and `pbj` (or two services) opening a log file that does not exist yet, at
    the same moment: each one opens it. Before, the one that lost the race to turn the new
    file to WAL was refused with "database is locked" (about once in a hundred attempts
    of three here)."""
    failures: list[str] = []

    def open_and_close(path: Path, together: threading.Barrier) -> None:
        log = EmbeddedEventLog(path)
        together.wait()
        try:
            asyncio.run(log.start())
        except sqlite3.OperationalError as err:
            failures.append(str(err))
            return
        asyncio.run(log.close())

    for attempt in range(300):
        path = tmp_path / f"log-{attempt}.db"
        together = threading.Barrier(3)
        openers = [threading.Thread(target=open_and_close, args=(path, together)) for _ in range(3)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []


def test_an_unknown_log_url_is_refused_with_the_forms_it_accepts():
    with pytest.raises(ValueError, match="sqlite:///PATH or kafka://HOST:PORT"):
        open_event_log("redis://localhost")


# --- wake-ups (ADR 0020): a waiting consumer sleeps until a producer commits -----------

_PUBLISH_ONE = (
    "import asyncio, sys, pathlib\n"
    "from servicekit.eventlog.embedded import EmbeddedEventLog\n"
    "from servicekit.eventlog import OutgoingRecord\n"
    "async def main():\n"
    "    log = EmbeddedEventLog(pathlib.Path(sys.argv[1]))\n"
    "    await log.start()\n"
    "    await log.publish([OutgoingRecord(sys.argv[2], 'P1', b'hello')])\n"
    "    await log.close()\n"
    "asyncio.run(main())\n"
)


def listeners_of(path: Path, topic: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT address FROM listeners WHERE topic = ?", (topic,)).fetchall()
    return [address for (address,) in rows]


async def wait_for_one_record(consumer: Consumer, within: float) -> tuple[list[Record], float]:
    started = time.monotonic()
    records = await consumer.poll(timeout_ms=int(within * 1000))
    return records, time.monotonic() - started


async def test_a_waiting_consumer_wakes_when_another_process_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(embedded, "_SAFETY_POLL_SECONDS", 60.0)  # only a wake-up can end it
    path = tmp_path / "log.db"
    log = EmbeddedEventLog(path)
    await log.start()
    consumer = log.consumer("g", ["pb.t"])
    assert await consumer.poll(timeout_ms=0) == []  # listening from here on
    waiting = asyncio.create_task(wait_for_one_record(consumer, within=30))
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PUBLISH_ONE, str(path), "pb.t"
    )
    assert await writer.wait() == 0
    written = time.monotonic()
    records, _ = await waiting
    woken_after = time.monotonic() - written
    await consumer.close()
    await log.close()
    assert [r.value for r in records] == [b"hello"]
    assert woken_after < 5, f"found {woken_after:.1f}s after the append, not on its wake-up"


async def test_a_lost_wake_up_is_made_good_by_the_consumers_own_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(embedded, "_SAFETY_POLL_SECONDS", 0.2)
    path = tmp_path / "log.db"
    log = EmbeddedEventLog(path)
    await log.start()
    consumer = log.consumer("g", ["pb.t"])
    await consumer.poll(timeout_ms=0)
    with sqlite3.connect(path) as conn:  # the producer cannot know of this consumer
        conn.execute("DELETE FROM listeners")
    waiting = asyncio.create_task(wait_for_one_record(consumer, within=30))
    await log.publish([OutgoingRecord("pb.t", "P1", b"hello")])
    records, waited = await waiting
    await consumer.close()
    await log.close()
    assert [r.value for r in records] == [b"hello"]
    assert waited < 10


async def test_a_consumer_is_woken_only_for_the_topics_it_reads(tmp_path: Path):
    path = tmp_path / "log.db"
    log = EmbeddedEventLog(path)
    await log.start()
    consumer = log.consumer("g", ["pb.a", "pb.b"])
    await consumer.poll(timeout_ms=0)
    assert len(listeners_of(path, "pb.a")) == len(listeners_of(path, "pb.b")) == 1
    assert listeners_of(path, "pb.other") == []
    await consumer.close()
    assert listeners_of(path, "pb.a") == listeners_of(path, "pb.b") == []  # closed: gone
    await log.close()


async def test_each_record_keeps_its_own_headers_when_they_change_from_record_to_record(
    tmp_path: Path,
):
    log = EmbeddedEventLog(tmp_path / "log.db")
    await log.start()
    usual = {"content-type": b"application/cloudevents+json"}
    other = {"content-type": b"text/plain", "reason": "café".encode()}
    sent = [usual, usual, other, usual, {}, {}, usual, other, other, usual]
    await log.publish([OutgoingRecord("pb.t", "P1", b"%d" % i, h) for i, h in enumerate(sent)])
    consumer = log.consumer("g", ["pb.t"])
    read = []
    for _ in range(5):  # pages of two: each poll resumes inside the run the last one cut
        read += await consumer.poll(max_records=2, timeout_ms=100)
    await consumer.close()
    await log.close()
    assert [dict(r.headers) for r in read] == sent


async def test_a_consumer_reads_only_its_topics_also_once_the_log_holds_others(
    tmp_path: Path,
):
    log = EmbeddedEventLog(tmp_path / "log.db")
    await log.start()
    await log.publish([OutgoingRecord("pb.a", "P1", b"a1"), OutgoingRecord("pb.b", "P1", b"b1")])
    everything = log.consumer("all", ["pb.a", "pb.b"])  # every topic the log has, so far
    only_a = log.consumer("a", ["pb.a"])
    assert sorted(r.value for r in await drain(everything, expect=2)) == [b"a1", b"b1"]
    await log.publish([OutgoingRecord("pb.new", "P1", b"n1"), OutgoingRecord("pb.a", "P1", b"a2")])
    assert [r.value for r in await drain(everything, expect=1)] == [b"a2"]
    assert [r.value for r in await drain(only_a, expect=2)] == [b"a1", b"a2"]
    assert await everything.poll(timeout_ms=50) == await only_a.poll(timeout_ms=50) == []
    await everything.close()
    await only_a.close()
    await log.close()


async def test_the_listener_of_a_killed_process_is_forgotten_by_the_next_append(tmp_path: Path):
    path = tmp_path / "log.db"
    listen_then_hang = (
        "import asyncio, sys, pathlib\n"
        "from servicekit.eventlog.embedded import EmbeddedEventLog\n"
        "async def main():\n"
        "    consumer = EmbeddedEventLog(pathlib.Path(sys.argv[1])).consumer('g', ['pb.t'])\n"
        "    await consumer.poll(timeout_ms=0)\n"
        "    print('listening', flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    hanging = subprocess.Popen(
        [sys.executable, "-c", listen_then_hang, str(path)], stdout=subprocess.PIPE
    )
    try:
        assert hanging.stdout is not None and hanging.stdout.readline() == b"listening\n"
    finally:
        hanging.kill()
        hanging.wait()
        if hanging.stdout is not None:
            hanging.stdout.close()
    assert len(listeners_of(path, "pb.t")) == 1
    log = EmbeddedEventLog(path)
    await log.start()
    await log.publish([OutgoingRecord("pb.t", "P1", b"hello")])
    await log.close()
    assert listeners_of(path, "pb.t") == []


# A log file as the code before layout 2 (ADR 0001) wrote it: records keyed by (topic,
# partition, offset), a time index, group offsets without positions. The oldest files
# kept records WITHOUT ROWID.
_LAYOUT_1 = """
CREATE TABLE topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL, PRIMARY KEY (topic, partition, "offset")
){without_rowid};
CREATE INDEX records_by_time ON records (topic, partition, timestamp_ms);
CREATE TABLE group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


def write_layout_1(path: Path, *, without_rowid: bool) -> list[tuple[str, int, int, bytes]]:
    """Six records of two people on pb.t, appended a second apart; group "g" has read
    the first of each partition. Returns (topic, partition, offset, value) in append order."""
    written = []
    with sqlite3.connect(path) as conn:
        conn.executescript(
            _LAYOUT_1.format(without_rowid=" WITHOUT ROWID" if without_rowid else "")
        )
        conn.execute("INSERT INTO topics VALUES ('pb.t', 4)")
        offsets: dict[int, int] = {}
        for i in range(6):
            key = f"P{i % 2}"
            partition = partition_for(key, 4)
            offset = offsets.get(partition, 0)
            offsets[partition] = offset + 1
            value = f"{key}-{i}".encode()
            conn.execute(
                "INSERT INTO records VALUES ('pb.t', ?, ?, ?, ?, '{}', ?)",
                (partition, offset, key, value, 1_000_000 + 1000 * i),
            )
            written.append(("pb.t", partition, offset, value))
        conn.executemany(
            "INSERT INTO group_offsets VALUES ('g', 'pb.t', ?, 1)", [(p,) for p in offsets]
        )
    return written


# A log file as layout 2 (ADR 0001) wrote it: a record per row under its position, the
# tables of partition ends and append times, group offsets with positions.
_LAYOUT_2 = """
CREATE TABLE topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE records (
    position INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    headers TEXT NOT NULL, timestamp_ms INTEGER NOT NULL
);
CREATE TABLE partition_ends (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE append_times (timestamp_ms INTEGER PRIMARY KEY, first_position INTEGER NOT NULL);
CREATE TABLE group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, next_position INTEGER,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
PRAGMA user_version = 2;
"""


def write_layout_2(path: Path) -> list[tuple[str, int, int, bytes]]:
    """write_layout_1's six records and group "g", as layout 2 kept them, with a record
    of another topic between the third and the fourth and headers on some."""
    written = []
    with sqlite3.connect(path) as conn:
        conn.executescript(_LAYOUT_2)
        conn.executemany("INSERT INTO topics VALUES (?, 4)", [("pb.t",), ("pb.u",)])
        offsets: dict[tuple[str, int], int] = {}
        rows = [("pb.t", f"P{i % 2}", f"P{i % 2}-{i}".encode()) for i in range(6)]
        rows.insert(3, ("pb.u", "P9", b"other topic"))
        for position, (topic, key, value) in enumerate(rows, start=1):
            slot = (topic, partition_for(key, 4))
            offset = offsets.get(slot, 0)
            offsets[slot] = offset + 1
            headers = f'{{"n": "{position}"}}' if position % 2 else "{}"
            timestamp_ms = 1_000_000 + 1000 * len(written)
            conn.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (position, *slot, offset, key, value, headers, timestamp_ms),
            )
            if topic == "pb.t":
                conn.execute(
                    "INSERT OR IGNORE INTO append_times VALUES (?, ?)", (timestamp_ms, position)
                )
                written.append((*slot, offset, value))
            if topic == "pb.t" and offset == 0:  # "g" has read each partition's first
                conn.execute(
                    "INSERT INTO group_offsets VALUES ('g', ?, ?, 1, ?)", (*slot, position + 1)
                )
        conn.executemany(
            "INSERT INTO partition_ends VALUES (?, ?, ?)",
            [(*slot, end) for slot, end in offsets.items()],
        )
    return written


@pytest.mark.parametrize("layout", ["1-rowid", "1-without-rowid", "2"])
async def test_a_log_file_of_an_earlier_layout_opens_with_its_records_and_offsets(
    tmp_path: Path, layout: str
):
    path = tmp_path / "old.db"
    if layout == "2":
        written = write_layout_2(path)
    else:
        written = write_layout_1(path, without_rowid=layout == "1-without-rowid")
    log = EmbeddedEventLog(path)
    await log.start()
    await log.publish([OutgoingRecord("pb.t", "P0", b"P0-new")])

    fresh = log.consumer("fresh", ["pb.t"])
    everything = await drain(fresh, expect=7)
    resumed = log.consumer("g", ["pb.t"])
    unread = await drain(resumed, expect=5)
    since = log.consumer("since", ["pb.t"])
    starts = await since.seek_to_time(1_000_000 + 4000)  # the records of i = 4 and 5
    from_time = await drain(since, expect=3)
    for consumer in (fresh, resumed, since):
        await consumer.close()
    await log.close()

    def cells(records: list[Record]) -> list[tuple[str, int, int, bytes]]:
        return [(r.topic, r.partition, r.offset, r.value) for r in records]

    p0 = partition_for("P0", 4)
    new = ("pb.t", p0, 3, b"P0-new")  # the next offset of P0's partition
    assert cells(everything) == [*written, new]  # without rowid: in the order of their times
    assert sorted(cells(unread)) == sorted(c for c in [*written, new] if c[2] >= 1)
    assert sorted(cells(from_time)) == sorted([written[4], written[5], new])
    assert starts == {("pb.t", p): 2 for p in {p for _, p, _, _ in written}} | {
        ("pb.t", p): 0 for p in range(4) if p not in {c[1] for c in written}
    }
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "records" not in tables and "record_runs" in tables
    if layout == "2":  # each record kept its headers and its position
        stored = stored_records(path)
        assert [dict(r.headers) for r in stored[:7]] == [
            {"n": str(n).encode()} if n % 2 else {} for n in range(1, 8)
        ]
        assert [r._log_position for r in stored] == list(range(1, 9))


async def test_append_times_never_go_back_even_when_the_clock_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    log = EmbeddedEventLog(tmp_path / "log.db")
    await log.start()
    await log.publish([OutgoingRecord("pb.t", "P1", b"first")])
    monkeypatch.setattr(embedded.time, "time", lambda: 1_000.0)  # back to 1970
    await log.publish([OutgoingRecord("pb.t", "P1", b"second")])
    consumer = log.consumer("g", ["pb.t"])
    first, second = await drain(consumer, expect=2)
    starts = await consumer.seek_to_time(first.timestamp_ms)
    again = await drain(consumer, expect=2)
    await consumer.close()
    await log.close()
    assert second.timestamp_ms == first.timestamp_ms
    assert [r.value for r in again] == [b"first", b"second"]
    assert starts[("pb.t", partition_for("P1", 4))] == 0


async def test_a_producer_keeps_the_wal_short_without_checkpointing_inside_its_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    async def wal_after_appending(path: Path) -> int:
        log = EmbeddedEventLog(path)
        await log.start()
        noise = random.Random(2009)  # values LZ4 cannot shrink: the WAL grows by their size
        for batch in range(100):
            value = noise.randbytes(20_000)
            await log.publish([OutgoingRecord("pb.t", f"P{batch}", value)])
            await asyncio.sleep(0.01)  # a pause between commands: the checkpoint runs
        size = path.with_name(path.name + "-wal").stat().st_size
        await log.close()
        return size

    monkeypatch.setattr(embedded, "_CHECKPOINT_BYTES", 10**12)  # never
    unchecked = await wal_after_appending(tmp_path / "unchecked.db")
    monkeypatch.setattr(embedded, "_CHECKPOINT_BYTES", 64 * 1024)
    checked = await wal_after_appending(tmp_path / "checked.db")
    assert checked < unchecked / 2, f"WAL {checked:,} bytes; {unchecked:,} never checkpointed"


def frames_not_yet_copied(path: Path) -> int:
    """WAL frames the database file lacks, from the WAL-index header (SQLite's file
    format): mxFrame at byte 16, the checkpoint's nBackfill at byte 96."""
    header = path.with_name(path.name + "-shm").read_bytes()[:100]
    last_frame = int.from_bytes(header[16:20], sys.byteorder)
    copied = int.from_bytes(header[96:100], sys.byteorder)
    return last_frame - copied


async def test_waiting_for_a_producer_returns_once_its_deferred_checkpoints_have_copied_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(embedded, "_CHECKPOINT_BYTES", 1)  # every append asks for one
    path = tmp_path / "log.db"
    log = EmbeddedEventLog(path)
    await log.start()
    for batch in range(20):
        await log.publish([OutgoingRecord("pb.t", f"P{batch}", b"x" * 200_000)])
    assert await asyncio.to_thread(log._checkpointer.wait_until_idle, 30)
    assert frames_not_yet_copied(path) == 0
    await log.close()
