"""assessment tables: assessments and their status history

Revision ID: 037fb91beed8
Revises: a04dd03df704
Create Date: 2026-11-23 01:00:32.877223
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "037fb91beed8"
down_revision: str | None = "a04dd03df704"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("client_group", sa.String(length=40), nullable=False),
        sa.Column("completed_by", sa.String(length=20), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("key_worker_id", sa.String(length=200), nullable=False),
        sa.Column("age_band", sa.String(length=10), nullable=False),
        sa.Column("community_based", sa.Boolean(), nullable=False),
        # The person's answers.
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("significant_informal_support", sa.Boolean(), nullable=False),
        sa.Column("needs_24_7", sa.Boolean(), nullable=False),
        sa.Column("carer_support_weekly_pence", sa.BigInteger(), nullable=False),
        sa.Column("other_funding", sa.JSON(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("persons_risks", sa.JSON(), nullable=False),
        # The practitioner's validation, kept apart from the answers.
        sa.Column("validated_levels", sa.JSON(), nullable=True),
        sa.Column("adjustments", sa.JSON(), nullable=True),
        sa.Column("validated_significant_informal_support", sa.Boolean(), nullable=True),
        sa.Column("validated_needs_24_7", sa.Boolean(), nullable=True),
        sa.Column("validated_carer_support_weekly_pence", sa.BigInteger(), nullable=True),
        sa.Column("validated_other_funding", sa.JSON(), nullable=True),
        sa.Column("validated_risks", sa.JSON(), nullable=True),
        sa.Column("validated_by", sa.String(length=200), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("assessment_id"),
    )
    op.create_index(
        "assessments_by_council", "assessments", ["council", "created_at", "assessment_id"]
    )
    op.create_index("assessments_by_person", "assessments", ["council", "person_id"])
    op.create_table(
        "assessment_history",
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessments.assessment_id"]),
        sa.PrimaryKeyConstraint("assessment_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("assessment_history")
    op.drop_index("assessments_by_person", table_name="assessments")
    op.drop_index("assessments_by_council", table_name="assessments")
    op.drop_table("assessments")
