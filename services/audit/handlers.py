"""Audit use cases: record every event, read histories, verify chains, count KPIs, replay.

The event use case runs inside the unit of work the consumer opened (its inbox row is
already added), so the appended link, the projections and the record that the event was
applied commit together. Read use cases open their own unit of work.

Replay (operations). The live consumer takes `ReplayService.gate`, an asyncio lock, around
every record it handles (see consumer.py); a replay holds the same lock from start to end,
so the live consumer is paused at its next record, with no unit of work open, until the
replay has committed or failed. Afterwards it carries on from its committed offsets; what
the replay already applied is in the inbox, so it changes nothing twice. The service runs
as one instance: the lock is per process.

A replay reads the log with a fresh consumer group (`audit-replay-<id>`), from the
beginning or from a time (log time), up to the end offsets taken when it starts; it keeps
what it read in `audit_replay_log` (batch by batch, with progress) and then rebuilds in
ONE transaction, so a failure leaves the store and projections as they were:
- from the beginning: every chain is rebuilt. A person's old chain, if it verifies, gives
  the order (events it lacks follow in log order; events the log lacks are restored from
  their stored documents and counted as missing_from_log); a chain that fails verification
  is rebuilt in log order and its events the log lacks are dropped (counted). So the
  rebuilt store is byte-identical to a sound live one, and a tampered chain is repaired
  from the log. The inbox rows of the live consumer are rewritten to match.
- from a time: events read that the store lacks are appended (as the live consumer would);
  then the projections are dropped and rebuilt from the whole store.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.registry import ALL_TOPICS
from servicekit.runtime import ServiceRuntime
from services.audit import db
from services.audit.db import AuditUnitOfWork
from services.audit.domain import (
    BudgetHistory,
    CaseloadEntry,
    CaseloadStage,
    ChainReport,
    EventFacts,
    GroupBy,
    KpiResult,
    PersonNotFound,
    ProjectionsChangedMeanwhile,
    ReplayAlreadyRunning,
    ReplayNotFound,
    ReplayPhase,
    ReplayStatus,
    StoredEvent,
    TimelineEntry,
    apply_to_inputs,
    budget_history,
    chain,
    check_date_range,
    end_of_day,
    event_of,
    lancashire_measure,
    ni130,
    project_person,
    replay_order,
    start_of_day,
    timeline_entry,
    types_matching,
    verify_chain,
)
from services.audit.returns import (
    Quarter,
    TimedEvent,
    Violation,
    cld_rows,
    to_csv,
    validate_cld,
)

log = structlog.get_logger(__name__)

REPLAY_BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC)


def facts_from(envelope: Envelope) -> EventFacts:
    """The facts of an envelope as the chain records them: the event as it was published.

    A record of an older version is hashed in that version (type and data), not upcast: so
    a replay after a new version is added rebuilds an old chain byte for byte, and the chain
    says what the producer said. Reading a stored event upcasts it (`event_of`).
    """
    published = envelope.as_published or envelope.event
    return EventFacts(
        event_id=envelope.id,
        type=published.type,
        source=envelope.source,
        time=envelope.time,
        person_id=envelope.subject,
        council=published.council,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        policy_version=getattr(published, "policy_version", None),
        data=published.model_dump(mode="json"),
        actor=envelope.actor,
    )


# --- events in -----------------------------------------------------------------------------


async def record_event(*, envelope: Envelope, uow: AuditUnitOfWork) -> StoredEvent:
    """Append the event to the person's chain and bring the projections up to date."""
    stored = await uow.store.append(facts_from(envelope))
    existing = await uow.projections.person(stored.person_id)
    inputs = apply_to_inputs(existing, stored, envelope.event)
    await uow.projections.save_person(inputs, existed=existing is not None)
    await uow.projections.add_timeline([timeline_entry(stored, envelope.event)])
    return stored


# --- reads ---------------------------------------------------------------------------------


async def council_of_person(*, uow: AuditUnitOfWork, person_id: str) -> str:
    """The council whose person this is; PersonNotFound when audit holds nothing for them."""
    async with uow:
        council = await uow.store.council_of(person_id)
    if council is None:
        raise PersonNotFound(person_id)
    return council


