"""eligibility gate and uprating: each determination's decision, what a validation
rested on, and each financial assessment's sealed inputs

Revision ID: c4e8a1f07b52
Revises: 9b3f6c2d1e84
Create Date: 2026-12-06 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a1f07b52"
down_revision: str | None = "9b3f6c2d1e84"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eligibility_determinations",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("determination_id", sa.Uuid(), nullable=False),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("determined_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessments.assessment_id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("determination_id"),
    )
    op.create_index(
        "eligibility_determinations_by_assessment",
        "eligibility_determinations",
        ["assessment_id", "seq"],
    )
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("validated_eligibility", sa.JSON(), nullable=True))
    op.create_table(
        "financial_inputs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("financial_assessment_id", sa.Uuid(), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("applies_from", sa.Date(), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=True),
        sa.Column("sealed_inputs", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("financial_assessment_id"),
    )
    op.create_index("financial_inputs_by_person", "financial_inputs", ["council", "person_id"])


def downgrade() -> None:
    op.drop_index("financial_inputs_by_person", "financial_inputs")
    op.drop_table("financial_inputs")
    with op.batch_alter_table("assessments") as batch:
        batch.drop_column("validated_eligibility")
    op.drop_index("eligibility_determinations_by_assessment", "eligibility_determinations")
    op.drop_table("eligibility_determinations")
