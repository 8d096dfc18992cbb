"""Operators put records back on the event log: redeliver events, re-drive dead letters.

Both work on the log itself, on either engine (servicekit.eventlog), and never on a
service's database:
- a **redelivery** re-publishes chosen events unchanged (same bytes, same CloudEvent id,
  same key) onto their topics, so every consumer group reads them again and its inbox
  makes them change nothing;
- a **re-drive** re-publishes the record a dead letter holds to the topic it came from, so
  the consumer that refused it (now fixed) applies it once; every other consumer finds it
  in its inbox.

Each action publishes an OperatorActionRecorded (topic pb.operations, subject
`operations:<council>`) in the same publish as the records, after them; audit keeps those
in the council's operations history. Which dead letters were re-driven is read back from
those events: the log holds that state, so it survives any service's database being
rebuilt, and a dead letter named in one is not re-driven again (docs/operability.md).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.events import (
    MAX_RECORDS_PER_ACTION,
    OPERATIONS_SUBJECT_PREFIX,
    OperatorAction,
    OperatorActionRecorded,
)
from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC, topic_for
from servicekit.eventlog import EventLog, OutgoingRecord, Record

OPERATIONS_TOPIC = topic_for(OperatorActionRecorded)
EVENT_TOPICS = tuple(topic for topic in ALL_TOPICS if topic != OPERATIONS_TOPIC)
"""The topics a redelivery chooses from: the journey's events, not operator records."""

_READ_STALL_SECONDS = 60.0
_CONTENT_TYPE = {"content-type": b"application/cloudevents+json"}


class OperationRefused(ValueError):
    """The action cannot be done as asked; the message says why and nothing was published."""


# --- reading the log -----------------------------------------------------------------------


async def read_topics(
    log: EventLog, topics: Sequence[str], *, since: datetime | None = None
) -> list[Record]:
    """Every record of these topics up to their ends as they are now (from `since`, by log
    time, if given), read by a group of its own that commits nothing."""
    reader = log.consumer(f"pbj-operations-{uuid.uuid4()}", list(topics))
    try:
        starts: dict[tuple[str, int], int] = {}
        if since is not None:
            starts = await reader.seek_to_time(int(since.timestamp() * 1000))
        ends = await reader.end_offsets()
        next_offset = {slot: starts.get(slot, 0) for slot in ends}
        records: list[Record] = []
        stalled_since = time.monotonic()
        while any(next_offset[slot] < end for slot, end in ends.items()):
            batch = await reader.poll(max_records=500, timeout_ms=500)
            for record in batch:
                slot = (record.topic, record.partition)
                if record.offset < ends.get(slot, 0):
                    records.append(record)
                next_offset[slot] = max(next_offset.get(slot, 0), record.offset + 1)
            if batch:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > _READ_STALL_SECONDS:
                raise TimeoutError(f"the event log stopped answering while reading {topics}")
        return records
    finally:
        await reader.close()


def _document(value: bytes) -> dict[str, Any]:
    """A record's CloudEvent as plain JSON, or {} when it is none (a dead-lettered one may
    not be): selection reads only ids, times and councils, never the schema."""
    try:
        document = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def _council_of(document: dict[str, Any]) -> str | None:
    data = document.get("data")
    council = data.get("council") if isinstance(data, dict) else None
    return council if isinstance(council, str) else None


def _time_of(document: dict[str, Any]) -> datetime | None:
    value = document.get("time")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the record of an action ---------------------------------------------------------------


@dataclass(frozen=True)
class ActionDone:
    """What one action re-published, and the event that records it."""

    action: OperatorActionRecorded
    records: int
    envelope_id: str


async def _publish_with_record(
    log: EventLog, records: Sequence[OutgoingRecord], action: OperatorActionRecorded
) -> ActionDone:
    # One publish, the action's record last: on the embedded log one transaction; on Kafka
    # every record acknowledged before this returns. Should it fail part-way, running the
    # command again is safe: what was re-published already is a duplicate to every inbox.
    envelope = Envelope(event=action, actor=action.performed_by)
    message = OutgoingRecord(
        topic=envelope.topic,
        key=envelope.subject,
        value=envelope.to_message().value or b"",
        headers=dict(_CONTENT_TYPE),
    )
    await log.publish([*records, message])
    return ActionDone(action=action, records=len(records), envelope_id=envelope.id)