async def history_page(
    *,
    uow: AuditUnitOfWork,
    person_id: str,
    type_filter: str | None,
    since: date | None,
    until: date | None,
    after_seq: int,
    limit: int,
) -> tuple[list[StoredEvent], bool]:
    """One page of the person's events in chain order, and whether more follow."""
    types = types_matching(type_filter) if type_filter else None
    check_date_range(since, until)
    async with uow:
        rows = await uow.store.page(
            person_id,
            types=types,
            since=start_of_day(since) if since else None,
            until=end_of_day(until) if until else None,
            after_seq=after_seq,
            limit=limit + 1,
        )
    return rows[:limit], len(rows) > limit


async def budget_as_of(*, uow: AuditUnitOfWork, person_id: str, as_of: date) -> BudgetHistory:
    """The person's budget history as it stood at the end of `as_of` (UTC)."""
    async with uow:
        rows = await uow.store.events_before(person_id, end_of_day(as_of))
    return budget_history(person_id, rows, as_of)


async def timeline_page(
    *, uow: AuditUnitOfWork, person_id: str, after_seq: int, limit: int
) -> tuple[list[TimelineEntry], bool]:
    """One page of the person's budget timeline (a projection)."""
    async with uow:
        rows = await uow.projections.timeline(person_id, after_seq=after_seq, limit=limit + 1)
    return rows[:limit], len(rows) > limit


async def verify_person(*, uow: AuditUnitOfWork, person_id: str) -> ChainReport:
    """Recompute one person's chain."""
    async with uow:
        rows = await uow.store.chain_of(person_id)
        head = await uow.store.head(person_id)
    return verify_chain(person_id, rows, head)


async def verify_council(*, uow: AuditUnitOfWork, council: str) -> list[ChainReport]:
    """Recompute the chain of every person of a council."""
    reports = []
    async with uow:
        for person_id in await uow.store.people(council):
            rows = await uow.store.chain_of(person_id)
            head = await uow.store.head(person_id)
            reports.append(verify_chain(person_id, rows, head))
    return reports


async def caseload(
    *,
    uow: AuditUnitOfWork,
    council: str,
    team: str | None,
    key_worker_id: str | None,
    stage: CaseloadStage | None,
    after_person_id: str | None,
    limit: int,
) -> list[CaseloadEntry]:
    """A page of a council's people, filtered by team, key worker and stage."""
    async with uow:
        return await uow.projections.caseload(
            council,
            team=team,
            key_worker_id=key_worker_id,
            stage=stage,
            after_person_id=after_person_id,
            limit=limit,
        )


async def kpi_ni130(*, uow: AuditUnitOfWork, council: str, by: GroupBy, as_of: date) -> KpiResult:
    """NI130 for a council's people as of the end of a day."""
    async with uow:
        people = await uow.projections.people_of(council)
    return ni130(people, by, as_of)


async def kpi_lancashire(
    *, uow: AuditUnitOfWork, council: str, by: GroupBy, as_of: date
) -> KpiResult:
    """Lancashire's stricter personal budget measure for a council's people."""
    async with uow:
        people = await uow.projections.people_of(council)
        reviews = await uow.projections.reviews_completed(council)
    return lancashire_measure(people, reviews, by, as_of)


async def projection_digest(*, uow: AuditUnitOfWork) -> tuple[str, dict[str, int], int]:
    """The digest of the store and projections, row counts, and the projections' version."""
    async with uow:
        digest, rows = await db.digest(uow.session)
        version = await uow.replays.latest_version()
    return digest, rows, version


# --- replay --------------------------------------------------------------------------------


@dataclass
class ReplayProgress:
    replay_id: str
    version: int
    since: datetime | None
    requested_by: str
    started_at: datetime
    status: ReplayStatus = ReplayStatus.RUNNING
    phase: ReplayPhase = ReplayPhase.QUEUED
    processed: int = 0
    total: int = 0
    skipped: int = 0
    appended: int = 0
    changed_people: int = 0
    dropped: int = 0
    missing_from_log: int = 0
    finished_at: datetime | None = None
    digest: str | None = None
    error: str | None = None
    _starts: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("_starts")
        values["status"] = self.status.value
        values["phase"] = self.phase.value
        return values

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReplayProgress:
        values = dict(row)
        values["status"] = ReplayStatus(values["status"])
        values["phase"] = ReplayPhase(values["phase"])
        for key in ("since", "started_at", "finished_at"):
            if values[key] is not None and values[key].tzinfo is None:
                values[key] = values[key].replace(tzinfo=UTC)
        return cls(**values)


