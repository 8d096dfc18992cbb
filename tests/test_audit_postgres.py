"""On PostgreSQL, a person's history and as-of queries are served by indexes, not scans."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import event

from servicekit.db import Database
from services.audit.db import AuditUnitOfWork, metadata
from tests.systems import migrated_database_of_its_own

pytestmark = [pytest.mark.postgres]

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "audit" / "migrations"


@pytest.fixture
async def audit_database(postgres_admin_url: str):
    async with migrated_database_of_its_own(postgres_admin_url, "audit", MIGRATIONS) as database:
        yield database


async def test_the_reads_of_a_history_and_an_as_of_use_an_index(audit_database: Database):
    """Both are cut from the person's verified chain: its head, its rows, and an event's
    presence by id."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and "audit_events" in statement:
            statements.append((statement, parameters))

    event.listen(audit_database.engine.sync_engine, "before_cursor_execute", capture)
    uow = AuditUnitOfWork(
        audit_database.sessions, outbox=metadata.tables["outbox"], inbox=metadata.tables["inbox"]
    )
    async with uow:
        await uow.store.chain_and_head("lancashire", "P1")
        await uow.store.contains(str(uuid.uuid4()))
    event.remove(audit_database.engine.sync_engine, "before_cursor_execute", capture)
    assert len(statements) == 2  # the head is read from audit_heads

    async with audit_database.engine.connect() as conn:
        # With sequential scans priced out, a plan still scanning means no index can serve.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            plan = "\n".join(
                row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            )
            assert "Seq Scan on audit_events" not in plan, f"{statement}\n{plan}"
            assert "Index" in plan, plan
