"""A service's tables that filled before PostgreSQL first analysed them get statistics, so a
council's lookups by a list of ids go through the key (servicekit/statistics.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import Database
from servicekit.statistics import ROWS_WORTH_ANALYSING, analyse_new_tables
from services.assessment import db as assessment_db
from tests.systems import migrated_database_of_its_own

ASSESSMENT_MIGRATIONS = Path(assessment_db.__file__).parent / "migrations"

LOOKUP = sa.text(
    "EXPLAIN SELECT person_id FROM person_activity"
    " WHERE council = 'lancashire' AND person_id IN ('P00000001', 'P00000002', 'P00000003')"
)


@pytest.fixture
async def assessment_database(postgres_admin_url: str) -> AsyncIterator[Database]:
    async with migrated_database_of_its_own(
        postgres_admin_url, "assessment_statistics", ASSESSMENT_MIGRATIONS
    ) as database:
        yield database


async def writes_counted(engine: AsyncEngine, table: str, rows: int) -> None:
    """Until PostgreSQL's statistics count the rows written (a backend reports its writes
    within a second or so of its transaction)."""
    counted = sa.text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :table")
    for _ in range(100):
        async with engine.connect() as conn:
            if ((await conn.execute(counted, {"table": table})).scalar() or 0) >= rows:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"PostgreSQL never counted the {rows} rows written to {table}")


@pytest.mark.postgres
async def test_a_table_filled_before_any_analysis_is_analysed_once_and_lookups_take_its_key(
    assessment_database: Database,
) -> None:
    engine = assessment_database.engine
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            assessment_db.person_activity.insert(),
            [
                {"council": "lancashire", "person_id": f"P{n:08d}", "last_event_at": now}
                for n in range(4 * ROWS_WORTH_ANALYSING)
            ],
        )
    await writes_counted(engine, "person_activity", 4 * ROWS_WORTH_ANALYSING)
    skipped = await analyse_new_tables(engine, tried=frozenset({"person_activity"}))
    assert "person_activity" not in skipped  # tried already: not asked again
    assert "person_activity" in await analyse_new_tables(engine)

    async with engine.connect() as conn:
        plan = "\n".join((await conn.execute(LOOKUP)).scalars())
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("person_id" in line for line in conditions), plan
    assert "person_activity" not in await analyse_new_tables(engine)


async def test_nothing_is_analysed_on_sqlite(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/assessment.db")
    try:
        await database.migrate(ASSESSMENT_MIGRATIONS)
        assert await analyse_new_tables(database.engine) == []
    finally:
        await database.dispose()
