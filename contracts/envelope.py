"""The CloudEvents 1.0 envelope every event travels in (architecture.md §3).

Structured content mode (ADR 0002): the whole CloudEvent, attributes and data, is one
JSON document in the record's value; the record key is the person's opaque id. The same
bytes go to the embedded log and to Kafka, so replay never depends on headers.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from cloudevents.core.bindings.kafka import KafkaMessage, from_structured, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from contracts.events import Event
from contracts.registry import BY_TYPE, PUBLISHED_BY_TYPE, UnknownEventType, topic_for, upcast
from contracts.structs import decode_dumped, decode_event

_FORMAT = JSONFormat()
SOURCE_PREFIX = "/pb-journey/"


class InvalidEvent(ValueError):
    """A record that is not a valid CloudEvent of a known type with valid data."""


@dataclass(frozen=True)
class Envelope:
    """An event with the attributes that travel with it.

    `event` is always of the current version of its type. When the record was published as
    an older version, decode validates it against that version's class, upcasts it, and
    keeps the old-version event in `as_published` (audit hashes what was published).
    """

    event: Event
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None
    actor: str | None = None
    """Who caused the state change, as `role:user_id` from the caller's verified token
    (the CloudEvents extension attribute `actor`); None for an event a consumer emitted
    in reaction to another event, whose own actor is found through causation_id."""
    type: str = ""
    source: str = ""
    traceparent: str | None = None
    """W3C Trace Context of the span that wrote the event (CloudEvents distributed-tracing
    extension); absent on events written outside a trace."""
    tracestate: str | None = None
    as_published: Event | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", self.event.type)
        object.__setattr__(self, "source", SOURCE_PREFIX + self.event.service)

    @property
    def subject(self) -> str:
        return self.event.person_id

    @property
    def topic(self) -> str:
        return topic_for(type(self.event))

    @property
    def policy_version(self) -> str | None:
        return getattr(self.event, "policy_version", None)

    def attributes(self) -> dict[str, Any]:
        """The CloudEvents attributes the record carries, in the order they are written."""
        attributes: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "specversion": "1.0",
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": "application/json",
            "dataschema": f"urn:pb-journey:schema:{self.type}",
            "correlationid": self.correlation_id,
        }
        if self.causation_id:
            attributes["causationid"] = self.causation_id
        if self.policy_version:
            attributes["policyversion"] = self.policy_version
        if self.actor:
            attributes["actor"] = self.actor
        if self.traceparent:
            attributes["traceparent"] = self.traceparent
            if self.tracestate:
                attributes["tracestate"] = self.tracestate
        return attributes

    def to_cloudevent(self) -> CloudEvent:
        return CloudEvent(self.attributes(), self.event.model_dump(mode="json"))

    def to_message(self) -> KafkaMessage:
        """The record: the CloudEvent in structured mode, byte for byte what the SDK's
        `to_structured(self.to_cloudevent(), JSONFormat())` writes (tests/test_contracts.py),
        without building and validating its object model on the way (ADR 0021): every
        attribute here is one this class made."""
        document = self.attributes()
        if self.time.tzinfo is None or not all(
            isinstance(value, str) and value for name, value in document.items() if name != "time"
        ):  # what the SDK refuses: let it say why, as it always has
            return to_structured(self.to_cloudevent(), _FORMAT, key_mapper=lambda _: self.subject)
        document["time"] = _sdk_time(self.time)
        document["data"] = self.event.model_dump(mode="json")
        return KafkaMessage(
            headers={"content-type": _STRUCTURED_CONTENT_TYPE},
            key=self.subject,
            value=json.dumps(document).encode(),
        )


_STRUCTURED_CONTENT_TYPE = _FORMAT.get_content_type().encode("utf-8")


def _sdk_time(moment: datetime) -> str:
    """A time as the SDK's JSON format writes it: ISO 8601, UTC as Z."""
    written = moment.isoformat()
    return written.removesuffix("+00:00") + "Z" if written.endswith("+00:00") else written


def _strict_v1(attributes: dict[str, Any], data: Any) -> CloudEvent:
    # The SDK's CloudEvent fills in a missing specversion; a record without one is refused.
    if attributes.get("specversion") != "1.0":
        raise ValueError("specversion 1.0 is required")
    return CloudEvent(attributes, data)


