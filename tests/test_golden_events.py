"""Golden CloudEvents: every published event version still decodes and keeps its schema.

contracts/golden/<type>.json holds one realistic record per published version, written by
contracts/golden/make_golden.py. review-scheduled has two: v1 (no scheduled_by) decodes
through the registry's upcaster into v2, and a person's history holding both versions
rebuilds in the audit domain exactly as the same history published all in v2 does.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from contracts import generate
from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.events import ReviewScheduled, ReviewScheduledV1
from contracts.golden import make_golden
from contracts.registry import (
    BY_TYPE,
    PUBLISHED_BY_TYPE,
    PUBLISHED_CLASSES,
    UPCASTERS,
    V1_SCHEDULED_BY,
    upcast,
)
from services.audit.domain import (
    EventFacts,
    budget_history,
    chain,
    event_of,
    facts_from,
    project_person,
    types_matching,
    verify_chain,
)

V1 = ReviewScheduledV1.type
V2 = ReviewScheduled.type
GOLDEN = sorted(make_golden.GOLDEN_DIR.glob("pb.*.json"))


def body_of(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def value_of(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode("utf-8")


def schema_validator(event_type: str) -> Draft202012Validator:
    schema = json.loads(generate.schema_file(PUBLISHED_BY_TYPE[event_type]).read_text())
    return Draft202012Validator(schema)


# --- the fixtures themselves ---------------------------------------------------------------


def test_there_is_one_golden_event_per_published_version_and_the_generator_wrote_them() -> None:
    assert {path.stem for path in GOLDEN} == {cls.type for cls in PUBLISHED_CLASSES}
    expected = make_golden.rendered()
    assert set(expected) == set(GOLDEN)
    for path in GOLDEN:
        assert path.read_text(encoding="utf-8") == expected[path], (
            f"{path.name} differs from make_golden.py: run python -m contracts.golden.make_golden"
        )


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_event_validates_against_its_own_versions_schema(path: Path) -> None:
    body = body_of(path)
    assert body["type"] == path.stem
    Draft202012Validator(generate.CLOUDEVENT_ENVELOPE).validate(body)
    assert body["dataschema"] == f"urn:pb-journey:schema:{path.stem}"
    schema_validator(path.stem).validate(body["data"])


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_event_decodes_to_the_current_version_of_its_event(path: Path) -> None:
    body = body_of(path)
    envelope = decode(value_of(body))
    current = type(envelope.event)
    assert current in BY_TYPE.values()
    assert current.type.rsplit(".v", 1)[0] == path.stem.rsplit(".v", 1)[0]
    assert (envelope.id, envelope.subject) == (body["id"], body["subject"])
    assert envelope.correlation_id == body["correlationid"]
    assert envelope.causation_id == body.get("causationid")
    if current.type == path.stem:  # current: decoding and encoding again changes nothing
        assert envelope.as_published is None
        assert json.loads(envelope.to_message().value or b"") == body
    else:  # older: kept as published, and the upcast event is valid as the current version
        assert envelope.as_published is not None
        assert envelope.as_published.model_dump(mode="json") == body["data"]
        schema_validator(current.type).validate(envelope.event.model_dump(mode="json"))


# --- review-scheduled v1 -> v2 -------------------------------------------------------------


def test_a_v1_review_scheduled_upcasts_to_v2_with_an_unknown_scheduler() -> None:
    body = body_of(make_golden.golden_file(V1))
    assert UPCASTERS[V1][0] == V2 and V1 not in BY_TYPE and BY_TYPE[V2] is ReviewScheduled
    envelope = decode(value_of(body))
    assert isinstance(envelope.event, ReviewScheduled) and envelope.type == V2
    assert envelope.event.scheduled_by == V1_SCHEDULED_BY == "unknown (v1 event)"
    assert isinstance(envelope.as_published, ReviewScheduledV1)
    v1_fields = envelope.as_published.model_dump()
    assert envelope.event.model_dump() == {**v1_fields, "scheduled_by": V1_SCHEDULED_BY}
    cls, data = upcast(V1, body["data"])
    assert cls is ReviewScheduled and data["scheduled_by"] == V1_SCHEDULED_BY


def test_the_versions_differ_exactly_by_who_booked_the_review() -> None:
    v1 = body_of(make_golden.golden_file(V1))["data"]
    v2 = body_of(make_golden.golden_file(V2))["data"]
    with pytest.raises(ValidationError, match="scheduled_by"):
        schema_validator(V2).validate(v1)  # v2 requires it
    with pytest.raises(ValidationError, match="scheduled_by"):
        schema_validator(V1).validate(v2)  # v1 forbids it
    assert v2["scheduled_by"] == "care_manager:cm-4"


def test_a_v1_record_must_be_valid_as_v1_before_it_is_upcast() -> None:
    body = body_of(make_golden.golden_file(V1))
    body["data"]["scheduled_by"] = "care_manager:cm-4"  # v1 has no such field
    with pytest.raises(InvalidEvent, match=re.escape(f"{V1} data fails its schema")):
        decode(value_of(body))
    del body["data"]["scheduled_by"], body["data"]["due_on"]
    with pytest.raises(InvalidEvent, match="fails its schema"):
        decode(value_of(body))


def test_a_v2_record_without_scheduled_by_is_refused() -> None:
    body = body_of(make_golden.golden_file(V2))
    del body["data"]["scheduled_by"]
    with pytest.raises(InvalidEvent, match=re.escape(f"{V2} data fails its schema")):
        decode(value_of(body))


# --- a mixed history in the audit domain ---------------------------------------------------


def golden_history() -> list[bytes]:
    """The golden person's journey in order: the first review scheduled as v1, the next v2."""
    return [value_of(json.loads(make_golden.render(e))) for e in make_golden.golden_envelopes()]


