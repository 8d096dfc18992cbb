"""tamper findings and the quarantine of the rows a replay found altered

Revision ID: 5d0c7a1e9b42
Revises: 4d7e1c0b9a26
Create Date: 2026-12-06 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d0c7a1e9b42"
down_revision: str | None = "4d7e1c0b9a26"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_tamper_findings",
        sa.Column("finding_id", sa.String(length=36), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("first_bad_seq", sa.Integer(), nullable=False),
        sa.Column("first_bad_event_id", sa.String(length=64), nullable=True),
        sa.Column("difference", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quarantined_events", sa.Integer(), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=True),
        sa.Column("head_hash", sa.String(length=64), nullable=True),
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        sa.Column("detected_by", sa.String(length=200), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledgement", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("finding_id"),
    )
    op.create_index(
        "audit_tamper_findings_by_council", "audit_tamper_findings", ["council", "chain"]
    )
    op.create_table(
        "audit_quarantine",
        sa.Column("finding_id", sa.String(length=36), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
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
        sa.PrimaryKeyConstraint("finding_id", "n"),
    )


def downgrade() -> None:
    op.drop_table("audit_quarantine")
    op.drop_index("audit_tamper_findings_by_council", table_name="audit_tamper_findings")
    op.drop_table("audit_tamper_findings")
