"""allocation tables: budgets and their revisions

Revision ID: 3f5ea439ebc4
Revises: ea8dd6cdd9a9
Create Date: 2026-11-23 01:00:27.877781
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f5ea439ebc4"
down_revision: str | None = "ea8dd6cdd9a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("has_issued", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("budget_id"),
    )
    op.create_index("budgets_by_council", "budgets", ["council", "created_at", "budget_id"])
    op.create_index("budgets_by_person", "budgets", ["council", "person_id"])
    op.create_table(
        "budget_revisions",
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("calculation", sa.JSON(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("weekly_pence", sa.BigInteger(), nullable=False),
        sa.Column("annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("ceiling_exception", sa.Boolean(), nullable=False),
        sa.Column("ceiling_exception_reason", sa.Text(), nullable=True),
        sa.Column("agreed_by", sa.String(length=200), nullable=True),
        sa.Column("agreed_by_role", sa.String(length=32), nullable=True),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_id", sa.String(length=36), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.budget_id"]),
        sa.PrimaryKeyConstraint("budget_id", "number"),
    )


def downgrade() -> None:
    op.drop_table("budget_revisions")
    op.drop_index("budgets_by_person", table_name="budgets")
    op.drop_index("budgets_by_council", table_name="budgets")
    op.drop_table("budgets")
