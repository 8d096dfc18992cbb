"""people keyed by council: the store, the projections and replays keyed by (council, person_id)

Each row keeps the council it already carries: audit_events, audit_heads and audit_people
have one; a timeline line takes its event's (the event of the same person and seq), or,
without one, the person's projection row's. A person id two councils shared before this
revision was one chain mixing both councils' events: afterwards each council's part is a
chain of its own that fails verification until a replay from the beginning rebuilds it from
the log (ADR 16). Replays before this revision rebuilt every council: they are recorded
under the council `*`.

Each table is copied into a new one under the new key and swapped in, the same on SQLite
(which cannot change a primary key in place) and on PostgreSQL.

Revision ID: 4d7e1c0b9a26
Revises: c739e992347e
Create Date: 2026-12-06 14:10:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "4d7e1c0b9a26"
down_revision: str | None = "c739e992347e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_COUNCILS = "*"


def _events_columns() -> list[sa.Column[Any]]:
    return [
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
    ]


def _heads_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
    ]


def _people_columns() -> list[sa.Column[Any]]:
    return [
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
    ]


def _timeline_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("amount_pence", sa.BigInteger(), nullable=True),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=False),
    ]


def _replays_columns(*, keyed: bool) -> list[sa.Column[Any]]:
    council = [sa.Column("council", sa.String(length=64), nullable=False)] if keyed else []
    return [
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        *council,
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
    ]


def _swap(
    name: str,
    columns: list[sa.Column[Any]],
    constraints: list[sa.Constraint],
    copy_select: str,
    drop_indexes: Sequence[str] = (),
) -> None:
    """Create `name` anew under its new key, copy every row into it, and swap it in."""
    new = f"{name}_rekeyed"
    op.create_table(new, *columns, *constraints)
    names = ", ".join(column.name for column in columns)
    op.execute(f"INSERT INTO {new} ({names}) {copy_select}")
    for index in drop_indexes:
        op.drop_index(index, table_name=name)
    op.drop_table(name)
    op.rename_table(new, name)
    _rename_on_postgresql(name, f"{new}_pkey", f"{name}_pkey")


def _rename_on_postgresql(table: str, constraint: str, to: str) -> None:
    """PostgreSQL named the copy's constraints after the copy: give them the table's names."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {constraint} TO {to}")


def upgrade() -> None:
    # The timeline first: its lines find their council through the old keys of
    # audit_events (person_id, seq) and audit_people (person_id), an index lookup each.
    _swap(
        "audit_timeline",
        _timeline_columns(),
        [sa.PrimaryKeyConstraint("council", "person_id", "seq")],
        "SELECT t.person_id, COALESCE("
        "(SELECT e.council FROM audit_events e WHERE e.person_id = t.person_id "
        "AND e.seq = t.seq), "
        "(SELECT p.council FROM audit_people p WHERE p.person_id = t.person_id), ''), "
        "t.seq, t.time, t.kind, t.ref_id, t.amount_pence, t.on_date, t.summary "
        "FROM audit_timeline t",
        drop_indexes=("audit_timeline_by_kind",),
    )
    op.create_index("audit_timeline_by_kind", "audit_timeline", ["kind", "on_date"])
    event_names = ", ".join(column.name for column in _events_columns())
    _swap(
        "audit_events",
        _events_columns(),
        [sa.PrimaryKeyConstraint("council", "person_id", "seq"), sa.UniqueConstraint("event_id")],
        f"SELECT {event_names} FROM audit_events",
        drop_indexes=("audit_events_by_council", "audit_events_by_person_time"),
    )
    _rename_on_postgresql(
        "audit_events", "audit_events_rekeyed_event_id_key", "audit_events_event_id_key"
    )
    op.create_index("audit_events_by_person_time", "audit_events", ["council", "person_id", "time"])
    _swap(
        "audit_heads",
        _heads_columns(),
        [sa.PrimaryKeyConstraint("council", "person_id")],
        "SELECT person_id, council, last_seq, last_hash FROM audit_heads",
        drop_indexes=("audit_heads_by_council",),
    )
    people_names = ", ".join(column.name for column in _people_columns())
    _swap(
        "audit_people",
        _people_columns(),
        [sa.PrimaryKeyConstraint("council", "person_id")],
        f"SELECT {people_names} FROM audit_people",
        drop_indexes=("audit_people_by_council",),
    )
    carried = [column.name for column in _replays_columns(keyed=False)]
    replay_names = ", ".join([carried[0], f"'{ALL_COUNCILS}'", *carried[1:]])
    _swap(
        "audit_replays",
        _replays_columns(keyed=True),
        [
            sa.PrimaryKeyConstraint("replay_id"),
            sa.UniqueConstraint("council", "version", name="audit_replays_council_version"),
        ],
        f"SELECT {replay_names} FROM audit_replays",
    )


def downgrade() -> None:
    raise NotImplementedError(
        "two councils' people of one id cannot share one key again: restore a backup instead"
    )
