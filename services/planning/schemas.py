"""Planning's wire models: what the API takes and answers, and how plans map to them."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from servicekit.pagination import CursorCodec

PLAN_CURSOR = CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))
"""Plans are listed in (created_at, plan_id) order."""

REVIEW_CURSOR = CursorCodec[tuple[date, UUID]](("d", date), ("id", UUID))
"""Reviews are listed in (due_on, review_id) order."""
