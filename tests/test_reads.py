"""Reads skip the rollback on the way back to the pool, and still cannot keep a write;
writes are rolled back as before when their connection goes back unfinished."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from servicekit.db import Database


async def _with_a_table(database: Database) -> Database:
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE notes (body TEXT NOT NULL)"))
        await connection.execute(sa.text("INSERT INTO notes VALUES ('kept')"))
    return database


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/reads.db")
    try:
        yield await _with_a_table(database)
    finally:
        await database.dispose()


@pytest.fixture
async def postgres_database(postgres_admin_url: str) -> AsyncIterator[Database]:
    name = f"reads_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_admin_url.replace("+asyncpg", ""))
    await admin.execute(f"CREATE DATABASE {name}")
    database = Database(postgres_admin_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield await _with_a_table(database)
    finally:
        await database.dispose()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database(request: pytest.FixtureRequest) -> Database:
    fixture: Database = request.getfixturevalue(f"{request.param}_database")
    return fixture


@pytest.fixture
def driver_rollbacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every rollback handed to either driver (aiosqlite's worker thread, asyncpg)."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

    sent: list[str] = []
    for adapter in (AsyncAdapt_aiosqlite_connection, AsyncAdapt_asyncpg_connection):
        original = adapter.rollback

        def rollback(self: object, original: Callable[[object], None] = original) -> None:
            sent.append("ROLLBACK")
            original(self)

        monkeypatch.setattr(adapter, "rollback", rollback)
    return sent


async def _notes(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        return list((await connection.scalars(sa.text("SELECT body FROM notes"))).all())


async def test_a_read_goes_back_to_the_pool_without_a_rollback(
    database: Database, driver_rollbacks: list[str]
):
    sent: list[str] = []
    event.listen(
        database.read_engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_a: sent.append(statement),
    )
    async with database.read_engine.connect():
        pass  # the engine's first connection, which learns the server's version
    driver_rollbacks.clear()
    for _ in range(3):
        async with database.read_engine.connect() as connection:
            assert (await connection.scalars(sa.text("SELECT body FROM notes"))).all() == ["kept"]

    assert driver_rollbacks == []
    assert sent == ["SELECT body FROM notes"] * 3


async def test_a_read_connection_refuses_to_write_and_nothing_is_kept(database: Database):
    with pytest.raises(sa.exc.DBAPIError, match=r"read.?only"):
        async with database.read_engine.connect() as connection:
            await connection.execute(sa.text("INSERT INTO notes VALUES ('written by a read')"))

    assert await _notes(database) == ["kept"]


async def test_a_write_left_unfinished_is_rolled_back_when_its_connection_goes_back(
    database: Database, driver_rollbacks: list[str]
):
    async with database.engine.connect() as connection:
        await connection.execute(sa.text("INSERT INTO notes VALUES ('never committed')"))

    assert driver_rollbacks == ["ROLLBACK"]
    assert await _notes(database) == ["kept"]
