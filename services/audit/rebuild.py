"""A replay's rebuild, a batch at a time, in one transaction.

The live consumer applies one event per unit of work: load the person's head and KPI
inputs, link, insert, update. Done that way a replay of a million events is a few million
round trips. Here the same fold (`domain.link` and `domain.project_event`) runs over
batches of thousands of records: each record is decoded once, the heads and inputs of the
batch's people are loaded with one query each, the batch is folded in memory, and each
table is written with one driver call per batch (db.DriverRows). Memory is bounded by the
batch, a cache of recently seen people's heads and inputs (cleared when it grows past
CACHED_PEOPLE), and a map of the surviving chains' lengths (one entry per person; no
events): nothing holds the whole log.

Everything runs in the caller's unit of work, so a failed replay leaves the store and
projections exactly as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.envelope import InvalidEvent, decode, decode_published
from servicekit.eventlog import Consumer as LogConsumer
from services.audit.db import AuditUnitOfWork
from services.audit.domain import (
    ChainHead,
    EventData,
    EventFacts,
    PersonInputs,
    StoredEvent,
    facts_from,
    facts_of_published,
    inputs_of_chain,
    link,
    project_event,
    verify_chain,
)
from services.audit.tamper import FINDING_EVENTS, Evidence

LOG_BATCH = 5_000  # records a replay folds and writes at a time
PEOPLE_BATCH = 1_000  # people whose stored chains are read at a time
CACHED_PEOPLE = 50_000  # heads and inputs kept between batches before the cache is reset
LOG_PATIENCE_SECONDS = 120.0  # no record at all for this long before the end: fail
YIELD_EVERY = 250  # records decoded between turns of the event loop

Decoded = tuple[EventFacts, EventData]

READ_AS_MODELS = frozenset(cls.type for cls in FINDING_EVENTS)
"""Events a replay hands to a use case (tamper.apply_finding_events) and so reads as models."""


def replayed(value: bytes) -> Decoded:
    """A record's facts and event as a replay folds them (InvalidEvent if it is no event).

    Read without building the event's model where `decode_published` can (ADR 25): the
    facts, and so the chain, are those `facts_from(decode(value))` gives
    (services/audit/tests/test_replayed.py holds them to it)."""
    published = decode_published(value)
    if published is None or published.type in READ_AS_MODELS:
        envelope = decode(value)
        return facts_from(envelope), envelope.event
    return facts_of_published(published), published.data


class Progress(Protocol):
    """The counters a replay reports while it runs (handlers.ReplayProgress)."""

    processed: int
    total: int
    skipped: int


class ChainFolder:
    """Appends decoded events to their people's chains and projections, a batch at a time.

    The same steps as the live consumer's `record_event`, in the same order per person, so
    the chains, heads and KPI inputs come out identical: only the round trips
    differ (per batch, not per event).
    """

    def __init__(
        self, uow: AuditUnitOfWork, consumer_name: str, council: str, *, remark: bool
    ) -> None:
        """`remark`: a replay from the beginning, whose inbox rows of the events it appends
        may still be there (an event cut from the store is still marked applied)."""
        self._uow = uow
        self._consumer = consumer_name
        self._council = council
        self._remark = remark
        self._heads: dict[str, ChainHead | None] = {}
        self._inputs: dict[str, PersonInputs | None] = {}

    async def append(self, items: Sequence[Decoded]) -> list[StoredEvent]:
        # The fold makes a link, a head and KPI inputs per event and keeps them, with every
        # cached person's, until the batch is written: the cyclic collector's passes over
        # them cost as much as the fold (py-spy), and none of them is in a cycle.
        with cyclic_collector_paused(freeze=True):
            return await self._append(items)

    async def _append(self, items: Sequence[Decoded]) -> list[StoredEvent]:
        if not items:
            return []
        uow = self._uow
        links = await append_in_order(uow, self._council, items, self._heads, self._inputs)
        applied = [stored.event_id for stored in links]
        if self._remark:
            await uow.forget_applied(self._consumer, applied)
        await uow.mark_all_applied_in_bulk(self._consumer, applied)
        if len(self._heads) > CACHED_PEOPLE:
            self._heads.clear()
            self._inputs.clear()
        return links


async def append_in_order(
    uow: AuditUnitOfWork,
    council: str,
    items: Sequence[Decoded],
    heads: dict[str, ChainHead | None],
    inputs: dict[str, PersonInputs | None],
) -> list[StoredEvent]:
    """The council's events appended in their order: each linked after its person's head
    and folded into their KPI inputs (`link`, `project_event`, as one event at a time
    does), then the links, the people's heads and their inputs written with one statement
    per table. `heads` and `inputs` are the people's as known so far (a replay keeps them
    between batches); those missing are read first, one query each, and all are updated.
    """
    people = list(dict.fromkeys(facts.person_id for facts, _ in items))
    unknown = [person_id for person_id in people if person_id not in heads]
    if unknown:
        stored_heads = await uow.store.heads_of(council, unknown)
        stored_inputs = await uow.projections.people_by_id(council, unknown)
        for person_id in unknown:
            heads[person_id] = stored_heads.get(person_id)
            inputs[person_id] = stored_inputs.get(person_id)
    links: list[StoredEvent] = []
    for facts, event in items:
        person_id = facts.person_id
        stored = link(facts, heads[person_id])
        heads[person_id] = stored.head()
        inputs[person_id] = project_event(inputs[person_id], stored, event)
        links.append(stored)
    await uow.store.put_links(links)
    await uow.store.put_heads(council, [h for p in people if (h := heads[p]) is not None])
    await uow.projections.put_people(council, [i for p in people if (i := inputs[p]) is not None])
    return links


@dataclass
class StoreSurvey:
    """What a replay from the beginning found in the store before reading the log."""

    kept: dict[str, int] = field(default_factory=dict)  # verified chain -> its last seq
    broken_heads: dict[str, str | None] = field(default_factory=dict)  # dropped chain -> head
    broken_ids: set[str] = field(default_factory=set)  # events of dropped chains not yet re-read
    kept_events: int = 0
    evidence: list[Evidence] = field(default_factory=list)  # dropped chains as they were found


async def survey_and_reproject(
    uow: AuditUnitOfWork, consumer_name: str, council: str, *, verify: bool
) -> StoreSurvey:
    """Rebuild the council's projections (and inbox rows) from its stored chains,
    PEOPLE_BATCH at a time.

    With `verify` (a replay from the beginning) each chain is verified first: a verified
    chain is kept as it is (so the rebuilt store is byte-identical, with events the log no
    longer holds in their places) and the log's events it lacks will follow it; a chain that
    fails is dropped, to be rebuilt from the log alone.
    """
    survey = StoreSurvey()
    await uow.projections.clear(council)
    people = await uow.store.people(council)
    for start in range(0, len(people), PEOPLE_BATCH):
        part = people[start : start + PEOPLE_BATCH]
        chains = await uow.store.chains_of(council, part)
        heads = await uow.store.heads_of(council, part) if verify else {}
        if verify:
            await uow.forget_applied(
                consumer_name, [row.event_id for rows in chains.values() for row in rows]
            )
        inputs_rows: list[PersonInputs] = []
        applied: list[str] = []
        broken: list[str] = []
        for person_id in part:
            rows = chains[person_id]
            if verify:
                head = heads.get(person_id)
                report = verify_chain(person_id, rows, head)
                if not report.ok:
                    survey.evidence.append(Evidence(report, tuple(rows), head))
                    broken.append(person_id)
                    survey.broken_heads[person_id] = head.last_hash if head else None
                    survey.broken_ids.update(row.event_id for row in rows)
                    continue
                if rows:
                    survey.kept[person_id] = rows[-1].seq
                    survey.kept_events += len(rows)
                    applied.extend(row.event_id for row in rows)
            inputs = inputs_of_chain(rows)
            if inputs is not None:
                inputs_rows.append(inputs)
        await uow.store.drop_people(council, broken)
        await uow.projections.put_people(council, inputs_rows)
        await uow.mark_all_applied_in_bulk(consumer_name, applied)
    return survey


class LogStalled(RuntimeError):
    """The log stopped handing out records before the end it had when the replay began."""


@contextlib.contextmanager
def cyclic_collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Python's cyclic garbage collector paused while a batch is read and decoded.

    A batch's decoded events (~20 objects each, LOG_BATCH of them) live until the batch
    is written, and each pass of the collector walks all of them again: that cost as much
    as decoding itself (bench_decode.py, events kept: ~48 against ~22 µs an event). They
    hold no reference cycles, so reference counting frees them as before; the collector
    resumes after the batch. A batch's reading and the previous batch's fold may overlap:
    whichever paused first resumes the collector, so it never stays paused.

    `freeze` (a replay, inside `collector_spares_the_replay`): what survives the batch
    (the cache of heads and KPI inputs, the next batch's events) is frozen before the
    collector resumes. Otherwise its first pass after the pause walks all of it, and later
    passes walk the growing cache again: 14 % of a replay's samples (py-spy).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if freeze:
                gc.freeze()
            gc.enable()


@contextlib.contextmanager
def collector_spares_the_replay() -> Iterator[None]:
    """A replay's frozen objects (cyclic_collector_paused) handed back to the collector
    when it ends, however it ends: from then on every object is collected as before. The
    frozen ones hold no cycles, so reference counting frees them meanwhile."""
    try:
        yield
    finally:
        gc.unfreeze()


async def read_log(
    consumer: LogConsumer,
    progress: Progress,
    *,
    starts: dict[tuple[str, int], int] | None,
    patience_seconds: float = LOG_PATIENCE_SECONDS,
) -> AsyncIterator[list[Decoded]]:
    """The log's records up to its end offsets as they are now, decoded, LOG_BATCH at a time.

    `starts`: where each partition was positioned (None: at its beginning). Reading ends
    only when every partition has reached the end it had at the start: an empty poll
    (a slow fetch, a rebalance) is not the end. Should nothing arrive for
    `patience_seconds` before then, LogStalled is raised and the replay fails rather
    than report done with events missing. A record that is no valid event is counted as
    skipped; so is a second copy of an event within a batch (the caller drops copies
    across batches).
    """
    ends = await consumer.end_offsets()
    begun = dict(starts) if starts is not None else {slot: 0 for slot in ends}
    reached = dict(begun)
    progress.total = sum(max(0, end - begun.get(slot, end)) for slot, end in ends.items())
    last_progress = time.monotonic()
    while not all(reached.get(slot, 0) >= end for slot, end in ends.items() if end > 0):
        records = await consumer.poll(max_records=LOG_BATCH, timeout_ms=500)
        batch: dict[str, Decoded] = {}
        with cyclic_collector_paused(freeze=True):
            for number, record in enumerate(records, 1):
                if number % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # the previous batch's writes go on meanwhile
                slot = (record.topic, record.partition)
                # Past the end as it was, or before where the replay began (handed out again
                # after a rebalance): not part of this replay.
                if record.offset >= ends.get(slot, 0) or record.offset < begun.get(slot, 0):
                    continue
                if record.offset < reached.get(slot, 0):
                    continue  # handed out again: already read
                reached[slot] = record.offset + 1
                last_progress = time.monotonic()
                progress.processed += 1
                try:
                    facts, event = replayed(record.value)
                except InvalidEvent:
                    progress.skipped += 1
                    continue
                if facts.event_id in batch:
                    progress.skipped += 1  # delivered twice: applied once
                    continue
                batch[facts.event_id] = (facts, event)
        if batch:
            yield list(batch.values())
        elif time.monotonic() - last_progress > patience_seconds:
            raise LogStalled(
                f"the log handed out no record for {patience_seconds:.0f}s with "
                f"{progress.total - progress.processed} of {progress.total} still to read"
            )
