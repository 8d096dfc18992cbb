"""Card accounts' tables and their repository (services/payments/cards.py is the domain).

An account is one versioned row: its running figures and its surpluses, notices,
responses and recoups as JSON (a handful each over an account's life). Every transaction
and every reported balance is a row of its own, unique by the provider's transaction id
(and by account and day for balances) within a council, which is what makes a re-import
record nothing twice, even from two imports running at once. Every table names the person,
so a subject access request finds their transactions too (servicekit/subject_access.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import RecoupResponse
from servicekit import clock
from servicekit.db import UtcDateTime, one_of, save_versioned
from services.payments.cards import (
    CardAccount,
    CardRow,
    KnownTransaction,
    Recoup,
    RecoupNotice,
    Response,
    Surplus,
)

_ID = 36
_ACTOR = 200
_IN_CHUNK = 500
"""Ids per IN (...) list: well within SQLite's and PostgreSQL's parameter limits."""


def card_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The accounts, their transactions and their reported balances."""
    accounts = sa.Table(
        "card_accounts",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(_ID), nullable=False, unique=True),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("account_reference", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("council", "account_reference", name="uq_card_accounts_reference"),
        sa.Index("ix_card_accounts_person", "council", "person_id"),
    )
    transactions = sa.Table(
        "card_transactions",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False, index=True),
        sa.Column("account_reference", sa.String(64), nullable=False),
        sa.Column("posted_on", sa.Date, nullable=False),
        sa.Column("amount_pence", sa.BigInteger, nullable=False),
        sa.Column("merchant_category", sa.String(64), nullable=True),
        sa.Column("import_id", sa.String(_ID), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("council", "transaction_id", name="uq_card_transactions_id"),
    )
    balances = sa.Table(
        "card_balances",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("account_reference", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("balance_on", sa.Date, nullable=False),
        sa.Column("balance_pence", sa.BigInteger, nullable=False),
        sa.Column("import_id", sa.String(_ID), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint(
            "council", "account_reference", "balance_on", name="uq_card_balances_day"
        ),
    )
    return accounts, transactions, balances


def _state(account: CardAccount) -> dict[str, Any]:
    return {
        "balance_pence": account.balance_pence,
        "balance_on": account.balance_on.isoformat() if account.balance_on else None,
        "paid_in_pence": account.paid_in_pence,
        "spent_pence": account.spent_pence,
        "spent_by_category": dict(sorted(account.spent_by_category.items())),
        "transactions": account.transactions,
        "surpluses": [
            {
                "surplus_id": str(s.surplus_id),
                "deployment_id": str(s.deployment_id),
                "balance_pence": s.balance_pence,
                "balance_on": s.balance_on.isoformat(),
                "allowance_pence": s.allowance_pence,
                "surplus_pence": s.surplus_pence,
                "rule": s.rule,
                "policy_version": s.policy_version,
            }
            for s in account.surpluses
        ],
        "notices": [
            {
                "notice_id": str(n.notice_id),
                "surplus_id": str(n.surplus_id),
                "amount_pence": n.amount_pence,
                "reason": n.reason,
                "sent_on": n.sent_on.isoformat(),
                "respond_by": n.respond_by.isoformat(),
                "respond_within_days": n.respond_within_days,
                "policy_version": n.policy_version,
                "sent_by": n.sent_by,
            }
            for n in account.notices
        ],
        "responses": [
            {
                "notice_id": str(r.notice_id),
                "response": r.response.value,
                "comments": r.comments,
                "responded_on": r.responded_on.isoformat(),
                "recorded_by": r.recorded_by,
            }
            for r in account.responses
        ],
        "recoups": [
            {
                "recoup_id": str(r.recoup_id),
                "notice_id": str(r.notice_id),
                "amount_pence": r.amount_pence,
                "recouped_on": r.recouped_on.isoformat(),
                "recorded_by": r.recorded_by,
            }
            for r in account.recoups
        ],
    }


def _account(row: Any) -> CardAccount:
    state = row.state
    return CardAccount(
        account_id=UUID(row.account_id),
        council=row.council,
        person_id=row.person_id,
        account_reference=row.account_reference,
        version=row.version,
        balance_pence=state["balance_pence"],
        balance_on=date.fromisoformat(state["balance_on"]) if state["balance_on"] else None,
        paid_in_pence=state["paid_in_pence"],
        spent_pence=state["spent_pence"],
        spent_by_category={k: int(v) for k, v in state["spent_by_category"].items()},
        transactions=state["transactions"],
        surpluses=[
            Surplus(
                surplus_id=UUID(s["surplus_id"]),
                deployment_id=UUID(s["deployment_id"]),
                balance_pence=s["balance_pence"],
                balance_on=date.fromisoformat(s["balance_on"]),
                allowance_pence=s["allowance_pence"],
                surplus_pence=s["surplus_pence"],
                rule=s["rule"],
                policy_version=s["policy_version"],
            )
            for s in state["surpluses"]
        ],
        notices=[
            RecoupNotice(
                notice_id=UUID(n["notice_id"]),
                surplus_id=UUID(n["surplus_id"]),
                amount_pence=n["amount_pence"],
                reason=n["reason"],
                sent_on=date.fromisoformat(n["sent_on"]),
                respond_by=date.fromisoformat(n["respond_by"]),
                respond_within_days=n["respond_within_days"],
                policy_version=n["policy_version"],
                sent_by=n["sent_by"],
            )
            for n in state["notices"]
        ],
        responses=[
            Response(
                notice_id=UUID(r["notice_id"]),
                response=RecoupResponse(r["response"]),
                comments=r["comments"],
                responded_on=date.fromisoformat(r["responded_on"]),
                recorded_by=r["recorded_by"],
            )
            for r in state["responses"]
        ],
        recoups=[
            Recoup(
                recoup_id=UUID(r["recoup_id"]),
                notice_id=UUID(r["notice_id"]),
                amount_pence=r["amount_pence"],
                recouped_on=date.fromisoformat(r["recouped_on"]),
                recorded_by=r["recorded_by"],
            )
            for r in state["recoups"]
        ],
    )


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


class CardRepository:
    """Loads and saves card accounts; records the transactions and balances of a file."""

    def __init__(
        self,
        session: AsyncSession,
        tables: tuple[sa.Table, sa.Table, sa.Table],
        track: Callable[[CardAccount], CardAccount],
    ) -> None:
        self._session = session
        self._accounts, self._transactions, self._balances = tables
        self._track = track
        self._loaded: dict[UUID, int] = {}

    def _loaded_account(self, row: Any) -> CardAccount:
        account = _account(row)
        self._loaded[account.account_id] = account.version
        return self._track(account)

    async def get(self, account_id: UUID) -> CardAccount | None:
        row = (
            await self._session.execute(
                sa.select(self._accounts).where(self._accounts.c.account_id == str(account_id))
            )
        ).first()
        return self._loaded_account(row) if row is not None else None

    async def by_reference(self, council: str, references: Sequence[str]) -> dict[str, CardAccount]:
        found: dict[str, CardAccount] = {}
        for chunk in _chunks(sorted(set(references))):
            rows = await self._session.execute(
                sa.select(self._accounts).where(
                    self._accounts.c.council == council,
                    one_of(self._accounts.c.account_reference, chunk),
                )
            )
            for row in rows:
                found[row.account_reference] = self._loaded_account(row)
        return found

    async def page(
        self, *, council: str, person_id: str | None, after_seq: int | None, limit: int
    ) -> list[tuple[int, CardAccount]]:
        query = sa.select(self._accounts).where(self._accounts.c.council == council)
        if person_id is not None:
            query = query.where(self._accounts.c.person_id == person_id)
        if after_seq is not None:
            query = query.where(self._accounts.c.seq > after_seq)
        rows = await self._session.execute(query.order_by(self._accounts.c.seq).limit(limit))
        return [(row.seq, _account(row)) for row in rows]

    async def known_transactions(
        self, council: str, transaction_ids: Sequence[str]
    ) -> dict[str, KnownTransaction]:
        t = self._transactions
        found: dict[str, KnownTransaction] = {}
        for chunk in _chunks(sorted(set(transaction_ids))):
            rows = await self._session.execute(
                sa.select(t).where(t.c.council == council, one_of(t.c.transaction_id, chunk))
            )
            for row in rows:
                found[row.transaction_id] = KnownTransaction(
                    transaction_id=row.transaction_id,
                    account_reference=row.account_reference,
                    posted_on=row.posted_on,
                    amount_pence=row.amount_pence,
                    merchant_category=row.merchant_category,
                )
        return found

    async def known_balances(
        self, council: str, references: Sequence[str]
    ) -> dict[tuple[str, date], int]:
        b = self._balances
        found: dict[tuple[str, date], int] = {}
        for chunk in _chunks(sorted(set(references))):
            rows = await self._session.execute(
                sa.select(b).where(b.c.council == council, one_of(b.c.account_reference, chunk))
            )
            for row in rows:
                found[(row.account_reference, row.balance_on)] = row.balance_pence
        return found

    async def record_rows(
        self, account: CardAccount, rows: Sequence[CardRow], import_id: UUID
    ) -> None:
        """The file's new transactions and balances for one account (a duplicate written
        by an import running at the same time fails the unique constraint: nothing of
        either file's transaction is then kept twice)."""
        now = clock.now()
        common = {
            "council": account.council,
            "person_id": account.person_id,
            "account_reference": account.account_reference,
            "account_id": str(account.account_id),
            "import_id": str(import_id),
            "recorded_at": now,
        }
        spent = [
            {
                **common,
                "transaction_id": r.transaction_id,
                "posted_on": r.posted_on,
                "amount_pence": r.amount_pence,
                "merchant_category": r.merchant_category,
            }
            for r in rows
            if r.transaction_id is not None
        ]
        reported = [
            {**common, "balance_on": r.posted_on, "balance_pence": r.amount_pence}
            for r in rows
            if r.transaction_id is None
        ]
        if spent:
            await self._session.execute(self._transactions.insert(), spent)
        if reported:
            await self._session.execute(self._balances.insert(), reported)

    async def save(self, account: CardAccount) -> None:
        """Insert a new account, or write it back if nobody saved it since it was loaded."""
        loaded = self._loaded.get(account.account_id)
        if loaded is None:
            account.version = 1
            await self._session.execute(
                self._accounts.insert().values(
                    account_id=str(account.account_id),
                    council=account.council,
                    person_id=account.person_id,
                    account_reference=account.account_reference,
                    version=account.version,
                    state=_state(account),
                    created_at=clock.now(),
                )
            )
            self._track(account)
        else:
            account.version = loaded + 1
            await save_versioned(
                self._session,
                self._accounts,
                key=(self._accounts.c.account_id, str(account.account_id)),
                expected_version=loaded,
                values={"version": account.version, "state": _state(account)},
                what=f"card account {account.account_id}",
            )
        self._loaded[account.account_id] = account.version
