"""Reconciliation: the finance system's confirmation file matched against released payments.

Pure: no I/O. The finance system (CareFirst, ContrOCC; seed 004 App.1 Council B) pays the
lines of an export batch and answers with one line per payment, `paid` or `failed`. Each
line is checked on its own (the layout) and then against what this service released
(the payment exists in the caller's council, the amount is the one released, the outcome
does not contradict one already recorded). A file with any refused line changes nothing
(ADR 0013); the same file imported twice records nothing new the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

from servicekit.csvfile import CsvRow, Rejection
from servicekit.errors import Conflict
from services.payments.errors import PaymentsError

CONFIRMATION_COLUMNS = ("payment_id", "outcome", "amount_pence", "processed_on")
CONFIRMATION_OPTIONAL = ("reason", "finance_reference")
MAX_FILE_LINES = 50_000
"""A month of a large council's payments (seed 003: 36,252 people supported in Lancashire)."""
MAX_REASON = 2000


class ConfirmationFileRefused(PaymentsError):
    """The file cannot be read as a confirmation file at all (encoding, header, size)."""

    status_code = 422


class ConcurrentConfirmation(PaymentsError, Conflict):
    """Two imports recorded an outcome for the same payment at once; the later one retries."""


MAX_REFERENCE = 200


class Outcome(StrEnum):
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True)
class ConfirmationLine:
    line: int
    payment_id: UUID
    outcome: Outcome
    amount_pence: int
    processed_on: date
    reason: str | None
    finance_reference: str | None


@dataclass(frozen=True)
class ReleasedPaymentRecord:
    """What this service knows of a released payment, and its outcome so far."""

    payment_id: UUID
    council: str
    person_id: str
    deployment_id: UUID
    amount_pence: int
    released_on: date
    outcome: Outcome | None
    outcome_on: date | None


class Decision(StrEnum):
    RECORD = "record"
    UNCHANGED = "unchanged"


def parse_line(row: CsvRow) -> ConfirmationLine | list[Rejection]:
    """One line of the file checked against the layout: every fault in it, or the line."""
    faults: list[Rejection] = []
    unusable = row.layout_rejections()
    if unusable:
        return unusable
    values = row.values
    key = values["payment_id"] or None

    def fault(column: str, reason: str) -> None:
        faults.append(Rejection(line=row.line, column=column, reason=reason, key=key))

    payment_id: UUID | None = None
    try:
        payment_id = UUID(values["payment_id"])
    except ValueError:
        fault("payment_id", f"{values['payment_id']!r} is not a payment id (a UUID)")
    outcome: Outcome | None = None
    try:
        outcome = Outcome(values["outcome"].lower())
    except ValueError:
        fault("outcome", f"{values['outcome']!r} is not an outcome: use paid or failed")
    amount: int | None = None
    text = values["amount_pence"]
    if text.isascii() and text.isdigit() and len(text) <= 13:
        amount = int(text)
    else:
        fault("amount_pence", f"{text!r} is not a whole number of pence (e.g. 19231)")
    processed_on: date | None = None
    try:
        processed_on = date.fromisoformat(values["processed_on"])
    except ValueError:
        fault("processed_on", f"{values['processed_on']!r} is not a date as YYYY-MM-DD")
    reason = values.get("reason", "") or None
    if outcome is Outcome.FAILED and reason is None:
        fault("reason", "a failed payment needs the finance system's reason")
    if reason is not None and len(reason) > MAX_REASON:
        fault("reason", f"longer than {MAX_REASON} characters")
    reference = values.get("finance_reference", "") or None
    if reference is not None and len(reference) > MAX_REFERENCE:
        fault("finance_reference", f"longer than {MAX_REFERENCE} characters")
    if faults:
        return faults
    assert payment_id is not None and outcome is not None
    assert amount is not None and processed_on is not None
    return ConfirmationLine(
        line=row.line,
        payment_id=payment_id,
        outcome=outcome,
        amount_pence=amount,
        processed_on=processed_on,
        reason=reason,
        finance_reference=reference,
    )


def decide(
    line: ConfirmationLine, payment: ReleasedPaymentRecord | None, today: date
) -> Decision | Rejection:
    """Whether a well-formed line records an outcome, changes nothing, or is refused.

    processed_on falls from the day the payment was released to today (the service's
    clock): finance reports what it has done, not what it will do.

    A payment that failed may be paid later (finance corrected the bank details and paid
    again); a paid payment is final: a later `failed` for it is a mismatch to look into.
    """
    key = str(line.payment_id)

    def refuse(column: str | None, reason: str) -> Rejection:
        return Rejection(line=line.line, column=column, reason=reason, key=key)

    if payment is None:
        return refuse("payment_id", "no payment with this id has been released by this council")
    if line.amount_pence != payment.amount_pence:
        return refuse(
            "amount_pence",
            f"{line.amount_pence} pence differs from the {payment.amount_pence} pence released",
        )
    if line.processed_on < payment.released_on:
        return refuse(
            "processed_on",
            f"{line.processed_on} is before the payment was released on {payment.released_on}",
        )
    if line.processed_on > today:
        return refuse(
            "processed_on",
            f"{line.processed_on} is after today ({today}): a payment is reported paid or "
            "failed once finance has processed it",
        )
    if payment.outcome is None:
        return Decision.RECORD
    if payment.outcome is line.outcome and payment.outcome_on == line.processed_on:
        return Decision.UNCHANGED
    if payment.outcome is Outcome.PAID:
        return refuse(
            "outcome",
            f"the payment was already confirmed paid on {payment.outcome_on}; "
            "a paid payment cannot be confirmed again",
        )
    if line.outcome is Outcome.FAILED:
        return refuse(
            "outcome",
            f"the payment is already recorded as failed on {payment.outcome_on}",
        )
    return Decision.RECORD  # failed before, paid now