def _within_one_action(count: int, what: str) -> None:
    if count > MAX_RECORDS_PER_ACTION:
        raise OperationRefused(
            f"{count:,} {what} chosen: one action re-publishes at most "
            f"{MAX_RECORDS_PER_ACTION:,}; choose a narrower range"
        )


# --- redelivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which events to redeliver: by id, by person, or by event time (since ≤ t < until)."""

    event_ids: frozenset[str] = frozenset()
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        ways = [bool(self.event_ids), self.person_id is not None, self.since is not None]
        if sum(ways) != 1:
            raise OperationRefused(
                "choose the events one way: by event id, by person, or by --since (and --until)"
            )
        if self.until is not None and self.since is None:
            raise OperationRefused("--until needs --since")
        if self.since and self.until and self.until <= self.since:
            raise OperationRefused("--until must be after --since")

    def describe(self, council: str) -> str:
        if self.event_ids:
            return "event(s) " + ", ".join(sorted(self.event_ids))
        if self.person_id is not None:
            return f"every event of person {self.person_id} of {council}"
        until = self.until.isoformat() if self.until else "now"
        assert self.since is not None
        return f"every event of {council} from {self.since.isoformat()} to {until}"

    def matches(self, record: Record, document: dict[str, Any]) -> bool:
        if self.event_ids:
            return document.get("id") in self.event_ids
        if self.person_id is not None:
            return record.key == self.person_id
        moment = _time_of(document)
        return (
            moment is not None
            and self.since is not None
            and moment >= self.since
            and (self.until is None or moment < self.until)
        )


async def redeliver(
    log: EventLog, *, selection: Selection, council: str, performed_by: str, reason: str
) -> ActionDone:
    """Re-publish the chosen events of one council unchanged onto their topics."""
    # An event's log time is never before its own time, so the log from `since` on holds
    # every event from `since` on.
    records = await read_topics(log, EVENT_TOPICS, since=selection.since)
    chosen: dict[str, Record] = {}
    for record in records:
        document = _document(record.value)
        event_id = document.get("id")
        if not isinstance(event_id, str) or event_id in chosen:
            continue  # a copy already on the log (an earlier redelivery) goes once
        if _council_of(document) == council and selection.matches(record, document):
            chosen[event_id] = record
    missing = selection.event_ids - chosen.keys()
    if missing:
        raise OperationRefused(
            f"no event of {council} on the log with id {', '.join(sorted(missing))}"
        )
    if not chosen:
        raise OperationRefused(f"no event matched: {selection.describe(council)}")
    _within_one_action(len(chosen), "events")
    action = OperatorActionRecorded(
        person_id=f"{OPERATIONS_SUBJECT_PREFIX}{council}",
        council=council,
        action_id=uuid.uuid4(),
        action=OperatorAction.EVENTS_REDELIVERED,
        performed_by=performed_by,
        reason=reason,
        selection=selection.describe(council)[:2000],
        event_ids=list(chosen),
        dead_letter_ids=[],
    )
    return await _publish_with_record(
        log,
        [OutgoingRecord(r.topic, r.key, r.value, dict(r.headers)) for r in chosen.values()],
        action,
    )


# --- dead letters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Redrive:
    """The action that re-drove a dead letter."""

    action_id: str
    at: datetime
    performed_by: str
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    """One record a consumer could not apply, as servicekit.consumer wrote it."""

    dead_letter_id: str
    """`partition-offset` of the dead letter in pb.dead-letter: unique and never reused."""
    at: datetime
    consumer: str
    reason: str
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    event_id: str | None
    event_type: str | None
    council: str | None
    redriven: Redrive | None = field(default=None)

    @property
    def original(self) -> tuple[str, int, int]:
        """Where the refused record sits on its own topic."""
        return (self.topic, self.partition, self.offset)

    def record(self) -> dict[str, Any]:
        """The refused record: its CloudEvent as JSON when it is JSON, else base64."""
        document = _document(self.value)
        if document:
            return document
        return {"value_base64": base64.b64encode(self.value).decode("ascii")}


