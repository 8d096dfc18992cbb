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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.runtime import ServiceRuntime


@asynccontextmanager
async def read_only(runtime: ServiceRuntime[Any]) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the statements of one read; never committed."""
    async with runtime.database.read_engine.connect() as connection:
        yield connection
