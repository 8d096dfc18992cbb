"""review kinds and deployments: direct-payment and unscheduled reviews' details, and the
deployments planning learns of from payments

Revision ID: c5d1e2f3a4b6
Revises: 9964533e7c70
Create Date: 2026-12-06 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5d1e2f3a4b6"
down_revision: str | None = "9964533e7c70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("happened_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("deployment_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("policy_version", sa.String(length=100), nullable=True))
    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("direct_payment", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id"),
    )


def downgrade() -> None:
    op.drop_table("deployments")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("policy_version")
        batch.drop_column("deployment_id")
        batch.drop_column("happened_on")
        batch.drop_column("trigger")
