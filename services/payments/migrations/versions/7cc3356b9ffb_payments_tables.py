"""payments tables: deployments, schedules, instalments, returns, checks, export batches

Revision ID: 7cc3356b9ffb
Revises: b1ad070b0a48
Create Date: 2026-11-23 01:04:06.969525
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7cc3356b9ffb"
down_revision: str | None = "b1ad070b0a48"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("gross_annual_pence", sa.BigInteger(), nullable=False),
        sa.Column("one_off_pence", sa.BigInteger(), nullable=False),
        sa.Column("contingency_weekly_pence", sa.BigInteger(), nullable=False),
        sa.Column("contribution_annual_pence", sa.BigInteger(), nullable=True),
        sa.Column("net_annual_pence", sa.BigInteger(), nullable=True),
        sa.Column("assessed_max_weekly_contribution_pence", sa.BigInteger(), nullable=True),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=True),
        sa.Column("first_due_on", sa.Date(), nullable=True),
        sa.Column("plan_year_starts_on", sa.Date(), nullable=True),
        sa.Column("audit_tier", sa.String(length=64), nullable=True),
        sa.Column("agreement_signed_on", sa.Date(), nullable=True),
        sa.Column("agreement_recorded_by", sa.String(length=200), nullable=True),
        sa.Column("suspended_reason", sa.String(length=2000), nullable=True),
        sa.Column("predecessor_id", sa.String(length=36), nullable=True),
        sa.Column("successor_id", sa.String(length=36), nullable=True),
        sa.Column("superseded_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("deployment_id"),
        sa.UniqueConstraint("plan_id", "plan_version", name="uq_deployments_plan_version"),
    )
    op.create_index("ix_deployments_council_person", "deployments", ["council", "person_id"])
    op.create_index("ix_deployments_council_status", "deployments", ["council", "status"])

    op.create_table(
        "export_batches",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("up_to", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("control_total_pence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("batch_id"),
    )
    op.create_index("ix_export_batches_council", "export_batches", ["council"])

    op.create_table(
        "monitoring_returns",
        sa.Column("return_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("balance_pence", sa.BigInteger(), nullable=False),
        sa.Column("missing_receipts", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.deployment_id"],
        ),
        sa.PrimaryKeyConstraint("return_id"),
    )
    op.create_index("ix_monitoring_returns_deployment_id", "monitoring_returns", ["deployment_id"])

    op.create_table(
        "schedules",
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("first_due_on", sa.Date(), nullable=False),
        sa.Column("total_pence", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.deployment_id"],
        ),
        sa.PrimaryKeyConstraint("schedule_id"),
    )
    op.create_index("ix_schedules_deployment_id", "schedules", ["deployment_id"])

    op.create_table(
        "unspent_checks",
        sa.Column("check_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("balance_pence", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("allowance_pence", sa.BigInteger(), nullable=True),
        sa.Column("clawback_pence", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("clawback_id", sa.String(length=36), nullable=True),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.deployment_id"],
        ),
        sa.PrimaryKeyConstraint("check_id"),
    )
    op.create_index("ix_unspent_checks_deployment_id", "unspent_checks", ["deployment_id"])

    op.create_table(
        "instalments",
        sa.Column("instalment_id", sa.String(length=36), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.schedule_id"],
        ),
        sa.PrimaryKeyConstraint("instalment_id"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index("ix_instalments_batch_id", "instalments", ["batch_id"])
    op.create_index(
        "ix_instalments_council_status_due", "instalments", ["council", "status", "due_on"]
    )
    op.create_index("ix_instalments_deployment_id", "instalments", ["deployment_id"])


def downgrade() -> None:
    for table in (
        "instalments",
        "unspent_checks",
        "schedules",
        "monitoring_returns",
        "export_batches",
        "deployments",
    ):
        op.drop_table(table)
