"""No event can carry a personal detail in the clear (docs/privacy.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import generate
from contracts.registry import PUBLISHED_CLASSES
from services.assessment.personal import PersonalDetails

PERSONAL_FIELDS = {field for field in PersonalDetails.__dataclass_fields__} | {
    "first_name",
    "surname",
    "family_name",
    "dob",
    "birth_date",
    "nhs",
}


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _property_names(item)
    return names


@pytest.mark.parametrize("event_cls", PUBLISHED_CLASSES, ids=lambda c: c.type)
def test_no_event_schema_has_a_field_for_a_personal_detail(event_cls: Any):
    schema = json.loads(generate.schema_file(event_cls).read_text())
    assert not _property_names(schema) & PERSONAL_FIELDS, event_cls.type


def test_the_person_id_pattern_cannot_hold_a_name_with_a_space_or_an_email():
    schema = json.loads(generate.schema_file(PUBLISHED_CLASSES[0]).read_text())
    pattern = schema["properties"]["person_id"]["pattern"]
    assert " " not in pattern and "@" not in pattern and "." not in pattern