def all_v2(history: list[bytes]) -> list[bytes]:
    """The same history as if planning had always published v2 (same ids, same times)."""
    out = []
    for value in history:
        body = json.loads(value)
        if body["type"] == V1:
            cls, data = upcast(V1, body["data"])
            body.update(type=cls.type, dataschema=f"urn:pb-journey:schema:{cls.type}", data=data)
        out.append(value_of(body))
    return out


def test_a_mixed_v1_v2_history_rebuilds_as_the_all_v2_history_does() -> None:
    mixed = golden_history()
    assert [json.loads(v)["type"] for v in mixed].count(V1) == 1
    assert [json.loads(v)["type"] for v in mixed].count(V2) == 1
    mixed_chain = chain(facts_from(decode(value)) for value in mixed)
    v2_chain = chain(facts_from(decode(value)) for value in all_v2(mixed))
    person = make_golden.PERSON
    for links in (mixed_chain, v2_chain):
        assert verify_chain(person, links, links[-1].head()).ok
    assert [event_of(s) for s in mixed_chain] == [event_of(s) for s in v2_chain]
    for as_of in (date(2025, 2, 1), date(2025, 3, 25), date(2026, 12, 31)):
        assert budget_history(person, mixed_chain, as_of) == budget_history(person, v2_chain, as_of)
    assert project_person(mixed_chain) == project_person(v2_chain)
    history = budget_history(person, mixed_chain, date(2026, 12, 31))
    assert [(r.kind, r.status) for r in history.reviews] == [
        ("first", "completed"),
        ("annual", "scheduled"),
    ]


def test_audit_hashes_a_v1_event_as_published_so_old_chains_replay_byte_for_byte() -> None:
    mixed = golden_history()
    links = chain(facts_from(decode(value)) for value in mixed)
    [stored_v1] = [s for s in links if s.type == V1]
    assert "scheduled_by" not in stored_v1.data
    assert isinstance(event_of(stored_v1), ReviewScheduled)  # read back upcast
    # What audit stored before v2 existed: the event of the v1 class, hashed as v1. Decoded
    # after the upgrade (a replay reads the log again), the same record gives the same facts.
    v1_envelope = next(e for e in make_golden.golden_envelopes() if e.type == V1)
    before = facts_from(v1_envelope)
    assert before.type == V1 and before.data == v1_envelope.event.model_dump(mode="json")
    assert stored_v1.canonical == before.canonical()
    assert EventFacts.from_canonical(stored_v1.canonical) == before


def test_a_history_filter_by_short_name_finds_both_versions() -> None:
    assert types_matching("review-scheduled") == {V1, V2}
    assert types_matching(V1) == {V1}


def test_decoding_a_golden_envelope_gives_back_the_envelope_that_made_it() -> None:
    for envelope in make_golden.golden_envelopes():
        decoded = decode(json.dumps(json.loads(make_golden.render(envelope))).encode())
        if envelope.type in BY_TYPE:
            assert decoded == envelope
        else:
            newer, _ = UPCASTERS[envelope.type]
            assert decoded.as_published == envelope.event and decoded.type == newer
            assert decoded == Envelope(
                event=decoded.event,
                id=envelope.id,
                time=envelope.time,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
            )


# --- the same through the audit service in-process ------------------------------------------


async def audit_after(tmp: Path, history: list[Envelope]) -> dict[str, Any]:
    """Deliver the events to a fresh audit service; what it then answers about the person.

    `deliver` encodes each envelope's event as its class's version: an envelope holding a
    ReviewScheduledV1 goes on the log as v1, exactly as planning published it before v2.
    """
    # Imported here: the service app is only needed by this test, not by the contract ones.
    from servicekit.testing import POLICIES_DIR, Tokens, deliver, running
    from services.audit.api import create_app
    from services.audit.settings import Settings

    tokens = Tokens(tmp)
    app = create_app(Settings(data_dir=tmp, policies_dir=POLICIES_DIR))
    person = make_golden.PERSON
    auditor = tokens.headers("auditor", make_golden.COUNCIL)
    answers: dict[str, Any] = {}
    async with running(app) as client:
        for envelope in history:
            await deliver(app, envelope)
        for name, path in {
            "budget": f"/v1/people/{person}/budget?as_of=2026-12-31",
            "timeline": f"/v1/people/{person}/timeline?limit=200",
            "reviews": f"/v1/people/{person}/history?type=review-scheduled",
            "verify": f"/v1/people/{person}/verify",
        }.items():
            response = await client.get(path, headers=auditor)
            assert response.status_code == 200, (path, response.text)
            answers[name] = response.json()
    return answers


async def test_the_audit_service_answers_a_mixed_history_as_it_answers_an_all_v2_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "mixed").mkdir()
    (tmp_path / "v2").mkdir()
    mixed = await audit_after(tmp_path / "mixed", make_golden.golden_envelopes())
    v2 = await audit_after(tmp_path / "v2", [decode(v) for v in all_v2(golden_history())])
    assert mixed["verify"]["ok"] and v2["verify"]["ok"]
    assert mixed["budget"] == v2["budget"]
    assert mixed["timeline"] == v2["timeline"]
    assert [item["type"] for item in mixed["reviews"]["items"]] == [V1, V2]  # as published
    assert [item["type"] for item in v2["reviews"]["items"]] == [V2, V2]
