"""budget revisions record the panel sitting that agreed them (rules.authority)

Existing rows keep null: agreed before sittings were recorded, or by a council whose panel
sits once.

Revision ID: 7d2e4b91a0c5
Revises: c58197e2d94c
Create Date: 2026-12-06 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2e4b91a0c5"
down_revision: str | None = "c58197e2d94c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "budget_revisions", sa.Column("panel_sitting", sa.String(length=16), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("budget_revisions") as batch:
        batch.drop_column("panel_sitting")
