"""The finance export: released payments handed to the council's finance system
(CareFirst, ContrOCC; seed 004) in numbered batches with a control total, as CSV that is
the same bytes every time it is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from contracts.events import DeploymentOption
from servicekit.csvexport import Cell, csv_text
from services.payments.errors import NothingToExport
from services.payments.plausible_dates import RECORD, check_date

EXPORT_COLUMNS = (
    "batch_id",
    "line_number",
    "payment_id",
    "person_id",
    "council",
    "deployment_id",
    "option",
    "instalment_number",
    "due_on",
    "released_on",
    "amount_pence",
    "amount_gbp",
)


@dataclass(frozen=True)
class ExportRow:
    payment_id: UUID
    person_id: str
    council: str
    deployment_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: int

    def sort_key(self) -> tuple[date, date, str, str, str, int, str]:
        return (
            self.released_on,
            self.due_on,
            self.person_id,
            str(self.deployment_id),
            self.option.value,
            self.instalment_number,
            str(self.payment_id),
        )


@dataclass(frozen=True)
class ExportBatch:
    batch_id: UUID
    council: str
    up_to: date
    created_at: datetime
    created_by: str
    rows: int
    control_total_pence: int


def new_export_batch(
    *,
    council: str,
    up_to: date,
    rows: Sequence[ExportRow],
    created_at: datetime,
    created_by: str,
) -> ExportBatch:
    """A batch of released payments for the finance system (CareFirst, ContrOCC; seed 004)."""
    check_date("up_to", up_to, RECORD, created_at.date())
    if not rows:
        raise NothingToExport(f"no released payments up to {up_to} are waiting to be exported")
    return ExportBatch(
        batch_id=uuid4(),
        council=council,
        up_to=up_to,
        created_at=created_at,
        created_by=created_by,
        rows=len(rows),
        control_total_pence=sum(r.amount_pence for r in rows),
    )


def amount_gbp(amount_pence: int) -> Decimal:
    """123.45 from 12345, exactly: pence scaled by a power of ten, no floats."""
    return Decimal(amount_pence).scaleb(-2)


def export_csv(batch_id: UUID, rows: Sequence[ExportRow]) -> str:
    """The batch as CSV: the same batch gives the same bytes every time.

    A header row with the columns batch_id, line_number, payment_id, person_id, council,
    deployment_id, option, instalment_number, due_on, released_on, amount_pence,
    amount_gbp; one row per payment sorted by (released_on, due_on, person_id,
    deployment_id, option, instalment_number, payment_id) and numbered from 1; then a
    control row: CONTROL, the number of payment rows, the total in pence, the total in
    pounds, and empty fields to the same width. Dates are ISO 8601; lines end in CRLF
    (RFC 4180). No timestamp is written. Amounts are numbers (a negative one stays one).
    """
    ordered = sorted(rows, key=ExportRow.sort_key)
    lines: list[list[Cell]] = [
        [
            str(batch_id),
            line,
            str(row.payment_id),
            row.person_id,
            row.council,
            str(row.deployment_id),
            row.option.value,
            row.instalment_number,
            row.due_on.isoformat(),
            row.released_on.isoformat(),
            row.amount_pence,
            amount_gbp(row.amount_pence),
        ]
        for line, row in enumerate(ordered, start=1)
    ]
    total = sum(r.amount_pence for r in ordered)
    control: list[Cell] = ["CONTROL", len(ordered), total, amount_gbp(total)]
    lines.append(control + [""] * (len(EXPORT_COLUMNS) - len(control)))
    return csv_text(EXPORT_COLUMNS, lines)
