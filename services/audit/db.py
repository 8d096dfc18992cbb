"""Audit's tables, its repositories, and its unit of work.

The store (append-only, hash-chained):
- `audit_events`: one row per event per person, appended in order; its primary key
  (council, person_id, seq) is the one per-person index (a read by time filters a
  person's rows found through it), and event_id is unique. A person is the pair (council,
  person_id): two councils may use the same person id, and each has a chain of its own
  (ADR 16). Code
  only ever INSERTs here; the one exception is an operations replay from the beginning,
  which rebuilds the chain from the log (see handlers.Replays).
- `audit_heads`: each person's last link (seq and hash); the append takes it with a
  compare-and-set on last_seq, and verification checks the chain ends where the head says.

The projection (derived, dropped and rebuilt by a replay):
- `audit_people`: the KPI inputs per person.

The budget timeline is not stored: each line is rendered from its stored event when it is
read (`domain.timeline_entry`, ADR 24), so appending an event writes one row to
`audit_events` and updates the person's head and KPI inputs, nothing more.

Every table is keyed by council first; every query names the council.

Replay bookkeeping (neither store nor projection): `audit_replays` (one row per replay of
one council, its version numbers that council's projections' generations) and
`audit_replay_log` (where replays once staged the records they read; replays now fold the
log in batches and leave it empty, and the table stays so that no migration is needed).

Portable across SQLite and PostgreSQL: JSON text, money as BigInteger pence, dates as
sa.Date, timestamps with time zone (SQLite hands them back naive; they are UTC).
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import TAMPER_SUBJECT_PREFIX
from servicekit.db import UtcDateTime, messaging_tables, one_of
from servicekit.uow import UnitOfWork
from services.audit.domain import (
    REVIEW_COMPLETED,
    CaseloadEntry,
    CaseloadStage,
    ChainHead,
    ChainPlace,
    EventFacts,
    PersonInputs,
    StoredEvent,
    TimelineEntry,
    as_utc,
    event_of,
    link,
    timeline_entry,
)

metadata = sa.MetaData()
outbox, inbox, idempotency_keys = messaging_tables(metadata)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False),
    sa.Column("correlation_id", sa.String(200), nullable=False),
    sa.Column("causation_id", sa.String(200), nullable=True),
    sa.Column("policy_version", sa.String(100), nullable=True),
    sa.Column("canonical", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("council", "person_id", "seq"),
)
REVIEWS_COMPLETED = sa.text("type LIKE 'pb.planning.review-completed.%'")
"""Every published version of ReviewCompleted (the Lancashire measure reads them all). A
literal, not a parameter: a partial index serves only a query naming its own condition."""
# A few events per person are reviews: this partial index costs an insert only for them.
sa.Index(
    "audit_events_reviews_completed",
    audit_events.c.council,
    audit_events.c.person_id,
    audit_events.c.seq,
    sqlite_where=REVIEWS_COMPLETED,
    postgresql_where=REVIEWS_COMPLETED,
)

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("council", "person_id"),
)

audit_people = sa.Table(
    "audit_people",
    metadata,
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("client_group", sa.String(64), nullable=True),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("key_worker_id", sa.String(200), nullable=True),
    sa.Column("community_based", sa.Boolean, nullable=True),
    sa.Column("assessed_at", UtcDateTime(), nullable=True),
    sa.Column("budget_issued_at", UtcDateTime(), nullable=True),
    sa.Column("plan_signed_off_at", UtcDateTime(), nullable=True),
    sa.Column("payment_released_at", UtcDateTime(), nullable=True),
    sa.Column("last_review_completed_on", sa.Date, nullable=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("last_event_at", UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint("council", "person_id"),
)


audit_replays = sa.Table(
    "audit_replays",
    metadata,
    sa.Column("replay_id", sa.String(36), primary_key=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("since", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("appended", sa.Integer, nullable=False),
    sa.Column("changed_people", sa.Integer, nullable=False),
    sa.Column("dropped", sa.Integer, nullable=False),
    sa.Column("missing_from_log", sa.Integer, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.UniqueConstraint("council", "version", name="audit_replays_council_version"),
)

audit_replay_log = sa.Table(
    "audit_replay_log",
    metadata,
    sa.Column("replay_id", sa.String(36), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("from_store", sa.Boolean, nullable=False),
    sa.Column("old_seq", sa.Integer, nullable=True),
    sa.UniqueConstraint("replay_id", "event_id", name="audit_replay_log_once"),
)
sa.Index(
    "audit_replay_log_by_person",
    audit_replay_log.c.replay_id,
    audit_replay_log.c.person_id,
    audit_replay_log.c.n,
)

# Tamper findings (services/audit/tamper.py): neither store nor projection, so a replay
# neither clears them nor digests them. A finding is written by the replay that made it and
# again, idempotently, when its TamperDetected event comes back through the log.
audit_tamper_findings = sa.Table(
    "audit_tamper_findings",
    metadata,
    sa.Column("finding_id", sa.String(36), primary_key=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("chain", sa.String(100), nullable=False),
    sa.Column("first_bad_seq", sa.Integer, nullable=False),
    sa.Column("first_bad_event_id", sa.String(64), nullable=True),
    sa.Column("difference", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("quarantined_events", sa.Integer, nullable=False),
    sa.Column("head_seq", sa.Integer, nullable=True),
    sa.Column("head_hash", sa.String(64), nullable=True),
    sa.Column("replay_id", sa.String(36), nullable=False),
    sa.Column("detected_by", sa.String(200), nullable=False),
    sa.Column("detected_at", UtcDateTime(), nullable=False),
    sa.Column("acknowledged_at", UtcDateTime(), nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("acknowledgement", sa.Text, nullable=True),
)
sa.Index(
    "audit_tamper_findings_by_council",
    audit_tamper_findings.c.council,
    audit_tamper_findings.c.chain,
)

# The stored rows of a chain as a replay found them, before it rebuilt the chain from the
# log: evidence, served by no read.
audit_quarantine = sa.Table(
    "audit_quarantine",
    metadata,
    sa.Column("finding_id", sa.String(36), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False),
    sa.Column("correlation_id", sa.String(200), nullable=False),
    sa.Column("causation_id", sa.String(200), nullable=True),
    sa.Column("policy_version", sa.String(100), nullable=True),
    sa.Column("canonical", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

STORE_TABLES = (audit_events, audit_heads)
PROJECTION_TABLES = (audit_people,)
DIGEST_TABLES = (*STORE_TABLES, *PROJECTION_TABLES)


class ChainHeadMoved(RuntimeError):
    """Another writer appended to the person's chain meanwhile; the consumer retries."""


