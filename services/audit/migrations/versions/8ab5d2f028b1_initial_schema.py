"""initial schema: the outbox, inbox and idempotency tables

Revision ID: 8ab5d2f028b1
Revises:
Create Date: 2026-11-23 00:53:41.100451
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.db import messaging_tables

revision: str = "8ab5d2f028b1"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    metadata = sa.MetaData()
    messaging_tables(metadata)
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    for table in ("idempotency_keys", "inbox", "outbox"):
        op.drop_table(table)
