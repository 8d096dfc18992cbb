"""Each service's Alembic revisions build exactly the schema its models describe."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from pbj.processes import SERVICES
from servicekit.db import Database, compare_with_models
from tests.systems import migrated_database_of_its_own


@pytest.mark.parametrize("service", list(SERVICES))
async def test_the_migrated_schema_matches_the_models(service: str, tmp_path: Path):
    db_module = importlib.import_module(f"services.{service}.db")
    migrations = Path(db_module.__file__).parent / "migrations"
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
    await database.migrate(migrations)
    await database.migrate(migrations)  # a second start finds nothing to do
    async with database.engine.connect() as conn:
        differences = await conn.run_sync(compare_with_models, db_module.metadata)
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    await database.dispose()
    assert differences == []
    assert {"outbox", "inbox", "idempotency_keys"} <= set(tables)


@pytest.mark.postgres
async def test_on_postgresql_audit_compresses_its_documents_with_lz4(postgres_admin_url: str):
    migrations = Path(importlib.import_module("services.audit.db").__file__ or "").parent
    async with (
        migrated_database_of_its_own(
            postgres_admin_url, "audit_lz4", migrations / "migrations"
        ) as database,
        database.engine.connect() as conn,
    ):
        method = await conn.scalar(
            sa.text(
                "SELECT attcompression FROM pg_attribute "
                "WHERE attrelid = 'audit_events'::regclass AND attname = 'canonical'"
            )
        )
    assert method in (b"l", "l")  # lz4 (a "char"); empty would be the server's default, pglz
