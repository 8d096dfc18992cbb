"""initial schema: the outbox, inbox and idempotency tables

Revision ID: ea8dd6cdd9a9
Revises:
Create Date: 2026-11-23 00:53:37.259672
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.db import messaging_tables

revision: str = "ea8dd6cdd9a9"
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