def _dead_letter(record: Record) -> DeadLetter | None:
    body = _document(record.value)
    try:
        value = base64.b64decode(body["value_base64"])
        letter = DeadLetter(
            dead_letter_id=f"{record.partition}-{record.offset}",
            at=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC),
            consumer=str(body["consumer"]),
            reason=str(body["reason"]),
            topic=str(body["topic"]),
            partition=int(body["partition"]),
            offset=int(body["offset"]),
            key=str(body.get("key") or record.key),
            value=value,
            event_id=None,
            event_type=None,
            council=None,
        )
    except (KeyError, TypeError, ValueError):
        return None  # not a dead letter servicekit wrote: nothing to re-drive
    document = _document(value)
    event_id, event_type = document.get("id"), document.get("type")
    return replace(
        letter,
        event_id=event_id if isinstance(event_id, str) else None,
        event_type=event_type if isinstance(event_type, str) else None,
        council=_council_of(document),
    )


def _redrives(records: Sequence[Record]) -> dict[str, Redrive]:
    found: dict[str, Redrive] = {}
    for record in records:
        try:
            envelope = decode(record.value)
        except InvalidEvent:
            continue
        event = envelope.event
        if not isinstance(event, OperatorActionRecorded):
            continue
        if event.action is not OperatorAction.DEAD_LETTERS_REDRIVEN:
            continue
        for dead_letter_id in event.dead_letter_ids:
            found.setdefault(
                dead_letter_id,
                Redrive(str(event.action_id), envelope.time, event.performed_by, event.reason),
            )
    return found


async def dead_letters(log: EventLog) -> list[DeadLetter]:
    """Every dead letter on the log, oldest first, each with its re-drive if it had one."""
    records = await read_topics(log, [DEAD_LETTER_TOPIC, OPERATIONS_TOPIC])
    redrives = _redrives([r for r in records if r.topic == OPERATIONS_TOPIC])
    letters = [
        letter
        for record in records
        if record.topic == DEAD_LETTER_TOPIC and (letter := _dead_letter(record)) is not None
    ]
    letters = [replace(x, redriven=redrives.get(x.dead_letter_id)) for x in letters]
    return sorted(letters, key=lambda letter: (letter.at, letter.dead_letter_id))


async def redrive(
    log: EventLog,
    *,
    dead_letter_ids: Sequence[str] | None,
    council: str,
    performed_by: str,
    reason: str,
) -> ActionDone | None:
    """Re-publish the records of these dead letters (None: every one of the council's not
    yet re-driven) to their topics; None when there is nothing left to re-drive."""
    letters = await dead_letters(log)
    by_id = {letter.dead_letter_id: letter for letter in letters}
    if dead_letter_ids is None:
        chosen = [letter for letter in letters if letter.council == council]
    else:
        unknown = [i for i in dead_letter_ids if i not in by_id]
        if unknown:
            raise OperationRefused(f"no dead letter {', '.join(unknown)} on the log")
        chosen = [by_id[i] for i in dead_letter_ids]
        elsewhere = [x.dead_letter_id for x in chosen if x.council not in (None, council)]
        if elsewhere:
            raise OperationRefused(
                f"dead letter {', '.join(elsewhere)} holds another council's event: "
                "re-drive it with that council's --council"
            )
    originals = {letter.original for letter in chosen if letter.redriven is None}
    if not originals:
        return None
    # Re-publishing a record reaches every consumer of its topic, so every dead letter of
    # that record (one per consumer that refused it) is re-driven by it.
    redriven = [x for x in letters if x.original in originals and x.redriven is None]
    records: dict[tuple[str, int, int], DeadLetter] = {}
    for letter in redriven:
        records.setdefault(letter.original, letter)
    _within_one_action(len(redriven), "dead letters")
    event_ids = [x.event_id for x in records.values() if x.event_id is not None]
    action = OperatorActionRecorded(
        person_id=f"{OPERATIONS_SUBJECT_PREFIX}{council}",
        council=council,
        action_id=uuid.uuid4(),
        action=OperatorAction.DEAD_LETTERS_REDRIVEN,
        performed_by=performed_by,
        reason=reason,
        selection=(
            f"every dead letter of {council} not yet re-driven"
            if dead_letter_ids is None
            else "dead letter(s) " + ", ".join(dead_letter_ids)
        )[:2000],
        event_ids=list(dict.fromkeys(event_ids)),
        dead_letter_ids=[x.dead_letter_id for x in redriven],
    )
    return await _publish_with_record(
        log,
        [OutgoingRecord(x.topic, x.key, x.value, dict(_CONTENT_TYPE)) for x in records.values()],
        action,
    )
