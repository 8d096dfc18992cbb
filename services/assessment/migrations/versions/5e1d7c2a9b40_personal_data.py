"""personal data: wrapped data keys, sealed details, last contact per person

Revision ID: 5e1d7c2a9b40
Revises: 8ad0b498de95
Create Date: 2026-11-23 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1d7c2a9b40"
down_revision: str | None = "8ad0b498de95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("council", "person_id"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_table(
        "personal_details",
        sa.Column("details_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("sealed_details", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("correction", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("details_id"),
    )
    op.create_index(
        "personal_details_by_person", "personal_details", ["council", "person_id"], unique=False
    )
    op.create_table(
        "person_activity",
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("council", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("person_activity")
    op.drop_index("personal_details_by_person", table_name="personal_details")
    op.drop_table("personal_details")
    op.drop_table("person_keys")
