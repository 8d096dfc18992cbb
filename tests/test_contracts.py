"""The published contracts: a schema per event version, the AsyncAPI document, the envelope."""

from __future__ import annotations

import json
import uuid

import pytest
from jsonschema import Draft202012Validator

from contracts import generate
from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.events import AssessmentReturned
from contracts.registry import ALL_TOPICS, EVENT_CLASSES


@pytest.mark.parametrize("event_cls", EVENT_CLASSES, ids=lambda c: c.type)
def test_every_event_version_has_its_published_schema(event_cls):
    path = generate.schema_file(event_cls)
    assert path.exists(), f"run `make contracts` to publish {event_cls.type}"
    assert path.read_text() == generate.render_schema(event_cls), (
        f"{path.name} differs from the model: a published version must not change"
    )
    Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_the_asyncapi_document_lists_every_topic_and_event():
    assert generate.ASYNCAPI_FILE.read_text() == generate.render_asyncapi()
    document = generate.asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    assert set(ALL_TOPICS) <= set(document["channels"])
    assert {cls.__name__ for cls in EVENT_CLASSES} <= set(document["components"]["messages"])


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
