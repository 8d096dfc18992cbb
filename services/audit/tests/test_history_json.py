"""The history page written out directly encodes exactly as the pydantic models would.

The route cuts each item's `data` out of the stored canonical document and writes the page
itself; these tests hold that answer byte for byte to `Page[HistoryItem]`'s encoding, and
the as-of fold's decoding to the typed event the upcasting path makes.
"""

from __future__ import annotations

import json
from datetime import timedelta

import msgspec
import pytest

from contracts.registry import upcast
from servicekit.pagination import Page, encode_cursor
from services.audit.domain import (
    StoredEvent,
    StoredEventUnreadable,
    chain,
    event_of,
    facts_from,
)
from services.audit.schemas import HistoryItem, history_page_json
from services.audit.tests.journey import Journey


def _chain_with_every_shape() -> list[StoredEvent]:
    """A full journey; some events with an actor, one with microseconds, one with
    non-ASCII, quotes, a backslash, a control and a line-separator character."""
    envelopes = Journey("p-json-1").full()
    facts = [facts_from(e) for e in envelopes]
    facts[1] = msgspec.structs.replace(facts[1], actor="care_manager:cm-1")
    facts[2] = msgspec.structs.replace(facts[2], time=facts[2].time + timedelta(microseconds=120))
    facts[3] = msgspec.structs.replace(
        facts[3],
        actor='team_manager:Zoë "ZB"\u2028\x1f<&>\\',
        data={**facts[3].data, "note": "café ½ \n"},
    )
    return chain(facts)


def _as_pydantic_encodes(rows: list[StoredEvent], next_cursor: str | None) -> bytes:
    items = [
        HistoryItem(
            seq=r.seq,
            event_id=r.event_id,
            type=r.type,
            name=r.name,
            time=r.time,
            correlation_id=r.correlation_id,
            causation_id=r.causation_id,
            policy_version=r.policy_version,
            actor=json.loads(r.canonical).get("actor"),
            data=json.loads(r.canonical)["data"],
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in rows
    ]
    return Page[HistoryItem](items=items, next_cursor=next_cursor).model_dump_json().encode()


@pytest.mark.parametrize("next_cursor", [None, encode_cursor({"seq": 4})])
def test_history_page_is_written_as_pydantic_would_write_it(next_cursor: str | None) -> None:
    rows = _chain_with_every_shape()
    assert history_page_json(rows, next_cursor) == _as_pydantic_encodes(rows, next_cursor)


def test_an_empty_history_page_is_written_as_pydantic_would_write_it() -> None:
    assert history_page_json([], None) == _as_pydantic_encodes([], None)


def test_data_and_actor_cut_from_the_document_equal_the_parsed_document() -> None:
    for row in _chain_with_every_shape():
        document = json.loads(row.canonical)
        assert json.loads(row.data_json) == document["data"]
        assert row.data_json == json.dumps(
            document["data"], separators=(",", ":"), ensure_ascii=False
        )
        assert row.actor == document.get("actor")


def test_a_document_not_shaped_as_canonical_is_parsed_instead() -> None:
    row = _chain_with_every_shape()[1]
    reordered = json.dumps(json.loads(row.canonical))  # spaces, keys as they were
    tampered = msgspec.structs.replace(row, canonical=reordered)
    assert json.loads(tampered.data_json) == json.loads(row.canonical)["data"]
    assert tampered.actor == "care_manager:cm-1"


def test_the_fold_reads_each_stored_event_as_the_upcasting_path_does() -> None:
    for row in chain(facts_from(e) for e in Journey("p-json-2").full()):
        event_cls, data = upcast(row.type, json.loads(row.canonical)["data"])
        assert event_of(row) == event_cls.model_validate(data)


def test_a_stored_event_with_a_field_its_type_lacks_is_unreadable() -> None:
    with_note = _chain_with_every_shape()[3]
    with pytest.raises(StoredEventUnreadable):
        event_of(with_note)
