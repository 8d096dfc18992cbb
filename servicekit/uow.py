"""The unit of work: one transaction holding a state change and the events it causes.

Events are written to the outbox table in the same transaction as the state (architecture
§4); nothing is published from here. After a commit the relay is nudged so the events
leave within milliseconds.

A unit of work can also hold a *batch*: many use cases (a poll's worth of events, or the
rows of a bulk conversion) in one transaction. Inside `batch()`, a use case's own
`async with uow:` joins the open transaction and its `commit()` only adds its events to
the batch's outbox rows; the batch writes them with one insert and commits once at its
end, or not at all. One commit per batch instead of per event is what lets a consumer
keep up with hundreds of events a second; one outbox insert per batch instead of per use
case saved a conversion an insert for each use case of each row (docs/performance.md).

The aggregates a use case loads or adds through a repository are *seen* by the unit of
work (`track`), which collects the events they recorded (as cosmicpython's
`collect_new_events`) whenever it writes events: at `commit()`, and before an event the
handler emits itself, so the outbox keeps the order in which things happened. A handler
never drains an aggregate's events by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.events import Event
from servicekit import clock, context
from servicekit.tracing import current_trace_headers


class RecordsEvents(Protocol):
    """An aggregate: it appends the events its changes cause to `events`."""

    events: list[Event]


Aggregate = TypeVar("Aggregate", bound=RecordsEvents)


class UnitOfWork:
    """Subclass per service and open repositories on `self.session` in `_open`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        outbox: sa.Table,
        inbox: sa.Table,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._inbox = inbox
        self._on_commit = on_commit
        self._pending: list[Envelope] = []
        self._seen: dict[int, RecordsEvents] = {}
        self.committed = False
        self._in_batch = False
        self._batch_wrote_events = False
        self._batch_outbox_rows: list[dict[str, object]] = []  # the rows a batch writes at its end
        self._read_only = False

    def _open(self) -> None:
        """Hook for subclasses: create repositories on self.session."""

    async def __aenter__(self) -> Self:
        if self._in_batch:  # a use case inside a batch joins the batch's transaction
            self.committed = False
            return self
        self.session = self._sessions()
        self._pending = []
        self._seen = {}
        self.committed = False
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._in_batch:  # the batch decides; an exception propagates to it
            return
        try:
            if not self.committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Self]:
        """One transaction for many use cases: committed once at the end, or rolled back
        whole if anything raises (the caller then retries the items one by one or
        without the one that failed)."""
        async with self:
            self._in_batch = True
            self._batch_wrote_events = False
            self._batch_outbox_rows = []
            try:
                yield self
            except BaseException:
                self._in_batch = False
                self._batch_outbox_rows = []
                self.committed = False  # so leaving rolls everything back
                raise
            self._in_batch = False
            self.committed = False  # until the batch itself has committed, below
            rows, self._batch_outbox_rows = self._batch_outbox_rows, []
            if rows:  # in the order the use cases committed them, so seq keeps it
                await self.session.execute(self._outbox.insert(), rows)
            await self.session.commit()
            self.committed = True
            if self._batch_wrote_events and self._on_commit is not None:
                self._on_commit()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Self]:
        """For a request that only reads: its repositories on one session, nothing
        collected, nothing written, no commit; the session is closed (its transaction, if
        a statement began one, rolled back) on the way out. Emitting or committing inside
        is a defect and raises."""
        async with self:
            self._in_batch = True  # so a use case's own `async with uow:` joins the read
            self._read_only = True
            try:
                yield self
            finally:
                self._in_batch = False
                self._read_only = False

    def track(self, aggregate: Aggregate) -> Aggregate:
        """Repositories call this for every aggregate they load or add; its new events are
        collected from then on."""
        self._seen.setdefault(id(aggregate), aggregate)
        return aggregate

    def collect_new_events(self) -> None:
        """Move the events the seen aggregates recorded into this transaction's outbox."""
        for aggregate in self._seen.values():
            if not aggregate.events:
                continue  # most have recorded nothing: a conversion batch holds hundreds
            recorded = list(aggregate.events)
            aggregate.events.clear()
            for event in recorded:
                self._emit(event)

    def emit(self, event: Event) -> Envelope:
        """Record an event to be written to the outbox at commit (after those the seen
        aggregates recorded before it)."""
        self.collect_new_events()
        return self._emit(event)

    def _emit(self, event: Event) -> Envelope:
        if self._read_only:
            raise RuntimeError("a unit of work opened for reading cannot emit events")
        traceparent, tracestate = current_trace_headers()
        envelope = Envelope(
            event=event,
            # The one clock: an event is recorded at the service's now, which tests set.
            time=clock.now(),
            correlation_id=context.current_correlation_id(),
            causation_id=context.causation_id.get(),
            actor=context.actor.get(),
            traceparent=traceparent,
            tracestate=tracestate,
        )
        self._pending.append(envelope)
        return envelope

    def emit_all(self, events: list[Event]) -> list[Envelope]:
        return [self.emit(event) for event in events]

    @property
    def emitted(self) -> list[Envelope]:
        return list(self._pending)

    async def already_applied(self, consumer: str, event_id: str) -> bool:
        row = await self.session.execute(
            sa.select(self._inbox.c.event_id).where(
                self._inbox.c.consumer == consumer, self._inbox.c.event_id == event_id
            )
        )
        return row.first() is not None

    async def claim_unapplied(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Mark these events applied by the consumer, in this transaction, and return the
        ones it had not applied before: the ones to apply now.

        One `INSERT … ON CONFLICT DO NOTHING … RETURNING`, so the inbox's primary key
        decides which events are new, not a query plan. Asking first with `SELECT … IN
        (…)` was planned by PostgreSQL from no statistics while the inbox grew from empty
        (a council's first conversion): a scan of all the consumer's rows, each checked
        against the hundred ids, 60-75 ms a batch, most of the database's CPU.
        """
        wanted = list(dict.fromkeys(event_ids))
        if not wanted:
            return set()
        now = datetime.now(UTC)
        inbox = self._inbox
        if self.session.get_bind().dialect.name == "sqlite":
            statement = (
                sqlite_insert(inbox)
                .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
                .returning(inbox.c.event_id)
            )
            rows = await self.session.execute(
                statement,
                [{"consumer": consumer, "event_id": e, "applied_at": now} for e in wanted],
            )
            return {row.event_id for row in rows}
        # On PostgreSQL the ids go in as one array (unnest), so the statement is the same
        # for every batch and prepared once; a VALUES list of each batch's length was a new
        # statement to parse and plan nearly every batch.
        source = sa.select(
            sa.literal(consumer, inbox.c.consumer.type),
            sa.func.unnest(
                sa.bindparam(None, wanted, type_=postgresql.ARRAY(inbox.c.event_id.type))
            ),
            sa.literal(now, inbox.c.applied_at.type),
        )
        rows = await self.session.execute(
            postgresql_insert(inbox)
            .from_select(["consumer", "event_id", "applied_at"], source)
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
            .returning(inbox.c.event_id)
        )
        return {row.event_id for row in rows}

    async def mark_applied(self, consumer: str, event_id: str) -> None:
        await self.mark_all_applied(consumer, [event_id])

    async def mark_all_applied(self, consumer: str, event_ids: list[str]) -> None:
        if not event_ids:
            return
        now = datetime.now(UTC)
        await self.session.execute(
            self._inbox.insert(),
            [
                {"consumer": consumer, "event_id": event_id, "applied_at": now}
                for event_id in event_ids
            ],
        )

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a unit of work opened for reading cannot commit")
        self.collect_new_events()
        if self._pending:
            now = datetime.now(UTC)
            rows = []
            for envelope in self._pending:
                message = envelope.to_message()
                rows.append(
                    {
                        "event_id": envelope.id,
                        "topic": envelope.topic,
                        "key": envelope.subject,
                        "value": message.value,
                        "created_at": now,
                        "published_at": None,
                    }
                )
            if self._in_batch:
                self._batch_outbox_rows.extend(rows)
            else:
                await self.session.execute(self._outbox.insert(), rows)
        if self._in_batch:  # written with the batch's other rows when it ends
            self._batch_wrote_events = self._batch_wrote_events or bool(self._pending)
            self._pending = []
            self.committed = True
            return
        await self.session.commit()
        self.committed = True
        if self._pending and self._on_commit is not None:
            self._on_commit()

    async def rollback(self) -> None:
        if self._in_batch:
            raise RuntimeError("a use case inside a batch cannot roll the batch back alone")
        await self.session.rollback()
        self._pending = []
        self._seen = {}
