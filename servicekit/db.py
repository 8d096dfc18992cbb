"""Database plumbing every service shares: engine, messaging tables, migrations.

Each service owns one database (architecture.md §1). Besides its own tables, every
service database holds three tables of the same shape: the outbox (events written in the
same transaction as the state change), the inbox (event ids already applied, written in
the same transaction as their effect) and the idempotency keys of mutating API calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from servicekit.errors import StaleVersion


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware instant, always read back in UTC.

    SQLite keeps no offset, so without this every service would get naive times back
    from it and aware ones from PostgreSQL; the API answers RFC 3339 times either way.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _ValueList(sa.types.TypeDecorator[Sequence[Any]]):
    """A list of values bound as one parameter: a PostgreSQL array of the column's type,
    or on SQLite its JSON text, which `json_each` reads."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, item: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Sequence[Any] | None, dialect: sa.Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value  # the array's own processing binds each item as the column would
        # Each value as the column binds it (a Uuid as its hex, say), then the list as JSON.
        item = self.item.dialect_impl(dialect).bind_processor(dialect)
        return _json_text([item(v) for v in value] if item is not None else list(value))


class _OneOf(sa.sql.expression.ColumnElement[Any]):
    inherit_cache = True
    # A condition of no type: SQLAlchemy appends "= 1" to a Boolean one on SQLite, and
    # SQLite then uses no index for it.
    type: sa.types.TypeEngine[Any] = sa.types.NullType()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: sa.ColumnElement[Any], values: Sequence[Any]) -> None:
        self.column = column
        self.values = sa.bindparam(None, list(values), type_=_ValueList(column.type))


