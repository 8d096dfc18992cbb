"""Cursor pagination for every list endpoint: `?limit=&cursor=` -> {items, next_cursor}."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar, cast
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel

from servicekit.errors import InvalidCursor

MAX_PAGE_SIZE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the last page.")]


T = TypeVar("T")
Found = TypeVar("Found")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def next_page(
    found: Sequence[Found], limit: int, cursor_after: Callable[[Found], str]
) -> tuple[Sequence[Found], str | None]:
    """A list read with `limit + 1` rows: the page to answer and the cursor after its last
    row, None when nothing follows (the extra row only tells that more are there)."""
    page = found[:limit]
    return page, cursor_after(page[-1]) if len(found) > limit else None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as err:
        raise InvalidCursor() from err
    if not isinstance(value, dict):
        raise InvalidCursor()
    return value


CursorValue = datetime | date | int | str | UUID
Position = TypeVar("Position", bound=tuple[Any, ...])


class CursorCodec(Generic[Position]):
    """The one way a list turns its last item's sort key into `next_cursor` and back.

    Declared once per list with the key's named, typed parts, e.g.
    ``CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))``; `decode` gives
    the same tuple back, or refuses anything this service did not give out with
    `InvalidCursor`. Integers are positions in a sequence, so never negative; a time without
    an offset is read as UTC.
    """

    def __init__(self, *fields: tuple[str, type[CursorValue]]) -> None:
        if not fields:
            raise ValueError("a cursor needs at least one field")
        self._fields = fields

    def encode(self, position: Position) -> str:
        if len(position) != len(self._fields):
            raise ValueError(f"a cursor of {len(self._fields)} parts, given {len(position)}")
        return encode_cursor(
            {
                name: _cursor_text(kind, value)
                for (name, kind), value in zip(self._fields, position, strict=True)
            }
        )

    def decode(self, cursor: str | None) -> Position | None:
        stored = decode_cursor(cursor)
        if stored is None:
            return None
        if set(stored) != {name for name, _ in self._fields}:
            raise InvalidCursor()
        try:
            values = tuple(_cursor_value(kind, stored[name]) for name, kind in self._fields)
        except (TypeError, ValueError) as err:
            raise InvalidCursor() from err
        return cast(Position, values)


def _cursor_text(kind: type[CursorValue], value: Any) -> int | str:
    wrong_kind = not isinstance(value, kind) or isinstance(value, bool)
    if wrong_kind or (kind is date and isinstance(value, datetime)):
        raise TypeError(f"a cursor part of type {kind.__name__}, given {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cursor_value(kind: type[CursorValue], stored: object) -> CursorValue:
    if kind is int:
        if isinstance(stored, bool) or not isinstance(stored, int) or stored < 0:
            raise ValueError("not a position")
        return stored
    if not isinstance(stored, str):
        raise TypeError("not text")
    if kind is datetime:
        at = datetime.fromisoformat(stored)
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if kind is date:
        return date.fromisoformat(stored)
    if kind is UUID:
        return UUID(stored)
    return stored
