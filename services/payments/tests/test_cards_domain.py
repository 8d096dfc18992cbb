"""The card provider's file row by row (services/payments/cards.py), without I/O."""

from __future__ import annotations

from datetime import date

from servicekit.csvfile import read_rows
from services.payments.cards import (
    CARD_COLUMNS,
    CardRow,
    KnownTransaction,
    RowType,
    balance_decision,
    parse_card_row,
    same_file_conflicts,
    transaction_decision,
)

TODAY = date(2026, 12, 1)
HEADER = ",".join(CARD_COLUMNS)


def rows(*lines: str) -> list[CardRow]:
    content = (f"{HEADER}\n" + "\n".join(lines) + "\n").encode()
    parsed = [parse_card_row(r, TODAY) for r in read_rows(content, required=CARD_COLUMNS)]
    assert all(isinstance(p, CardRow) for p in parsed), parsed
    return [p for p in parsed if isinstance(p, CardRow)]


def test_money_spent_is_below_zero_and_a_balance_never_is():
    [spent, balance] = rows(
        "PPC-1,p-1,transaction,TX-1,2026-11-02,-2599,groceries",
        "PPC-1,p-1,balance,,2026-11-30,120000,",
    )
    assert (spent.row_type, spent.amount_pence) == (RowType.TRANSACTION, -2599)
    assert (balance.row_type, balance.transaction_id, balance.amount_pence) == (
        RowType.BALANCE,
        None,
        120_000,
    )


def test_an_account_given_for_two_people_or_two_balances_on_a_day_are_refused():
    refused = same_file_conflicts(
        rows(
            "PPC-1,p-1,balance,,2026-11-30,100,",
            "PPC-1,p-2,transaction,TX-1,2026-11-02,-100,groceries",
            "PPC-1,p-1,balance,,2026-11-30,200,",
        )
    )
    assert [(r.line, r.column) for r in refused] == [(3, "person_id"), (4, "posted_on")]
    assert "p-1's on line 2" in refused[0].reason


def test_a_transaction_seen_before_is_unchanged_and_one_changed_since_is_refused():
    [row] = rows("PPC-1,p-1,transaction,TX-1,2026-11-02,-100,groceries")
    same = KnownTransaction("TX-1", "PPC-1", date(2026, 11, 2), -100, "groceries")
    assert transaction_decision(row, None) is True
    assert transaction_decision(row, same) is False
    changed = transaction_decision(
        row, KnownTransaction("TX-1", "PPC-1", date(2026, 11, 2), -150, "groceries")
    )
    assert not isinstance(changed, bool) and changed.column == "transaction_id"


def test_a_balance_restated_at_another_amount_is_refused():
    [row] = rows("PPC-1,p-1,balance,,2026-11-30,120000,")
    assert balance_decision(row, 120_000) is False
    refused = balance_decision(row, 119_000)
    assert not isinstance(refused, bool) and "119000 pence" in refused.reason
