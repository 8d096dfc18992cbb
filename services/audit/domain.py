"""Audit rules: the hash chain, its verification, the as-of budget history, and the KPIs.

Pure and synchronous; no I/O. The database layer hands in stored rows and takes out the
rows these functions make.

The chain. Every event about a person is appended to that person's history with the next
sequence number. Its canonical document is the sorted-key, compact JSON of the envelope
(id, type, source, time, subject, correlationid, causationid, policyversion, data), and

    hash = sha256(prev_hash as 64 ASCII hex characters + canonical document as UTF-8)

with prev_hash = 64 zeros for a person's first event. A person is the pair (council,
person_id): two councils may use the same person id, and each has a chain of its own
(ADR 16); the council is in every event's data, so the hash covers it. The per-person
order is the order the audit service applied the events: the log keeps one person's
events in order within a topic partition, but the services publish on different topics, so
two events of different services about the same person have no order of their own until
audit applies them. A replay from the beginning keeps a verified chain as it is (rebuild.py;
`replay_order` states the rule), so the rebuilt chain comes out identical.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import msgspec
from pydantic import ValidationError

from contracts import events as ev
from contracts.envelope import Envelope, PublishedRecord
from contracts.money import div_round_half_up, format_pounds
from contracts.registry import BY_TYPE, PUBLISHED_BY_TYPE, UnknownEventType, upcast
from servicekit.errors import Conflict, DomainError, Invalid, NotFound

GENESIS_HASH = "0" * 64
SUMMARY_MAX = 300

# --- errors --------------------------------------------------------------------------------


class AuditError(DomainError):
    """Base of every refusal the audit service makes."""


class PersonNotFound(AuditError, NotFound):
    def __init__(self, person_id: str) -> None:
        super().__init__(f"no history is held for person {person_id}")


class UnknownEventTypeFilter(AuditError, Invalid):
    def __init__(self, value: str) -> None:
        names = ", ".join(sorted({short_name(t) for t in BY_TYPE}))
        super().__init__(
            f"type: {value!r} is no event type; use a full type such as "
            f"pb.allocation.budget-issued.v1 or one of: {names}"
        )


class BadDateRange(AuditError, Invalid):
    def __init__(self, since: date, until: date) -> None:
        super().__init__(f"since: {since} is after until: {until}")


class StoredEventUnreadable(AuditError, Conflict):
    def __init__(self, person_id: str, seq: int, reason: str) -> None:
        super().__init__(
            f"the stored event seq {seq} of person {person_id} cannot be read ({reason}); "
            "run GET /v1/people/{person_id}/verify"
        )


class ReplayNotFound(AuditError, NotFound):
    def __init__(self, replay_id: str) -> None:
        super().__init__(f"no replay {replay_id}")


class ReplayAlreadyRunning(AuditError, Conflict):
    def __init__(self, replay_id: str | None) -> None:
        running = f"replay {replay_id} is" if replay_id else "another replay is"
        super().__init__(f"{running} still running (one at a time); wait for it to finish")


class ProjectionsChangedMeanwhile(AuditError, Conflict):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"expected_version {expected} is stale: the projections are at version {actual} "
            "(another replay ran meanwhile)"
        )


# --- the chain -----------------------------------------------------------------------------


def unversioned(event_type: str) -> str:
    """pb.allocation.budget-issued.v1 -> pb.allocation.budget-issued."""
    return event_type.rpartition(".")[0]


def short_name(event_type: str) -> str:
    """pb.allocation.budget-issued.v1 -> budget-issued."""
    parts = event_type.split(".")
    return parts[2] if len(parts) >= 4 else event_type


def iso_time(moment: datetime) -> str:
    """A fixed-width UTC ISO time; a naive time is taken to be UTC already."""
    return as_utc(moment).isoformat(timespec="microseconds")


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # most are: no copy (a replay converts millions)
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class EventFacts(msgspec.Struct, frozen=True):
    """What an envelope says, before it has a place in a chain."""

    event_id: str
    type: str
    source: str
    time: datetime
    person_id: str
    council: str
    correlation_id: str
    causation_id: str | None
    policy_version: str | None
    data: Mapping[str, Any] | msgspec.Struct
    """The event's data as published: a mapping, or (in a replay) its DumpedStruct, which
    canonical JSON writes alike."""
    actor: str | None = None
    """Who made the change (the envelope's `actor`): chained, so it cannot be rewritten."""

    def canonical(self) -> str:
        """The sorted-key compact JSON document the hash is taken over."""
        return self.canonical_bytes().decode("utf-8")

    def canonical_bytes(self) -> bytes:
        """The canonical document as the UTF-8 bytes the hash covers."""
        document = {
            "id": self.event_id,
            "type": self.type,
            "source": self.source,
            "time": iso_time(self.time),
            "subject": self.person_id,
            "correlationid": self.correlation_id,
            "causationid": self.causation_id,
            "policyversion": self.policy_version,
            "data": self.data,
        }
        if self.actor is not None:  # absent, not null: chains from before it hash the same
            document["actor"] = self.actor
        return canonical_json(document)

    @classmethod
    def from_canonical(cls, canonical: str) -> EventFacts:
        """Read the facts back from a stored document (ValueError if it is not one)."""
        doc = json.loads(canonical)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            raise ValueError("not a canonical event document")
        data: dict[str, Any] = doc["data"]
        return cls(
            event_id=str(doc["id"]),
            type=str(doc["type"]),
            source=str(doc["source"]),
            time=datetime.fromisoformat(str(doc["time"])),
            person_id=str(doc["subject"]),
            council=str(data.get("council", "")),
            correlation_id=str(doc["correlationid"]),
            causation_id=doc.get("causationid"),
            policy_version=doc.get("policyversion"),
            data=data,
            actor=doc.get("actor"),
        )


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


def facts_of_published(published: PublishedRecord) -> EventFacts:
    """`facts_from(decode(value))` for a record `decode_published` read: the same facts,
    with the data as its DumpedStruct, which encodes to the same canonical JSON."""
    data = published.data
    return EventFacts(
        event_id=published.id,
        type=published.type,
        source=published.source,
        time=published.time,
        person_id=published.subject,
        council=typing.cast(ev.Event, data).council,
        correlation_id=published.correlation_id,
        causation_id=published.causation_id,
        policy_version=getattr(data, "policy_version", None),
        data=data,
        actor=published.actor,
    )


_SORTED_COMPACT = msgspec.json.Encoder(order="sorted")


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """`json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
    as UTF-8, byte for byte, written by msgspec (a tenth of the CPU).

    The two write every string, int, bool and null alike (tests/test_canonical_json.py);
    they differ only in a float's exponent (`1e+16` against `1e16`), and no event carries a
    float (the same test holds every event version's schema to that). What msgspec refuses
    (a lone surrogate, an int past 64 bits, an unknown type) is left to `json` as before,
    so it is refused, or written, exactly as it was.
    """
    try:
        return _SORTED_COMPACT.encode(document)
    except (TypeError, ValueError, OverflowError):
        data = document.get("data")
        if isinstance(data, msgspec.Struct):  # a DumpedStruct as the mapping it stands for
            document = {**document, "data": msgspec.to_builtins(data)}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")


def chain_hash(prev_hash: str, canonical: str) -> str:
    return chain_hash_of_bytes(prev_hash, canonical.encode("utf-8"))


def chain_hash_of_bytes(prev_hash: str, canonical: bytes) -> str:
    hasher = hashlib.sha256(prev_hash.encode("ascii"))
    hasher.update(canonical)  # not concatenated first: no copy of the document
    return hasher.hexdigest()


class ChainHead(msgspec.Struct, frozen=True):
    """The last link of a person's chain: where the next event goes."""

    person_id: str
    council: str
    last_seq: int
    last_hash: str


@dataclass(frozen=True)
class ChainPlace:
    """Where a stored event is: the chain of (council, person_id), at seq."""

    council: str
    person_id: str
    seq: int


class StoredEvent(msgspec.Struct, frozen=True):
    """One appended event: its place in the chain and the document its hash covers."""

    person_id: str
    council: str
    seq: int
    event_id: str
    type: str
    time: datetime
    correlation_id: str
    causation_id: str | None
    policy_version: str | None
    canonical: str
    prev_hash: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        doc = json.loads(self.canonical)
        data: dict[str, Any] = doc["data"]
        return data

    @property
    def data_json(self) -> str:
        """The `data` object as compact JSON, cut from the canonical document unparsed.

        A page of history and an as-of fold read hundreds of documents a request; parsing
        each whole only to take `data` out (and encoding it again) was most of their time.
        The document's keys are sorted: `data` follows actor, causationid and
        correlationid, whose values are strings or null (a string holds no bare quote, so
        the first `"data":` is the key), and `id` is the first key after it, followed only
        by string or null values (so the last `,"id":` ends it). A document not shaped so
        (a tampered row) is parsed instead.
        """
        canonical = self.canonical
        start = canonical.find(_DATA_KEY) + len(_DATA_KEY)
        end = canonical.rfind(_ID_KEY)
        if (
            start < len(_DATA_KEY)
            or end < start
            or not canonical.startswith(_CANONICAL_OPENINGS)
            or canonical[start] != "{"
            or canonical[end - 1] != "}"
        ):
            return _compact_json(self.data)
        return canonical[start:end]

    @property
    def actor(self) -> str | None:
        """Who made the change, `role:user_id`; None for a reaction to another event."""
        canonical = self.canonical
        if canonical.startswith(_NO_ACTOR_OPENING):  # actor sorts first when present
            return None
        if canonical.startswith(_ACTOR_OPENING):
            try:
                actor, _ = _DECODER.raw_decode(canonical, len(_ACTOR_OPENING))
            except ValueError:
                actor = None
            if isinstance(actor, str):
                return actor
        return self._parsed_actor()

    def _parsed_actor(self) -> str | None:
        actor = json.loads(self.canonical).get("actor")
        return str(actor) if actor is not None else None

    @property
    def name(self) -> str:
        return short_name(self.type)

    def head(self) -> ChainHead:
        return ChainHead(self.person_id, self.council, self.seq, self.hash)


_DATA_KEY = '"data":'
_ID_KEY = ',"id":'
_ACTOR_OPENING = '{"actor":'
_NO_ACTOR_OPENING = '{"causationid":'
_CANONICAL_OPENINGS = (_ACTOR_OPENING, _NO_ACTOR_OPENING)
_DECODER = json.JSONDecoder()


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def link(facts: EventFacts, head: ChainHead | None) -> StoredEvent:
    """The event as the next link after `head` (or as the first link of a new chain)."""
    prev_hash = head.last_hash if head is not None else GENESIS_HASH
    seq = head.last_seq + 1 if head is not None else 1
    canonical = facts.canonical_bytes()
    return StoredEvent(
        person_id=facts.person_id,
        council=facts.council,
        seq=seq,
        event_id=facts.event_id,
        type=facts.type,
        time=as_utc(facts.time),
        correlation_id=facts.correlation_id,
        causation_id=facts.causation_id,
        policy_version=facts.policy_version,
        canonical=canonical.decode("utf-8"),
        prev_hash=prev_hash,
        hash=chain_hash_of_bytes(prev_hash, canonical),
    )


def chain(facts: Iterable[EventFacts]) -> list[StoredEvent]:
    """A whole chain from its events in order."""
    head: ChainHead | None = None
    links: list[StoredEvent] = []
    for item in facts:
        stored = link(item, head)
        head = stored.head()
        links.append(stored)
    return links


@dataclass(frozen=True)
class ChainReport:
    """The result of recomputing one person's chain."""

    person_id: str
    ok: bool
    events: int
    first_bad_seq: int | None = None
    first_bad_event_id: str | None = None
    reason: str | None = None
    head_hash: str | None = None


class _HashedColumns(msgspec.Struct):
    """What a canonical document says of the columns stored beside it, its data unread."""

    id: str
    type: str
    source: str
    time: str
    subject: str
    correlationid: str
    data: msgspec.Raw
    causationid: str | None = None
    policyversion: str | None = None


_read_hashed_columns = msgspec.json.Decoder(_HashedColumns).decode


def _hashed_columns(canonical: str) -> tuple[str, str, str, datetime, str, str | None, str | None]:
    """(event id, type, person id, time, correlation id, causation id, policy version) as
    the document says them (ValueError, KeyError or TypeError if it is not an event's).

    Every read of a history verifies the person's whole chain, so this runs for each of
    their events on each read: a document whose values are all strings, as every one this
    service writes is, is read without parsing its data (json.loads of each ~2 KB document
    was half of a history's CPU). Anything else is read as `EventFacts.from_canonical`
    reads it, so every document gets the answer it got before."""
    try:
        read = _read_hashed_columns(canonical)
    except msgspec.DecodeError:
        read = None
    if read is None or bytes(read.data)[:1] != b"{":
        facts = EventFacts.from_canonical(canonical)
        return (
            facts.event_id,
            facts.type,
            facts.person_id,
            facts.time,
            facts.correlation_id,
            facts.causation_id,
            facts.policy_version,
        )
    return (
        read.id,
        read.type,
        read.subject,
        datetime.fromisoformat(read.time),
        read.correlationid,
        read.causationid,
        read.policyversion,
    )


def _columns_disagree(row: StoredEvent) -> str | None:
    """Name the first stored column that says something other than the hashed document."""
    try:
        event_id, type_, person_id, moment, correlation_id, causation_id, policy_version = (
            _hashed_columns(row.canonical)
        )
    except (ValueError, KeyError, TypeError):
        return "the stored document is not valid JSON of an event"
    checks: list[tuple[str, object, object]] = [
        ("event_id", row.event_id, event_id),
        ("type", row.type, type_),
        ("person_id", row.person_id, person_id),
        ("time", as_utc(row.time), as_utc(moment)),  # the same instant, to the microsecond
        ("correlation_id", row.correlation_id, correlation_id),
        ("causation_id", row.causation_id, causation_id),
        ("policy_version", row.policy_version, policy_version),
    ]
    for column, stored, hashed in checks:
        if stored != hashed:
            return f"the stored {column} differs from the hashed document"
    return None


def verify_chain(
    person_id: str, rows: Sequence[StoredEvent], head: ChainHead | None
) -> ChainReport:
    """Recompute a chain (rows in stored seq order) and name the first bad event.

    Detects an edited event (hash mismatch), a deleted one (a gap in seq, or fewer events
    than the head records), an inserted one (a broken prev_hash link, or more events than
    the head records) and a reordering (a broken prev_hash link). A broken link only says
    that one of its two ends is bad; the head, trusted, then tells which (see
    `_earliest_bad_by_head`): so an event edited and re-hashed, or a forged event inserted
    with a correct hash of its own, is named itself, not the sound event after it.
    """

    def bad(seq: int, event_id: str | None, reason: str) -> ChainReport:
        proven = _earliest_bad_by_head(rows, head) if head is not None else None
        if proven is not None and proven[0] < seq:
            seq, reason = proven
            event_id = rows[seq - 1].event_id if seq <= len(rows) else None
        return ChainReport(
            person_id, False, len(rows), seq, event_id, reason, head.last_hash if head else None
        )

    prev_hash = GENESIS_HASH
    for index, row in enumerate(rows):
        expected_seq = index + 1
        if row.seq != expected_seq:
            return bad(
                expected_seq,
                row.event_id,
                f"seq {expected_seq} is missing: the next stored event has seq {row.seq}",
            )
        if row.prev_hash != prev_hash:
            where = "the genesis hash" if expected_seq == 1 else f"the hash of seq {row.seq - 1}"
            return bad(row.seq, row.event_id, f"prev_hash does not match {where}")
        if chain_hash(row.prev_hash, row.canonical) != row.hash:
            return bad(row.seq, row.event_id, "hash does not match the stored document (edited)")
        disagreement = _columns_disagree(row)
        if disagreement is not None:
            return bad(row.seq, row.event_id, disagreement)
        prev_hash = row.hash
    last_seq = rows[-1].seq if rows else 0
    if head is None:
        if rows:
            return bad(1, rows[0].event_id, "events are stored but the chain head is missing")
        return ChainReport(person_id, True, 0)
    if head.last_seq > last_seq:
        return bad(
            last_seq + 1,
            None,
            f"seq {last_seq + 1} to {head.last_seq} are missing (the head records "
            f"{head.last_seq} events)",
        )
    if head.last_seq < last_seq:
        extra = rows[head.last_seq]
        return bad(
            extra.seq,
            extra.event_id,
            f"seq {extra.seq} is stored beyond the chain head (seq {head.last_seq})",
        )
    if head.last_hash != prev_hash:
        return bad(
            last_seq,
            rows[-1].event_id,
            "the chain head hash does not match the last event: the chain was rewritten at "
            f"or before seq {last_seq}",
        )
    return ChainReport(person_id, True, len(rows), head_hash=head.last_hash)


def _earliest_bad_by_head(rows: Sequence[StoredEvent], head: ChainHead) -> tuple[int, str] | None:
    """The earliest seq the trusted head proves bad, and why; None if it proves nothing more.

    The head vouches for one chain: its last hash, and through each vouched event's
    prev_hash the event before, back to the genesis hash. Walking back from the head over
    the stored events whose own hash holds, either every vouched event is found (the first
    seq not holding its vouched event is bad: something was inserted or moved there), or the
    walk stops at a hash no stored event has: the vouched event of that seq is gone, so
    whatever is stored at that seq is bad. Nothing before it can be proved either way: a
    tail re-hashed from some seq on, head kept, is named at the head's own seq at best.
    """
    by_hash: dict[str, int] = {}
    for index, row in enumerate(rows):
        if chain_hash(row.prev_hash, row.canonical) == row.hash:
            by_hash.setdefault(row.hash, index)
    vouched: list[int] = []  # stored indices, from the head back
    wanted = head.last_hash
    while wanted != GENESIS_HASH and wanted in by_hash and len(vouched) < head.last_seq:
        vouched.append(by_hash[wanted])
        wanted = rows[vouched[-1]].prev_hash
    if wanted == GENESIS_HASH:
        if len(vouched) != head.last_seq:
            return None
        place = {index: seq for seq, index in enumerate(reversed(vouched), 1)}
        for seq, index in enumerate(reversed(vouched), 1):
            if index != seq - 1:
                moved = place.get(seq - 1)
                if moved is None:
                    return seq, f"seq {seq} is not in the chain the head vouches for (inserted)"
                return seq, f"seq {seq} holds the event the chain head places at seq {moved}"
        return None
    gone = head.last_seq - len(vouched)  # the seq whose vouched event no stored event is
    if gone < 1:
        return None
    seq = min(gone, len(rows) + 1)
    if not vouched:
        return seq, (
            f"no stored event has the chain head's hash: the chain was rewritten at or "
            f"before seq {seq}"
        )
    return seq, (
        f"seq {gone} is not the event whose hash seq {gone + 1} holds as its prev_hash "
        "(edited and re-hashed, replaced or deleted)"
        if seq == gone
        else f"seq {seq} to {gone} are missing"
    )


def replay_order(log_events: Sequence[tuple[int, str]], old_seqs: Mapping[str, int]) -> list[str]:
    """The order a full replay appends a person's events in.

    `log_events` are (position read from the log, event id); `old_seqs` maps the event ids
    of the person's previous, verified chain to their seq (empty when there was none or it
    failed verification). Events of the old chain keep their old order, so a replay
    reproduces the chain byte for byte, including any the log no longer holds; events the
    old chain lacked follow, in log order.
    """
    known = sorted((seq, eid) for eid, seq in old_seqs.items())
    fresh = sorted((n, eid) for n, eid in log_events if eid not in old_seqs)
    return [eid for _, eid in known] + [eid for _, eid in fresh]


# --- reading stored events -----------------------------------------------------------------


def event_of(stored: StoredEvent) -> ev.Event:
    """The typed event a stored document holds."""
    try:
        current = BY_TYPE.get(stored.type)
        if current is not None:  # nothing to upcast: let pydantic read the JSON itself
            return current.model_validate_json(stored.data_json)
        event_cls, data = upcast(stored.type, stored.data)
        return event_cls.model_validate(data)
    except (UnknownEventType, ValidationError, ValueError, KeyError) as err:
        raise StoredEventUnreadable(stored.person_id, stored.seq, type(err).__name__) from err


def types_matching(value: str) -> frozenset[str]:
    """The event types a history filter names: a full type, or a short name (budget-issued)
    for every published version of the event (a chain keeps events in the version they were
    published in)."""
    wanted = value.strip()
    if wanted in PUBLISHED_BY_TYPE:
        return frozenset({wanted})
    matching = frozenset(t for t in PUBLISHED_BY_TYPE if short_name(t) == wanted)
    if not matching:
        raise UnknownEventTypeFilter(value)
    return matching


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The first instant after the day (UTC): events strictly before it count as of the day.

    The last day a date can hold (9999-12-31) has no day after it: its end is the last
    instant a datetime can hold.
    """
    if day == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return start_of_day(day + timedelta(days=1))


def check_date_range(since: date | None, until: date | None) -> None:
    if since is not None and until is not None and since > until:
        raise BadDateRange(since, until)


# --- the as-of budget history --------------------------------------------------------------


@dataclass
class AssessmentState:
    assessment_id: str
    status: str
    client_group: str | None = None
    community_based: bool | None = None
    team: str | None = None
    key_worker_id: str | None = None
    completed_by: str | None = None
    domain_levels: dict[str, int] | None = None
    adjustments: int = 0
    significant_informal_support: bool | None = None
    needs_24_7: bool | None = None
    carer_support_weekly_pence: int | None = None
    flagged_risks: int = 0
    validated_by: str | None = None
    validated_at: datetime | None = None
    policy_version: str | None = None
    updated_at: datetime | None = None


@dataclass
class BudgetRevision:
    budget_id: str
    revision: int
    stage: str
    weekly_pence: int
    annual_pence: int
    points: int
    scale: str
    ceiling_weekly_pence: int | None
    ceiling_exception: bool
    revision_reason: str | None
    agreed_by: str
    agreed_by_role: str
    issued_at: datetime
    policy_version: str
    current: bool = False


@dataclass
class PlanState:
    plan_id: str
    status: str
    budget_id: str | None = None
    plan_version: int | None = None
    weekly_pence: int | None = None
    annual_pence: int | None = None
    one_off_pence: int | None = None
    contingency_weekly_pence: int | None = None
    lines: int | None = None
    request_for_more: bool | None = None
    signed_off_by: str | None = None
    signed_off_by_role: str | None = None
    signed_off_at: datetime | None = None
    first_review_on: date | None = None
    returned_reasons: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass
class DeploymentState:
    deployment_id: str
    plan_id: str
    parts: list[tuple[str, int]]
    gross_annual_pence: int
    contribution_annual_pence: int
    net_annual_pence: int
    audit_tier: str
    set_up_at: datetime
    agreement_signed_on: date | None = None
    suspended: bool = False
    suspended_reason: str | None = None


@dataclass
class ScheduleState:
    schedule_id: str
    deployment_id: str
    option: str
    frequency: str
    total_pence: int
    instalments: int
    first_due_on: date


@dataclass
class PaymentState:
    payment_id: str
    schedule_id: str
    deployment_id: str
    instalment_number: int
    option: str
    amount_pence: int
    due_on: date
    released_at: datetime


@dataclass
class ClawbackState:
    clawback_id: str
    deployment_id: str
    amount_pence: int
    unspent_balance_pence: int
    rule: str
    raised_at: datetime


@dataclass
class ReviewState:
    review_id: str
    plan_id: str
    kind: str
    status: str
    due_on: date | None = None
    completed_on: date | None = None
    outcome: str | None = None
    completed_by: str | None = None


@dataclass
class BudgetHistory:
    """A person's budget history as it stood at the end of a day."""

    person_id: str
    council: str | None
    as_of: date
    events: int = 0
    last_seq: int | None = None
    assessment: AssessmentState | None = None
    budgets: list[BudgetRevision] = field(default_factory=list)
    plan: PlanState | None = None
    deployment: DeploymentState | None = None
    schedules: list[ScheduleState] = field(default_factory=list)
    payments: list[PaymentState] = field(default_factory=list)
    clawbacks: list[ClawbackState] = field(default_factory=list)
    reviews: list[ReviewState] = field(default_factory=list)

    @property
    def payments_total_pence(self) -> int:
        return sum(p.amount_pence for p in self.payments)

    @property
    def clawbacks_total_pence(self) -> int:
        return sum(c.amount_pence for c in self.clawbacks)


def budget_history(
    person_id: str,
    stored: Iterable[StoredEvent],
    as_of: date,
    *,
    known_before: datetime | None = None,
) -> BudgetHistory:
    """Fold the person's stored events (in seq order) recorded before `known_before`, by
    default up to the end of `as_of`."""
    cutoff = known_before or end_of_day(as_of)
    history = BudgetHistory(person_id=person_id, council=None, as_of=as_of)
    assessments: dict[str, AssessmentState] = {}
    plans: dict[str, PlanState] = {}
    deployments: dict[str, DeploymentState] = {}
    reviews: dict[str, ReviewState] = {}
    for row in sorted(stored, key=lambda r: r.seq):
        if as_utc(row.time) >= cutoff:
            continue
        event = event_of(row)
        history.events += 1
        history.last_seq = row.seq
        history.council = event.council
        at = as_utc(row.time)
        if isinstance(
            event,
            ev.AssessmentStarted
            | ev.AssessmentSubmitted
            | ev.AssessmentReturned
            | ev.AssessmentValidated,
        ):
            key = str(event.assessment_id)
            state = assessments.setdefault(key, AssessmentState(key, "started"))
            _apply_assessment(state, event, at)
            history.assessment = state
        elif isinstance(event, ev.BudgetIssued):
            for revision in history.budgets:
                revision.current = False
            history.budgets.append(
                BudgetRevision(
                    budget_id=str(event.budget_id),
                    revision=event.revision,
                    stage=event.stage.value,
                    weekly_pence=event.weekly_pence,
                    annual_pence=event.annual_pence,
                    points=event.points,
                    scale=event.scale.value,
                    ceiling_weekly_pence=event.ceiling_weekly_pence,
                    ceiling_exception=event.ceiling_exception,
                    revision_reason=event.revision_reason,
                    agreed_by=event.agreed_by,
                    agreed_by_role=event.agreed_by_role.value,
                    issued_at=at,
                    policy_version=event.policy_version,
                    current=True,
                )
            )
        elif isinstance(event, ev.PlanSubmitted | ev.PlanReturned | ev.PlanSignedOff):
            key = str(event.plan_id)
            plan = plans.setdefault(key, PlanState(key, "submitted"))
            _apply_plan(plan, event, at)
            history.plan = plan
        elif isinstance(event, ev.DeploymentSetUp):
            deployment = DeploymentState(
                deployment_id=str(event.deployment_id),
                plan_id=str(event.plan_id),
                parts=[(p.option.value, p.annual_pence) for p in event.parts],
                gross_annual_pence=event.gross_annual_pence,
                contribution_annual_pence=event.contribution_annual_pence,
                net_annual_pence=event.net_annual_pence,
                audit_tier=event.audit_tier,
                set_up_at=at,
            )
            deployments[deployment.deployment_id] = deployment
            history.deployment = deployment
        elif isinstance(event, ev.AgreementSigned | ev.PaymentsSuspended):
            found = deployments.get(str(event.deployment_id))
            if found is not None:
                if isinstance(event, ev.AgreementSigned):
                    found.agreement_signed_on = event.signed_on
                else:
                    found.suspended, found.suspended_reason = True, event.reason
        elif isinstance(event, ev.PaymentScheduled):
            history.schedules.append(
                ScheduleState(
                    schedule_id=str(event.schedule_id),
                    deployment_id=str(event.deployment_id),
                    option=event.option.value,
                    frequency=event.frequency.value,
                    total_pence=event.total_pence,
                    instalments=event.instalments,
                    first_due_on=event.first_due_on,
                )
            )
        elif isinstance(event, ev.PaymentReleased):
            history.payments.append(
                PaymentState(
                    payment_id=str(event.payment_id),
                    schedule_id=str(event.schedule_id),
                    deployment_id=str(event.deployment_id),
                    instalment_number=event.instalment_number,
                    option=event.option.value,
                    amount_pence=event.amount_pence,
                    due_on=event.due_on,
                    released_at=at,
                )
            )
        elif isinstance(event, ev.ClawbackRaised):
            history.clawbacks.append(
                ClawbackState(
                    clawback_id=str(event.clawback_id),
                    deployment_id=str(event.deployment_id),
                    amount_pence=event.amount_pence,
                    unspent_balance_pence=event.unspent_balance_pence,
                    rule=event.rule,
                    raised_at=at,
                )
            )
        elif isinstance(event, ev.ReviewScheduled | ev.ReviewDue | ev.ReviewCompleted):
            key = str(event.review_id)
            review = reviews.get(key)
            if review is None:
                review = ReviewState(key, str(event.plan_id), "unscheduled", "scheduled")
                reviews[key] = review
                history.reviews.append(review)
            _apply_review(review, event)
    return history


def _apply_assessment(state: AssessmentState, event: ev.Event, at: datetime) -> None:
    state.updated_at = at
    if isinstance(event, ev.AssessmentStarted | ev.AssessmentValidated):
        state.client_group = event.client_group.value
        state.community_based = event.community_based
        state.team = event.team
        state.key_worker_id = event.key_worker_id
        state.completed_by = event.completed_by.value
        state.policy_version = event.policy_version
    if isinstance(event, ev.AssessmentStarted):
        state.status = "started"
    elif isinstance(event, ev.AssessmentSubmitted):
        state.status = "submitted"
        state.policy_version = event.policy_version
    elif isinstance(event, ev.AssessmentReturned):
        state.status = "returned"
    elif isinstance(event, ev.AssessmentValidated):
        state.status = "validated"
        state.domain_levels = dict(event.domain_levels)
        state.adjustments = len(event.adjustments)
        state.significant_informal_support = event.significant_informal_support
        state.needs_24_7 = event.needs_24_7
        state.carer_support_weekly_pence = event.carer_support_weekly_pence
        state.flagged_risks = sum(1 for risk in event.risks if risk.flagged)
        state.validated_by = event.validated_by
        state.validated_at = at


def _apply_plan(plan: PlanState, event: ev.Event, at: datetime) -> None:
    plan.updated_at = at
    if isinstance(event, ev.PlanSubmitted):
        plan.status = "submitted"
        plan.budget_id = str(event.budget_id)
        plan.plan_version = event.plan_version
        plan.weekly_pence = event.weekly_pence
        plan.annual_pence = event.annual_pence
        plan.request_for_more = event.request_for_more
        plan.returned_reasons = []
    elif isinstance(event, ev.PlanReturned):
        plan.status = "returned"
        plan.returned_reasons = list(event.reasons)
    elif isinstance(event, ev.PlanSignedOff):
        plan.status = "signed_off"
        plan.budget_id = str(event.budget_id)
        plan.plan_version = event.plan_version
        plan.weekly_pence = event.weekly_pence
        plan.annual_pence = event.annual_pence
        plan.one_off_pence = event.one_off_pence
        plan.contingency_weekly_pence = event.contingency_weekly_pence
        plan.lines = len(event.lines)
        plan.request_for_more = event.request_for_more
        plan.signed_off_by = event.signed_off_by
        plan.signed_off_by_role = event.signed_off_by_role.value
        plan.signed_off_at = at
        plan.first_review_on = event.first_review_on


def _apply_review(review: ReviewState, event: ev.Event) -> None:
    if isinstance(event, ev.ReviewScheduled | ev.ReviewDue):
        review.kind = event.kind.value
        review.due_on = event.due_on
        if review.status != "completed":
            review.status = "scheduled" if isinstance(event, ev.ReviewScheduled) else "due"
    elif isinstance(event, ev.ReviewCompleted):
        review.status = "completed"
        review.completed_on = event.completed_on
        review.outcome = event.outcome.value
        review.completed_by = event.completed_by


# --- projections: the timeline and the KPI inputs -----------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a person's budget timeline, in words a case worker reads."""

    person_id: str
    council: str
    seq: int
    time: datetime
    kind: str
    ref_id: str | None
    amount_pence: int | None
    on_date: date | None
    summary: str


REVIEW_COMPLETED = short_name(ev.ReviewCompleted.type)


def timeline_entry(stored: StoredEvent, event: ev.Event) -> TimelineEntry:
    """Describe one stored event for the timeline."""
    ref: str | None = None
    amount: int | None = None
    on: date | None = None
    text = stored.type
    if isinstance(event, ev.AssessmentStarted):
        ref = str(event.assessment_id)
        text = (
            f"Assessment started ({event.client_group.value}, "
            f"completed by {event.completed_by.value})"
        )
    elif isinstance(event, ev.AssessmentSubmitted):
        ref = str(event.assessment_id)
        text = f"Self-assessment submitted ({len(event.answers)} domains answered)"
    elif isinstance(event, ev.AssessmentReturned):
        ref = str(event.assessment_id)
        text = f"Assessment returned by {event.returned_by}: {event.reasons[0]}"
    elif isinstance(event, ev.AssessmentValidated):
        ref = str(event.assessment_id)
        text = (
            f"Assessment validated by {event.validated_by} "
            f"({len(event.adjustments)} levels adjusted)"
        )
        if event.eligibility is not None:
            basis = event.eligibility
            text += f"; basis: {basis.basis.value.replace('_', ' ')}"
            if basis.explanation:
                text += f" ({basis.explanation})"
    elif isinstance(event, ev.EligibilityDetermined):
        ref, on = str(event.determination_id), event.determined_on
        verdict = "eligible" if event.eligible else "not eligible"
        text = (
            f"Care Act eligibility determined by {event.determined_by}: {verdict} "
            f"({len(event.outcomes_not_achieved)} outcomes not achieved)"
        )
    elif isinstance(event, ev.FinancialAssessmentCompleted):
        ref, on = str(event.financial_assessment_id), event.assessed_on
        amount = event.weekly_charge_pence
        outcome = event.outcome.value.replace("_", " ")
        charge = (
            f"{format_pounds(event.weekly_charge_pence)} a week"
            if event.weekly_charge_pence is not None
            else "no charge set"
        )
        text = f"Financial assessment ({outcome}) by {event.assessed_by}: {charge}"
        if event.uprating_of is not None and event.applies_from is not None:
            on = event.applies_from
            text = (
                f"Charge uprated under {event.policy_version} from "
                f"{event.applies_from.isoformat()}: {charge}"
            )
    elif isinstance(event, ev.BudgetIssued):
        ref, amount = str(event.budget_id), event.weekly_pence
        text = (
            f"Budget revision {event.revision} ({event.stage.value}) issued: "
            f"{format_pounds(event.weekly_pence)} a week, "
            f"{format_pounds(event.annual_pence)} a year"
        )
    elif isinstance(event, ev.PlanSubmitted):
        ref, amount = str(event.plan_id), event.weekly_pence
        text = (
            f"Support plan version {event.plan_version} submitted: "
            f"{format_pounds(event.weekly_pence)} a week"
        )
    elif isinstance(event, ev.PlanReturned):
        ref = str(event.plan_id)
        text = f"Support plan returned by {event.returned_by_role.value}: {event.reasons[0]}"
    elif isinstance(event, ev.PlanSignedOff):
        ref, amount, on = str(event.plan_id), event.weekly_pence, event.first_review_on
        text = (
            f"Support plan version {event.plan_version} signed off by "
            f"{event.signed_off_by_role.value}: {format_pounds(event.weekly_pence)} a week; "
            f"first review by {event.first_review_on.isoformat()}"
        )
    elif (
        isinstance(event, ev.ReviewScheduled | ev.ReviewDue)
        and event.kind is ev.ReviewKind.DIRECT_PAYMENT
    ):
        ref, on = str(event.review_id), event.due_on
        verb = "scheduled for" if isinstance(event, ev.ReviewScheduled) else "due on"
        text = f"Direct payment review {verb} {event.due_on.isoformat()}"
    elif isinstance(event, ev.ReviewScheduled) and event.trigger is not None:
        ref, on = str(event.review_id), event.due_on
        happened = f" on {event.happened_on.isoformat()}" if event.happened_on else ""
        text = (
            f"Unscheduled review scheduled for {event.due_on.isoformat()} after "
            f"{event.trigger.value.replace('_', ' ')}{happened}"
        )
    elif isinstance(event, ev.ReviewScheduled | ev.ReviewDue):
        ref, on = str(event.review_id), event.due_on
        verb = "scheduled for" if isinstance(event, ev.ReviewScheduled) else "due on"
        text = f"{event.kind.value.capitalize()} review {verb} {event.due_on.isoformat()}"
    elif isinstance(event, ev.ReviewCompleted):
        ref, on = str(event.review_id), event.completed_on
        text = (
            f"Review completed on {event.completed_on.isoformat()}: "
            f"{event.outcome.value.replace('_', ' ')}"
        )
    elif isinstance(event, ev.DeploymentSetUp):
        ref, amount = str(event.deployment_id), event.net_annual_pence
        options = ", ".join(p.option.value.replace("_", " ") for p in event.parts)
        text = (
            f"Budget deployed ({options}): {format_pounds(event.net_annual_pence)} a year "
            f"after a {format_pounds(event.contribution_annual_pence)} contribution"
        )
    elif isinstance(event, ev.AgreementSigned):
        ref, on = str(event.deployment_id), event.signed_on
        text = f"Agreement signed on {event.signed_on.isoformat()}"
    elif isinstance(event, ev.ArrearsApproved):
        ref, amount, on = str(event.deployment_id), event.amount_pence, event.earliest_due_on
        text = (
            f"Arrears of {format_pounds(event.amount_pence)} ({event.instalments} "
            f"instalment(s) already due) approved by {event.approved_by_role.value}: "
            f"{event.reason}"
        )
    elif isinstance(event, ev.PaymentScheduled):
        ref, amount, on = str(event.schedule_id), event.total_pence, event.first_due_on
        text = (
            f"{event.instalments} {event.frequency.value.replace('_', '-')} payment(s) of "
            f"{format_pounds(event.total_pence)} in all scheduled from "
            f"{event.first_due_on.isoformat()}"
        )
    elif isinstance(event, ev.PaymentReleased):
        ref, amount, on = str(event.payment_id), event.amount_pence, event.due_on
        text = (
            f"Payment {event.instalment_number} of {format_pounds(event.amount_pence)} "
            f"released ({event.option.value.replace('_', ' ')})"
        )
    elif isinstance(event, ev.ClawbackRaised):
        ref, amount = str(event.clawback_id), event.amount_pence
        text = f"Clawback of {format_pounds(event.amount_pence)} raised ({event.rule})"
    elif isinstance(event, ev.PaymentsSuspended):
        ref = str(event.deployment_id)
        text = f"Payments suspended: {event.reason}"
    elif isinstance(event, ev.PaymentsResumed):
        ref = str(event.deployment_id)
        text = f"Payments resumed: {event.reason}"
    elif isinstance(event, ev.PaymentConfirmed):
        ref, amount, on = str(event.payment_id), event.amount_pence, event.paid_on
        text = f"Payment of {format_pounds(event.amount_pence)} confirmed paid by finance"
    elif isinstance(event, ev.PaymentFailed):
        ref, amount, on = str(event.payment_id), event.amount_pence, event.failed_on
        text = f"Payment of {format_pounds(event.amount_pence)} failed: {event.reason}"
    elif isinstance(event, ev.DeploymentSwitched):
        ref, on = str(event.deployment_id), event.effective_from
        options = ", ".join(p.option.value.replace("_", " ") for p in event.parts)
        text = f"Payments switched to {options} from {event.effective_from.isoformat()}"
    elif isinstance(event, ev.DeploymentSuperseded):
        ref, amount, on = str(event.deployment_id), event.cancelled_pence, event.effective_from
        text = (
            f"Payments replaced by a revised plan's: {event.cancelled_instalments} "
            f"instalment(s) of {format_pounds(event.cancelled_pence)} cancelled"
        )
    elif isinstance(event, ev.ContributionRecalculated):
        ref, amount, on = (
            str(event.deployment_id),
            event.contribution_annual_pence,
            event.applies_from,
        )
        text = (
            f"Contribution recalculated from {event.applies_from.isoformat()} after a "
            f"financial assessment ({event.charge_outcome.value.replace('_', ' ')}): "
            f"{format_pounds(event.contribution_annual_pence)} a year, was "
            f"{format_pounds(event.previous_contribution_annual_pence)}"
        )
    elif isinstance(event, ev.BudgetStatementIssued):
        ref, amount, on = str(event.statement_id), event.total_weekly_pence, event.applies_from
        text = (
            f"Personal budget statement issued: {format_pounds(event.total_weekly_pence)} a "
            f"week, the person pays {format_pounds(event.person_pays_weekly_pence)}, the "
            f"council {format_pounds(event.council_pays_weekly_pence)}"
        )
    elif isinstance(event, ev.BudgetStatementChallenged):
        ref, on = str(event.challenge_id), event.challenged_on
        text = f"Budget statement challenged by {event.challenged_by}: {event.reason}"
    elif isinstance(event, ev.StatementChallengeAnswered):
        ref, on = str(event.challenge_id), event.answered_on
        verdict = "upheld, review requested" if event.review_requested else "not upheld"
        text = f"Statement challenge {verdict} by {event.answered_by_role.value}: {event.response}"
    elif isinstance(event, ev.ReturnSubmitted):
        ref, amount, on = str(event.return_id), event.spent_pence, event.period_end
        text = (
            f"Spending return for {event.period_start.isoformat()} to "
            f"{event.period_end.isoformat()}: {format_pounds(event.spent_pence)} spent, "
            f"{format_pounds(event.balance_pence)} left"
        )
    elif isinstance(event, ev.CardTransactionsImported):
        ref, amount, on = str(event.account_id), event.spent_pence, event.balance_on
        balance = (
            f", balance {format_pounds(event.balance_pence)}"
            if event.balance_pence is not None
            else ""
        )
        text = (
            f"Card account {event.account_reference}: {event.transactions} transaction(s) "
            f"imported, {format_pounds(event.spent_pence)} spent{balance}"
        )
    elif isinstance(event, ev.CardSurplusFlagged):
        ref, amount, on = str(event.surplus_id), event.surplus_pence, event.balance_on
        text = (
            f"Card surplus of {format_pounds(event.surplus_pence)} flagged: balance "
            f"{format_pounds(event.balance_pence)} above the "
            f"{format_pounds(event.allowance_pence)} the person may keep ({event.rule})"
        )
    elif isinstance(event, ev.RecoupNoticeSent):
        ref, amount, on = str(event.notice_id), event.amount_pence, event.sent_on
        text = (
            f"Written notice to recoup {format_pounds(event.amount_pence)} sent; "
            f"response by {event.respond_by.isoformat()}: {event.reason}"
        )
    elif isinstance(event, ev.RecoupResponseRecorded):
        ref, on = str(event.notice_id), event.responded_on
        said = f": {event.comments}" if event.comments else ""
        text = f"Response to the recoup notice: {event.response.value}{said}"
    elif isinstance(event, ev.CardFundsRecouped):
        ref, amount, on = str(event.recoup_id), event.amount_pence, event.recouped_on
        text = f"{format_pounds(event.amount_pence)} recouped from the card account"
    elif isinstance(event, ev.PersonalDetailsRecorded):
        ref = str(event.details_id)
        text = (
            "Personal details corrected (sealed)"
            if event.correction
            else "Personal details recorded (sealed)"
        )
    elif isinstance(event, ev.PersonalDataErased):
        ref, on = str(event.key_id), event.erased_on
        text = f"Personal details erased after {event.retention_years} years' retention"
    elif isinstance(event, ev.PolicyAdopted):
        on = event.effective_from
        text = f"Policy {event.policy_version} adopted from {event.effective_from.isoformat()}"
    elif isinstance(event, ev.OperatorActionRecorded):
        ref = str(event.action_id)
        done = (
            f"{len(event.event_ids)} event(s) redelivered"
            if event.action is ev.OperatorAction.EVENTS_REDELIVERED
            else f"{len(event.dead_letter_ids)} dead letter(s) re-driven"
        )
        text = f"{done} by {event.performed_by} ({event.selection}): {event.reason}"
    elif isinstance(event, ev.TamperDetected):
        ref = str(event.finding_id)
        text = (
            f"Stored history of {event.chain} found {event.difference.value} at seq "
            f"{event.first_bad_seq}: kept in quarantine and rebuilt from the log"
        )
    elif isinstance(event, ev.TamperAcknowledged):
        ref = str(event.finding_id)
        text = f"Tamper finding on {event.chain} acknowledged by {event.acknowledged_by}"
    return TimelineEntry(
        person_id=stored.person_id,
        council=stored.council,
        seq=stored.seq,
        time=as_utc(stored.time),
        kind=stored.name,
        ref_id=ref,
        amount_pence=amount,
        on_date=on,
        summary=text[:SUMMARY_MAX],
    )


@dataclass(frozen=True)
class PersonInputs:
    """What the KPIs need to know about one person (a projection row)."""

    person_id: str
    council: str
    client_group: str | None = None
    team: str | None = None
    key_worker_id: str | None = None
    community_based: bool | None = None
    assessed_at: datetime | None = None
    budget_issued_at: datetime | None = None
    plan_signed_off_at: datetime | None = None
    payment_released_at: datetime | None = None
    last_review_completed_on: date | None = None
    events: int = 0
    last_event_at: datetime | None = None


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def apply_to_inputs(
    inputs: PersonInputs | None, stored: StoredEvent, event: EventData
) -> PersonInputs:
    """The person's KPI inputs after one more event.

    Decided by the event's type without its version (the same in every version), and read
    by field name: `event` is the current version's model, or (in a replay) its DumpedStruct,
    whose fields have the same names and values (contracts.structs.decode_dumped)."""
    at = as_utc(stored.time)
    # The council is the chain's: a person's inputs never move to another council.
    current = inputs or PersonInputs(person_id=stored.person_id, council=stored.council)
    last = current.last_event_at
    # One copy per event (a replay folds millions): the changes are gathered first.
    changes: dict[str, Any] = {
        "events": current.events + 1,
        "last_event_at": at if last is None or at > last else last,
    }
    kind = unversioned(stored.type)
    if kind in _ASSESSED:
        assessed = typing.cast(ev.AssessmentValidated, event)
        changes.update(
            client_group=assessed.client_group.value,
            team=assessed.team,
            key_worker_id=assessed.key_worker_id,
            community_based=assessed.community_based,
            assessed_at=_earliest(current.assessed_at, at),
        )
    elif kind == _BUDGET_ISSUED:
        changes["budget_issued_at"] = _earliest(current.budget_issued_at, at)
    elif kind == _PLAN_SIGNED_OFF:
        changes["plan_signed_off_at"] = _earliest(current.plan_signed_off_at, at)
    elif kind == _PAYMENT_RELEASED:
        changes["payment_released_at"] = _earliest(current.payment_released_at, at)
    elif kind == _REVIEW_COMPLETED:
        completed_on = typing.cast(ev.ReviewCompleted, event).completed_on
        last_review = current.last_review_completed_on
        if last_review is None or completed_on > last_review:
            changes["last_review_completed_on"] = completed_on
    # `replace` would pass every field through the frozen __init__ again (a tenth of a
    # replay's fold): the copy is made from the fields as they are, with the changes.
    updated = object.__new__(PersonInputs)
    updated.__dict__.update(current.__dict__, **changes)
    return updated


EventData = ev.Event | msgspec.Struct
"""An event as the KPI fold reads it: its model, or its DumpedStruct (a replay)."""

_ASSESSED = frozenset(unversioned(c.type) for c in (ev.AssessmentStarted, ev.AssessmentValidated))
_BUDGET_ISSUED = unversioned(ev.BudgetIssued.type)
_PLAN_SIGNED_OFF = unversioned(ev.PlanSignedOff.type)
_PAYMENT_RELEASED = unversioned(ev.PaymentReleased.type)
_REVIEW_COMPLETED = unversioned(ev.ReviewCompleted.type)


def project_event(
    inputs: PersonInputs | None, stored: StoredEvent, event: EventData
) -> PersonInputs:
    """What one appended event does to the stored projection: the one fold every path shares
    (the live consumer, a replay's batches, a rebuild from the store), so they agree. The
    timeline is not stored: `timeline_entry` renders a line when it is read (ADR 24)."""
    return apply_to_inputs(inputs, stored, event)


def project_person(
    stored: Iterable[StoredEvent],
) -> tuple[PersonInputs | None, list[TimelineEntry]]:
    """One person's KPI inputs folded from their whole chain, and their timeline as it
    reads, both in seq order."""
    inputs: PersonInputs | None = None
    entries: list[TimelineEntry] = []
    for row in sorted(stored, key=lambda r: r.seq):
        event = event_of(row)
        inputs = project_event(inputs, row, event)
        entries.append(timeline_entry(row, event))
    return inputs, entries


def inputs_of_chain(stored: Iterable[StoredEvent]) -> PersonInputs | None:
    """One person's KPI inputs folded from their whole chain, in seq order."""
    inputs: PersonInputs | None = None
    for row in sorted(stored, key=lambda r: r.seq):
        inputs = project_event(inputs, row, event_of(row))
    return inputs


class CaseloadStage(StrEnum):
    """Where a person is in the journey, as a caseload lists them."""

    ASSESSMENT = "assessment"  # started, no budget issued yet
    SUPPORT_PLANNING = "support_planning"  # a budget issued, no plan signed off yet
    SETTING_UP_PAYMENTS = "setting_up_payments"  # plan signed off, nothing paid yet
    RECEIVING_PAYMENTS = "receiving_payments"  # at least one payment released


def caseload_stage(person: PersonInputs) -> CaseloadStage:
    """The furthest step the person's events show they have reached."""
    if person.payment_released_at is not None:
        return CaseloadStage.RECEIVING_PAYMENTS
    if person.plan_signed_off_at is not None:
        return CaseloadStage.SETTING_UP_PAYMENTS
    if person.budget_issued_at is not None:
        return CaseloadStage.SUPPORT_PLANNING
    return CaseloadStage.ASSESSMENT


@dataclass(frozen=True)
class CaseloadEntry:
    """One person on a caseload: their projection row and their latest timeline line."""

    person: PersonInputs
    latest_kind: str | None
    latest_summary: str | None

    @property
    def stage(self) -> CaseloadStage:
        return caseload_stage(self.person)


# --- KPIs ----------------------------------------------------------------------------------


class GroupBy(StrEnum):
    COUNCIL = "council"
    TEAM = "team"
    KEY_WORKER = "key_worker"


@dataclass(frozen=True)
class KpiGroup:
    key: str
    numerator: int
    denominator: int

    @property
    def percentage(self) -> str:
        return percentage(self.numerator, self.denominator)


def percentage(numerator: int, denominator: int) -> str:
    """numerator / denominator as a percentage with two places, half up; no floats."""
    if denominator <= 0:
        return "0.00"
    hundredths = div_round_half_up(numerator * 10_000, denominator)
    whole, fraction = divmod(hundredths, 100)
    return f"{whole}.{fraction:02d}"


def group_key(person: PersonInputs, by: GroupBy) -> str:
    if by is GroupBy.TEAM:
        return person.team or "(no team)"
    if by is GroupBy.KEY_WORKER:
        return person.key_worker_id or "(no key worker)"
    return person.council


def in_ni130_cohort(person: PersonInputs, cutoff: datetime) -> bool:
    """NI130's denominator: assessed (by the cutoff) as having community-based services."""
    return (
        person.community_based is True
        and person.assessed_at is not None
        and as_utc(person.assessed_at) < cutoff
    )


def _before(moment: datetime | None, cutoff: datetime) -> bool:
    return moment is not None and as_utc(moment) < cutoff


def on_self_directed_support(person: PersonInputs, cutoff: datetime) -> bool:
    """NI130's numerator: an indicative budget issued, or a later step, by the cutoff."""
    return (
        _before(person.budget_issued_at, cutoff)
        or _before(person.plan_signed_off_at, cutoff)
        or _before(person.payment_released_at, cutoff)
    )


def one_year_before(day: date) -> date:
    """The same date a year earlier (29 February falls back to the 28th); in year 1, whose
    year before a date cannot hold, the first day there is."""
    if day.year == date.min.year:
        return date.min
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def has_lancashire_pb(
    person: PersonInputs, reviews: Sequence[tuple[date, datetime]], as_of: date
) -> bool:
    """Seed 003 ch.1: knows the indicative budget, a signed-off plan with money released,
    and a review completed within the 12 months up to `as_of` (reviews: completed_on and
    the time audit received the event)."""
    cutoff = end_of_day(as_of)
    window_start = one_year_before(as_of)
    reviewed = any(
        window_start <= completed_on <= as_of and as_utc(received) < cutoff
        for completed_on, received in reviews
    )
    return (
        _before(person.budget_issued_at, cutoff)
        and _before(person.plan_signed_off_at, cutoff)
        and _before(person.payment_released_at, cutoff)
        and reviewed
    )


@dataclass(frozen=True)
class KpiResult:
    total: KpiGroup
    groups: list[KpiGroup]


def _tally(people: Iterable[tuple[PersonInputs, bool]], by: GroupBy, label: str) -> KpiResult:
    counts: dict[str, list[int]] = {}
    for person, counted in people:
        tally = counts.setdefault(group_key(person, by), [0, 0])
        tally[1] += 1
        if counted:
            tally[0] += 1
    groups = [KpiGroup(key, n, d) for key, (n, d) in sorted(counts.items())]
    total = KpiGroup(label, sum(g.numerator for g in groups), sum(g.denominator for g in groups))
    return KpiResult(total=total, groups=groups)


def ni130(people: Iterable[PersonInputs], by: GroupBy, as_of: date) -> KpiResult:
    """NI130 (seed 000; seed 001 Barnet 2,246 / 6,704 = 33.50%) as of the end of a day."""
    cutoff = end_of_day(as_of)
    cohort = [
        (p, on_self_directed_support(p, cutoff)) for p in people if in_ni130_cohort(p, cutoff)
    ]
    return _tally(cohort, by, "total")


def lancashire_measure(
    people: Iterable[PersonInputs],
    reviews: Mapping[str, Sequence[tuple[date, datetime]]],
    by: GroupBy,
    as_of: date,
) -> KpiResult:
    """Lancashire's stricter 'has a personal budget' (seed 003 ch.1) over NI130's cohort."""
    cutoff = end_of_day(as_of)
    cohort = [
        (p, has_lancashire_pb(p, reviews.get(p.person_id, ()), as_of))
        for p in people
        if in_ni130_cohort(p, cutoff)
    ]
    return _tally(cohort, by, "total")


# --- replays -------------------------------------------------------------------------------


class ReplayStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReplayPhase(StrEnum):
    QUEUED = "queued"
    READING_LOG = "reading_log"
    REBUILDING = "rebuilding"
    FINISHED = "finished"