@compiles(_OneOf)
def _in_json_each(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"


@compiles(_OneOf, "postgresql")
def _equals_any(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY({values})"


def one_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """`column IN (values)` as one statement whatever the number of values.

    An IN list is a different statement for each number of values: PostgreSQL parsed and
    planned each again (asyncpg prepares every new text), ~1.8 statements a person in a
    conversion, several hundred microseconds each. Here the values are one parameter, an
    array (`= ANY`) on PostgreSQL, JSON text read by `json_each` on SQLite, so a statement
    is prepared once per connection. The values are keys (text, integers, UUIDs), each
    bound as the column binds it."""
    return _OneOf(column, list(values))


async def save_versioned(
    session: AsyncSession,
    table: sa.Table,
    *,
    key: tuple[sa.Column[Any], Any],
    expected_version: int,
    values: Mapping[str, Any],
    what: str,
) -> None:
    """Write a row back only if its `version` is still the one loaded (optimistic lock).

    `key`: the row's key column and its value. Another transaction that saved the row
    meanwhile moved its version on, so nothing is written here and `StaleVersion` (409)
    tells the caller to reload; `what` names the record for them (``plan 4f…``).
    """
    key_column, key_value = key
    statement = _versioned_update(table, key_column.name, tuple(values))
    parameters = {f"set_{name}": value for name, value in values.items()}
    parameters["row_key"], parameters["expected_version"] = key_value, expected_version
    result = await session.execute(statement, parameters)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion(what, expected_version)


@functools.cache
def _versioned_update(table: sa.Table, key: str, columns: tuple[str, ...]) -> sa.Update:
    """save_versioned's UPDATE for a table and the columns it sets, built once.

    Built per call with the values in it, the statement cost more CPU than running it:
    SQLAlchemy made a bound parameter for every value and derived the statement's cache
    key again each time (py-spy on payments and allocation during a conversion: about a
    quarter of each service's samples were in their saves). Built once with named
    parameters, each column's type still processes its value as before.
    """
    return (
        table.update()
        .where(
            table.c[key] == sa.bindparam("row_key", type_=table.c[key].type),
            table.c.version == sa.bindparam("expected_version", type_=table.c.version.type),
        )
        .values({name: sa.bindparam(f"set_{name}", type_=table.c[name].type) for name in columns})
    )


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


Aggregate = TypeVar("Aggregate", bound=Versioned)


class VersionedWithHistory(Generic[Aggregate]):
    """An aggregate kept as one versioned row plus an append-only history table.

    A repository loads through it (`load`: the row and its history rows, by `seq`); `save`
    then writes the row back only if nobody saved it meanwhile (save_versioned) and appends
    only the history entries added since. The repository's mappers give an aggregate's id,
    its row's values (the id apart) and its whole history as rows, in order; the history
    table names the aggregate's id as the row table does.
    """

    def __init__(
        self,
        session: AsyncSession,
        table: sa.Table,
        history: sa.Table,
        *,
        what: str,
        key: Callable[[Aggregate], Any],
        values: Callable[[Aggregate], Mapping[str, Any]],
        history_rows: Callable[[Aggregate], Sequence[Mapping[str, Any]]],
    ) -> None:
        self._session = session
        self._table = table
        self._history = history
        (self._key_column,) = table.primary_key.columns  # the aggregate's id, the whole key
        self._what = what
        self._key = key
        self._values = values
        self._history_rows = history_rows
        self._loaded: dict[Any, tuple[int, int]] = {}  # id -> (version, history length)

    async def load(self, key: Any) -> tuple[sa.Row[Any], list[sa.Row[Any]]] | None:
        """The aggregate's row and its history rows in order; None when there is no such row."""
        row = (
            await self._session.execute(sa.select(self._table).where(self._key_column == key))
        ).first()
        if row is None:
            return None
        history = self._history
        entries = (
            await self._session.execute(
                sa.select(history)
                .where(history.c[self._key_column.name] == key)
                .order_by(history.c.seq)
            )
        ).all()
        self._remember(key, version=row.version, history_length=len(entries))
        return row, list(entries)

    def remember(self, key: Any, *, version: int, history_length: int) -> None:
        """Note an aggregate loaded by the repository's own query, for a later `save`."""
        self._remember(key, version=version, history_length=history_length)

    def _remember(self, key: Any, *, version: int, history_length: int) -> None:
        self._loaded[key] = (version, history_length)

    async def add(self, aggregate: Aggregate) -> None:
        key, history = self._key(aggregate), self._history_rows(aggregate)
        values = {self._key_column.name: key, **self._values(aggregate)}
        # The values as parameters of one cached statement, as add_all and save do.
        await self._session.execute(self._table.insert(), values)
        await self._append(history, start=0)
        self._remember(key, version=aggregate.version, history_length=len(history))

    async def add_all(self, aggregates: Sequence[Aggregate]) -> None:
        """`add` for many: one insert for their rows, one for all their history."""
        if not aggregates:
            return
        rows: list[Mapping[str, Any]] = []
        histories: list[Mapping[str, Any]] = []
        for aggregate in aggregates:
            key, history = self._key(aggregate), self._history_rows(aggregate)
            rows.append({self._key_column.name: key, **self._values(aggregate)})
            histories.extend(history)
            self._remember(key, version=aggregate.version, history_length=len(history))
        await self._session.execute(self._table.insert(), rows)
        await self._append(histories, start=0)

    async def save(self, aggregate: Aggregate) -> None:
        key, history = self._key(aggregate), self._history_rows(aggregate)
        loaded_version, loaded_history = self._loaded[key]
        await save_versioned(
            self._session,
            self._table,
            key=(self._key_column, key),
            expected_version=loaded_version,
            values=self._values(aggregate),
            what=f"{self._what} {key}",
        )
        await self._append(history, start=loaded_history)
        self._remember(key, version=aggregate.version, history_length=len(history))

    async def _append(self, history: Sequence[Mapping[str, Any]], *, start: int) -> None:
        if len(history) > start:
            await self._session.execute(self._history.insert(), list(history[start:]))


def messaging_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """Add the outbox, inbox and idempotency tables to a service's metadata."""
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
    )
    sa.Index("outbox_unpublished", outbox.c.published_at, outbox.c.seq)
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
    )
    idempotency = sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    return outbox, inbox, idempotency


