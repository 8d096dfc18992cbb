"""audit tables: the hash-chained store, its projections, and replay bookkeeping

Revision ID: c739e992347e
Revises: 8ab5d2f028b1
Create Date: 2026-11-23 01:05:47.207005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c739e992347e"
down_revision: str | None = "8ab5d2f028b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=False),
        sa.Column("causation_id", sa.String(length=200), nullable=True),
        sa.Column("policy_version", sa.String(length=100), nullable=True),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "seq"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("audit_events_by_council", "audit_events", ["council", "person_id"])
    op.create_index("audit_events_by_person_time", "audit_events", ["person_id", "time"])

    op.create_table(
        "audit_heads",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_index("audit_heads_by_council", "audit_heads", ["council", "person_id"])

    op.create_table(
        "audit_people",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("client_group", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("key_worker_id", sa.String(length=200), nullable=True),
        sa.Column("community_based", sa.Boolean(), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("budget_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_signed_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_review_completed_on", sa.Date(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_index("audit_people_by_council", "audit_people", ["council", "person_id"])

    op.create_table(
        "audit_replay_log",
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("from_store", sa.Boolean(), nullable=False),
        sa.Column("old_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("replay_id", "n"),
        sa.UniqueConstraint("replay_id", "event_id", name="audit_replay_log_once"),
    )
    op.create_index(
        "audit_replay_log_by_person", "audit_replay_log", ["replay_id", "person_id", "n"]
    )

    op.create_table(
        "audit_replays",
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("appended", sa.Integer(), nullable=False),
        sa.Column("changed_people", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("missing_from_log", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("replay_id"),
        sa.UniqueConstraint("version"),
    )
    op.create_table(
        "audit_timeline",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("amount_pence", sa.BigInteger(), nullable=True),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "seq"),
    )
    op.create_index("audit_timeline_by_kind", "audit_timeline", ["kind", "on_date"])


def downgrade() -> None:
    op.drop_index("audit_timeline_by_kind", table_name="audit_timeline")

    op.drop_table("audit_timeline")
    op.drop_table("audit_replays")
    op.drop_index("audit_replay_log_by_person", table_name="audit_replay_log")

    op.drop_table("audit_replay_log")
    op.drop_index("audit_people_by_council", table_name="audit_people")

    op.drop_table("audit_people")
    op.drop_index("audit_heads_by_council", table_name="audit_heads")

    op.drop_table("audit_heads")
    op.drop_index("audit_events_by_person_time", table_name="audit_events")
    op.drop_index("audit_events_by_council", table_name="audit_events")

    op.drop_table("audit_events")
