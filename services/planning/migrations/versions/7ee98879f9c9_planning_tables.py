"""planning tables: assessments and budgets seen, plans with their history, reviews

Revision ID: 7ee98879f9c9
Revises: b422f120ad3b
Create Date: 2026-11-23 01:02:11.388523
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7ee98879f9c9"
down_revision: str | None = "b422f120ad3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("client_group", sa.String(length=32), nullable=False),
        sa.Column("domain_levels", sa.JSON(), nullable=False),
        sa.Column("risks", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id"),
    )
    op.create_index("ix_assessments_person_id", "assessments", ["person_id"])

    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.Uuid(), nullable=False),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("weekly_pence", sa.BigInteger(), nullable=False),
        sa.Column("annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("budget_id"),
    )
    op.create_index("ix_budgets_person_id", "budgets", ["person_id"])

    op.create_table(
        "plans",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("budget_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("fee_basis_points", sa.Integer(), nullable=False),
        sa.Column("weekly_pence", sa.BigInteger(), nullable=False),
        sa.Column("annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("one_off_pence", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("signed_off_on", sa.Date(), nullable=True),
        sa.Column("signed_off_by", sa.String(length=200), nullable=True),
        sa.Column("signed_off_by_role", sa.String(length=32), nullable=True),
        sa.Column("first_review_on", sa.Date(), nullable=True),
        sa.Column("signed_off_policy_version", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("plan_id"),
    )
    op.create_index("plans_by_person", "plans", ["council", "person_id", "created_at"])
    op.create_index("plans_by_status", "plans", ["council", "status", "created_at"])

    op.create_table(
        "plan_history",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.plan_id"]),
        sa.PrimaryKeyConstraint("plan_id", "seq"),
    )

    op.create_table(
        "reviews",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scheduled_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("announced_at", TS, nullable=True),
        sa.Column("announced_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.plan_id"]),
        sa.PrimaryKeyConstraint("review_id"),
    )
    op.create_index("ix_reviews_plan_id", "reviews", ["plan_id"])
    op.create_index("reviews_by_due", "reviews", ["council", "status", "due_on"])
    op.create_index("reviews_by_person", "reviews", ["council", "person_id", "due_on"])


def downgrade() -> None:
    for index, table in (
        ("reviews_by_person", "reviews"),
        ("reviews_by_due", "reviews"),
        ("ix_reviews_plan_id", "reviews"),
    ):
        op.drop_index(index, table_name=table)
    op.drop_table("reviews")
    op.drop_table("plan_history")
    op.drop_index("plans_by_status", table_name="plans")
    op.drop_index("plans_by_person", table_name="plans")
    op.drop_table("plans")
    op.drop_index("ix_budgets_person_id", table_name="budgets")
    op.drop_table("budgets")
    op.drop_index("ix_assessments_person_id", table_name="assessments")
    op.drop_table("assessments")