def decode(value: bytes) -> Envelope:
    """Parse and validate a record's value; raise InvalidEvent naming what is wrong.

    A record in our producers' shape whose data its event's Struct accepts is read in one
    pass by msgspec (contracts.structs, ADR 0021). Anything else, a refusal included, is
    read as before by the models (`decode_with_models`), so what is accepted or refused,
    and the reason given, does not depend on the path.
    """
    envelope = _fast_envelope(value)
    return envelope if envelope is not None else decode_with_models(value)


def decode_with_models(value: bytes) -> Envelope:
    """`decode` by the pydantic models alone: the reference the msgspec path is held to."""
    parsed = _plain_structured(value)
    if parsed is None:
        attributes, data = _sdk_structured(value)
    else:
        attributes, data = parsed
    return _envelope(attributes, data)


def _sdk_structured(value: bytes) -> tuple[dict[str, Any], Any]:
    """The CloudEvents SDK's reading of a record: its attributes (time parsed) and data."""
    try:
        cloud_event = from_structured(
            KafkaMessage(headers={}, key=None, value=value), _FORMAT, _strict_v1
        )
    except (BaseCloudEventException, ValueError, TypeError, KeyError) as err:
        raise InvalidEvent(f"not a valid CloudEvent: {err}") from err
    return cloud_event.get_attributes(), cloud_event.get_data()


# The shape our producers write (Envelope.to_message): a JSON object whose attributes are
# all strings, a UTC time as the SDK writes it, and a JSON object as data.
_PLAIN_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?(Z|\+00:00)$")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
_REQUIRED = ("id", "source", "type")
_OPTIONAL = ("subject", "datacontenttype", "dataschema")


