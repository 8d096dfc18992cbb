"""the lean audit store: the timeline rendered on read, one per-person index on events

The budget timeline is no longer stored (each line is rendered from its stored event when
it is read, ADR 24), and `audit_events` keeps its primary key (council, person_id, seq)
as its one per-person index: the reads by time filter a person's rows found through it.
Every row of `audit_events`, `audit_heads` and `audit_people` stays as it was.

Revision ID: 9e4b2d6f1a73
Revises: 5d0c7a1e9b42
Create Date: 2026-12-06 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

REVIEWS_COMPLETED = sa.text("type LIKE 'pb.planning.review-completed.%'")

revision: str = "9e4b2d6f1a73"
down_revision: str | None = "5d0c7a1e9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("audit_timeline_by_kind", table_name="audit_timeline")
    op.drop_table("audit_timeline")
    op.drop_index("audit_events_by_person_time", table_name="audit_events")
    # The Lancashire measure's completed reviews, read from the events now.
    op.create_index(
        "audit_events_reviews_completed",
        "audit_events",
        ["council", "person_id", "seq"],
        sqlite_where=REVIEWS_COMPLETED,
        postgresql_where=REVIEWS_COMPLETED,
    )


def downgrade() -> None:
    # The older code reads a stored timeline: the table comes back empty, and the older
    # code's replay (`pbj replay`) writes its lines from the store again.
    op.drop_index("audit_events_reviews_completed", table_name="audit_events")
    op.create_index("audit_events_by_person_time", "audit_events", ["council", "person_id", "time"])
    op.create_table(
        "audit_timeline",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("amount_pence", sa.BigInteger(), nullable=True),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("council", "person_id", "seq"),
    )
    op.create_index("audit_timeline_by_kind", "audit_timeline", ["kind", "on_date"])
