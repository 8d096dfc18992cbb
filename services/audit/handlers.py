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

A replay is of one council (the caller's): it reads the whole log but folds only that
council's events, and rebuilds only that council's chains, projections and inbox rows;
every other council's records stay as they were (ADR 16).

A replay reads the log with a fresh consumer group (`audit-replay-<id>`), from the
beginning or from a time (log time), up to the end offsets taken when it starts, and
rebuilds in ONE transaction, so a failure leaves the store and projections as they were.
The work is done a batch at a time (rebuild.py): the stored chains a thousand people at
a time, the log five thousand records at a time, each decoded once, folded in memory with
the live consumer's own fold and written with one driver call per table (multi-row INSERTs on
SQLite, COPY on PostgreSQL), a batch's writes running while the next batch is decoded.
- from the beginning: every chain is verified first. A chain that verifies is kept as it
  is (its events the log lacks stay in their places and are counted as missing_from_log)
  and the log's events it lacks follow it in log order; a chain that fails verification is
  dropped and rebuilt from the log alone in log order (its events the log lacks are lost
  and counted as dropped). So the rebuilt store is byte-identical to a sound live one, and
  a tampered chain is repaired from the log. A kept chain's events are also compared with
  the log's copies; one that differs (re-hashed through to its head) is rebuilt the same
  way. Either way the chain as found is kept in quarantine and a TamperDetected recorded
  (tamper.py). The projections and the live consumer's inbox
  rows are rewritten to match.
- from a time: the projections are rebuilt from the whole store, then the events read
  that the store lacks are appended (as the live consumer would).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from contracts.envelope import Envelope
from contracts.registry import ALL_TOPICS
from servicekit import clock
from servicekit.csvexport import Cell
from servicekit.runtime import ServiceRuntime
from services.audit import asof, db, rebuild, tamper
from services.audit.db import AuditUnitOfWork
from services.audit.domain import (
    BudgetHistory,
    CaseloadEntry,
    CaseloadStage,
    ChainPlace,
    ChainReport,
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
    budget_history,
    check_date_range,
    end_of_day,
    event_of,
    facts_from,
    lancashire_measure,
    ni130,
    project_event,
    start_of_day,
    types_matching,
    verify_chain,
)
from services.audit.returns import Quarter, TimedEvent, Violation, cld_rows, to_csv, validate_cld

log = structlog.get_logger(__name__)


# --- events in -----------------------------------------------------------------------------


async def record_event(*, envelope: Envelope, uow: AuditUnitOfWork) -> StoredEvent:
    """Append the event to the person's chain and bring the projections up to date."""
    stored = await uow.store.append(facts_from(envelope))
    existing = await uow.projections.person(stored.council, stored.person_id)
    inputs = project_event(existing, stored, envelope.event)
    await uow.projections.save_person(inputs, existed=existing is not None)
    return stored


async def record_events(
    *, envelopes: Sequence[Envelope], uow: AuditUnitOfWork
) -> list[StoredEvent]:
    """`record_event` for a run of events in one unit of work, in their order, as a
    replay's batch is appended (`rebuild.append_in_order`, per council).

    No compare-and-set on the heads is needed to refuse a fork: a link takes the seq after
    the head read here, and the events table's primary key (council, person_id, seq)
    refuses it if another writer stored that seq meanwhile, which rolls the batch back
    (the consumer then applies its events one by one, with the per-event compare-and-set).
    """
    by_council: dict[str, list[rebuild.Decoded]] = {}
    for envelope in envelopes:
        facts = facts_from(envelope)
        by_council.setdefault(facts.council, []).append((facts, envelope.event))
    links: list[StoredEvent] = []
    for council, run in by_council.items():
        links += await rebuild.append_in_order(uow, council, run, heads={}, inputs={})
    return links


# --- reads ---------------------------------------------------------------------------------


async def ensure_person_held(*, uow: AuditUnitOfWork, council: str, person_id: str) -> None:
    """PersonNotFound unless audit holds something on the council's person of this id."""
    async with uow:
        held = await uow.store.holds(council, person_id)
    if not held:
        raise PersonNotFound(person_id)


