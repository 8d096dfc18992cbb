"""The canonical document audit hashes is written by msgspec, byte for byte as `json` wrote it.

Every golden record, and every awkward variant of it that decoding accepts, gives the same
canonical bytes both ways; so every chain hashed before keeps its hashes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.envelope import decode
from contracts.registry import BY_TYPE, PUBLISHED_BY_TYPE
from services.audit.domain import EventFacts, canonical_json, facts_from
from tests.test_contracts import GOLDEN, _records_from


def _as_json_wrote_it(document: Any) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _canonical_document(facts: EventFacts) -> dict[str, Any]:
    return json.loads(facts.canonical_bytes())


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_accepted_record_hashes_the_same_bytes_as_json_wrote(path):
    accepted = 0
    for name, value, _ in _records_from(path):
        try:
            envelope = decode(value)
        except Exception:  # refused (the SDK lets some errors through, and so does decode)
            continue
        facts = facts_from(envelope)
        written = facts.canonical_bytes()
        assert written == _as_json_wrote_it(_canonical_document(facts)), name
        accepted += 1
    assert accepted > 1


AWKWARD_DOCUMENTS: list[Any] = [
    {"b": 1, "a": 'quote " backslash \\ slash / tab \t newline \n'},
    {"controls": "".join(chr(c) for c in range(32)) + "\x7f"},
    {"unicode": "é ñ ü ß — \u2028 \u2029 \U0001f600 \ufeff"},
    {"nested": {"z": [3, {"y": None, "x": True}], "a": False}, "": "empty key"},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**63, 2**70, -(2**70)]},
    {"keys": {"B": 1, "a": 2, "_": 3, "é": 4, "\U0001f600": 5, "\uffff": 6}},
    {"lists": [[], {}, [[]], ""]},
]


@pytest.mark.parametrize("document", AWKWARD_DOCUMENTS)
def test_awkward_documents_are_written_as_json_writes_them(document):
    assert canonical_json(document) == _as_json_wrote_it(document)


def test_a_lone_surrogate_is_refused_as_before():
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"council": "\ud800"})


def _schema_types(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str):
            found.add(kind)
        elif isinstance(kind, list):
            found.update(kind)
        for value in schema.values():
            found |= _schema_types(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _schema_types(value)
    return found


@pytest.mark.parametrize(
    "event_cls",
    sorted({*BY_TYPE.values(), *PUBLISHED_BY_TYPE.values()}, key=lambda cls: cls.type),
    ids=lambda cls: cls.type,
)
def test_no_event_carries_a_float_which_msgspec_would_write_differently(event_cls):
    # msgspec writes 1e16 where json writes 1e+16: a float field would need json again.
    assert "number" not in _schema_types(event_cls.model_json_schema())
