"""legacy_people: the person id each imported legacy client id became

Revision ID: 9b3f6c2d1e84
Revises: 5e1d7c2a9b40
Create Date: 2026-11-23 03:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b3f6c2d1e84"
down_revision: str | None = "5e1d7c2a9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "legacy_people",
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("legacy_client_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("council", "legacy_client_id"),
        sa.UniqueConstraint("person_id"),
    )


def downgrade() -> None:
    op.drop_table("legacy_people")
