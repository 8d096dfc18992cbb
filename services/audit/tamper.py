"""Tamper findings: the record is never silently rewritten (architecture.md §13).

A replay from the beginning verifies every stored chain before it reads the log, and
compares each verified chain's events with the log's copies as it reads (LogComparison: an
edit re-hashed through to the head verifies, but is not what was published). A chain that
fails either way is rebuilt from the log alone. Before it is dropped, it is kept:
- its stored rows, exactly as found, go to `audit_quarantine` under a new finding id
  (evidence: no read serves them);
- a finding row (`audit_tamper_findings`) names the chain, the first bad event (id and
  position, from `domain.verify_chain`) and the kind of difference;
- a `TamperDetected` event is emitted through the outbox in the replay's own transaction.
  It travels the log like any event (topic pb.audit, subject `tamper:<council>`), so the
  live consumer appends it to the council's findings chain, and a replay on another
  machine rebuilds that chain and the finding from the log.

A finding stays open until an auditor of the same council acknowledges it with a reason
(`TamperAcknowledged`, recorded the same way). While a person's stored chain does not
verify, their history and as-of budget are refused (HistoryFailsVerification, 409) rather
than answered from rows that may have been altered.

The findings chains are kept out of the projections' digest (db.digest): the digest
compares a rebuild with the build it replaced, and a finding is exactly what the two
builds do not share. They are hash-chained and checked by /verify like any other chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import events as ev
from servicekit import clock
from servicekit.db import one_of
from servicekit.errors import Conflict, Invalid, NotFound
from services.audit.db import (
    IN_LIST_MAX,
    AuditUnitOfWork,
    DriverRows,
    audit_events,
    audit_people,
    audit_quarantine,
    audit_tamper_findings,
    inbox,
)
from services.audit.domain import (
    AuditError,
    ChainHead,
    ChainReport,
    EventFacts,
    PersonNotFound,
    StoredEvent,
    as_utc,
    chain_hash,
    verify_chain,
)

TAMPER_CHAIN_PREFIX = ev.TAMPER_SUBJECT_PREFIX
FINDING_EVENTS = (ev.TamperDetected, ev.TamperAcknowledged)


class FindingNotFound(AuditError, NotFound):
    def __init__(self, finding_id: str) -> None:
        super().__init__(f"no tamper finding {finding_id} in your council")


class FindingAlreadyAcknowledged(AuditError, Conflict):
    def __init__(self, finding_id: str, by: str | None) -> None:
        super().__init__(f"tamper finding {finding_id} was already acknowledged by {by}")


class AcknowledgementNeedsReason(AuditError, Invalid):
    def __init__(self) -> None:
        super().__init__("reason: say why the finding may be closed (it is recorded)")


class HistoryFailsVerification(AuditError, Conflict):
    def __init__(self, report: ChainReport) -> None:
        super().__init__(
            f"the stored history of {report.person_id} fails verification at seq "
            f"{report.first_bad_seq} ({report.reason}), so it is not served: an operator "
            "rebuilds it from the event log with a replay from the beginning (pbj replay), "
            "which keeps the altered rows as evidence and records a tamper finding"
        )


def difference_of(reason: str) -> ev.TamperDifference:
    """The kind of difference a verification reason describes (domain.verify_chain's words)."""
    if "rewritten" in reason:
        return ev.TamperDifference.REWRITTEN
    if "missing" in reason:
        return ev.TamperDifference.MISSING
    if "inserted" in reason or "beyond the chain head" in reason:
        return ev.TamperDifference.INSERTED
    if "holds the event the chain head places" in reason or "prev_hash does not match" in reason:
        return ev.TamperDifference.REORDERED
    return ev.TamperDifference.ALTERED


@dataclass(frozen=True)
class Evidence:
    """A stored chain that failed verification, as a replay found it."""

    report: ChainReport
    rows: tuple[StoredEvent, ...]
    head: ChainHead | None

    @property
    def council(self) -> str:
        if self.head is not None:
            return self.head.council
        return self.rows[-1].council


@dataclass(frozen=True)
class Finding:
    finding_id: str
    council: str
    chain: str
    first_bad_seq: int
    first_bad_event_id: str | None
    difference: str
    reason: str
    quarantined_events: int
    head_seq: int | None
    head_hash: str | None
    replay_id: str
    detected_by: str
    detected_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledgement: str | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None


def _finding(row: Any) -> Finding:
    values = dict(row._mapping)
    for key in ("detected_at", "acknowledged_at"):
        if values[key] is not None:
            values[key] = as_utc(values[key])
    return Finding(**values)


class TamperFindings:
    """The findings and the quarantined rows (one session, the caller's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_if_absent(self, finding: Finding) -> None:
        found = await self._session.scalar(
            sa.select(audit_tamper_findings.c.finding_id).where(
                audit_tamper_findings.c.finding_id == finding.finding_id
            )
        )
        if found is None:
            await self._session.execute(audit_tamper_findings.insert().values(**finding.__dict__))

    async def quarantine(self, finding_id: str, rows: Sequence[StoredEvent]) -> None:
        await DriverRows(self._session).insert(
            audit_quarantine,
            [
                (
                    finding_id,
                    n,
                    r.person_id,
                    r.seq,
                    r.event_id,
                    r.council,
                    r.type,
                    r.time,
                    r.correlation_id,
                    r.causation_id,
                    r.policy_version,
                    r.canonical,
                    r.prev_hash,
                    r.hash,
                )
                for n, r in enumerate(rows, 1)
            ],
        )

    async def quarantined(self, finding_id: str) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            sa.select(audit_quarantine)
            .where(audit_quarantine.c.finding_id == finding_id)
            .order_by(audit_quarantine.c.n)
        )
        return [dict(row._mapping) for row in rows]

    async def get(self, finding_id: str) -> Finding | None:
        row = (
            await self._session.execute(
                sa.select(audit_tamper_findings).where(
                    audit_tamper_findings.c.finding_id == finding_id
                )
            )
        ).first()
        return None if row is None else _finding(row)

    async def acknowledge(self, finding_id: str, *, at: datetime, by: str, reason: str) -> bool:
        """Close an open finding; False if it was closed already."""
        result = await self._session.execute(
            audit_tamper_findings.update()
            .where(
                audit_tamper_findings.c.finding_id == finding_id,
                audit_tamper_findings.c.acknowledged_at.is_(None),
            )
            .values(acknowledged_at=at, acknowledged_by=by, acknowledgement=reason)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def of_council(
        self,
        council: str,
        *,
        acknowledged: bool | None,
        chain: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Finding]:
        table = audit_tamper_findings.c
        query = sa.select(audit_tamper_findings).where(table.council == council)
        if acknowledged is not None:
            opened = table.acknowledged_at.is_(None)
            query = query.where(sa.not_(opened) if acknowledged else opened)
        if chain is not None:
            query = query.where(table.chain == chain)
        if after is not None:
            at, finding_id = after
            query = query.where(
                sa.or_(
                    table.detected_at > at,
                    sa.and_(table.detected_at == at, table.finding_id > finding_id),
                )
            )
        rows = await self._session.execute(
            query.order_by(table.detected_at, table.finding_id).limit(limit)
        )
        return [_finding(row) for row in rows]

    async def of_replay(self, replay_id: str) -> list[Finding]:
        rows = await self._session.execute(
            sa.select(audit_tamper_findings)
            .where(audit_tamper_findings.c.replay_id == replay_id)
            .order_by(audit_tamper_findings.c.chain)
        )
        return [_finding(row) for row in rows]


# --- a replay keeps the evidence and records it ---------------------------------------------


async def keep_evidence(
    uow: AuditUnitOfWork, evidence: Sequence[Evidence], *, replay_id: str, detected_by: str
) -> list[Finding]:
    """Quarantine each broken chain's rows, record a finding and emit TamperDetected, all in
    the replay's transaction: a replay that fails keeps none of it, and changes nothing."""
    findings = TamperFindings(uow.session)
    made = []
    for item in sorted(evidence, key=lambda e: e.report.person_id):
        report = item.report
        finding = Finding(
            finding_id=str(uuid.uuid4()),
            council=item.council,
            chain=report.person_id,
            first_bad_seq=report.first_bad_seq or 1,
            first_bad_event_id=report.first_bad_event_id,
            difference=difference_of(report.reason or "").value,
            reason=report.reason or "the chain does not verify",
            quarantined_events=len(item.rows),
            head_seq=item.head.last_seq if item.head else None,
            head_hash=item.head.last_hash if item.head else None,
            replay_id=replay_id,
            detected_by=detected_by,
            detected_at=clock.now(),
        )
        await findings.quarantine(finding.finding_id, item.rows)
        await findings.add_if_absent(finding)
        uow.emit(
            ev.TamperDetected(
                person_id=f"{TAMPER_CHAIN_PREFIX}{finding.council}",
                council=finding.council,
                finding_id=uuid.UUID(finding.finding_id),
                chain=finding.chain,
                first_bad_seq=finding.first_bad_seq,
                first_bad_event_id=finding.first_bad_event_id,
                difference=ev.TamperDifference(finding.difference),
                reason=finding.reason[:2000],
                quarantined_events=finding.quarantined_events,
                replay_id=uuid.UUID(replay_id),
                detected_by=detected_by[:200],
            )
        )
        made.append(finding)
    return made


async def apply_finding_event(uow: AuditUnitOfWork, event: ev.Event, at: datetime) -> None:
    """A finding's event read from the log (live or in a replay): the finding as it says.

    Idempotent: the replay that made a finding has written it already, and an
    acknowledgement already recorded is not recorded again.
    """
    findings = TamperFindings(uow.session)
    if isinstance(event, ev.TamperDetected):
        await findings.add_if_absent(
            Finding(
                finding_id=str(event.finding_id),
                council=event.council,
                chain=event.chain,
                first_bad_seq=event.first_bad_seq,
                first_bad_event_id=event.first_bad_event_id,
                difference=event.difference.value,
                reason=event.reason,
                quarantined_events=event.quarantined_events,
                head_seq=None,
                head_hash=None,
                replay_id=str(event.replay_id),
                detected_by=event.detected_by,
                detected_at=as_utc(at),
            )
        )
    elif isinstance(event, ev.TamperAcknowledged):
        await findings.acknowledge(
            str(event.finding_id), at=as_utc(at), by=event.acknowledged_by, reason=event.reason
        )


async def apply_finding_events(uow: AuditUnitOfWork, items: Sequence[tuple[Any, object]]) -> None:
    """The findings among a replay batch's (facts, event) pairs."""
    for facts, event in items:
        if isinstance(event, FINDING_EVENTS):
            await apply_finding_event(uow, event, facts.time)


# --- a verified chain compared with the log ------------------------------------------------


@dataclass(frozen=True)
class StoredLink:
    council: str
    person_id: str
    seq: int
    prev_hash: str
    hash: str


async def links_of(uow: AuditUnitOfWork, event_ids: Sequence[str]) -> dict[str, StoredLink]:
    """Where each of these events is stored and the hashes it is stored with."""
    found: dict[str, StoredLink] = {}
    for start in range(0, len(event_ids), IN_LIST_MAX):
        part = list(event_ids[start : start + IN_LIST_MAX])
        rows = await uow.session.execute(
            sa.select(
                audit_events.c.event_id,
                audit_events.c.council,
                audit_events.c.person_id,
                audit_events.c.seq,
                audit_events.c.prev_hash,
                audit_events.c.hash,
            ).where(one_of(audit_events.c.event_id, part))
        )
        for event_id, council, person_id, seq, prev_hash, hash_ in rows:
            found[event_id] = StoredLink(council, person_id, seq, prev_hash, hash_)
    return found


@dataclass
class LogComparison:
    """Events of verified chains whose stored document is not the log's copy of them.

    A chain can verify and still differ from the log: an edit whose every later link and
    the head were re-hashed to match. Each event a replay finds in its place is hashed
    again from the log's copy over the stored prev_hash; a different hash means the stored
    document is not what was published.
    """

    first_difference: dict[str, tuple[int, str]] = field(default_factory=dict)
    matched_by_person: dict[str, int] = field(default_factory=dict)

    def compare(self, stored: StoredLink, facts: EventFacts) -> None:
        person_id = stored.person_id
        self.matched_by_person[person_id] = self.matched_by_person.get(person_id, 0) + 1
        if chain_hash(stored.prev_hash, facts.canonical()) != stored.hash:
            earliest = self.first_difference.get(person_id)
            if earliest is None or stored.seq < earliest[0]:
                self.first_difference[person_id] = (stored.seq, facts.event_id)

    def evidence(self, person_id: str, rows: Sequence[StoredEvent]) -> Evidence:
        seq, event_id = self.first_difference[person_id]
        report = ChainReport(
            person_id,
            False,
            len(rows),
            seq,
            event_id,
            f"seq {seq} is not the event the log holds under its id, though every link "
            "and the chain head were re-hashed to match: the chain was rewritten",
        )
        return Evidence(report, tuple(rows), rows[-1].head() if rows else None)


async def forget_people(
    uow: AuditUnitOfWork,
    consumer: str,
    council: str,
    people: Sequence[str],
    event_ids: set[str],
) -> None:
    """These people of the council: their projection rows, and the inbox rows of their
    events, before their chains are rebuilt inside a replay."""
    await uow.session.execute(
        audit_people.delete().where(
            audit_people.c.council == council, one_of(audit_people.c.person_id, people)
        )
    )
    ids = sorted(event_ids)
    for start in range(0, len(ids), IN_LIST_MAX):
        await uow.session.execute(
            inbox.delete().where(
                inbox.c.consumer == consumer,
                one_of(inbox.c.event_id, ids[start : start + IN_LIST_MAX]),
            )
        )


# --- reads and the acknowledgement ---------------------------------------------------------


async def verified_chain(uow: AuditUnitOfWork, council: str, person_id: str) -> list[StoredEvent]:
    """The person's stored chain, in seq order, once it has verified (else
    HistoryFailsVerification; PersonNotFound if the council's person has neither a head nor
    an event here, as `handlers.ensure_person_held` decides). A read serves what it cuts
    from these very rows, so it never serves a row that was not verified, even one changed
    a moment after verifying."""
    async with uow:
        rows, head = await uow.store.chain_and_head(council, person_id)
    if head is None and not rows:
        raise PersonNotFound(person_id)
    report = verify_chain(person_id, rows, head)
    if not report.ok:
        raise HistoryFailsVerification(report)
    return rows


async def list_findings(
    *,
    uow: AuditUnitOfWork,
    council: str,
    acknowledged: bool | None,
    chain: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Finding]:
    """A page of the council's findings, oldest first."""
    async with uow:
        return await TamperFindings(uow.session).of_council(
            council, acknowledged=acknowledged, chain=chain, after=after, limit=limit
        )


async def count_open(*, uow: AuditUnitOfWork, council: str) -> int:
    """How many of the council's findings no auditor has acknowledged yet."""
    async with uow:
        found = await uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(audit_tamper_findings)
            .where(
                audit_tamper_findings.c.council == council,
                audit_tamper_findings.c.acknowledged_at.is_(None),
            )
        )
    return int(found or 0)