async def history_page(
    *,
    uow: AuditUnitOfWork,
    council: str,
    person_id: str,
    type_filter: str | None,
    since: date | None,
    until: date | None,
    after_seq: int,
    limit: int,
) -> tuple[list[StoredEvent], bool]:
    """One page of the person's verified events in chain order, and whether more follow
    (HistoryFailsVerification if their chain does not verify)."""
    types = types_matching(type_filter) if type_filter else None
    check_date_range(since, until)
    start = start_of_day(since) if since else None
    end = end_of_day(until) if until else None
    rows = [
        row
        for row in await tamper.verified_chain(uow, council, person_id)
        if row.seq > after_seq
        and (types is None or row.type in types)
        and (start is None or row.time >= start)
        and (end is None or row.time < end)
    ]
    return rows[:limit], len(rows) > limit


async def budget_as_of(
    *,
    uow: AuditUnitOfWork,
    council: str,
    person_id: str,
    as_of: date,
    known_before: datetime | None = None,
    in_force_on: date | None = None,
) -> BudgetHistory:
    """The person's budget history as it stood at the end of `as_of` (UTC), or as the
    record held it just before `known_before`; with `in_force_on`, only the facts that had
    taken effect by that date (asof.py). HistoryFailsVerification if their chain does not
    verify."""
    cutoff = known_before or end_of_day(as_of)
    chain = await tamper.verified_chain(uow, council, person_id)
    rows = [row for row in chain if row.time < cutoff]
    if in_force_on is not None:
        rows = asof.in_force_on(rows, in_force_on)
    return budget_history(person_id, rows, as_of, known_before=cutoff)


async def timeline_page(
    *, uow: AuditUnitOfWork, council: str, person_id: str, after_seq: int, limit: int
) -> tuple[list[TimelineEntry], bool]:
    """One page of the person's budget timeline, rendered from the stored events."""
    async with uow:
        rows = await uow.projections.timeline(
            council, person_id, after_seq=after_seq, limit=limit + 1
        )
    return rows[:limit], len(rows) > limit


async def verify_person(*, uow: AuditUnitOfWork, council: str, person_id: str) -> ChainReport:
    """Recompute one person's chain."""
    async with uow:
        rows, head = await uow.store.chain_and_head(council, person_id)
    return verify_chain(person_id, rows, head)


async def verify_council(*, uow: AuditUnitOfWork, council: str) -> list[ChainReport]:
    """Recompute the chain of every person of a council."""
    reports = []
    async with uow:
        for person_id in await uow.store.people(council):
            rows, head = await uow.store.chain_and_head(council, person_id)
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


async def projection_digest(
    *, uow: AuditUnitOfWork, council: str
) -> tuple[str, dict[str, int], int]:
    """The digest of the council's store and projections, row counts, and their version."""
    async with uow:
        digest, rows = await db.digest(uow.session, council)
        version = await uow.replays.latest_version(council)
    return digest, rows, version


# --- replay --------------------------------------------------------------------------------


