"""assessed charges, personal budget statements and their challenges

Revision ID: c4e1b7a92d35
Revises: 9a3f6c1d2e7b
Create Date: 2026-12-06 19:45:00.000000

The charge each financial assessment set (what a deployment arranged without a figure
takes), the personal budget statements (Care Act 2014 s.26) and the person's challenges to
them with the team manager's answers (docs/charging.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e1b7a92d35"
down_revision: str | None = "9a3f6c1d2e7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessed_charges",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("financial_assessment_id", sa.String(36), nullable=False, unique=True),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("full_cost", sa.Boolean(), nullable=False),
        sa.Column("weekly_charge_pence", sa.BigInteger(), nullable=True),
        sa.Column("applies_from", sa.Date(), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_assessed_charges_council_person", "assessed_charges", ["council", "person_id"]
    )
    op.create_table(
        "budget_statements",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("statement_id", sa.String(36), nullable=False, unique=True),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("applies_from", sa.Date(), nullable=False),
        sa.Column("total_annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("person_pays_annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("charge_outcome", sa.String(32), nullable=True),
        sa.Column("financial_assessment_id", sa.String(36), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
    )
    op.create_index(
        "ix_budget_statements_council_person", "budget_statements", ["council", "person_id"]
    )
    op.create_table(
        "statement_challenges",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("challenge_id", sa.String(36), nullable=False, unique=True),
        sa.Column("statement_id", sa.String(36), nullable=False),
        sa.Column("council", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("challenged_on", sa.Date(), nullable=False),
        sa.Column("challenged_by", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("answered_on", sa.Date(), nullable=True),
        sa.Column("answered_by", sa.String(200), nullable=True),
        sa.Column("answered_by_role", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_statement_challenges_statement_id", "statement_challenges", ["statement_id"]
    )
    op.create_index(
        "ix_statement_challenges_council_outcome",
        "statement_challenges",
        ["council", "outcome"],
    )


def downgrade() -> None:
    op.drop_table("statement_challenges")
    op.drop_table("budget_statements")
    op.drop_table("assessed_charges")
