"""The outbox relay: moves committed events from a service's outbox table to the log.

It wakes the moment a unit of work commits (no multi-second polling), publishes in
order, and marks rows published only after the log has accepted them. While the log is
down the rows simply wait in the table; the relay backs off and carries on when it
returns. Delivery is therefore at-least-once; consumers' inboxes make that exactly-once
in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, one_of
from servicekit.eventlog import EventLog, OutgoingRecord
from servicekit.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = structlog.get_logger(__name__)

_IDLE_RECHECK_SECONDS = 1.0
_PEER_PUBLISHING_RECHECK_SECONDS = 0.02


async def publisher_lock(session: AsyncSession, service: str, dialect: str) -> bool:
    """Take, for this transaction, the right to publish the service's outbox.

    Several instances of a service share one PostgreSQL database (and so one outbox).
    Two relays would each publish the same rows: consumers' inboxes drop the second
    copy, but every event would cross the log twice. So one relay publishes at a time;
    the others look again every few milliseconds and take over when it stops. SQLite
    has one process per database, so there is nothing to share.
    """
    if dialect != "postgresql":
        return True
    key = zlib.crc32(f"outbox:{service}".encode())
    return bool(await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(key))))


_MAX_BACKOFF_SECONDS = 5.0


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        database: Database,
        outbox: sa.Table,
        event_log: EventLog,
        batch_size: int = 500,
    ) -> None:
        self._service = service
        self._database = database
        self._outbox = outbox
        self._log = event_log
        self._batch_size = batch_size
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.healthy = True

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from run()."""
        self._stopping = True
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; returns how many went out."""
        return await self._publish_batch() or 0

    async def _publish_batch(self) -> int | None:
        """Publish one batch; None when another instance of the service is publishing."""
        table = self._outbox
        async with self._database.sessions() as session:
            dialect = self._database.engine.dialect.name
            if not await publisher_lock(session, self._service, dialect):
                return None
            rows = (
                await session.execute(
                    sa.select(table.c.seq, table.c.topic, table.c.key, table.c.value)
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.seq)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                OUTBOX_BACKLOG.labels(self._service).set(0)
                return 0
            await self._log.publish(
                [
                    OutgoingRecord(
                        topic=row.topic,
                        key=row.key,
                        value=row.value,
                        headers={"content-type": b"application/cloudevents+json"},
                    )
                    for row in rows
                ]
            )
            await session.execute(
                table.update()
                .where(one_of(table.c.seq, [row.seq for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
            await session.commit()
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def backlog(self) -> int:
        async with self._database.sessions() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).where(self._outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def drain(self) -> None:
        """Publish until nothing is left (used at shutdown and by tests)."""
        while await self.publish_pending():
            pass

    async def run(self) -> None:
        try:
            await self._publish_until_stopped()
        finally:
            self._stopping = False  # a stop ends this run only; a later run starts afresh

    async def _publish_until_stopped(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                published = await self._publish_batch()
                self.healthy = True
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the log or the database is down: keep rows, retry
                self.healthy = False
                log.warning("outbox_publish_failed", service=self._service, error=str(err))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            if published is None:  # another instance publishes; take over if it stops
                await asyncio.sleep(_PEER_PUBLISHING_RECHECK_SECONDS)
                continue
            if published:
                continue
            self._wakeup.clear()
            if self._stopping:
                break
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just after a wake-up (a commit right before shutdown), and stop() then
            # waits on a relay that never ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_IDLE_RECHECK_SECONDS):
                    await self._wakeup.wait()
