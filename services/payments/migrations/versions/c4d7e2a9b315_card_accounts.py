"""prepaid card accounts: the provider's transactions and balances, surpluses and recoups

Revision ID: c4d7e2a9b315
Revises: c4e1b7a92d35
Create Date: 2026-12-06 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4d7e2a9b315"
down_revision: str | None = "c4e1b7a92d35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_accounts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("account_reference", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("account_id"),
        sa.UniqueConstraint("council", "account_reference", name="uq_card_accounts_reference"),
    )
    op.create_index("ix_card_accounts_person", "card_accounts", ["council", "person_id"])
    op.create_table(
        "card_transactions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("account_reference", sa.String(length=64), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("merchant_category", sa.String(length=64), nullable=True),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("council", "transaction_id", name="uq_card_transactions_id"),
    )
    op.create_index(
        "ix_card_transactions_account_id", "card_transactions", ["account_id"], unique=False
    )
    op.create_table(
        "card_balances",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("account_reference", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("balance_on", sa.Date(), nullable=False),
        sa.Column("balance_pence", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint(
            "council", "account_reference", "balance_on", name="uq_card_balances_day"
        ),
    )


def downgrade() -> None:
    op.drop_table("card_balances")
    op.drop_index("ix_card_transactions_account_id", table_name="card_transactions")
    op.drop_table("card_transactions")
    op.drop_index("ix_card_accounts_person", table_name="card_accounts")
    op.drop_table("card_accounts")
