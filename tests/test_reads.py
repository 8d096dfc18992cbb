"""Reads skip the rollback on the way back to the pool, and still cannot keep a write;
writes are rolled back as before when their connection goes back unfinished."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from servicekit.db import Database, UtcDateTime
from servicekit.reads import ReadQuery
from tests.systems import database_of_its_own


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
    async with database_of_its_own(postgres_admin_url, "reads") as url:
        database = Database(url)
        try:
            yield await _with_a_table(database)
        finally:
            await database.dispose()


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


# --- a read query on SQLite: one trip to the driver, the rows SQLAlchemy gives --------------

_metadata = sa.MetaData()
_records = sa.Table(
    "records",
    _metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=True),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
)
_BY_ID = sa.select(
    _records.c.record_id,
    _records.c.at,
    _records.c.flag,
    _records.c.document,
    sa.type_coerce(_records.c.document, sa.Text).label("document_text"),
    _records.c.document["name"].as_string().label("name"),
    _records.c.document["limit"].as_integer().label("limit"),
).where(_records.c.record_id.in_(["a", "b", sa.bindparam("record_id")]))


@pytest.fixture
async def records(database: Database) -> Database:
    async with database.engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
        await connection.execute(
            _records.insert(),
            [
                {
                    "record_id": "a",
                    "at": datetime(2026, 12, 6, 22, 1, 2, 345_600, tzinfo=UTC),
                    "flag": True,
                    "document": {"name": 'é "quoted"', "limit": 12_000, "lines": [1, 2]},
                },
                {"record_id": "b", "at": None, "flag": False, "document": {"limit": None}},
                {"record_id": "c", "at": None, "flag": False, "document": {}},
            ],
        )
    return database


async def test_a_read_query_gives_the_rows_sqlalchemy_gives(records: Database):
    query = ReadQuery(_BY_ID.order_by(_records.c.record_id))
    async with records.read_engine.connect() as connection:
        ours = await query.all(connection, record_id="c")
        theirs = (await connection.execute(query.statement, {"record_id": "c"})).all()

    assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
    assert [row.record_id for row in ours] == ["a", "b", "c"]
    assert ours[0].at == datetime(2026, 12, 6, 22, 1, 2, 345_600, tzinfo=UTC)
    assert (ours[0].flag, ours[0].name, ours[0].limit, ours[1].limit) == (
        True,
        'é "quoted"',
        12_000,
        None,
    )


async def test_on_sqlite_a_read_query_is_one_trip_to_the_drivers_thread(
    records: Database, monkeypatch: pytest.MonkeyPatch
):
    import aiosqlite

    if records.read_engine.dialect.driver != "aiosqlite":
        pytest.skip("only aiosqlite runs statements on a thread of its own")
    trips: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", "?"))
        return await original(self, fn, *args, **kwargs)

    query = ReadQuery(_BY_ID)
    async with records.read_engine.connect() as connection:
        await query.all(connection, record_id="c")  # the pool's first connection set itself up
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        assert len(await query.all(connection, record_id="c")) == 3

    assert len(trips) == 1


async def test_a_read_query_fails_as_sqlalchemy_fails(records: Database):
    query = ReadQuery(sa.select(sa.table("no_such_table", sa.column("x"))))
    with pytest.raises(sa.exc.DBAPIError, match="no_such_table"):
        async with records.read_engine.connect() as connection:
            await query.all(connection)