def adopted_policies_table(metadata: sa.MetaData) -> sa.Table:
    """Add the table of the policy versions councils adopted (servicekit.policies)."""
    return sa.Table(
        "adopted_policies",
        metadata,
        sa.Column("council", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("adopted_by", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("adopted_at", UtcDateTime(), nullable=False),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def create_read_engine(url: str) -> AsyncEngine:
    """An engine for requests that only read (servicekit/reads.py).

    Each statement is its own transaction (autocommit), so a connection holds none when it
    goes back to the pool and is returned without a rollback: on SQLite that rollback was
    one more trip to the driver's worker thread on every read, for nothing. The database
    itself refuses writes on these connections (SQLite `query_only`, PostgreSQL read-only
    transactions), so without the rollback a read still cannot keep anything. The write
    engine keeps rolling back every connection it gets back. With no transaction around
    them, two statements of one read may see the database at two moments: a read that
    needs them to agree makes them one statement, as GET budget does.
    """
    read_only_engine = {
        "isolation_level": "AUTOCOMMIT",
        "skip_autocommit_rollback": True,
        "pool_reset_on_return": None,
    }
    if url.startswith("sqlite"):
        # A fixed pool: under a burst, a read beyond it waits its turn for a connection
        # rather than open one of its own (a thread, the pragmas) to close again after one
        # statement.
        engine = create_async_engine(
            url, **read_only_engine, **JSON_CODEC, pool_size=10, max_overflow=0
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", _sqlite_read_only)
        return engine
    return create_async_engine(
        url,
        **read_only_engine,
        **JSON_CODEC,
        connect_args={"server_settings": {"default_transaction_read_only": "on"}},
        pool_size=3,
        max_overflow=2,
        pool_pre_ping=True,
    )


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for another engine or an in-memory database."""
    if not url.startswith("sqlite"):
        return None
    _, _, path = url.partition(":///")
    return Path(path) if path and path != ":memory:" else None


def _json_text(value: Any) -> str:
    """A JSON column's value as stored: compact UTF-8 JSON written by msgspec, which also
    reads it (the standard library's json was 2–4 % of a converting service's CPU, py-spy).
    Text written before by json.dumps reads back the same; new text has no spaces and
    keeps non-ASCII characters as they are."""
    return msgspec.json.encode(value).decode()


JSON_CODEC: dict[str, Any] = {
    "json_serializer": _json_text,
    "json_deserializer": msgspec.json.decode,
}
"""How every engine writes and reads JSON columns, the same on both databases."""


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite files get WAL and a busy timeout, their folder is created."""
    if url.startswith("sqlite"):
        file = sqlite_file(url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **JSON_CODEC)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Five services share one server in a small deployment: keep each pool modest.
    return create_async_engine(url, **JSON_CODEC, pool_size=5, max_overflow=5, pool_pre_ping=True)


class Database:
    """A service's engine and session factory, and the engine its reads use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        # A second engine on an in-memory SQLite database would open a second, empty one.
        self.read_engine = (
            self.engine
            if url.endswith(":memory:") or url.endswith("://")
            else create_read_engine(url)
        )
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    async def migrate(self, migrations_dir: Path) -> None:
        """Bring the schema to the newest Alembic revision (run at every start)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head, migrations_dir)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:  # readiness reports any failure as not ready
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def alembic_config(migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return config


_MIGRATION_LOCK = 0x70626A6D  # any fixed number: advisory locks are per database


def _upgrade_to_head(connection: Connection, migrations_dir: Path) -> None:
    if connection.dialect.name == "postgresql":
        # Instances of one service started together share the database: the first
        # migrates, the others wait here and then find the schema at head.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    config = alembic_config(migrations_dir)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_migrations_env(target_metadata: sa.MetaData) -> None:
    """The body of each service's `migrations/env.py`: run on the connection we hand in."""
    from alembic import context

    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run from Database.migrate, which passes the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def compare_with_models(connection: Connection, metadata: sa.MetaData) -> list[Any]:
    """Differences between the migrated schema and the models (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    return list(compare_metadata(MigrationContext.configure(connection), metadata))


def autogenerate_migration(migrations_dir: Path, message: str) -> None:
    """Write a new revision from the difference between the migrated schema and the models.

    Developer tool: `python -m servicekit.db SERVICE "message"` (README, "Tests").
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/schema.db")
        with engine.begin() as connection:
            config = alembic_config(migrations_dir)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    import sys

    service, message = sys.argv[1], sys.argv[2]
    autogenerate_migration(Path("services") / service / "migrations", message)


# SQLSTATE classes of a database that is not there for now, rather than refusing the
# request: connection exception, insufficient resources, operator intervention (a
# restart, a terminated backend, a database closed to connections).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})


def database_unavailable(err: BaseException) -> bool:
    """Whether an error says the database is unreachable for now (answer 503), not that
    the request or the code is wrong."""
    if isinstance(err, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
        return True
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False
