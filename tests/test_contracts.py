"""The published contracts: a schema per event version, the AsyncAPI document, the envelope."""

from __future__ import annotations

import json
import uuid

import pytest
from jsonschema import Draft202012Validator

from contracts import generate
from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.events import AssessmentReturned
from contracts.registry import (
    ALL_TOPICS,
    BY_TYPE,
    EVENT_CLASSES,
    PUBLISHED_CLASSES,
    SUPERSEDED_CLASSES,
    UPCASTERS,
)


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


@pytest.mark.parametrize(
    "mutate",
    [
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
    ],
)
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


@pytest.mark.parametrize("value", [b"[]", b'"time"', b"\xff", b"{", b"null"])
def test_decode_refuses_what_is_no_json_object_as_the_sdk_does(value):
    def outcome(decoder):
        try:
            return decoder(value)
        except Exception as err:  # the SDK lets some errors through; so must decode
            return type(err), str(err)

    assert outcome(decode) == outcome(_sdk_decode)