def _plain_structured(value: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The attributes and data of a record in exactly our producers' shape, or None.

    The SDK builds an object model and parses the time with dateutil for every record;
    a replay reads millions. This reads the same JSON with the same parser and accepts
    only what the SDK accepts and reads the same way (every check below is one the SDK
    makes, or narrower); anything else (None) goes through the SDK, so what it refuses
    is refused with its own reason.
    """
    if not isinstance(value, bytes):
        return None
    try:
        document = json.loads(value.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    data = document.pop("data", None)
    if not isinstance(data, dict):
        return None
    attributes = _plain_attributes(document)
    return None if attributes is None else (attributes, data)


def _plain_attributes(document: dict[str, Any]) -> dict[str, Any] | None:
    """A record's attributes (all but data) if they are exactly our producers' shape, the
    time parsed; None for anything else (the SDK then reads it)."""
    if document.get("specversion") != "1.0":
        return None
    for name in _REQUIRED:
        if not isinstance(document.get(name), str) or not document[name]:
            return None
    for name in _OPTIONAL:
        if name in document and (not isinstance(document[name], str) or not document[name]):
            return None
    time = document.get("time")
    if not isinstance(time, str) or not _PLAIN_TIME.match(time):
        return None
    for name in document:
        if name not in _SDK_NAMED and not _EXTENSION_NAME.match(name):
            return None
    try:
        moment = datetime.fromisoformat(time)
    except ValueError:
        return None
    document["time"] = moment.astimezone(UTC)
    return document


_Given = Annotated[str, msgspec.Meta(min_length=1)]


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    """A record's value exactly in our producers' shape, as `_plain_attributes` accepts it:
    every attribute they may write (a required one present), the names the SDK knows as
    non-empty strings, the time in the SDK's UTC form, and the data left unparsed for its
    event's Struct. Anything else fails here and is read by the models' path instead."""

    specversion: Literal["1.0"]
    id: _Given
    source: _Given
    type: _Given
    time: Annotated[str, msgspec.Meta(pattern=_PLAIN_TIME.pattern)]
    subject: _Given | msgspec.UnsetType = msgspec.UNSET
    datacontenttype: _Given | msgspec.UnsetType = msgspec.UNSET
    dataschema: _Given | msgspec.UnsetType = msgspec.UNSET
    correlationid: Any = None
    causationid: Any = None
    policyversion: Any = None
    actor: Any = None
    traceparent: Any = None
    tracestate: Any = None
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_RECORD = msgspec.json.Decoder(_Record)


def _fast_envelope(value: bytes) -> Envelope | None:
    """The envelope of a record msgspec can read and validate whole, or None (the models'
    path then decides). It accepts nothing the models' path refuses and builds the same
    envelope (tests/test_contracts.py)."""
    read = _plain_record(value)
    if read is None:
        return None
    record, moment, data = read
    event = decode_event(record.type, data)
    if event is None or record.subject != event.person_id:
        return None
    traceparent, tracestate = record.traceparent, record.tracestate
    return Envelope(
        event=event,
        id=record.id,
        time=moment,
        correlation_id=record.correlationid or record.id,
        causation_id=record.causationid,
        actor=record.actor,
        traceparent=traceparent if _well_formed(traceparent, _TRACEPARENT) else None,
        tracestate=tracestate if _well_formed(tracestate, _TRACESTATE) else None,
    )


def _plain_record(value: bytes) -> tuple[_Record, datetime, msgspec.Raw] | None:
    """A record in our producers' shape, its time (UTC) and its data left unparsed."""
    if not isinstance(value, bytes):
        return None
    try:
        record = _RECORD.decode(value)
        moment = datetime.fromisoformat(record.time)
    except (msgspec.DecodeError, ValueError):
        return None
    data = record.data
    if isinstance(data, msgspec.UnsetType) or bytes(memoryview(data)[:1]) != b"{":
        return None
    return record, moment.astimezone(UTC), data


class PublishedRecord(msgspec.Struct, frozen=True):
    """A record as `decode` would read it, without its model (`decode_published`).

    `data` is the event's DumpedStruct: the fields and values of `decode(value).event`
    (same names; the defaults filled in), encoding to the JSON of its `model_dump`."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    correlation_id: str
    causation_id: str | None
    actor: str | None
    data: msgspec.Struct


def decode_published(value: bytes) -> PublishedRecord | None:
    """What `decode(value)` holds, for a record of a current event version in our
    producers' shape; None for anything else, which the caller reads with `decode`.

    Accepts exactly what `_fast_envelope` accepts and reads the same attributes, but
    builds no model: for readers that hash and fold millions of events and never hand
    them to a use case (the audit's replay, ADR 25). tests/test_replayed.py holds what a
    replay chains from it to what it chains from `decode`, over every golden and awkward
    record."""
    read = _plain_record(value)
    if read is None:
        return None
    record, moment, data = read
    event_cls = BY_TYPE.get(record.type)
    published = decode_dumped(record.type, data)
    if event_cls is None or published is None:
        return None
    person_id = getattr(published, "person_id", None)
    if record.subject != person_id or not isinstance(person_id, str):
        return None
    return PublishedRecord(
        id=record.id,
        type=record.type,
        source=SOURCE_PREFIX + event_cls.service,
        time=moment,
        subject=person_id,
        correlation_id=record.correlationid or record.id,
        causation_id=record.causationid,
        actor=record.actor,
        data=published,
    )


_SDK_NAMED = frozenset(("specversion", "time", *_REQUIRED, *_OPTIONAL))


def _envelope(attributes: dict[str, Any], data: Any) -> Envelope:
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as err:
            raise InvalidEvent(f"data is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise InvalidEvent("data must be a JSON object")
    try:
        event_cls, upcast_data = upcast(attributes["type"], data)
    except UnknownEventType as err:
        raise InvalidEvent(f"unknown event type {err}") from err
    as_published: Event | None = None
    try:
        if event_cls.type != attributes["type"]:  # an older version: valid as that version
            as_published = PUBLISHED_BY_TYPE[attributes["type"]].model_validate(data)
        event = event_cls.model_validate(upcast_data)
    except ValidationError as err:
        raise InvalidEvent(f"{attributes['type']} data fails its schema: {err}") from err
    if attributes.get("subject") != event.person_id:
        raise InvalidEvent("subject does not match the event's person_id")
    return _envelope_of(attributes, event, as_published)


def _envelope_of(attributes: dict[str, Any], event: Event, as_published: Event | None) -> Envelope:
    time = attributes.get("time")
    return Envelope(
        event=event,
        id=attributes["id"],
        time=time if isinstance(time, datetime) else datetime.now(UTC),
        correlation_id=attributes.get("correlationid") or attributes["id"],
        causation_id=attributes.get("causationid"),
        actor=attributes.get("actor"),
        traceparent=_trace_attribute(attributes, "traceparent", _TRACEPARENT),
        tracestate=_trace_attribute(attributes, "tracestate", _TRACESTATE),
        as_published=as_published,
    )


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_TRACESTATE = re.compile(r"^[\x20-\x7e]{1,512}$")


def _trace_attribute(attributes: dict[str, Any], name: str, shape: re.Pattern[str]) -> str | None:
    """A trace attribute if well formed; a malformed one is dropped, never a reason to refuse
    the event (tracing is for operators, the event is the fact)."""
    value = attributes.get(name)
    return value if _well_formed(value, shape) else None


def _well_formed(value: Any, shape: re.Pattern[str]) -> bool:
    return isinstance(value, str) and shape.match(value) is not None
