"""Allocation's wire models: what the API takes and answers, and how budgets map to them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from servicekit.pagination import CursorCodec

BUDGET_CURSOR = CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))
"""Budgets are listed, and revised for a policy, in (created_at, budget_id) order."""


def budgets_after(cursor: str | None) -> tuple[datetime, str] | None:
    position = BUDGET_CURSOR.decode(cursor)
    return None if position is None else (position[0], str(position[1]))