class ReplayService:
    """Starts replays in the background, one at a time, and pauses the live consumer."""

    def __init__(self, runtime: ServiceRuntime[AuditUnitOfWork]) -> None:
        self._runtime = runtime
        self.gate = asyncio.Lock()
        self._active: ReplayProgress | None = None
        self._starting = False
        self._task: asyncio.Task[None] | None = None

    @property
    def consumer_name(self) -> str:
        return self._runtime.name

    async def start(
        self, *, since: datetime | None, expected_version: int | None, requested_by: str
    ) -> ReplayProgress:
        """Record a new replay and start it; 409 if one is running or the version is stale."""
        if self._active is not None:
            raise ReplayAlreadyRunning(self._active.replay_id)
        if self._starting:
            raise ReplayAlreadyRunning("(starting)")
        self._starting = True
        try:
            async with self._runtime.uow() as uow:
                current = await uow.replays.latest_version()
                if expected_version is not None and expected_version != current:
                    raise ProjectionsChangedMeanwhile(expected_version, current)
                progress = ReplayProgress(
                    replay_id=str(uuid.uuid4()),
                    version=current + 1,
                    since=since,
                    requested_by=requested_by,
                    started_at=_now(),
                )
                self._active = progress  # from here on, status() answers from memory
                await uow.replays.add(progress.row())
                await uow.commit()
            self._task = asyncio.create_task(self._run(progress))
        except BaseException:
            self._active = None
            raise
        finally:
            self._starting = False
        return progress

    async def status(self, replay_id: str) -> ReplayProgress:
        """A replay's progress (live figures while it runs here)."""
        if self._active is not None and self._active.replay_id == replay_id:
            return self._active
        async with self._runtime.uow() as uow:
            row = await uow.replays.get(replay_id)
        if row is None:
            raise ReplayNotFound(replay_id)
        progress = ReplayProgress.from_row(row)
        if progress.status is ReplayStatus.RUNNING:  # not running in this process
            progress.status = ReplayStatus.FAILED
            progress.error = progress.error or "interrupted: the service stopped mid-replay"
        return progress

    async def wait(self) -> None:
        """Until the running replay, if any, has finished (for shutdown and tests)."""
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def shutdown(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        await self.wait()

    async def _run(self, progress: ReplayProgress) -> None:
        try:
            async with self.gate:
                await self._read_log(progress)
                progress.phase = ReplayPhase.REBUILDING
                await self._save(progress.row())
                if progress.since is None:
                    await self._rebuild_everything(progress)
                else:
                    await self._catch_up_and_reproject(progress)
            async with self._runtime.uow() as uow:
                digest, _ = await db.digest(uow.session)
            outcome = {
                "status": ReplayStatus.DONE,
                "phase": ReplayPhase.FINISHED,
                "finished_at": _now(),
                "digest": digest,
            }
            await self._save(progress.row() | _plain_outcome(outcome))
            self._finish(progress, outcome)
            log.info("replay_done", replay_id=progress.replay_id, processed=progress.processed)
        except asyncio.CancelledError:
            await self._fail(progress, "interrupted: the service stopped mid-replay")
            raise
        except Exception as err:  # any failure: nothing of the rebuild was committed
            log.exception("replay_failed", replay_id=progress.replay_id)
            await self._fail(progress, f"{type(err).__name__}: {err}")
        finally:
            self._active = None

    def _finish(self, progress: ReplayProgress, outcome: dict[str, Any]) -> None:
        """Publish the outcome in memory and free the slot in one step (no await between)."""
        for key, value in outcome.items():
            setattr(progress, key, value)
        self._active = None

    async def _fail(self, progress: ReplayProgress, reason: str) -> None:
        outcome: dict[str, Any] = {
            "status": ReplayStatus.FAILED,
            "error": reason[:2000],
            "finished_at": _now(),
        }
        try:
            async with self._runtime.uow() as uow:
                await uow.replays.forget(progress.replay_id)
                await uow.replays.update(
                    progress.replay_id, progress.row() | _plain_outcome(outcome)
                )
                await uow.commit()
        except Exception:  # the database itself is gone; the row stays 'running'
            log.exception("replay_status_not_saved", replay_id=progress.replay_id)
        self._finish(progress, outcome)

    async def _save(self, row: dict[str, Any]) -> None:
        async with self._runtime.uow() as uow:
            await uow.replays.update(row["replay_id"], row)
            await uow.commit()

    async def _read_log(self, progress: ReplayProgress) -> None:
        """Copy the log's records (up to its end offsets now) into audit_replay_log."""
        progress.phase = ReplayPhase.READING_LOG
        consumer = self._runtime.event_log.consumer(
            f"{self.consumer_name}-replay-{progress.replay_id}", list(ALL_TOPICS)
        )
        try:
            if progress.since is None:
                await consumer.seek_to_beginning()
            else:
                await consumer.seek_to_time(int(progress.since.timestamp() * 1000))
            ends = await consumer.end_offsets()
            starts = progress._starts
            if progress.since is None:
                starts.update({slot: 0 for slot in ends})
            reached: dict[tuple[str, int], int] = {}
            position = 0
            while not all(
                reached.get(slot, starts.get(slot, -1)) >= end
                for slot, end in ends.items()
                if end > 0
            ):
                records = await consumer.poll(max_records=REPLAY_BATCH, timeout_ms=500)
                rows: list[dict[str, Any]] = []
                useful = 0
                for record in records:
                    slot = (record.topic, record.partition)
                    if record.offset >= ends.get(slot, 0):
                        reached[slot] = max(reached.get(slot, 0), record.offset)
                        continue
                    useful += 1
                    starts.setdefault(slot, record.offset)
                    reached[slot] = record.offset + 1
                    progress.processed += 1
                    try:
                        envelope = decode(record.value)
                    except InvalidEvent:
                        progress.skipped += 1
                        continue
                    rows.append(
                        {
                            "replay_id": progress.replay_id,
                            "n": position,
                            "event_id": envelope.id,
                            "person_id": envelope.subject,
                            "value": record.value,
                            "from_store": False,
                            "old_seq": None,
                        }
                    )
                    position += 1
                progress.total = sum(end - starts.get(slot, end) for slot, end in ends.items())
                async with self._runtime.uow() as uow:
                    known = await uow.replays.known_ids(
                        progress.replay_id, [r["event_id"] for r in rows]
                    )
                    fresh: dict[str, dict[str, Any]] = {}
                    for row in rows:
                        if row["event_id"] in known or row["event_id"] in fresh:
                            progress.skipped += 1  # delivered twice: applied once
                        else:
                            fresh[row["event_id"]] = row
                    await uow.replays.keep(list(fresh.values()))
                    await uow.replays.update(progress.replay_id, progress.row())
                    await uow.commit()
                if useful == 0:
                    break
        finally:
            await consumer.close()

    async def _rebuild_everything(self, progress: ReplayProgress) -> None:
        """Rebuild every chain, the projections and the inbox from what was read, at once."""
        replay_id = progress.replay_id
        async with self._runtime.uow() as uow:
            old_heads: dict[str, str] = {}
            position = await uow.replays.next_position(replay_id)
            matched = 0
            for person_id in await uow.store.people():
                old = await uow.store.chain_of(person_id)
                head = await uow.store.head(person_id)
                if head is not None:
                    old_heads[person_id] = head.last_hash
                ids = [row.event_id for row in old]
                in_log = await uow.replays.known_ids(replay_id, ids)
                matched += len(in_log)
                if verify_chain(person_id, old, head).ok:
                    await uow.replays.set_old_seqs(
                        replay_id, {row.event_id: row.seq for row in old if row.event_id in in_log}
                    )
                    restored = [row for row in old if row.event_id not in in_log]
                    await uow.replays.keep(
                        [
                            {
                                "replay_id": replay_id,
                                "n": position + index,
                                "event_id": row.event_id,
                                "person_id": person_id,
                                "value": row.canonical.encode("utf-8"),
                                "from_store": True,
                                "old_seq": row.seq,
                            }
                            for index, row in enumerate(restored)
                        ]
                    )
                    position += len(restored)
                    progress.missing_from_log += len(restored)
                else:
                    progress.dropped += len(ids) - len(in_log)
                await uow.store.drop_person(person_id)
            await uow.projections.clear()
            await uow.forget_applied(self.consumer_name)
            rebuilt = 0
            for person_id in await uow.replays.people_read(replay_id):
                rows = await uow.replays.read_for(replay_id, person_id)
                by_id = {row["event_id"]: row for row in rows}
                order = replay_order(
                    [(row["n"], row["event_id"]) for row in rows],
                    {row["event_id"]: row["old_seq"] for row in rows if row["old_seq"] is not None},
                )
                links = chain(_facts_of(by_id[event_id]) for event_id in order)
                rebuilt += sum(1 for row in rows if not row["from_store"])
                await uow.store.put_chain(links)
                inputs, entries = project_person(links)
                if inputs is not None:
                    await uow.projections.save_person(inputs, existed=False)
                await uow.projections.add_timeline(entries)
                await uow.mark_all_applied(self.consumer_name, [s.event_id for s in links])
                if not links or old_heads.pop(person_id, None) != links[-1].hash:
                    progress.changed_people += 1
            progress.changed_people += len(old_heads)  # people whose whole chain went
            progress.appended = rebuilt - matched
            await uow.replays.forget(replay_id)
            await uow.replays.update(replay_id, progress.row())
            await uow.commit()

    async def _catch_up_and_reproject(self, progress: ReplayProgress) -> None:
        """Append what the store lacks of what was read, then rebuild the projections."""
        replay_id = progress.replay_id
        async with self._runtime.uow() as uow:
            for person_id in await uow.replays.people_read(replay_id):
                for row in await uow.replays.read_for(replay_id, person_id):
                    event_id = row["event_id"]
                    if await uow.store.contains(event_id) or await uow.already_applied(
                        self.consumer_name, event_id
                    ):
                        continue
                    await uow.store.append(_facts_of(row))
                    await uow.mark_applied(self.consumer_name, event_id)
                    progress.appended += 1
            await uow.projections.clear()
            for person_id in await uow.store.people():
                inputs, entries = project_person(await uow.store.chain_of(person_id))
                if inputs is not None:
                    await uow.projections.save_person(inputs, existed=False)
                await uow.projections.add_timeline(entries)
            await uow.replays.forget(replay_id)
            await uow.replays.update(replay_id, progress.row())
            await uow.commit()


def _plain_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    """Outcome fields as the replays table stores them (enums as their values)."""
    return {
        k: v.value if isinstance(v, ReplayStatus | ReplayPhase) else v for k, v in outcome.items()
    }


def _facts_of(row: dict[str, Any]) -> EventFacts:
    """The facts of a row a replay read: a log record, or a document restored from the store."""
    value: bytes = row["value"]
    if row["from_store"]:
        return EventFacts.from_canonical(value.decode("utf-8"))
    return facts_from(decode(value))


# --- statutory returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class CldReturn:
    quarter: Quarter
    la_code: str
    la_name: str
    rows: list[dict[str, str]]
    violations: list[Violation]


async def cld_return(
    *, uow: AuditUnitOfWork, council: str, la_name: str, quarter: Quarter, la_code: str
) -> CldReturn:
    """The council's CLD extract for a quarter from each person's history, and its check."""
    async with uow:
        people = []
        for person_id in await uow.store.people(council):
            chain = await uow.store.chain_of(person_id)
            people.append(
                (person_id, [TimedEvent(event_of(stored), stored.time) for stored in chain])
            )
    rows = cld_rows(la_code=la_code, la_name=la_name, quarter=quarter, people=people)
    return CldReturn(quarter, la_code, la_name, rows, validate_cld(rows, quarter))


KPI_CSV_HEADER = (
    "measure",
    "council",
    "as_of",
    "group_by",
    "group",
    "numerator",
    "denominator",
    "percentage",
)


async def kpis_csv(*, uow: AuditUnitOfWork, council: str, by: GroupBy, as_of: date) -> str:
    """NI130 and the Lancashire measure, the council total first, then each group."""
    async with uow:
        people = await uow.projections.people_of(council)
        reviews = await uow.projections.reviews_completed(council)
    lines: list[list[str]] = []
    for measure, result in (
        ("ni130", ni130(people, by, as_of)),
        ("lancashire", lancashire_measure(people, reviews, by, as_of)),
    ):
        for group_by, group in [(GroupBy.COUNCIL, result.total)] + [
            (by, g) for g in result.groups if by is not GroupBy.COUNCIL
        ]:
            key = council if group is result.total else group.key
            lines.append(
                [
                    measure,
                    council,
                    as_of.isoformat(),
                    group_by.value,
                    key,
                    str(group.numerator),
                    str(group.denominator),
                    group.percentage,
                ]
            )
    return to_csv(KPI_CSV_HEADER, lines)
