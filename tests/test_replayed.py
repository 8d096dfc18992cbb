"""The audit's replay reads records without building their models (ADR 25), and chains exactly what
the live consumer chains: the same facts, canonical document and hash, or the same refusal.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from contracts.envelope import decode, decode_published
from contracts.registry import BY_TYPE
from services.audit.domain import GENESIS_HASH, facts_from, link
from services.audit.rebuild import replayed
from tests.test_contracts import GOLDEN, _records_from


def _optional_fields_left_out(body: dict) -> dict:
    """The record with every optional field of its data left out (the model's default
    then stands for it), where the type is current and has any."""
    event_cls = BY_TYPE.get(body["type"])
    if event_cls is None:
        return body
    body = copy.deepcopy(body)
    for name, info in event_cls.model_fields.items():
        if not info.is_required():
            body["data"].pop(name, None)
    return body


def _records(path: Path) -> list[bytes]:
    """The golden record, it without its optional fields, and its awkward variants (less
    those without an id or time, which the SDK stamps afresh on every read)."""
    good = json.loads(path.read_text(encoding="utf-8"))
    awkward = [value for _, value, stamped in _records_from(path) if not stamped]
    return [json.dumps(_optional_fields_left_out(good)).encode(), *awkward]


def _as_the_live_consumer_chains(value: bytes) -> tuple[object, ...]:
    try:
        facts = facts_from(decode(value))
    except Exception as err:  # the SDK lets some errors through; so must decode
        return ("refused", type(err), str(err))
    stored = link(facts, None)
    return (facts.event_id, facts.council, facts.person_id, stored.canonical, stored.hash)


def _as_a_replay_chains(value: bytes) -> tuple[object, ...]:
    try:
        facts, _ = replayed(value)
    except Exception as err:  # the SDK lets some errors through; so must decode
        return ("refused", type(err), str(err))
    stored = link(facts, None)
    return (facts.event_id, facts.council, facts.person_id, stored.canonical, stored.hash)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_replay_chains_every_record_as_the_live_consumer_does(path):
    for value in _records(path):
        assert _as_a_replay_chains(value) == _as_the_live_consumer_chains(value)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_current_records_are_read_without_their_models_and_older_ones_with_them(path):
    body = json.loads(path.read_text(encoding="utf-8"))
    for shape in (body, _optional_fields_left_out(body)):
        published = decode_published(json.dumps(shape).encode())
        assert (published is not None) == (body["type"] in BY_TYPE)


def test_the_kpi_fold_reads_a_replayed_event_as_it_reads_the_model():
    from services.audit.domain import apply_to_inputs

    for path in GOLDEN:
        value = path.read_bytes()
        if decode_published(value) is None:
            continue
        envelope = decode(value)
        facts, event = replayed(value)
        stored = link(facts, None)
        assert stored.prev_hash == GENESIS_HASH
        assert apply_to_inputs(None, stored, event) == apply_to_inputs(
            None, stored, envelope.event
        ), path.stem