T = TypeVar("T")

IN_LIST_MAX = 5_000  # keys per statement (one_of binds them as one parameter): bounds its size


def _chunks(values: Sequence[T], size: int = IN_LIST_MAX) -> Iterable[list[T]]:
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


_STORED_EVENT_FIELDS = StoredEvent.__struct_fields__
_STORED_EVENT_COLUMNS = [audit_events.c[name] for name in _STORED_EVENT_FIELDS]
"""audit_events' columns in StoredEvent's order: a row selected so is its StoredEvent's
arguments as they stand (UtcDateTime already reads the time in UTC). Every read of a
history verifies the person's whole chain, so it builds one per event; looking each
column up by name was a third of reading the chain."""


def _stored_from(values: Any, *, prefix: str) -> StoredEvent:
    """A stored event from a joined row whose event columns carry a prefix."""
    return StoredEvent(*(values[f"{prefix}{name}"] for name in _STORED_EVENT_FIELDS))


def _timeline_line(stored: StoredEvent) -> TimelineEntry:
    """The budget timeline's line of a stored event, rendered as it is read."""
    return timeline_entry(stored, event_of(stored))


def _event_row(stored: StoredEvent) -> dict[str, Any]:
    return {
        "person_id": stored.person_id,
        "seq": stored.seq,
        "event_id": stored.event_id,
        "council": stored.council,
        "type": stored.type,
        "time": stored.time,
        "correlation_id": stored.correlation_id,
        "causation_id": stored.causation_id,
        "policy_version": stored.policy_version,
        "canonical": stored.canonical,
        "prev_hash": stored.prev_hash,
        "hash": stored.hash,
    }


