"""Requests that only read: a connection straight from the pool, nothing else.

A use case that changes state goes through the unit of work (servicekit/uow.py): an ORM
session, tracked aggregates, the outbox, one commit. A GET needs none of it, and in a
profile of GET /v1/budgets/{id} the session's own bookkeeping (opening, executing through
the ORM layer, rolling back, expunging, closing) was about a fifth of the request's CPU.
Here a read takes a connection from the database's read engine (servicekit/db.py
`create_read_engine`), runs its statements and hands the connection back. Those
connections run each statement on its own and go back to the pool without a rollback; the
database refuses any write on them, so nothing a read does could ever be kept.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.runtime import ServiceRuntime


@asynccontextmanager
async def read_only(runtime: ServiceRuntime[Any]) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the statements of one read; never committed."""
    async with runtime.database.read_engine.connect() as connection:
        yield connection


class _Compiled:
    """A statement as one dialect runs it: its SQL, how its parameters are sent, and how
    each column's value comes back (the same processors SQLAlchemy applies)."""

    def __init__(self, statement: sa.Select[Any], dialect: Dialect) -> None:
        self.dialect = dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._compiled = compiled
        self._binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        ]
        self._processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self._row: Any = namedtuple(  # type: ignore[misc]  # the statement names the fields
            "Row", [column.name for column in statement.selected_columns]
        )

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self._compiled.construct_params(dict(given))
        return tuple(
            values[name] if process is None else process(values[name])
            for name, process in self._binds
        )

    def row(self, values: Sequence[Any]) -> Any:
        return self._row._make(
            value if process is None else process(value)
            for value, process in zip(values, self._processors, strict=True)
        )


class ReadQuery:
    """A SELECT a read runs often, compiled once.

    On SQLite, SQLAlchemy's async adapter hands each step of a statement (open a cursor,
    execute, fetch, close the cursor) to aiosqlite's worker thread and waits for it: four
    trips, each a wake-up of that thread and a hand-over of the GIL, and in a profile of
    GET budget under load the largest share of the route. Here the whole statement is one
    trip (aiosqlite's `execute_fetchall`), with SQLAlchemy's own parameter and result
    processing around it, so the rows are the ones `connection.execute(...).all()` gives.
    Other drivers run it through SQLAlchemy as usual.
    """

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._compiled: _Compiled | None = None

    async def all(self, connection: AsyncConnection, **parameters: Any) -> Sequence[Any]:
        if connection.dialect.driver != "aiosqlite":
            found: Sequence[Any] = (await connection.execute(self.statement, parameters)).all()
            return found
        compiled = self._compiled
        if compiled is None or compiled.dialect is not connection.dialect:
            compiled = self._compiled = _Compiled(self.statement, connection.dialect)
        sent = compiled.parameters(parameters)
        driver = (await connection.get_raw_connection()).driver_connection
        try:
            rows = await driver.execute_fetchall(compiled.sql, sent)  # type: ignore[union-attr]
        except sqlite3.Error as err:  # as SQLAlchemy raises it, so outages still answer 503
            raise sa.exc.DBAPIError.instance(compiled.sql, sent, err, sqlite3.Error) from err
        return [compiled.row(row) for row in rows]
