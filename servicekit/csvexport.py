"""Writing a CSV file the product hands out: safe to open in a spreadsheet.

A spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula, and a tab
or a carriage return can hide such a start (OWASP, "CSV Injection"). Text a caller typed
(a team name, a key worker's id) reaches KPI figures, returns and what-if reports, so every
export writes through this one module: a text cell with such a start gets a single quote
in front, which the spreadsheet shows as text. Numbers are passed as numbers (`int`,
`Decimal`) and written as they are, so a negative amount stays a number; only text is ever
changed, and text that cannot be mistaken for a formula is written byte for byte as
before. Lines end in CRLF (RFC 4180).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TextIO

Cell = str | int | Decimal | None
"""One value: text, or a number written as it is; None is an empty cell."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP)."""


def spreadsheet_safe(cell: Cell) -> Cell:
    """Text that would start a formula, quoted so it is shown as text; anything else as is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


class CsvExport:
    """Rows into an open text stream (opened with newline="")."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def row(self, cells: Iterable[Cell]) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in cells])


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """The header, then each row, as CSV text."""
    out = io.StringIO()
    export = CsvExport(out)
    export.row(header)
    for row in rows:
        export.row(row)
    return out.getvalue()