class DriverRows:
    """Many rows into one table through the database driver, in the session's transaction.

    A replay writes millions of rows; SQLAlchemy's executemany processes every parameter of
    every row in Python first. Here rows are plain tuples in the table's column order, with
    values the driver takes as they are: on SQLite multi-row INSERTs of text in the formats
    SQLAlchemy stores (so the rows are byte for byte the same), on PostgreSQL a COPY. Both
    run on the session's own connection, inside its open transaction, so a rollback
    undoes them with everything else.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(self, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        connection = await self._session.connection()
        names = [column.name for column in table.columns]
        if connection.dialect.name == "sqlite":
            converted = [
                (place, to)
                for place, column in enumerate(table.columns)
                if (to := _sqlite_converter(column)) is not None
            ]
            if converted:
                rows = [_converted(row, converted) for row in rows]
            for statement, parameters in _sqlite_multirow_inserts(table.name, names, rows):
                await connection.exec_driver_sql(statement, parameters)
            return
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        if not driver.is_in_transaction():  # COPY must not run outside the unit of work
            await connection.execute(sa.text("SELECT 1"))
        await driver.copy_records_to_table(table.name, records=rows, columns=names)


def _sqlite_parameter_limit() -> int:
    """How many parameters one statement may bind in the SQLite this process links."""
    connection = sqlite3.connect(":memory:")
    try:
        return int(connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        connection.close()


SQLITE_MAX_PARAMETERS = min(32_766, _sqlite_parameter_limit())
"""What one multi-row INSERT binds at most: SQLite's default limit since 3.32, the size
ADR 29 measured (Debian builds SQLite with a higher one), or a build's lower limit."""