async def findings_of_replay(*, uow: AuditUnitOfWork, replay_id: str) -> list[Finding]:
    async with uow:
        return await TamperFindings(uow.session).of_replay(replay_id)


async def acknowledge(
    *, uow: AuditUnitOfWork, council: str, finding_id: str, reason: str, by: str
) -> Finding:
    """Close an open finding of the council with a reason, and record TamperAcknowledged."""
    reason = reason.strip()
    if not reason:
        raise AcknowledgementNeedsReason()
    async with uow:
        findings = TamperFindings(uow.session)
        finding = await findings.get(finding_id)
        if finding is None or finding.council != council:
            raise FindingNotFound(finding_id)
        if not finding.open:
            raise FindingAlreadyAcknowledged(finding_id, finding.acknowledged_by)
        at = clock.now()
        await findings.acknowledge(finding_id, at=at, by=by, reason=reason)
        uow.emit(
            ev.TamperAcknowledged(
                person_id=f"{TAMPER_CHAIN_PREFIX}{council}",
                council=council,
                finding_id=uuid.UUID(finding_id),
                chain=finding.chain,
                reason=reason,
                acknowledged_by=by,
            )
        )
        await uow.commit()
    return Finding(
        **{**finding.__dict__, "acknowledged_at": at, "acknowledged_by": by}
        | {"acknowledgement": reason}
    )