@dataclass
class ReplayProgress:
    replay_id: str
    council: str
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
        self,
        *,
        council: str,
        since: datetime | None,
        expected_version: int | None,
        requested_by: str,
    ) -> ReplayProgress:
        """Record a new replay of the council and start it; 409 if one is running (of any
        council: one replay at a time) or the version is stale."""
        if self._active is not None:
            # Another council's replay is named by no id: its ids are not this caller's.
            raise ReplayAlreadyRunning(
                self._active.replay_id if self._active.council == council else None
            )
        if self._starting:
            raise ReplayAlreadyRunning(None)
        self._starting = True
        try:
            async with self._runtime.uow() as uow:
                current = await uow.replays.latest_version(council)
                if expected_version is not None and expected_version != current:
                    raise ProjectionsChangedMeanwhile(expected_version, current)
                progress = ReplayProgress(
                    replay_id=str(uuid.uuid4()),
                    council=council,
                    version=current + 1,
                    since=since,
                    requested_by=requested_by,
                    started_at=clock.now(),
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

    async def status(self, council: str, replay_id: str) -> ReplayProgress:
        """The council's replay's progress (live figures while it runs here)."""
        active = self._active
        if active is not None and active.replay_id == replay_id and active.council == council:
            return active
        async with self._runtime.uow() as uow:
            row = await uow.replays.get(council, replay_id)
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
            with rebuild.collector_spares_the_replay():
                async with self.gate:
                    await self._rebuild(progress)
            async with self._runtime.uow() as uow:
                digest, _ = await db.digest(uow.session, progress.council)
            outcome = {
                "status": ReplayStatus.DONE,
                "phase": ReplayPhase.FINISHED,
                "finished_at": clock.now(),
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
            "finished_at": clock.now(),
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

    async def _rebuild(self, progress: ReplayProgress) -> None:
        """Rebuild in ONE transaction (see the module docstring), a batch at a time."""
        from_start = progress.since is None
        council = progress.council
        consumer = self._runtime.event_log.consumer(
            f"{self.consumer_name}-replay-{progress.replay_id}", list(ALL_TOPICS)
        )
        try:
            starts: dict[tuple[str, int], int] | None = None
            if from_start:
                await consumer.seek_to_beginning()
            else:
                assert progress.since is not None
                starts = await consumer.seek_to_time(int(progress.since.timestamp() * 1000))
            async with self._runtime.uow() as uow:
                progress.phase = ReplayPhase.REBUILDING
                survey = await rebuild.survey_and_reproject(
                    uow, self.consumer_name, council, verify=from_start
                )
                progress.phase = ReplayPhase.READING_LOG
                folder = rebuild.ChainFolder(uow, self.consumer_name, council, remark=from_start)
                comparison = tamper.LogComparison() if from_start else None
                extended: set[str] = set()
                matched = appended_from_broken = 0
                # A batch's fold and writes run while the next batch is read and decoded, so
                # the database (its own thread, or PostgreSQL's process) works on one batch
                # while Python decodes the next. Each batch waits for the one before it: it
                # is matched against a store that holds it, and the session is never shared.
                writing: asyncio.Task[Any] | None = None
                try:
                    async for whole_batch in rebuild.read_log(consumer, progress, starts=starts):
                        if writing is not None:
                            await writing
                        batch = [item for item in whole_batch if item[0].council == council]
                        ids = [facts.event_id for facts, _ in batch]
                        if comparison is not None:
                            links = await tamper.links_of(uow, ids)
                            places = {
                                i: ChainPlace(k.council, k.person_id, k.seq)
                                for i, k in links.items()
                            }
                        else:
                            places = await uow.store.places_of(ids)
                        applied = (
                            set() if from_start else await uow.applied_of(self.consumer_name, ids)
                        )
                        fresh = []
                        for item in batch:
                            event_id, person_id = item[0].event_id, item[0].person_id
                            place = places.get(event_id)
                            if place is not None:
                                if (
                                    from_start
                                    and place.council == council
                                    and place.seq <= survey.kept.get(place.person_id, 0)
                                ):
                                    matched += 1  # in a verified chain: already in its place
                                    if comparison is not None:
                                        comparison.compare(links[event_id], item[0])
                                elif from_start:
                                    progress.skipped += 1  # delivered twice: applied once
                                continue
                            if event_id in applied:
                                continue
                            if event_id in survey.broken_ids:
                                survey.broken_ids.discard(event_id)
                                appended_from_broken += 1
                            if person_id in survey.kept:
                                extended.add(person_id)
                            fresh.append(item)
                        writing = asyncio.create_task(_append_batch(folder, uow, fresh))
                        progress.appended += len(fresh)
                    if writing is not None:
                        await writing
                finally:
                    if writing is not None and not writing.done():
                        # Reading failed: let the write finish before the unit of work rolls
                        # back; the reading's failure is the one reported.
                        with contextlib.suppress(Exception):
                            await writing
                if comparison is not None and comparison.first_difference:
                    progress.dropped += await self._rebuild_rewritten(
                        uow, council, survey, comparison, extended
                    )
                    matched -= sum(
                        comparison.matched_by_person[p] for p in comparison.first_difference
                    )
                if from_start:
                    await tamper.keep_evidence(
                        uow,
                        survey.evidence,
                        replay_id=progress.replay_id,
                        detected_by=progress.requested_by,
                    )
                    progress.appended -= appended_from_broken
                    progress.missing_from_log = survey.kept_events - matched
                    progress.dropped += len(survey.broken_ids)
                    progress.changed_people = await self._changed_people(
                        uow, council, survey, extended
                    )
                await uow.replays.update(progress.replay_id, progress.row())
                await uow.commit()
        finally:
            await consumer.close()

    async def _rebuild_rewritten(
        self,
        uow: AuditUnitOfWork,
        council: str,
        survey: rebuild.StoreSurvey,
        comparison: tamper.LogComparison,
        extended: set[str],
    ) -> int:
        """Chains that verified but are not what the log holds: kept as evidence (as they
        were found), dropped with their projections and inbox rows, and rebuilt from the log
        alone by a second read of it, for these people only. Returns how many of their
        stored events the log lacks (lost, so counted as dropped)."""
        people = sorted(comparison.first_difference)
        chains = await uow.store.chains_of(council, people)
        stored_ids: set[str] = set()
        for person_id in people:
            found = [row for row in chains[person_id] if row.seq <= survey.kept[person_id]]
            survey.evidence.append(comparison.evidence(person_id, found))
            survey.kept_events -= len(found)
            stored_ids.update(row.event_id for row in chains[person_id])
            extended.add(person_id)
        await uow.store.drop_people(council, people)
        await tamper.forget_people(uow, self.consumer_name, council, people, stored_ids)
        consumer = self._runtime.event_log.consumer(
            f"{self.consumer_name}-replay-{uuid.uuid4()}", list(ALL_TOPICS)
        )
        wanted, seen = set(people), set[str]()
        try:
            await consumer.seek_to_beginning()
            # Their inbox rows were forgotten above; remark marks the re-appended events applied.
            folder = rebuild.ChainFolder(uow, self.consumer_name, council, remark=True)
            counts = _Counts()
            async for batch in rebuild.read_log(consumer, counts, starts=None):
                mine = [
                    item
                    for item in batch
                    if item[0].council == council
                    and item[0].person_id in wanted
                    and item[0].event_id not in seen
                ]
                seen.update(facts.event_id for facts, _ in mine)
                await _append_batch(folder, uow, mine)
        finally:
            await consumer.close()
        return len(stored_ids - seen)

    @staticmethod
    async def _changed_people(
        uow: AuditUnitOfWork, council: str, survey: rebuild.StoreSurvey, extended: set[str]
    ) -> int:
        """People whose chain head is not what it was: new people, extended chains, and
        broken chains rebuilt to another head or to nothing."""
        heads_now = await uow.store.head_count(council)
        rebuilt = await uow.store.heads_of(council, list(survey.broken_heads))
        same = len(survey.kept) - len(extended)
        same += sum(
            1
            for person_id, old in survey.broken_heads.items()
            if person_id in rebuilt and rebuilt[person_id].last_hash == old
        )
        return heads_now - same + (len(survey.broken_heads) - len(rebuilt))


@dataclass
class _Counts:
    """The counters of a second read of the log, kept apart from the replay's own."""

    processed: int = 0
    total: int = 0
    skipped: int = 0


async def _append_batch(
    folder: rebuild.ChainFolder, uow: AuditUnitOfWork, items: list[rebuild.Decoded]
) -> None:
    """A replay batch appended, and the tamper findings among it brought up to date."""
    await folder.append(items)
    await tamper.apply_finding_events(uow, items)


def _plain_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    """Outcome fields as the replays table stores them (enums as their values)."""
    return {
        k: v.value if isinstance(v, ReplayStatus | ReplayPhase) else v for k, v in outcome.items()
    }


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
            chain = await uow.store.chain_of(council, person_id)
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
    lines: list[list[Cell]] = []
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
                    group.numerator,
                    group.denominator,
                    group.percentage,
                ]
            )
    return to_csv(KPI_CSV_HEADER, lines)
