"""The unit of work: one transaction holding a state change and the events it causes.

Events are written to the outbox table in the same transaction as the state (architecture
§4); nothing is published from here. After a commit the relay is nudged so the events
leave within milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.events import Event
from servicekit import context
from servicekit.tracing import current_trace_headers


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
        self.committed = False

    def _open(self) -> None:
        """Hook for subclasses: create repositories on self.session."""

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self._pending = []
        self.committed = False
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(self, event: Event) -> Envelope:
        """Record an event to be written to the outbox at commit."""
        traceparent, tracestate = current_trace_headers()
        envelope = Envelope(
            event=event,
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

    async def mark_applied(self, consumer: str, event_id: str) -> None:
        await self.session.execute(
            self._inbox.insert().values(
                consumer=consumer, event_id=event_id, applied_at=datetime.now(UTC)
            )
        )

    async def commit(self) -> None:
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
            await self.session.execute(self._outbox.insert(), rows)
        await self.session.commit()
        self.committed = True
        if self._pending and self._on_commit is not None:
            self._on_commit()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._pending = []
