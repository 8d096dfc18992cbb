"""adopted policies: the policy versions councils adopted (servicekit.policies)

Revision ID: 9964533e7c70
Revises: 7ee98879f9c9
Create Date: 2026-11-23 03:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9964533e7c70"
down_revision: str | None = "7ee98879f9c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adopted_policies",
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("adopted_by", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("council", "version"),
    )


def downgrade() -> None:
    op.drop_table("adopted_policies")
