"""servicekit.db's statements for a set of keys and its JSON columns, on both engines.

`one_of` must find exactly what `IN (…)` finds, for every kind of key the services use
(text, integers, UUIDs stored as the column stores them), for no key and for more keys
than SQLite takes as parameters; on PostgreSQL it must be the same statement whatever the
number of keys, since that is why it exists. JSON columns must read back what was written.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import create_engine, one_of

metadata = sa.MetaData()
things = sa.Table(
    "one_of_things",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("token", sa.Uuid, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
)
TOKENS = [uuid.UUID(int=n) for n in range(40)]
ROWS = [
    {
        "key": f"k{n}",
        "number": n,
        "token": TOKENS[n],
        "document": {"n": n, "name": "Zoë", "items": [1, None, "x"], "nested": {"a": [n]}},
    }
    for n in range(40)
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/one_of.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(things.insert(), ROWS)
    try:
        yield engine
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


async def keys_where(engine: AsyncEngine, condition: Any) -> list[str]:
    async with engine.connect() as connection:
        query = sa.select(things.c.key).where(condition).order_by(things.c.number)
        return list((await connection.execute(query)).scalars())


@pytest.mark.parametrize(
    ("column", "values"),
    [
        (things.c.key, ["k3", "k1", "nobody", "k1"]),
        (things.c.key, []),
        (things.c.key, [f"k{n}" for n in range(5_000)]),  # beyond SQLite's parameter limit
        (things.c.number, [0, 7, 39, 40, -1]),
        (things.c.token, [TOKENS[2], TOKENS[30], uuid.uuid4()]),
    ],
    ids=["text", "none", "five-thousand", "integers", "uuids"],
)
async def test_one_of_finds_what_in_finds(
    engine: AsyncEngine, column: sa.Column[Any], values: list[Any]
) -> None:
    expected = await keys_where(engine, column.in_(values[:500]) | column.in_(values[500:]))
    assert await keys_where(engine, one_of(column, values)) == expected


async def test_one_of_is_one_statement_whatever_the_number_of_values(
    engine: AsyncEngine,
) -> None:
    def text(count: int) -> str:
        query = sa.select(things.c.key).where(one_of(things.c.key, ["k"] * count))
        return str(query.compile(dialect=engine.dialect))

    assert text(1) == text(2) == text(499)


async def test_a_json_column_reads_back_what_was_written(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        documents = (
            await connection.execute(sa.select(things.c.document).order_by(things.c.number))
        ).scalars()
        assert list(documents) == [row["document"] for row in ROWS]
