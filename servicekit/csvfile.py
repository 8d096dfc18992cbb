"""Reading an uploaded CSV file row by row, and the report of the rows it refused.

Files from finance and social care systems arrive as CSV (RFC 4180, UTF-8, with or without
a byte-order mark, CRLF or LF). Every row is checked and every refusal is kept, with the
line number a person sees in a spreadsheet (the header is line 1), the column and the
reason, so one upload shows everything that has to be fixed (docs/integrations.md).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fastapi import Request
from pydantic import BaseModel, Field

from servicekit.errors import DomainError


class NotCsv(DomainError):
    """An upload sent as anything but text/csv."""

    status_code = 415


class Rejection(BaseModel):
    """One refused row: where it is and why, written for the person who fixes the file."""

    line: int = Field(description="Line in the file; the header is line 1.")
    column: str | None = Field(description="The column at fault; null for the whole row.")
    reason: str
    key: str | None = Field(
        default=None, description="The row's identifier (legacy id, payment id), when it has one."
    )


class FileRefused(ValueError):
    """The file as a whole cannot be read: not UTF-8, no header, wrong columns."""


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]
    fields: int
    columns: int

    def layout_rejections(self) -> list[Rejection]:
        """What makes the row unusable before any column is read: a wrong number of
        fields, or a cell holding a control character (NUL, a tab, a line break inside a
        quoted cell...), which no name, id or amount ever has and which would be stored and
        shown back as is."""
        width = self.width_rejection()
        if width is not None:
            return [width]
        return [
            Rejection(
                line=self.line,
                column=column,
                reason=f"holds a control character ({control_character_in(value)}); remove it",
            )
            for column, value in self.values.items()
            if control_character_in(value) is not None
        ]

    def width_rejection(self) -> Rejection | None:
        """A row with more or fewer fields than the header has columns."""
        if self.fields == self.columns:
            return None
        return Rejection(
            line=self.line,
            column=None,
            reason=f"the row has {self.fields} fields; the header has {self.columns}",
        )


def control_character_in(value: str) -> str | None:
    """The first control character in the value, written as U+XXXX; None if it has none."""
    for character in value:
        if unicodedata.category(character) == "Cc":
            return f"U+{ord(character):04X}"
    return None


def read_rows(
    content: bytes, *, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[CsvRow]:
    """The rows of a CSV file with a header; values stripped of surrounding spaces.

    Raises FileRefused when the file cannot be read at all: it is not UTF-8, it has no
    header, a required column is missing or a column is not one the layout knows.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileRefused(f"the file is not UTF-8 text (byte {err.start} is not valid)") from err
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise FileRefused("the file is empty: line 1 must be the header") from None
    except csv.Error as err:
        raise FileRefused(f"line 1 is not valid CSV: {err}") from err
    missing = [name for name in required if name not in header]
    if missing:
        raise FileRefused(f"line 1 (the header) lacks the column(s) {', '.join(missing)}")
    unknown = [name for name in header if name not in (*required, *optional)]
    if unknown:
        raise FileRefused(
            f"line 1 (the header) has column(s) this layout does not have: {', '.join(unknown)}"
        )
    if len(set(header)) != len(header):
        raise FileRefused("line 1 (the header) names a column twice")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise FileRefused(f"line {reader.line_num} is not valid CSV: {err}") from err
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, often the last one
        values = {name: "" for name in header}
        values.update({name: cell.strip() for name, cell in zip(header, cells, strict=False)})
        yield CsvRow(line=reader.line_num, values=values, fields=len(cells), columns=len(header))


CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv"})
CSV_REQUEST_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}
"""openapi_extra for a route that takes a CSV file as its whole body."""


async def csv_body(request: Request) -> bytes:
    """The uploaded file: the request body, which must be sent as text/csv."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise NotCsv(
            f"send the file as the request body with Content-Type: text/csv, not {media_type!r}",
        )
    return await request.body()


class ImportReportOut(BaseModel):
    """What an import did; `accepted` false means nothing at all was changed."""

    accepted: bool
    lines: int = Field(description="Data lines read (the header and blank lines not counted).")
    rejected: list[Rejection]
