"""Every event of every topic -> the person's hash chain and the projections (idempotent).

Audit consumes all of contracts.registry.ALL_TOPICS with one consumer group (`audit`),
its own topic included: the only events it emits are its tamper findings (tamper.py),
which come back this way to be chained like any other. The consumer is an EventConsumer
that takes the replay gate (an asyncio lock shared with handlers.ReplayService) around each
poll, before it opens a unit of work: while a replay holds the gate the live consumer
waits at its next poll, and a replay never waits on a half-open transaction of the live
consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from contracts.envelope import Envelope
from contracts.registry import ALL_TOPICS, EVENT_CLASSES
from servicekit.consumer import Applying, EventConsumer, Handler
from servicekit.eventlog import Record
from servicekit.runtime import ServiceRuntime
from services.audit import handlers, tamper
from services.audit.db import AuditUnitOfWork


class GatedConsumer(EventConsumer):
    """An EventConsumer that applies records only while it holds the gate.

    A poll's records are applied in the consumer's batches (one transaction, one inbox
    query and one commit per batch, not per event: a conversion cost audit a quarter of
    the CPU per person this way, docs/performance.md), all under one hold of the gate, so
    a replay starts between polls, never inside one."""

    def __init__(self, *, gate: asyncio.Lock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    async def handle(self, record: Record) -> None:
        async with self.gate:
            await super().handle(record)

    async def handle_all(self, records: Sequence[Record]) -> None:
        async with self.gate:
            await self._apply_in_batches(records)


async def on_event(envelope: Envelope, uow: AuditUnitOfWork) -> None:
    """Any event: append it to the person's history."""
    await handlers.record_event(envelope=envelope, uow=uow)
    if isinstance(envelope.event, tamper.FINDING_EVENTS):
        await tamper.apply_finding_event(uow, envelope.event, envelope.time)


async def on_events(
    envelopes: Sequence[Envelope], uow: AuditUnitOfWork, applying: Applying
) -> None:
    """A batch's run of events, of any types: appended to their people's histories together."""
    await handlers.record_events(envelopes=envelopes, uow=uow)
    for envelope in envelopes:
        if isinstance(envelope.event, tamper.FINDING_EVENTS):
            with applying(envelope):
                await tamper.apply_finding_event(uow, envelope.event, envelope.time)


def register(
    runtime: ServiceRuntime[AuditUnitOfWork], *, gate: asyncio.Lock | None = None
) -> GatedConsumer:
    """Consume every event type on every topic into the audit store."""
    handler_map: dict[type, Handler] = {event_cls: on_event for event_cls in EVENT_CLASSES}
    consumer = GatedConsumer(
        gate=gate or asyncio.Lock(),
        name=runtime.name,
        event_log=runtime.event_log,
        topics=list(ALL_TOPICS),
        handlers=handler_map,
        batch_handlers={event_cls: on_events for event_cls in EVENT_CLASSES},
        unit_of_work=runtime.uow,
    )
    runtime.consumers.append(consumer)
    return consumer
