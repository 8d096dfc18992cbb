"""The embedded event log: one SQLite file shared by every process on the machine.

It keeps Kafka's semantics (ADR 0001): topics with partitions, ordered offsets per
partition, key-based partitioning, consumer groups with committed offsets and retention
forever. Several processes append to the same file; SQLite's write lock orders them.
A consumer with nothing to read sleeps until a producer that appended to one of its
topics wakes it (servicekit.eventlog.wakeup, ADR 0020), and looks on its own once a
second in case a wake-up was lost; `PRAGMA data_version`, which changes whenever another
connection commits, lets that look skip the reads when nothing was committed.

Records are stored in append order under a log-wide `position` (ADR 0001, layout 2), in
runs (ADR 0026, layout 3): an append writes each topic's records as one row per run of up
to 128, encoded whole with msgpack, at the end of one b-tree, and a consumer reads every
partition it owns with one range scan per poll and decodes a run into its records in one
call. Where each partition ends lives in the small `partition_ends` table, and when each
append happened in `append_times`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lz4.block  # type: ignore[import-untyped]
import msgspec

from servicekit.eventlog.base import Consumer, OutgoingRecord, Record, partition_for
from servicekit.eventlog.wakeup import LISTENERS_SCHEMA, LISTENING, Listener, Waker

T = TypeVar("T")

DEFAULT_PARTITIONS = 4
_SAFETY_POLL_SECONDS = 1.0
"""How long a consumer waits for a wake-up before it looks anyway: only a lost wake-up
(a producer in another network namespace, say) is ever found this late."""
_IDLE_TICK_SECONDS = 0.005
"""Where wake-ups do not exist (not Linux), consumers look this often instead."""
_PAGE_SIZE = 16_384
"""Records are whole CloudEvents of 1-3 KB: on 4 KiB pages a third of every page was
left empty and each append wrote a page per record; 16 KiB pages hold five to ten records
(bench/bench_peer.py; ADR 0001). Only a new file takes it: an existing one keeps its own."""
_BUSY_SECONDS = 30.0
"""How long a connection waits for another process's lock before it gives up."""
_CHECKPOINT_BYTES = 1000 * _PAGE_SIZE
"""About as much as SQLite's own automatic checkpoint lets the WAL grow (1,000 pages)."""
_RUN_RECORDS = 128
"""The most records one row holds (ADR 0026). A consumer that stops inside a run decodes
it again on its next poll, so a run stays a fraction of a usual poll's 500 records; 128
records of 1-3 KB are a few hundred KB."""
LAYOUT_VERSION = 3
"""`PRAGMA user_version` of a file in the layout below; older files are migrated on open."""

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS topics (
        name TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL
    )""",
    # No index besides the position: every append goes to the end of this b-tree, and
    # nothing else is written per run. A run holds consecutive positions of one topic,
    # from `position` to `position + count - 1`, each record with its partition, offset,
    # time and position. A consumer scans by position and keeps the records of its own
    # partitions; offsets are dense per partition and grow with the position, both
    # assigned under the write lock.
    """CREATE TABLE IF NOT EXISTS record_runs (
        position INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        count INTEGER NOT NULL,
        records BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS partition_ends (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID""",
    # Append times never go backwards (each append takes the later of the clock and the
    # last append's time), so the first position at or after a time is one lookup here.
    """CREATE TABLE IF NOT EXISTS append_times (
        timestamp_ms INTEGER PRIMARY KEY,
        first_position INTEGER NOT NULL
    )""",
    # next_position: where the group's next record in the partition can be found at the
    # earliest; NULL when unknown (then a consumer scans from the start once).
    """CREATE TABLE IF NOT EXISTS group_offsets (
        group_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        next_position INTEGER,
        PRIMARY KEY (group_id, topic, partition)
    ) WITHOUT ROWID""",
    LISTENERS_SCHEMA,
]
_LAYOUT_2_RECORDS = """CREATE TABLE records (
    position INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL
)"""
"""A record per row, as layouts 1 and 2 kept them: only ever migrated from."""
_INSERT_RUNS = "INSERT INTO record_runs (position, topic, count, records) VALUES (?, ?, ?, ?)"
_SET_PARTITION_END = (
    "INSERT INTO partition_ends (topic, partition, next_offset) VALUES (?, ?, ?) "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
)
_RUNS_FROM = (
    "SELECT position, records FROM record_runs WHERE position >= coalesce(("
    "SELECT position FROM record_runs WHERE position <= ?1 ORDER BY position DESC LIMIT 1"
    "), 0)"
)
"""The runs from the one that holds position ?1 (or the last one before it) on."""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[Record]).decode


def _encode_run(run: list[Record]) -> bytes:
    # CloudEvents of one topic repeat their field names and most of their values: LZ4
    # writes and reads a fifth of the bytes, faster than SQLite copies the rest (ADR 0026).
    compressed: bytes = lz4.block.compress(_encode(run))
    return compressed


def _decode_run(blob: bytes) -> list[Record]:
    return _decode(lz4.block.decompress(blob))


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # before the first table; else ignored
    _into_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(_BUSY_SECONDS * 1000)}")
    _prepare(conn)
    return conn


def _into_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting while another connection sets it.

    Two processes opening a new file at once (a service and `pbj`, say) both ask for WAL;
    the one that loses is told "database is locked" at once, without the busy timeout's
    wait (41 opens of 3,000, three at a time on new files), so it asks again until the
    timeout is spent."""
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _layout_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _prepare(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring a file written before this layout up to it, in place."""
    if _layout_version(conn) >= LAYOUT_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # another process may be doing the same right now
    try:
        version = _layout_version(conn)
        if version < LAYOUT_VERSION:
            old = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records'"
            ).fetchone()
            for statement in _SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(group_offsets)")}
            if "next_position" not in columns:
                conn.execute("ALTER TABLE group_offsets ADD COLUMN next_position INTEGER")
            if old is not None:
                if version < 2:
                    _to_layout_2(conn, without_rowid="WITHOUT ROWID" in str(old[0]).upper())
                _into_runs(conn)
            conn.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _to_layout_2(conn: sqlite3.Connection, *, without_rowid: bool) -> None:
    if without_rowid:
        conn.execute("ALTER TABLE records RENAME TO records_before_layout_2")
        conn.execute(_LAYOUT_2_RECORDS)
        _copy_into_positions(conn)
    _index_layout_1(conn)


def _copy_into_positions(conn: sqlite3.Connection) -> None:
    """The oldest files kept records WITHOUT ROWID, in no append order: copy them into
    positions in the order of their times, each partition's records in offset order
    whatever the clock did (a time earlier than the one before it counts as that one)."""
    conn.execute(
        'INSERT INTO records (topic, partition, "offset", key, value, headers, timestamp_ms) '
        'SELECT topic, partition, "offset", key, value, headers, timestamp_ms FROM ('
        "SELECT *, MAX(timestamp_ms) OVER (PARTITION BY topic, partition "
        'ORDER BY "offset") AS not_before FROM records_before_layout_2'
        ') ORDER BY not_before, topic, partition, "offset"'
    )
    conn.execute("DROP TABLE records_before_layout_2")
    # For _index_layout_1's lookups only; it drops the index again.
    conn.execute('CREATE UNIQUE INDEX records_by_offset ON records (topic, partition, "offset")')


def _index_layout_1(conn: sqlite3.Connection) -> None:
    """Fill the tables a layout-1 file lacks. Its records stay where they are: their rowid,
    in append order, is their position. Its primary key, (topic, partition, offset),
    answers the lookups here; the time index answers the times, then goes."""
    conn.execute(
        'INSERT INTO partition_ends SELECT topic, partition, MAX("offset") + 1 FROM records '
        "GROUP BY topic, partition"
    )
    firsts = conn.execute(
        "SELECT MIN(rowid), timestamp_ms FROM records GROUP BY timestamp_ms ORDER BY 1"
    ).fetchall()
    times: list[tuple[int, int]] = []
    for first, timestamp_ms in firsts:  # a clock that stepped back joins the time before
        if not times or timestamp_ms > times[-1][0]:
            times.append((timestamp_ms, first))
    conn.executemany("INSERT INTO append_times VALUES (?, ?)", times)
    conn.execute(
        "UPDATE group_offsets SET next_position = 1 + (SELECT r.rowid FROM records r "
        "WHERE r.topic = group_offsets.topic AND r.partition = group_offsets.partition "
        'AND r."offset" = group_offsets.next_offset - 1) WHERE next_offset > 0'
    )
    conn.execute("DROP INDEX IF EXISTS records_by_time")
    conn.execute("DROP INDEX IF EXISTS records_by_offset")  # made by _copy_into_positions


def _into_runs(conn: sqlite3.Connection) -> None:
    """Move a record-per-row file's records into runs at the same positions (so every
    group's next_position still holds), then drop the old table. A run ends where the
    topic changes, at a gap in the positions, or at _RUN_RECORDS."""
    rows = conn.execute(
        'SELECT rowid, topic, partition, "offset", key, value, timestamp_ms, headers '
        "FROM records ORDER BY rowid"
    )
    headers: dict[str, dict[str, bytes]] = {}

    def record_of(row: tuple[Any, ...]) -> Record:
        position, topic, partition, offset, key, value, timestamp_ms, text = row
        if text not in headers:
            headers[text] = {k: v.encode("utf-8") for k, v in msgspec.json.decode(text).items()}
        return Record(topic, partition, offset, key, value, timestamp_ms, headers[text], position)

    def runs(records: Iterable[Record]) -> Iterator[tuple[int, str, int, bytes]]:
        run: list[Record] = []
        for record in records:
            if run and (
                record.topic != run[0].topic
                or record._log_position != run[-1]._log_position + 1  # type: ignore[operator]
                or len(run) == _RUN_RECORDS
            ):
                yield _row_of(run)
                run = []
            run.append(record)
        if run:
            yield _row_of(run)

    moved = runs(map(record_of, rows))
    while batch := list(itertools.islice(moved, 1000)):
        conn.executemany(_INSERT_RUNS, batch)
    rows.close()
    conn.execute("DROP TABLE records")


def _row_of(run: list[Record]) -> tuple[int, str, int, bytes]:
    first = run[0]._log_position
    assert first is not None
    return (first, run[0].topic, len(run), _encode_run(run))


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Several reads that must agree: without it an append committed between two of
    them (by another process) could fall in neither, and a consumer would pass over it."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _partition_ends(conn: sqlite3.Connection, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    marks = ", ".join("?" * len(topics))
    return {
        (topic, int(partition)): int(next_offset)
        for topic, partition, next_offset in conn.execute(
            f"SELECT topic, partition, next_offset FROM partition_ends WHERE topic IN ({marks})",
            list(topics),
        )
    }


def _runs_from(
    conn: sqlite3.Connection, select: str, position: int, topics: Sequence[str] = ()
) -> Generator[list[Record], None, None]:
    """The runs a statement of _RUNS_FROM's form finds (its ?1 the position, ?2 on the
    topics), decoded, each without its records before the position; one run at a time,
    as the statement steps. Close it (contextlib.closing) to end the read early."""
    runs = conn.execute(select, (position, *topics))
    try:
        for first, blob in runs:
            run = _decode_run(blob)
            yield run[position - first :] if first < position else run
    finally:
        runs.close()


def stored_records(path: Path) -> list[Record]:
    """Every record of a log file in log order, read only, without joining a group: for
    checks and tests, which must not depend on how a layout keeps them. The file must be
    of this layout (a log opened on it by this code has migrated it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        with _snapshot(conn):
            every = _runs_from(conn, f"{_RUNS_FROM} ORDER BY position", 0)
            return [record for run in every for record in run]
    finally:
        conn.close()


def _end_position(conn: sqlite3.Connection) -> int:
    last = conn.execute(
        "SELECT position + count FROM record_runs ORDER BY position DESC LIMIT 1"
    ).fetchone()
    return 1 if last is None else int(last[0])


class _Checkpointer:
    """Copies the WAL into the database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, so
    one append in every few hundred waited for the copy and its fsync: half of appending
    was spent there, at the speed of the disk. The producer's connection turns it off
    and hands the same work, at the same threshold, to this thread; a PASSIVE checkpoint
    runs beside appends and reads. Durability is what it was: a commit is in the WAL
    before publish returns, and the WAL is synced as often."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._due = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pending_bytes = 0
        self._progress = threading.Condition()
        self._asked = self._done = 0
        """Checkpoints asked for and those run, counted, for wait_until_idle."""

    def appended(self, size: int) -> None:
        self._pending_bytes += size
        if self._pending_bytes < _CHECKPOINT_BYTES:
            return
        self._pending_bytes = 0
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="eventlog-checkpoint", daemon=True
            )
            self._thread.start()
        with self._progress:
            self._asked += 1
        self._due.set()

    def wait_until_idle(self, timeout: float) -> bool:
        """Whether every checkpoint asked for so far has run, waiting up to the timeout:
        for a measurement that must not charge the appends' deferred copy to what follows
        (bench/bench_peer.py)."""
        with self._progress:
            return self._progress.wait_for(lambda: self._done >= self._asked, timeout)

    def _work(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                with self._progress:
                    asked = self._asked
                with contextlib.suppress(sqlite3.Error):  # the next one will do it
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                with self._progress:
                    self._done = asked
                    self._progress.notify_all()
        finally:
            conn.close()

    def close(self) -> None:
        self._stopping = True
        self._due.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class EmbeddedEventLog:
    """An EventLog on a SQLite file; safe to open from several processes at once."""

    def __init__(self, path: Path, partitions: int = DEFAULT_PARTITIONS) -> None:
        self.path = path
        self.partitions = partitions
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._topic_partitions: dict[str, int] = {}
        self._waker = Waker()
        self._checkpointer = _Checkpointer(path)

    async def start(self) -> None:
        def connect() -> sqlite3.Connection:
            conn = _connect(self.path)
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does it
            return conn

        if self._conn is None:
            self._conn = await asyncio.to_thread(connect)

    async def close(self) -> None:
        # Under the lock: a worker thread orphaned by a cancelled call may still be using
        # the connection, and closing it underneath that thread crashes the process.
        def close_locked() -> None:
            with self._lock:
                self._checkpointer.close()
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                by_topic: dict[str, list[OutgoingRecord]] = {}
                for record in records:
                    by_topic.setdefault(record.topic, []).append(record)
                topics = list(by_topic)
                counts = {t: self._partitions_of(conn, t) for t in topics}
                ends = _partition_ends(conn, topics)
                first = _end_position(conn)
                (last_ms,) = conn.execute("SELECT MAX(timestamp_ms) FROM append_times").fetchone()
                now_ms = max(int(time.time() * 1000), last_ms or 0)
                position = first
                touched: set[tuple[str, int]] = set()
                rows = []
                # Each topic's records in the order given, one topic after another: the
                # order within a partition is kept, and Kafka keeps none across topics.
                for topic, outgoing in by_topic.items():
                    for start in range(0, len(outgoing), _RUN_RECORDS):
                        run = []
                        for record in outgoing[start : start + _RUN_RECORDS]:
                            partition = partition_for(record.key, counts[topic])
                            slot = (topic, partition)
                            offset = ends.get(slot, 0)
                            ends[slot] = offset + 1
                            touched.add(slot)
                            run.append(
                                Record(
                                    topic,
                                    partition,
                                    offset,
                                    record.key,
                                    record.value,
                                    now_ms,
                                    record.headers,
                                    position,
                                )
                            )
                            position += 1
                        rows.append(_row_of(run))
                conn.executemany(_INSERT_RUNS, rows)
                conn.executemany(_SET_PARTITION_END, [(*s, ends[s]) for s in touched])
                conn.execute("INSERT OR IGNORE INTO append_times VALUES (?, ?)", (now_ms, first))
                listeners = self._waker.listeners_of(conn, topics)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._waker.forget(conn, self._waker.wake(listeners))
            self._checkpointer.appended(sum(len(row[3]) for row in rows))

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
        self._scan_from = 0
        """The position the next read starts at: no unread record of ours lies before it."""
        self._check_until = 0
        """Below this position a record may be one the group has read already (its offset
        is then below the partition's); from it on, every record is new."""
        self._data_version: int | None = None
        self._caught_up = False
        self._listener: Listener | None = None
        # Every append registers its topic in `topics` in the same transaction, so when
        # the log has no topic but ours (one subquery per read: the audit's consumer,
        # reading everything), no run needs its topic looked up among ours. The scan
        # starts at the run that holds the first position to read.
        marks = ", ".join(f"?{n}" for n in range(2, 2 + len(topics)))
        self._select = (
            f"{_RUNS_FROM} AND (NOT EXISTS (SELECT 1 FROM topics WHERE name NOT IN ({marks})) "
            f"OR topic IN ({marks})) ORDER BY position"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self._path)
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
            found: dict[tuple[str, int], int | None] = {}
            with _snapshot(conn):  # offsets, ends and the end position as of one moment
                for topic, partition, next_offset, next_position in conn.execute(
                    "SELECT topic, partition, next_offset, next_position FROM group_offsets "
                    "WHERE group_id = ?",
                    (self._group_id,),
                ):
                    if (topic, partition) in positions:
                        positions[(topic, partition)] = int(next_offset)
                        found[(topic, partition)] = next_position
                ends = _partition_ends(conn, self._topics) if self._topics else {}
                end = scan_from = _end_position(conn)
            for slot, offset in positions.items():
                if offset >= ends.get(slot, 0):
                    continue  # nothing unread in this partition yet
                known = found.get(slot) if offset > 0 else None
                scan_from = min(scan_from, 0 if known is None else int(known))
            self._positions, self._scan_from = positions, scan_from
            self._check_until = end if any(positions.values()) else 0
        return self._positions

    def _fetch(self, conn: sqlite3.Connection, max_records: int) -> list[Record]:
        if self._listener is None and LISTENING:
            self._listener = Listener(conn, self._topics)
        positions = self._load_positions(conn)
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._caught_up and version == self._data_version:
            return []
        self._data_version = version
        limit = max(1, max_records)
        batch: list[Record] = []
        # Runs are read one at a time, and only until the page is full: the statement
        # steps lazily, and is closed (ending the read) as soon as the page is. A run an
        # earlier poll stopped inside comes without the part that poll read.
        runs = _runs_from(conn, self._select, self._scan_from, self._topics)
        with contextlib.closing(runs):
            for run in runs:
                if not run:
                    continue
                room = limit - len(batch)
                if run[0]._log_position >= self._check_until:  # type: ignore[operator]
                    kept = run[:room]  # the common case: all of them new
                    scanned = len(kept)
                else:
                    kept, scanned = self._unread(run, room, positions)
                batch += kept
                self._scan_from = run[scanned - 1]._log_position + 1  # type: ignore[operator]
                if len(batch) == limit:
                    break
        # A full page may leave more behind; only an empty pass proves we are caught up.
        self._caught_up = not batch
        return batch

    def _unread(
        self, run: list[Record], room: int, positions: dict[tuple[str, int], int]
    ) -> tuple[list[Record], int]:
        """Up to `room` records of the run this group has not read, and how many of the
        run's records were looked at to find them."""
        unread: list[Record] = []
        scanned = 0
        for record in run:
            if len(unread) == room:
                break
            scanned += 1
            slot = (record.topic, record.partition)
            if record._log_position < self._check_until:  # type: ignore[operator]
                expected = positions.get(slot)
                if expected is None or record.offset < expected:
                    continue  # read and committed before this consumer's position
            positions[slot] = record.offset + 1
            unread.append(record)
        return unread, scanned

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
        highest: dict[tuple[str, int], Record] = {}
        for record in records:
            slot = (record.topic, record.partition)
            if slot not in highest or record.offset > highest[slot].offset:
                highest[slot] = record

        def next_position(record: Record) -> int | None:
            position = record._log_position
            return None if position is None else position + 1

        def save(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO group_offsets (group_id, topic, partition, next_offset, "
                "next_position) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
                "next_offset = excluded.next_offset, next_position = excluded.next_position",
                [
                    (self._group_id, t, p, r.offset + 1, next_position(r))
                    for (t, p), r in highest.items()
                ],
            )

        await self._run(save)

    async def seek_to_beginning(self) -> None:
        def rewind(conn: sqlite3.Connection) -> None:
            positions = self._load_positions(conn)
            for slot in positions:
                positions[slot] = 0
            self._scan_from = self._check_until = 0
            self._caught_up = False

        await self._run(rewind)

    async def seek_to_time(self, timestamp_ms: int) -> dict[tuple[str, int], int]:
        def seek(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
            positions = self._load_positions(conn)
            with _snapshot(conn):
                return seek_in(conn, positions)

        def seek_in(
            conn: sqlite3.Connection, positions: dict[tuple[str, int], int]
        ) -> dict[tuple[str, int], int]:
            ends = _partition_ends(conn, self._topics) if self._topics else {}
            row = conn.execute(
                "SELECT first_position FROM append_times WHERE timestamp_ms >= ? "
                "ORDER BY timestamp_ms LIMIT 1",
                (timestamp_ms,),
            ).fetchone()
            firsts: dict[tuple[str, int], int] = {}
            if row is None:
                self._scan_from = _end_position(conn)
            else:
                self._scan_from = int(row[0])
                # A partition's offsets grow with the position: its first record found
                # is its earliest, and the scan stops once every partition has one.
                runs = _runs_from(conn, self._select, self._scan_from, self._topics)
                with contextlib.closing(runs):
                    for record in (record for run in runs for record in run):
                        firsts.setdefault((record.topic, record.partition), record.offset)
                        if len(firsts) == len(positions):
                            break
            for slot in positions:
                positions[slot] = firsts.get(slot, ends.get(slot, 0))
            self._check_until = self._scan_from  # every record from there on is unread
            self._caught_up = False
            return dict(positions)

        return await self._run(seek)

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        def ends(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
            known = _partition_ends(conn, self._topics) if self._topics else {}
            return {slot: known.get(slot, 0) for slot in self._load_positions(conn)}

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