def _sqlite_multirow_inserts(
    table_name: str, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The rows as multi-row INSERTs, each binding as many rows as SQLite allows (ADR 29).

    Not an executemany of one row per step: the sqlite3 module releases the GIL around
    every step and takes it back for the next row, and while the event loop's thread runs
    Python (a replay folding its next batch) each take waits up to the interpreter's
    switch interval (5 ms): beside a thread running Python, 6.9 ms a row against 30 µs
    (ADR 29). A statement of thousands of rows gives the GIL up once for all of them.

    Returns (statement, the parameters of each execution) pairs, one per group size: the
    full-sized statement for all the full groups, then one sized to the rest.
    """
    width = len(names)
    quoted = ", ".join(f'"{name}"' for name in names)
    one_row = "(" + ", ".join("?" * width) + ")"
    by_size: dict[int, list[tuple[Any, ...]]] = {}
    for group in _chunks(rows, max(1, SQLITE_MAX_PARAMETERS // width)):
        by_size.setdefault(len(group), []).append(tuple(itertools.chain.from_iterable(group)))
    return [
        (f"INSERT INTO {table_name} ({quoted}) VALUES " + ", ".join([one_row] * size), groups)
        for size, groups in by_size.items()
    ]


def _converted(row: Sequence[Any], converted: list[tuple[int, Any]]) -> tuple[Any, ...]:
    """The row with the values of the given columns converted (a null stays null): for
    SQLite's text formats on the way in, for the digest's lines on the way out."""
    values = list(row)
    for place, to in converted:
        value = values[place]
        if value is not None:
            values[place] = to(value)
    return tuple(values)


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, of the UTC time (as UtcDateTime binds it)
    if value.tzinfo is UTC:  # the usual case, without a copy: cut the "+00:00"
        return value.isoformat(sep=" ", timespec="microseconds")[:26]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _sqlite_converter(column: sa.Column[Any]) -> Any:
    if isinstance(column.type, UtcDateTime | sa.DateTime):
        return _sqlite_time
    if isinstance(column.type, sa.Date):
        return date.isoformat
    if isinstance(column.type, sa.Boolean):
        return int
    return None


async def row_of_person(
    session: AsyncSession, table: sa.Table, council: str, person_id: str
) -> sa.Row[Any] | None:
    """The one row a table keeps per person, keyed by (council, person_id) (ADR 16)."""
    return (
        await session.execute(
            sa.select(table).where(table.c.council == council, table.c.person_id == person_id)
        )
    ).first()


class EventStore:
    """The append-only, hash-chained store: INSERT only (the replay is the one exception)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def head(self, council: str, person_id: str) -> ChainHead | None:
        row = await row_of_person(self._session, audit_heads, council, person_id)
        if row is None:
            return None
        return ChainHead(row.person_id, row.council, row.last_seq, row.last_hash)

    async def contains(self, event_id: str) -> bool:
        found = await self._session.scalar(
            sa.select(audit_events.c.seq).where(audit_events.c.event_id == event_id)
        )
        return found is not None

    async def append(self, facts: EventFacts) -> StoredEvent:
        """Link the event after the person's head and store both in this transaction."""
        head = await self.head(facts.council, facts.person_id)
        stored = link(facts, head)
        await self._session.execute(audit_events.insert().values(**_event_row(stored)))
        if head is None:
            await self._session.execute(
                audit_heads.insert().values(
                    person_id=stored.person_id,
                    council=stored.council,
                    last_seq=stored.seq,
                    last_hash=stored.hash,
                )
            )
        else:
            result = await self._session.execute(
                audit_heads.update()
                .where(
                    audit_heads.c.council == stored.council,
                    audit_heads.c.person_id == stored.person_id,
                    audit_heads.c.last_seq == head.last_seq,
                )
                .values(last_seq=stored.seq, last_hash=stored.hash)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ChainHeadMoved(stored.person_id)
        return stored

    async def heads_of(self, council: str, person_ids: Sequence[str]) -> dict[str, ChainHead]:
        """The heads of those of the council's people who have one (one query)."""
        found: dict[str, ChainHead] = {}
        for part in _chunks(person_ids):
            rows = await self._session.execute(
                sa.select(audit_heads).where(
                    audit_heads.c.council == council, one_of(audit_heads.c.person_id, part)
                )
            )
            for row in rows:
                found[row.person_id] = ChainHead(
                    row.person_id, row.council, row.last_seq, row.last_hash
                )
        return found

    async def chains_of(
        self, council: str, person_ids: Sequence[str]
    ) -> dict[str, list[StoredEvent]]:
        """The chains of the council's people in seq order (one query per chunk of people)."""
        found: dict[str, list[StoredEvent]] = {person_id: [] for person_id in person_ids}
        for part in _chunks(person_ids):
            rows = await self._session.execute(
                sa.select(*_STORED_EVENT_COLUMNS)
                .where(audit_events.c.council == council, one_of(audit_events.c.person_id, part))
                .order_by(audit_events.c.person_id, audit_events.c.seq)
            )
            for row in rows:
                found[row.person_id].append(StoredEvent(*row))
        return found

    async def places_of(self, event_ids: Sequence[str]) -> dict[str, ChainPlace]:
        """Where each of these events is stored, if it is: its chain and seq."""
        found: dict[str, ChainPlace] = {}
        for part in _chunks(event_ids):
            rows = await self._session.execute(
                sa.select(
                    audit_events.c.event_id,
                    audit_events.c.council,
                    audit_events.c.person_id,
                    audit_events.c.seq,
                ).where(one_of(audit_events.c.event_id, part))
            )
            for event_id, council, person_id, seq in rows:
                found[event_id] = ChainPlace(council, person_id, seq)
        return found

    async def head_count(self, council: str) -> int:
        return int(
            await self._session.scalar(
                sa.select(sa.func.count())
                .select_from(audit_heads)
                .where(audit_heads.c.council == council)
            )
            or 0
        )

    async def put_links(self, links: Sequence[StoredEvent]) -> None:
        """Store appended links (of any people) in one driver call."""
        await DriverRows(self._session).insert(
            audit_events,
            [
                (
                    s.person_id,
                    s.seq,
                    s.event_id,
                    s.council,
                    s.type,
                    s.time,
                    s.correlation_id,
                    s.causation_id,
                    s.policy_version,
                    s.canonical,
                    s.prev_hash,
                    s.hash,
                )
                for s in links
            ],
        )

    async def put_heads(self, council: str, heads: Sequence[ChainHead]) -> None:
        """Set these people's heads, whether they had one or not (replays only: no CAS)."""
        if not heads:
            return
        await self.drop_heads(council, [head.person_id for head in heads])
        await DriverRows(self._session).insert(
            audit_heads,
            [(head.person_id, head.council, head.last_seq, head.last_hash) for head in heads],
        )

    async def drop_heads(self, council: str, person_ids: Sequence[str]) -> None:
        for part in _chunks(person_ids):
            await self._session.execute(
                audit_heads.delete().where(
                    audit_heads.c.council == council, one_of(audit_heads.c.person_id, part)
                )
            )

    async def drop_people(self, council: str, person_ids: Sequence[str]) -> None:
        """Remove these people's chains and heads (a replay repairing broken chains)."""
        for part in _chunks(person_ids):
            await self._session.execute(
                audit_events.delete().where(
                    audit_events.c.council == council, one_of(audit_events.c.person_id, part)
                )
            )
        await self.drop_heads(council, person_ids)

    async def chain_and_head(
        self, council: str, person_id: str
    ) -> tuple[list[StoredEvent], ChainHead | None]:
        """A chain and its head as one commit left them, for verifying while events arrive.

        One statement: the person (a one-row select of the two keys) joined to their head and
        to each of their events, so both come from the same snapshot on either engine. (Read
        as two statements, an append committed between them on PostgreSQL showed as a chain
        one event short of its head, a "missing" event that was not missing, and each read
        of a history paid for a second statement.)
        """
        person = sa.select(
            sa.literal(council, sa.String).label("council"),
            sa.literal(person_id, sa.String).label("person_id"),
        ).subquery()
        rows = await self._session.execute(
            sa.select(audit_heads.c.last_seq, audit_heads.c.last_hash, *_STORED_EVENT_COLUMNS)
            .select_from(person)
            .outerjoin(
                audit_heads,
                sa.and_(
                    audit_heads.c.council == person.c.council,
                    audit_heads.c.person_id == person.c.person_id,
                ),
            )
            .outerjoin(
                audit_events,
                sa.and_(
                    audit_events.c.council == person.c.council,
                    audit_events.c.person_id == person.c.person_id,
                ),
            )
            .order_by(audit_events.c.seq)
        )
        chain: list[StoredEvent] = []
        head: ChainHead | None = None
        for last_seq, last_hash, *event in rows:
            if head is None and last_seq is not None:
                head = ChainHead(person_id, council, last_seq, last_hash)
            if event[0] is not None:  # the person has no event: one row of nulls
                chain.append(StoredEvent(*event))
        return chain, head

    async def chain_of(self, council: str, person_id: str) -> list[StoredEvent]:
        rows = await self._session.execute(
            sa.select(*_STORED_EVENT_COLUMNS)
            .where(audit_events.c.council == council, audit_events.c.person_id == person_id)
            .order_by(audit_events.c.seq)
        )
        return [StoredEvent(*row) for row in rows]

    async def holds(self, council: str, person_id: str) -> bool:
        """Whether the council's person has a head or a stored event here."""
        if await self.head(council, person_id) is not None:
            return True
        found = await self._session.scalar(
            sa.select(audit_events.c.seq)
            .where(audit_events.c.council == council, audit_events.c.person_id == person_id)
            .limit(1)
        )
        return found is not None

    async def people(self, council: str) -> list[str]:
        """The council's people with a head or a stored event, sorted."""
        heads = sa.select(audit_heads.c.person_id).where(audit_heads.c.council == council)
        events = sa.select(audit_events.c.person_id).where(audit_events.c.council == council)
        rows = await self._session.execute(sa.union(heads, events))
        return sorted({row[0] for row in rows})


def _stage_conditions(stage: CaseloadStage) -> list[sa.ColumnElement[bool]]:
    """The SQL twin of domain.caseload_stage: the furthest step reached."""
    people = audit_people.c
    if stage is CaseloadStage.RECEIVING_PAYMENTS:
        return [people.payment_released_at.is_not(None)]
    conditions = [people.payment_released_at.is_(None)]
    if stage is CaseloadStage.SETTING_UP_PAYMENTS:
        return [*conditions, people.plan_signed_off_at.is_not(None)]
    conditions.append(people.plan_signed_off_at.is_(None))
    if stage is CaseloadStage.SUPPORT_PLANNING:
        return [*conditions, people.budget_issued_at.is_not(None)]
    return [*conditions, people.budget_issued_at.is_(None)]


def _inputs(row: Any) -> PersonInputs:
    return PersonInputs(
        person_id=row.person_id,
        council=row.council,
        client_group=row.client_group,
        team=row.team,
        key_worker_id=row.key_worker_id,
        community_based=row.community_based,
        assessed_at=_utc(row.assessed_at),
        budget_issued_at=_utc(row.budget_issued_at),
        plan_signed_off_at=_utc(row.plan_signed_off_at),
        payment_released_at=_utc(row.payment_released_at),
        last_review_completed_on=row.last_review_completed_on,
        events=row.events,
        last_event_at=_utc(row.last_event_at),
    )


def _inputs_row(inputs: PersonInputs) -> dict[str, Any]:
    return {
        "person_id": inputs.person_id,
        "council": inputs.council,
        "client_group": inputs.client_group,
        "team": inputs.team,
        "key_worker_id": inputs.key_worker_id,
        "community_based": inputs.community_based,
        "assessed_at": inputs.assessed_at,
        "budget_issued_at": inputs.budget_issued_at,
        "plan_signed_off_at": inputs.plan_signed_off_at,
        "payment_released_at": inputs.payment_released_at,
        "last_review_completed_on": inputs.last_review_completed_on,
        "events": inputs.events,
        "last_event_at": inputs.last_event_at,
    }


class Projections:
    """The KPI inputs (derived from the store, droppable) and the reads that join them, or
    the budget timeline rendered from the stored events, to the store."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def person(self, council: str, person_id: str) -> PersonInputs | None:
        row = await row_of_person(self._session, audit_people, council, person_id)
        return None if row is None else _inputs(row)

    async def save_person(self, inputs: PersonInputs, *, existed: bool) -> None:
        values = _inputs_row(inputs)
        if existed:
            await self._session.execute(
                audit_people.update()
                .where(
                    audit_people.c.council == inputs.council,
                    audit_people.c.person_id == inputs.person_id,
                )
                .values(**values)
            )
        else:
            await self._session.execute(audit_people.insert().values(**values))

    async def people_by_id(
        self, council: str, person_ids: Sequence[str]
    ) -> dict[str, PersonInputs]:
        found: dict[str, PersonInputs] = {}
        for part in _chunks(person_ids):
            rows = await self._session.execute(
                sa.select(audit_people).where(
                    audit_people.c.council == council, one_of(audit_people.c.person_id, part)
                )
            )
            for row in rows:
                found[row.person_id] = _inputs(row)
        return found

    async def put_people(self, council: str, people: Sequence[PersonInputs]) -> None:
        """Set these people's KPI inputs (all of the council), whether they had a row or not."""
        if not people:
            return
        for part in _chunks([inputs.person_id for inputs in people]):
            await self._session.execute(
                audit_people.delete().where(
                    audit_people.c.council == council, one_of(audit_people.c.person_id, part)
                )
            )
        await DriverRows(self._session).insert(
            audit_people,
            [
                (
                    i.person_id,
                    i.council,
                    i.client_group,
                    i.team,
                    i.key_worker_id,
                    i.community_based,
                    i.assessed_at,
                    i.budget_issued_at,
                    i.plan_signed_off_at,
                    i.payment_released_at,
                    i.last_review_completed_on,
                    i.events,
                    i.last_event_at,
                )
                for i in people
            ],
        )

    async def clear(self, council: str) -> None:
        for table in PROJECTION_TABLES:
            await self._session.execute(table.delete().where(table.c.council == council))

    async def people_of(self, council: str) -> list[PersonInputs]:
        rows = await self._session.execute(
            sa.select(audit_people)
            .where(audit_people.c.council == council)
            .order_by(audit_people.c.person_id)
        )
        return [_inputs(row) for row in rows]

    async def caseload(
        self,
        council: str,
        *,
        team: str | None,
        key_worker_id: str | None,
        stage: CaseloadStage | None,
        after_person_id: str | None,
        limit: int,
    ) -> list[CaseloadEntry]:
        """A page of the council's people by person id, with each one's latest timeline line."""
        people = audit_people.c
        latest_seq = (
            sa.select(audit_events.c.person_id, sa.func.max(audit_events.c.seq).label("seq"))
            .where(audit_events.c.council == council)
            .group_by(audit_events.c.person_id)
            .subquery()
        )
        latest = audit_events.alias("latest")
        query = (
            sa.select(
                audit_people,
                *(latest.c[name].label(f"latest_{name}") for name in _STORED_EVENT_FIELDS),
            )
            .outerjoin(latest_seq, latest_seq.c.person_id == people.person_id)
            .outerjoin(
                latest,
                sa.and_(
                    latest.c.council == people.council,
                    latest.c.person_id == people.person_id,
                    latest.c.seq == latest_seq.c.seq,
                ),
            )
            .where(people.council == council)
            # A council's own chains (policy:, operations:) are nobody's case; the colon is
            # outside every person id.
            .where(~people.person_id.contains(":"))
        )
        if team is not None:
            query = query.where(people.team == team)
        if key_worker_id is not None:
            query = query.where(people.key_worker_id == key_worker_id)
        if stage is not None:
            query = query.where(*_stage_conditions(stage))
        if after_person_id is not None:
            query = query.where(people.person_id > after_person_id)
        rows = await self._session.execute(query.order_by(people.person_id).limit(limit))
        found = []
        for row in rows:
            latest_line = None
            if row.latest_seq is not None:
                latest_line = _timeline_line(_stored_from(row._mapping, prefix="latest_"))
            found.append(
                CaseloadEntry(
                    person=_inputs(row),
                    latest_kind=latest_line.kind if latest_line else None,
                    latest_summary=latest_line.summary if latest_line else None,
                )
            )
        return found

    async def reviews_completed(self, council: str) -> dict[str, list[tuple[date, datetime]]]:
        """Each person's completed reviews: (completed_on, when audit received it)."""
        rows = await self._session.execute(
            sa.select(*_STORED_EVENT_COLUMNS)
            .where(audit_events.c.council == council, REVIEWS_COMPLETED)
            .order_by(audit_events.c.person_id, audit_events.c.seq)
        )
        found: dict[str, list[tuple[date, datetime]]] = {}
        for row in rows:
            line = _timeline_line(StoredEvent(*row))
            if line.kind == REVIEW_COMPLETED and line.on_date is not None:
                found.setdefault(line.person_id, []).append((line.on_date, line.time))
        return found

    async def timeline(
        self, council: str, person_id: str, *, after_seq: int, limit: int
    ) -> list[TimelineEntry]:
        rows = await self._session.execute(
            sa.select(*_STORED_EVENT_COLUMNS)
            .where(
                audit_events.c.council == council,
                audit_events.c.person_id == person_id,
                audit_events.c.seq > after_seq,
            )
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return [_timeline_line(StoredEvent(*row)) for row in rows]


class Replays:
    """Replay runs and the records a running replay has read."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def latest_version(self, council: str) -> int:
        found = await self._session.scalar(
            sa.select(sa.func.max(audit_replays.c.version)).where(
                audit_replays.c.council == council
            )
        )
        return int(found or 0)

    async def add(self, values: dict[str, Any]) -> None:
        await self._session.execute(audit_replays.insert().values(**values))

    async def update(self, replay_id: str, values: dict[str, Any]) -> None:
        await self._session.execute(
            audit_replays.update().where(audit_replays.c.replay_id == replay_id).values(**values)
        )

    async def get(self, council: str, replay_id: str) -> dict[str, Any] | None:
        """The council's replay of this id; None for another council's."""
        row = (
            await self._session.execute(
                sa.select(audit_replays).where(
                    audit_replays.c.council == council, audit_replays.c.replay_id == replay_id
                )
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def forget(self, replay_id: str) -> None:
        await self._session.execute(
            audit_replay_log.delete().where(audit_replay_log.c.replay_id == replay_id)
        )


class AuditUnitOfWork(UnitOfWork):
    store: EventStore
    projections: Projections
    replays: Replays

    def _open(self) -> None:
        self.store = EventStore(self.session)
        self.projections = Projections(self.session)
        self.replays = Replays(self.session)

    async def forget_applied(self, consumer: str, event_ids: Sequence[str]) -> None:
        """Drop the consumer's inbox rows of these events (a replay re-marks them)."""
        for part in _chunks(event_ids):
            await self.session.execute(
                inbox.delete().where(inbox.c.consumer == consumer, one_of(inbox.c.event_id, part))
            )

    async def applied_of(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the consumer has applied (one query per chunk)."""
        found: set[str] = set()
        for part in _chunks(event_ids):
            rows = await self.session.execute(
                sa.select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, one_of(inbox.c.event_id, part)
                )
            )
            found.update(row[0] for row in rows)
        return found

    async def mark_all_applied(self, consumer: str, event_ids: Sequence[str]) -> None:
        if event_ids:
            now = datetime.now(UTC)
            await self.session.execute(
                inbox.insert(),
                [{"consumer": consumer, "event_id": eid, "applied_at": now} for eid in event_ids],
            )

    async def mark_all_applied_in_bulk(self, consumer: str, event_ids: Sequence[str]) -> None:
        """mark_all_applied for a replay's thousands, in one driver call."""
        now = datetime.now(UTC)
        await DriverRows(self.session).insert(inbox, [(consumer, eid, now) for eid in event_ids])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


async def digest(session: AsyncSession, council: str) -> tuple[str, dict[str, int]]:
    """sha256 over a canonical dump of the council's store and projections, in a fixed order.

    Each row is one line: the sorted-key compact JSON of its columns as UTF-8 (times as
    UTC ISO strings with microseconds, dates as ISO dates, bytes as hex), written by
    msgspec. The rows are streamed in primary-key order in chunks, read as plain tuples (a
    replay of a million events digests a few million rows, so no per-row mapping is built).
    On SQLite a stored time is already that ISO string but for its separator and offset,
    so it is read as text, not parsed into a datetime and written back: the lines, and so
    the digest, are the same on both engines (tests/test_audit_digest.py).
    """
    hasher = hashlib.sha256()
    counts: dict[str, int] = {}
    encode_lines = _DIGEST_ENCODER.encode_lines
    on_sqlite = (await session.connection()).dialect.name == "sqlite"
    for table in DIGEST_TABLES:
        names = sorted(column.name for column in table.columns)
        columns = [table.c[name] for name in names]
        line = _DIGEST_LINES[table.name]  # a Struct whose fields are the sorted names
        read_as, converters = _digest_reading(columns, on_sqlite=on_sqlite)
        plain = [(place, to) for place, to in enumerate(converters) if to is not None]
        order = [column for column in table.primary_key.columns]
        # Audit's own findings chains are left out: see services/audit/tamper.py.
        findings_chains = table.c.person_id.startswith(TAMPER_SUBJECT_PREFIX)
        result = await session.stream(
            sa.select(*read_as)
            .where(table.c.council == council, sa.not_(findings_chains))
            .order_by(*order)
        )
        count = 0
        hasher.update(f"table {table.name}\n".encode())
        async for rows in result.partitions(DIGEST_CHUNK):
            if plain:
                lines = [line(*_converted(row, plain)) for row in rows]
            else:
                lines = [line(*row) for row in rows]
            hasher.update(encode_lines(lines))
            count += len(lines)
        counts[table.name] = count
    return hasher.hexdigest(), counts


DIGEST_CHUNK = 5_000
_DIGEST_ENCODER = msgspec.json.Encoder()
_DIGEST_LINES: dict[str, type[msgspec.Struct]] = {
    table.name: msgspec.defstruct(
        f"{table.name}_line", sorted(str(column.name) for column in table.columns)
    )
    for table in DIGEST_TABLES
}
"""One line of the digest per table: a Struct encodes its fields in their order, here the
columns' sorted names, as the sorted-key JSON object the line is (no dict per row)."""


def _digest_reading(
    columns: Sequence[sa.Column[Any]], *, on_sqlite: bool
) -> tuple[list[sa.ColumnElement[Any]], list[Any]]:
    """What to select for each column, and how its value becomes the line's (None: as read)."""
    read_as: list[sa.ColumnElement[Any]] = []
    converters: list[Any] = []
    for column in columns:
        if on_sqlite and isinstance(column.type, UtcDateTime | sa.DateTime):
            read_as.append(sa.type_coerce(column, sa.Text))
            converters.append(_iso_of_sqlite_time)
        elif on_sqlite and isinstance(column.type, sa.Date):
            read_as.append(sa.type_coerce(column, sa.Text))  # stored as the ISO date
            converters.append(None)
        else:
            read_as.append(column)
            converters.append(_plain if _needs_plain(column) else None)
    return read_as, converters


def _iso_of_sqlite_time(stored: str) -> str:
    """`_plain` of a time SQLite stores as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, see
    _sqlite_time); anything else is parsed as SQLAlchemy would have read it."""
    if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        return f"{stored[:10]}T{stored[11:]}+00:00"
    return str(_plain(datetime.fromisoformat(stored)))


def _needs_plain(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, UtcDateTime | sa.DateTime | sa.Date | sa.LargeBinary)
