"""payment outcomes from finance's confirmation files, and the pull feed of released payments

Revision ID: 5d2e8a41c0f7
Revises: 14c13f404625
Create Date: 2026-11-23 03:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2e8a41c0f7"
down_revision: str | None = "14c13f404625"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_outcomes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("instalment_number", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("released_on", sa.Date(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("finance_reference", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index(
        "ix_payment_outcomes_council_outcome", "payment_outcomes", ["council", "outcome"]
    )
    op.create_table(
        "payment_feed",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("instalment_number", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index("ix_payment_feed_council_seq", "payment_feed", ["council", "seq"])
    counter = op.create_table(
        "payment_feed_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(counter, [{"id": 1, "last_seq": 0}])


def downgrade() -> None:
    op.drop_table("payment_feed_counter")
    op.drop_index("ix_payment_feed_council_seq", table_name="payment_feed")
    op.drop_table("payment_feed")
    op.drop_index("ix_payment_outcomes_council_outcome", table_name="payment_outcomes")
    op.drop_table("payment_outcomes")
