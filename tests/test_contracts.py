"""The published contracts: a schema per event version, the AsyncAPI document, the envelope."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft202012Validator
from pydantic import Field

from contracts import generate
from contracts.envelope import Envelope, InvalidEvent, _fast_envelope, decode, decode_with_models
from contracts.events import AssessmentReturned, Event
from contracts.golden import make_golden
from contracts.registry import (
    ALL_TOPICS,
    BY_TYPE,
    EVENT_CLASSES,
    PUBLISHED_CLASSES,
    SUPERSEDED_CLASSES,
    UPCASTERS,
)
from contracts.structs import EventStruct


def event_name(event_type: str) -> str:
    """pb.planning.review-scheduled.v2 -> pb.planning.review-scheduled."""
    return event_type.rsplit(".v", 1)[0]


@pytest.mark.parametrize("event_cls", PUBLISHED_CLASSES, ids=lambda c: c.type)
def test_every_event_version_has_its_published_schema(event_cls):
    path = generate.schema_file(event_cls)
    assert path.exists(), f"run `make contracts` to publish {event_cls.type}"
    assert path.read_text() == generate.render_schema(event_cls), (
        f"{path.name} differs from the model: a published version must not change"
    )
    Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_the_generator_refuses_to_change_any_published_version_old_ones_included(
    tmp_path, monkeypatch
):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for cls in PUBLISHED_CLASSES:
        (schemas / generate.schema_file(cls).name).write_text(generate.render_schema(cls))
    v1 = schemas / "pb.planning.review-scheduled.v1.json"
    v1.write_text(v1.read_text().replace('"reason"', '"why"'))
    monkeypatch.setattr(generate, "SCHEMAS_DIR", schemas)
    monkeypatch.setattr(generate, "ASYNCAPI_FILE", tmp_path / "asyncapi.yaml")
    with pytest.raises(SystemExit, match=r"review-scheduled\.v1\.json is published"):
        generate.main()


def test_no_schema_file_is_left_without_its_published_version():
    published = {generate.schema_file(cls).name for cls in PUBLISHED_CLASSES}
    assert {path.name for path in generate.SCHEMAS_DIR.glob("*.json")} == published


def test_the_asyncapi_document_lists_every_topic_and_every_published_version():
    assert generate.ASYNCAPI_FILE.read_text() == generate.render_asyncapi()
    document = generate.asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    assert set(ALL_TOPICS) <= set(document["channels"])
    messages = document["components"]["messages"]
    assert {cls.__name__ for cls in PUBLISHED_CLASSES} <= set(messages)
    titles = {message["title"] for message in messages.values() if "title" in message}
    assert {"pb.planning.review-scheduled.v1", "pb.planning.review-scheduled.v2"} <= titles
    sent = {
        ref["$ref"].rsplit("/", 1)[1]
        for operation in document["operations"].values()
        for ref in operation["messages"]
    }
    assert sent == {cls.__name__ for cls in EVENT_CLASSES}  # an old version is never sent
    for cls in SUPERSEDED_CLASSES:
        assert "Superseded by" in messages[cls.__name__]["description"]


def test_decode_knows_only_the_newest_version_of_each_event():
    assert set(BY_TYPE) == {cls.type for cls in EVENT_CLASSES}
    names = [event_name(cls.type) for cls in EVENT_CLASSES]
    assert len(names) == len(set(names)), "two versions of one event are both current"
    assert set(PUBLISHED_CLASSES) == set(EVENT_CLASSES) | set(SUPERSEDED_CLASSES)
    assert not set(EVENT_CLASSES) & set(SUPERSEDED_CLASSES)
    assert set(UPCASTERS) == {cls.type for cls in SUPERSEDED_CLASSES}


@pytest.mark.parametrize("old_cls", SUPERSEDED_CLASSES, ids=lambda c: c.type)
def test_every_superseded_version_upcasts_to_the_current_one_of_its_event(old_cls):
    event_type, seen = old_cls.type, set()
    while event_type not in BY_TYPE:
        assert event_type not in seen and event_type in UPCASTERS, f"{event_type} is stranded"
        seen.add(event_type)
        event_type = UPCASTERS[event_type][0]
    assert event_name(event_type) == event_name(old_cls.type)


def returned() -> AssessmentReturned:
    return AssessmentReturned(
        person_id="P1",
        council="lancashire",
        assessment_id=uuid.uuid4(),
        reasons=["Health domain unanswered"],
        returned_by="care_manager:cm-1",
    )


def test_an_event_travels_as_a_cloudevent_keyed_by_the_person():
    envelope = Envelope(event=returned(), correlation_id="corr-1", causation_id="cause-1")
    message = envelope.to_message()
    body = json.loads(message.value)
    assert message.key == "P1"
    assert body["specversion"] == "1.0"
    assert body["subject"] == "P1"
    assert body["type"] == "pb.assessment.assessment-returned.v1"
    assert body["correlationid"] == "corr-1" and body["causationid"] == "cause-1"
    assert decode(message.value) == envelope


def test_the_data_of_every_published_event_validates_against_its_schema():
    message = json.loads(Envelope(event=returned()).to_message().value)
    schema = json.loads(generate.schema_file(AssessmentReturned).read_text())
    Draft202012Validator(schema).validate(message["data"])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b.pop("specversion"), "not a valid CloudEvent"),
        (lambda b: b.update(type="pb.assessment.flying-started.v1"), "unknown event type"),
        (lambda b: b["data"].update(extra="field"), "fails its schema"),
        (lambda b: b.update(subject="someone-else"), "subject"),
    ],
)
def test_a_bad_record_is_refused_with_the_reason(mutate, reason):
    body = json.loads(Envelope(event=returned()).to_message().value)
    mutate(body)
    with pytest.raises(InvalidEvent, match=reason):
        decode(json.dumps(body).encode())


def _sdk_decode(value: bytes) -> Envelope:
    from contracts.envelope import _envelope, _sdk_structured

    return _envelope(*_sdk_structured(value))


AWKWARD_RECORDS: list[Callable[[dict[str, Any]], object]] = [
    lambda b: None,
    lambda b: b.pop("time"),
    lambda b: b.update(time="2026-01-05T10:00:00"),  # no offset: refused as naive
    lambda b: b.update(time="2026-01-05T10:00:00+01:00"),
    lambda b: b.update(time="2026-01-05T10:00:00.5Z"),
    lambda b: b.update(time="2026-02-30T10:00:00Z"),
    lambda b: b.update(time="20260105T100000Z"),
    lambda b: b.update(time=1767607200),
    lambda b: b.pop("id"),
    lambda b: b.update(id=""),
    lambda b: b.update(id=7),
    lambda b: b.update(source=""),
    lambda b: b.update(specversion="0.3"),
    lambda b: b.update(subject=""),
    lambda b: b.update(datacontenttype=""),
    lambda b: b.update(dataschema=None),
    lambda b: b.update(Actor="x"),
    lambda b: b.update(data_base64="e30="),
    lambda b: b.update(actor=3, causationid=None),
    lambda b: b.update(data=json.dumps(b["data"])),
    lambda b: b.update(data=None),
    lambda b: b.update(data=[1]),
]
"""Changes to a good record that the CloudEvents SDK, and so decode, reads awkwardly or
refuses; with AWKWARD_VALUES, the 27 awkward records."""

AWKWARD_VALUES = [b"[]", b'"time"', b"\xff", b"{", b"null"]
"""Record values that are no JSON object at all."""


@pytest.mark.parametrize("mutate", AWKWARD_RECORDS)
def test_decode_accepts_and_refuses_exactly_what_the_cloudevents_sdk_does(mutate):
    body = json.loads(Envelope(event=returned(), actor="care_manager:cm-1").to_message().value)
    mutate(body)
    value = json.dumps(body).encode()
    try:
        expected: Envelope | str = _sdk_decode(value)
    except InvalidEvent as err:
        expected = str(err)
    try:
        got: Envelope | str = decode(value)
    except InvalidEvent as err:
        got = str(err)
    if isinstance(expected, Envelope) and isinstance(got, Envelope):
        # The SDK stamps a missing id and time with a new uuid and "now", so each run differs
        stamped = {name: getattr(expected, name) for name in ("id", "time") if name not in body}
        got = Envelope(**{**got.__dict__, **stamped})
    assert got == expected


@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_decode_refuses_what_is_no_json_object_as_the_sdk_does(value):
    def outcome(decoder):
        try:
            return decoder(value)
        except Exception as err:  # the SDK lets some errors through; so must decode
            return type(err), str(err)

    assert outcome(decode) == outcome(_sdk_decode)


# --- the msgspec fast path decides every record as the models do (ADR 0021) ---------------

GOLDEN = sorted(make_golden.GOLDEN_DIR.glob("pb.*.json"))
UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _each(data: Any, change: Callable[[Any], Any]) -> Any:
    """`data` with `change` applied to every value below it (None leaves a value alone)."""
    if isinstance(data, dict):
        return {key: _each(value, change) for key, value in data.items()}
    if isinstance(data, list):
        return [_each(value, change) for value in data]
    changed = change(data)
    return data if changed is None else changed


def _in_data(change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], object]:
    return lambda b: b.update(data=_each(b["data"], change))


def _in_first_part(
    change: Callable[[dict[str, Any]], object],
) -> Callable[[dict[str, Any]], object]:
    """`change` on the first object inside a list of the data (an explanation line...)."""

    def mutate(body: dict[str, Any]) -> None:
        for value in body["data"].values():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                change(value[0])
                return

    return mutate


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


AWKWARD_DATA: list[Callable[[dict[str, Any]], object]] = [
    lambda b: b["data"].update(unexpected="field"),
    lambda b: b["data"].pop(sorted(b["data"])[0]),
    lambda b: b["data"].pop(sorted(b["data"])[-1]),
    lambda b: [b["data"].pop(k) for k, v in list(b["data"].items()) if v is None],
    lambda b: [b["data"].update({k: None}) for k in sorted(b["data"])[:3]],
    lambda b: b.update(
        subject=b["subject"] + "\n", data={**b["data"], "person_id": b["subject"] + "\n"}
    ),
    lambda b: b.update(subject="P 1", data={**b["data"], "person_id": "P 1"}),
    lambda b: b["data"].update(council="Lancashire"),
    lambda b: b["data"].update(council="lancashire\n"),
    _in_data(lambda v: str(v) if _plain_int(v) else None),  # pydantic's lax ints take "5"
    _in_data(lambda v: float(v) if _plain_int(v) else None),
    _in_data(lambda v: v + 0.5 if _plain_int(v) else None),
    _in_data(lambda v: bool(v) if _plain_int(v) and v in (0, 1) else None),
    _in_data(lambda v: -1 if _plain_int(v) else None),
    _in_data(lambda v: 0 if _plain_int(v) else None),
    _in_data(lambda v: 2**70 if _plain_int(v) else None),
    _in_data(lambda v: "true" if isinstance(v, bool) else None),
    _in_data(lambda v: int(v) if isinstance(v, bool) else None),
    _in_data(lambda v: v.replace("-", "") if isinstance(v, str) and UUID_SHAPE.match(v) else None),
    _in_data(lambda v: v.upper() if isinstance(v, str) and UUID_SHAPE.match(v) else None),
    _in_data(lambda v: "{" + v + "}" if isinstance(v, str) and UUID_SHAPE.match(v) else None),
    _in_data(lambda v: v + "T00:00:00" if isinstance(v, str) and DATE_SHAPE.match(v) else None),
    _in_data(lambda v: v.replace("-", "") if isinstance(v, str) and DATE_SHAPE.match(v) else None),
    _in_data(lambda v: "" if isinstance(v, str) else None),
    _in_data(lambda v: v * 300 if isinstance(v, str) else None),
    _in_data(lambda v: v.upper() if isinstance(v, str) else None),
    _in_data(lambda v: 7 if isinstance(v, str) else None),
    lambda b: [
        b["data"].update({k: []}) for k, v in list(b["data"].items()) if isinstance(v, list)
    ],
    _in_first_part(lambda part: part.update(unexpected="field")),
    _in_first_part(lambda part: part.pop(sorted(part)[0])),
    _in_first_part(
        lambda part: [part.update({k: str(v)}) for k, v in list(part.items()) if _plain_int(v)]
    ),
]
"""Changes to a record's data: each field's type, range, pattern and presence, strictness
where pydantic is lax, and the shapes msgspec and pydantic read differently (a trailing
newline against a pattern ending in $, a UUID without hyphens, an int too big for 64 bits)."""

AWKWARD_BYTES: list[Callable[[bytes], bytes]] = [
    lambda v: v.replace(b'"data": {', b'"data": {"person_id": "someone-else", ', 1),
    lambda v: v.replace(b'"data": {', b'"data": {"unexpected": 1}, "data": {', 1),
    lambda v: v.replace(b'"type": ', b'"type": "pb.flying.v1", "type": ', 1),
    lambda v: v.replace(b'"data": {', b'"data": [{"unexpected": 1}], "data": {', 1),
    lambda v: b"\xef\xbb\xbf" + v,
    lambda v: b" \n" + v + b"\n ",
    lambda v: v.replace(b'"council": "', b'"council": "\\u006c', 1),
    lambda v: v.replace(b'"council": "', b'"council": "\\ud800', 1),
    lambda v: v.replace(b"}", b", }", 1),
]
"""Changes to a record's bytes that no change to its parsed JSON can express: duplicate
keys (the last wins in both parsers), a byte-order mark, escapes, a lone surrogate."""


def _outcome(decoder: Callable[[bytes], Envelope], value: bytes, stamped: bool) -> object:
    """What a decoder makes of a record: the envelope whole (the event's set fields and its
    JSON too, which audit hashes), or the reason it refused. `stamped`: the record lacks an
    id or time, which the SDK stamps afresh on each decode."""
    try:
        envelope = decoder(value)
    except Exception as err:  # the SDK lets some errors through; so must decode
        return "refused", type(err), str(err)
    event = envelope.event
    if stamped:
        envelope = Envelope(**{**envelope.__dict__, "id": "stamped", "time": None})
    published = envelope.as_published
    return (
        envelope,
        type(event),
        event.model_dump(mode="json"),
        event.model_dump(mode="json", exclude_unset=True),
        published and (type(published), published.model_dump(mode="json", exclude_unset=True)),
    )


def _records_from(path: Any) -> list[tuple[str, bytes, bool]]:
    good = json.loads(path.read_text(encoding="utf-8"))
    records = [("as written", json.dumps(good).encode(), False)]
    for number, mutate in enumerate([*AWKWARD_RECORDS, *AWKWARD_DATA]):
        body = copy.deepcopy(good)
        mutate(body)
        stamped = "id" not in body or "time" not in body
        records.append((f"awkward change {number}", json.dumps(body).encode(), stamped))
    for number, change in enumerate(AWKWARD_BYTES):
        records.append((f"awkward bytes {number}", change(json.dumps(good).encode()), False))
    records += [(f"awkward value {value!r}", value, False) for value in AWKWARD_VALUES]
    return records


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_msgspec_and_the_models_accept_and_refuse_the_same_records_alike(path):
    records = _records_from(path)
    decided = [(name, _outcome(decode, value, stamped)) for name, value, stamped in records]
    by_models = [
        (name, _outcome(decode_with_models, value, stamped)) for name, value, stamped in records
    ]
    assert decided == by_models
    refused = sum(1 for _, outcome in decided if outcome[0] == "refused")
    assert 0 < refused < len(records)  # both kinds of record were tried


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_current_golden_record_takes_the_msgspec_path(path):
    body = json.loads(path.read_text(encoding="utf-8"))
    fast = _fast_envelope(json.dumps(body).encode())
    assert (fast is not None) == (body["type"] in BY_TYPE)  # older versions are upcast as dicts


def test_msgspec_refuses_a_trailing_newline_where_a_pattern_ends_in_dollar():
    body = json.loads(Envelope(event=returned()).to_message().value)
    body["subject"] = body["data"]["person_id"] = "P1\n"
    value = json.dumps(body).encode()
    assert _fast_envelope(value) is None
    with pytest.raises(InvalidEvent, match="fails its schema"):
        decode(value)


def test_a_model_feature_the_struct_generator_does_not_know_is_refused_not_dropped():
    class Odd(Event):
        type: ClassVar[str] = "pb.test.odd.v1"
        service: ClassVar[str] = "test"
        weight: int = Field(gt=0)  # only ge is translated

    with pytest.raises(TypeError, match="no msgspec constraint"):
        EventStruct(Odd)


def _sdk_message(envelope: Envelope) -> KafkaMessage:
    return to_structured(
        envelope.to_cloudevent(), JSONFormat(), key_mapper=lambda _: envelope.subject
    )


def _golden_and_unusual_envelopes() -> list[Envelope]:
    golden = list(make_golden.golden_envelopes())
    first = golden[0]
    return [
        *golden,
        dataclasses.replace(first, causation_id=None, actor=None),
        dataclasses.replace(
            first,
            actor="person:p-1",
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            tracestate="k=v",
        ),
        dataclasses.replace(first, time=datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)),
        dataclasses.replace(
            first, time=datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1)))
        ),
        Envelope(event=returned(), actor="care_manager:cm-1 \u00e9\u2014"),
    ]


@pytest.mark.parametrize("envelope", _golden_and_unusual_envelopes(), ids=lambda e: e.type)
def test_a_record_is_written_byte_for_byte_as_the_cloudevents_sdk_writes_it(envelope):
    message, sdk = envelope.to_message(), _sdk_message(envelope)
    assert (message.headers, message.key, message.value) == (sdk.headers, sdk.key, sdk.value)


@pytest.mark.parametrize(
    "change",
    [{"time": datetime(2026, 1, 5, 10, 0)}, {"id": ""}, {"correlation_id": ""}],
    ids=["naive time", "empty id", "empty correlation id"],
)
def test_an_envelope_the_sdk_refuses_or_writes_oddly_is_refused_or_written_as_it_does(change):
    envelope = dataclasses.replace(Envelope(event=returned()), **change)

    def outcome(write: Callable[[Envelope], KafkaMessage]) -> object:
        try:
            return write(envelope).value
        except BaseCloudEventException as err:
            return type(err), str(err)

    assert outcome(Envelope.to_message) == outcome(_sdk_message)
