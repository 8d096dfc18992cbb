"""Audit's wire models: what the API takes and answers, and how the store maps to them."""

from __future__ import annotations

from datetime import datetime

from servicekit.pagination import CursorCodec

SEQ_CURSOR = CursorCodec[tuple[int]](("seq", int))
"""A person's history and timeline are read in chain order (seq)."""

PERSON_CURSOR = CursorCodec[tuple[str]](("person_id", str))
"""The caseload is listed by person id."""

KPI_GROUP_CURSOR = CursorCodec[tuple[str]](("key", str))
"""A KPI's groups are listed by their key."""

FINDING_CURSOR = CursorCodec[tuple[datetime, str]](("at", datetime), ("id", str))
"""Tamper findings are listed in (detected_at, finding_id) order."""
