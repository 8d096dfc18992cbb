"""Runs a service's event handlers over the log: decode, apply once, then commit offsets.

For each record: a value that is not a valid CloudEvent of a known type with valid data
goes to the dead-letter topic with the reason; a handler that refuses the event (a
DomainError) does too. Anything else (the database down, say) is retried with backoff
and the offset is not committed, so nothing is skipped. The inbox row is written in the
handler's own transaction, so a redelivered event changes nothing.

A poll's records are applied in batches: up to TRANSACTION_BATCH events, in log order,
in one transaction with one inbox query and one inbox insert, committed once. If
anything in a batch fails the whole batch is rolled back and its records are applied one
by one as above, so a bad event is dead-lettered alone and the good ones around it still
apply. Offsets are committed only after every record of the poll is applied (or
dead-lettered), as before.

Inside a batch, consecutive events whose types share a batch handler go to it together,
so it can read what they need with one query and write with one statement per table
instead of a few per event. Each event still has its own trace span, which the consumer
opens for every event of the run, and its own causation (the `applying` context the batch
handler enters per event while it decides it). The one-by-one pass always uses the
per-event handler.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from itertools import groupby
from typing import Any

import structlog
from opentelemetry.trace import Span, use_span
from sqlalchemy.exc import DBAPIError, OperationalError

from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.events import Event
from contracts.registry import DEAD_LETTER_TOPIC
from servicekit import context
from servicekit.errors import DomainError
from servicekit.eventlog import EventLog, OutgoingRecord, Record
from servicekit.metrics import EVENTS_CONSUMED, ConsumerProgress
from servicekit.tracing import consumer_span, consumer_spans
from servicekit.uow import UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope, Any], Awaitable[None]]
"""A handler gets the envelope and an open unit of work whose inbox row is already added."""

Applying = Callable[[Envelope], AbstractContextManager[None]]
"""The context one event of a batch is decided in: its trace span, correlation and causation."""

BatchHandler = Callable[[Sequence[Envelope], Any, Applying], Awaitable[None]]
"""A handler for many events of one type at once, in log order, inside the batch's unit
of work (their inbox rows are written with it). It decides each event inside
`applying(envelope)` where what it writes is caused by that event, and must leave the same
state as the per-event handler applied to them one after another."""

_MAX_BACKOFF_SECONDS = 5.0
_ATTEMPTS_BEFORE_DEAD_LETTER = 5
TRANSACTION_BATCH = 100
"""Events per transaction: big enough to amortise the commit, small enough that the
write lock (on SQLite) is held for a fraction of a second."""


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        event_log: EventLog,
        topics: Sequence[str],
        handlers: dict[type[Event], Handler],
        unit_of_work: Callable[[], UnitOfWork],
        batch: int = TRANSACTION_BATCH,
        batch_handlers: dict[type[Event], BatchHandler] | None = None,
    ) -> None:
        self.name = name
        self._batch = batch
        self._log = event_log
        self._topics = list(topics)
        self._handlers = handlers
        self._batch_handlers = batch_handlers or {}
        self._unit_of_work = unit_of_work
        self.healthy = True
        self.applied = 0
        self.progress = ConsumerProgress()
        self._stopping = False
        self._poll_in_flight: asyncio.Future[list[Record]] | None = None

    def stop(self) -> None:
        """Finish the batch in hand (apply, commit its offsets), then return from run().

        A poll still waiting has nothing in hand and is cancelled at once: a poll only
        reads. One that has already returned records is left to be applied."""
        self._stopping = True
        if self._poll_in_flight is not None:
            self._poll_in_flight.cancel()

    async def run(self) -> None:
        try:
            await self._apply_until_stopped()
        finally:
            self._stopping = False  # a stop ends this run only; a later run starts afresh

    async def _apply_until_stopped(self) -> None:
        backoff = 0.1
        while not self._stopping:
            consumer = self._log.consumer(self.name, self._topics)
            try:
                while not self._stopping:
                    poll = asyncio.ensure_future(consumer.poll(max_records=500, timeout_ms=500))
                    self._poll_in_flight = poll
                    try:
                        records = await poll
                    except asyncio.CancelledError:
                        this_task = asyncio.current_task()
                        asked_to_stop = self._stopping and poll.cancelled()
                        if asked_to_stop and this_task is not None and not this_task.cancelling():
                            break  # stop() cancelled the poll; nobody cancelled this task
                        poll.cancel()
                        raise
                    finally:
                        self._poll_in_flight = None
                    await self.handle_all(records)
                    await consumer.commit(records)
                    self.progress.observe(consumer, records)
                    self.healthy = True
                    backoff = 0.1
                await consumer.close()
            except asyncio.CancelledError:
                await consumer.close()
                raise
            except Exception as err:  # the log is unreachable: start again from committed
                self.healthy = False
                log.warning("consumer_failed", consumer=self.name, error=str(err))
                await consumer.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def handle_all(self, records: Sequence[Record]) -> None:
        """Apply a poll's records in order, in batches of one transaction each."""
        # A subclass that wraps handle() (to hold a lock around each record, say) keeps
        # exactly the per-record behaviour it was written against.
        if self._batch <= 1 or type(self).handle is not EventConsumer.handle:
            for record in records:
                await self.handle(record)
            return
        await self._apply_in_batches(records)

    async def _apply_in_batches(self, records: Sequence[Record]) -> None:
        """handle_all's batches, for a subclass that wraps a whole poll instead (it must not
        call handle() from here: the one-by-one fallback applies records itself)."""
        decoded: list[tuple[Record, Envelope, Handler]] = []
        for record in records:
            try:
                envelope = decode(record.value)
            except InvalidEvent as err:
                await self._dead_letter(record, str(err))
                continue
            handler = self._handlers.get(type(envelope.event))
            if handler is not None:
                decoded.append((record, envelope, handler))
        for start in range(0, len(decoded), self._batch):
            chunk = decoded[start : start + self._batch]
            if len(chunk) > 1:
                try:
                    await self._apply_batch(chunk)
                    continue
                except Exception as err:  # one by one, with the per-record rules
                    log.info("consumer_batch_fallback", consumer=self.name, error=str(err))
            for record, envelope, handler in chunk:
                await self._handle_decoded(record, envelope, handler)

    async def _apply_batch(self, chunk: list[tuple[Record, Envelope, Handler]]) -> None:
        async with self._unit_of_work().batch() as uow:
            new = await uow.claim_unapplied(self.name, [envelope.id for _, envelope, _ in chunk])
            fresh: list[tuple[Envelope, Handler]] = []
            for _, envelope, handler in chunk:
                if envelope.id in new:
                    new.discard(envelope.id)  # a second copy in the chunk is a duplicate
                    fresh.append((envelope, handler))
            for batch_handler, run in groupby(fresh, key=self._batch_handler_of):
                if batch_handler is not None:
                    envelopes = [envelope for envelope, _ in run]
                    with consumer_spans(self.name, envelopes) as spans:
                        uow.committed = False
                        await batch_handler(envelopes, uow, partial(self._deciding, spans))
                        if not uow.committed:
                            await uow.commit()
                    continue
                for envelope, handler in run:
                    with self._applying(envelope):
                        uow.committed = False
                        await handler(envelope, uow)
                        if not uow.committed:
                            await uow.commit()
        self.applied += len(fresh)
        EVENTS_CONSUMED.labels(self.name, "applied").inc(len(fresh))
        if len(chunk) > len(fresh):
            EVENTS_CONSUMED.labels(self.name, "duplicate").inc(len(chunk) - len(fresh))

    def _batch_handler_of(self, item: tuple[Envelope, Handler]) -> BatchHandler | None:
        return self._batch_handlers.get(type(item[0].event))

    @contextmanager
    def _deciding(self, spans: dict[str, Span], envelope: Envelope) -> Iterator[None]:
        """A batch handler's `applying`: inside the event's own span, which the consumer
        holds open for the whole batch whether or not the handler enters it."""
        with (
            use_span(spans[envelope.id]),
            context.caused_by(correlation=envelope.correlation_id, causation=envelope.id),
        ):
            yield

    @contextmanager
    def _applying(self, envelope: Envelope) -> Iterator[None]:
        with (
            consumer_span(self.name, envelope),
            context.caused_by(correlation=envelope.correlation_id, causation=envelope.id),
        ):
            yield

    async def handle(self, record: Record) -> None:
        """Apply one record exactly once in effect, or dead-letter it with the reason."""
        try:
            envelope = decode(record.value)
        except InvalidEvent as err:
            await self._dead_letter(record, str(err))
            return
        handler = self._handlers.get(type(envelope.event))
        if handler is None:
            return
        await self._handle_decoded(record, envelope, handler)

    async def _handle_decoded(self, record: Record, envelope: Envelope, handler: Handler) -> None:
        attempt = 0
        backoff = 0.1
        while True:
            attempt += 1
            try:
                applied = await self._apply(handler, envelope)
                EVENTS_CONSUMED.labels(self.name, "applied" if applied else "duplicate").inc()
                return
            except DomainError as err:
                await self._dead_letter(record, f"{type(err).__name__}: {err}")
                return
            except (OperationalError, DBAPIError, OSError) as err:
                log.warning("consumer_retry", consumer=self.name, error=str(err))
            except Exception as err:
                log.exception("consumer_handler_error", consumer=self.name, event_id=envelope.id)
                if attempt >= _ATTEMPTS_BEFORE_DEAD_LETTER:
                    await self._dead_letter(record, f"handler failed: {type(err).__name__}: {err}")
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _apply(self, handler: Handler, envelope: Envelope) -> bool:
        with (
            consumer_span(self.name, envelope),
            context.caused_by(correlation=envelope.correlation_id, causation=envelope.id),
        ):
            async with self._unit_of_work() as uow:
                if await uow.already_applied(self.name, envelope.id):
                    return False
                await uow.mark_applied(self.name, envelope.id)
                await handler(envelope, uow)
                if not uow.committed:
                    await uow.commit()
        self.applied += 1
        return True

    async def _dead_letter(self, record: Record, reason: str) -> None:
        EVENTS_CONSUMED.labels(self.name, "dead_letter").inc()
        log.error(
            "event_dead_lettered",
            consumer=self.name,
            topic=record.topic,
            offset=record.offset,
            reason=reason,
        )
        body = {
            "reason": reason,
            "consumer": self.name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "value_base64": base64.b64encode(record.value).decode("ascii"),
        }
        await self._log.publish(
            [
                OutgoingRecord(
                    topic=DEAD_LETTER_TOPIC,
                    key=record.key,
                    value=json.dumps(body).encode("utf-8"),
                    headers={
                        "reason": reason[:500].encode("utf-8"),
                        "consumer": self.name.encode("utf-8"),
                    },
                )
            ]
        )
