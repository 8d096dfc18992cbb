"""deployments.plan_signed_off_on: the day the funded plan was signed off

Revision ID: 9a3f6c1d2e7b
Revises: 5d2e8a41c0f7
Create Date: 2026-12-06 14:00:00.000000

An agreement may not be signed before the plan it funds was signed off. Deployments
opened before this column existed keep it empty, and their agreements are not checked
against it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a3f6c1d2e7b"
down_revision: str | None = "5d2e8a41c0f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("plan_signed_off_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("plan_signed_off_on")
