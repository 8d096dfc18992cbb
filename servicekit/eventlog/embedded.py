"""The embedded event log: one SQLite file shared by every process on the machine.

It keeps Kafka's semantics (ADR 0001): topics with partitions, ordered offsets per
partition, key-based partitioning, consumer groups with committed offsets and retention
forever. Several processes append to the same file; SQLite's write lock orders them.
A consumer with nothing to read sleeps until a producer that appended to one of its
topics wakes it (servicekit.eventlog.wakeup, ADR 0020), and looks on its own once a
second in case a wake-up was lost; `PRAGMA data_version`, which changes whenever another
connection commits, lets that look skip the reads when nothing was committed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from servicekit.eventlog.base import Consumer, OutgoingRecord, Record, partition_for
from servicekit.eventlog.wakeup import LISTENERS_SCHEMA, LISTENING, Listener, Waker

T = TypeVar("T")

DEFAULT_PARTITIONS = 4
_SAFETY_POLL_SECONDS = 1.0
"""How long a consumer waits for a wake-up before it looks anyway: only a lost wake-up
(a producer in another network namespace, say) is ever found this late."""
_IDLE_TICK_SECONDS = 0.005
"""Where wake-ups do not exist (not Linux), consumers look this often instead."""
# Records are ~2 KB (a whole CloudEvent), so `records` is an ordinary rowid table, not
# WITHOUT ROWID: SQLite advises WITHOUT ROWID only for rows well under 1/20 of a page, and
# with 2 KB rows inside the primary-key b-tree every append moved and split leaf pages.
# Appends now go to the end of the rowid b-tree and the key index holds only the key
# (bench/bench_peer.py: docs/performance.md has the before/after). A log file created
# before this keeps its WITHOUT ROWID table (CREATE ... IF NOT EXISTS), which reads and
# writes with the same statements.
_HEADER_CACHE_SIZE = 64

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (topic, partition, timestamp_ms);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""
    + LISTENERS_SCHEMA
)


def _encode_headers(headers: dict[str, bytes]) -> str:
    if not headers:
        return "{}"
    return json.dumps({k: v.decode("utf-8") for k, v in headers.items()})


@functools.lru_cache(maxsize=_HEADER_CACHE_SIZE)
def _parsed_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    # Nearly every record carries the same one header: parse each distinct text once.
    return tuple((k, v.encode("utf-8")) for k, v in json.loads(text).items())


def _decode_headers(text: str) -> dict[str, bytes]:
    return dict(_parsed_headers(text))  # a fresh dict per record: callers may change it


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class EmbeddedEventLog:
    """An EventLog on a SQLite file; safe to open from several processes at once."""

    def __init__(self, path: Path, partitions: int = DEFAULT_PARTITIONS) -> None:
        self.path = path
        self.partitions = partitions
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._topic_partitions: dict[str, int] = {}
        self._waker = Waker()

    async def start(self) -> None:
        if self._conn is None:
            self._conn = await asyncio.to_thread(_connect, self.path)
            await self._run(lambda c: c.executescript(_SCHEMA))

    async def close(self) -> None:
        # Under the lock: a worker thread orphaned by a cancelled call may still be using
        # the connection, and closing it underneath that thread crashes the process.
        def close_locked() -> None:
            with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
                self._waker.close()

        if self._conn is not None:
            await asyncio.to_thread(close_locked)

    async def ready(self) -> bool:
        return self._conn is not None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                if self._conn is None:
                    raise RuntimeError("event log is closed")
                return work(self._conn)

        return await asyncio.to_thread(locked)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        def create(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)",
                [(t, self.partitions) for t in topics],
            )

        await self._run(create)

    def _partitions_of(self, conn: sqlite3.Connection, topic: str) -> int:
        if topic not in self._topic_partitions:
            conn.execute(
                "INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)",
                (topic, self.partitions),
            )
            row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
            self._topic_partitions[topic] = int(row[0])
        return self._topic_partitions[topic]

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return

        def append(conn: sqlite3.Connection) -> None:
            now_ms = int(time.time() * 1000)
            conn.execute("BEGIN IMMEDIATE")
            try:
                next_offsets: dict[tuple[str, int], int] = {}
                rows = []
                for record in records:
                    partition = partition_for(record.key, self._partitions_of(conn, record.topic))
                    slot = (record.topic, partition)
                    if slot not in next_offsets:
                        row = conn.execute(
                            'SELECT MAX("offset") FROM records WHERE topic = ? AND partition = ?',
                            slot,
                        ).fetchone()
                        next_offsets[slot] = 0 if row[0] is None else int(row[0]) + 1
                    offset = next_offsets[slot]
                    next_offsets[slot] = offset + 1
                    rows.append(
                        (
                            record.topic,
                            partition,
                            offset,
                            record.key,
                            record.value,
                            _encode_headers(record.headers),
                            now_ms,
                        )
                    )
                conn.executemany(
                    'INSERT INTO records (topic, partition, "offset", key, value, headers, '
                    "timestamp_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                listeners = self._waker.listeners_of(conn, (r.topic for r in records))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._waker.forget(conn, self._waker.wake(listeners))

        await self._run(append)

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        return EmbeddedConsumer(self.path, group_id, list(topics), self.partitions)


class EmbeddedConsumer:
    """One member of a consumer group; in the embedded log a member owns every partition."""

    def __init__(self, path: Path, group_id: str, topics: list[str], partitions: int) -> None:
        self._path = path
        self._group_id = group_id
        self._topics = topics
        self._default_partitions = partitions
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._positions: dict[tuple[str, int], int] | None = None
        self._data_version: int | None = None
        self._caught_up = False
        self._listener: Listener | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self._path)
            self._conn.executescript(_SCHEMA)
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._connection())

        return await asyncio.to_thread(locked)

    def _load_positions(self, conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
        if self._positions is None:
            positions: dict[tuple[str, int], int] = {}
            for topic in self._topics:
                conn.execute(
                    "INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)",
                    (topic, self._default_partitions),
                )
                (count,) = conn.execute(
                    "SELECT partitions FROM topics WHERE name = ?", (topic,)
                ).fetchone()
                for partition in range(int(count)):
                    positions[(topic, partition)] = 0
            for topic, partition, next_offset in conn.execute(
                "SELECT topic, partition, next_offset FROM group_offsets WHERE group_id = ?",
                (self._group_id,),
            ):
                if (topic, partition) in positions:
                    positions[(topic, partition)] = int(next_offset)
            self._positions = positions
        return self._positions

    def _fetch(self, conn: sqlite3.Connection, max_records: int) -> list[Record]:
        if self._listener is None and LISTENING:
            self._listener = Listener(conn, self._topics)
        positions = self._load_positions(conn)
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._caught_up and version == self._data_version:
            return []
        self._data_version = version
        batch: list[Record] = []
        per_partition = max(1, max_records // max(1, len(positions)))
        for (topic, partition), position in positions.items():
            rows = conn.execute(
                'SELECT "offset", key, value, headers, timestamp_ms FROM records '
                'WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, partition, position, per_partition),
            ).fetchall()
            for offset, key, value, headers, timestamp_ms in rows:
                batch.append(
                    Record(
                        topic=topic,
                        partition=partition,
                        offset=int(offset),
                        key=key,
                        value=bytes(value),
                        timestamp_ms=int(timestamp_ms),
                        headers=_decode_headers(headers),
                    )
                )
            if rows:
                positions[(topic, partition)] = int(rows[-1][0]) + 1
        # A full page may leave more behind; only an empty pass proves we are caught up.
        self._caught_up = not batch
        return batch

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if self._listener is not None:
                self._listener.drain()  # before the read, so a later wake-up is kept
            batch = await self._run(lambda conn: self._fetch(conn, max_records))
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            if self._listener is None:
                await asyncio.sleep(min(remaining, _IDLE_TICK_SECONDS))
            else:
                await self._listener.wait(min(remaining, _SAFETY_POLL_SECONDS))

    async def commit(self, records: Sequence[Record]) -> None:
        if not records:
            return
        highest: dict[tuple[str, int], int] = {}
        for record in records:
            slot = (record.topic, record.partition)
            highest[slot] = max(highest.get(slot, -1), record.offset)

        def save(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO group_offsets (group_id, topic, partition, next_offset) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(self._group_id, t, p, o + 1) for (t, p), o in highest.items()],
            )

        await self._run(save)

    async def seek_to_beginning(self) -> None:
        def rewind(conn: sqlite3.Connection) -> None:
            positions = self._load_positions(conn)
            for slot in positions:
                positions[slot] = 0
            self._caught_up = False

        await self._run(rewind)

    async def seek_to_time(self, timestamp_ms: int) -> dict[tuple[str, int], int]:
        def seek(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
            positions = self._load_positions(conn)
            for topic, partition in positions:
                row = conn.execute(
                    'SELECT MIN("offset") FROM records WHERE topic = ? AND partition = ? '
                    "AND timestamp_ms >= ?",
                    (topic, partition, timestamp_ms),
                ).fetchone()
                if row[0] is not None:
                    positions[(topic, partition)] = int(row[0])
                else:
                    end = conn.execute(
                        'SELECT MAX("offset") FROM records WHERE topic = ? AND partition = ?',
                        (topic, partition),
                    ).fetchone()[0]
                    positions[(topic, partition)] = 0 if end is None else int(end) + 1
            self._caught_up = False
            return dict(positions)

        return await self._run(seek)

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        def ends(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
            result = {}
            for topic, partition in self._load_positions(conn):
                end = conn.execute(
                    'SELECT MAX("offset") FROM records WHERE topic = ? AND partition = ?',
                    (topic, partition),
                ).fetchone()[0]
                result[(topic, partition)] = 0 if end is None else int(end) + 1
            return result

        return await self._run(ends)

    async def close(self) -> None:
        def close_locked() -> None:  # see EmbeddedEventLog.close
            with self._lock:
                conn, self._conn = self._conn, None
                listener, self._listener = self._listener, None
                if listener is not None:
                    listener.close(conn)
                if conn is not None:
                    conn.close()

        if self._conn is not None or self._listener is not None:
            await asyncio.to_thread(close_locked)
