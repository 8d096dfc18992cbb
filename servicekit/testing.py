"""Helpers for tests: run an app in-process, mint tokens, feed it events, read its outbox;
a unit of work over dicts for the handlers' tests."""

from __future__ import annotations

import asyncio
import copy
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from contracts.envelope import Envelope, decode
from contracts.events import Event
from contracts.vocabulary import Role
from servicekit.auth import ensure_dev_keys, mint_token
from servicekit.db import Database, messaging_tables, sqlite_file
from servicekit.errors import StaleVersion
from servicekit.eventlog import Record
from servicekit.runtime import ServiceRuntime
from servicekit.uow import UnitOfWork

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO_ROOT / "policies"


@functools.cache
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    # Parsed once per key: loading a PEM key checks it, which takes tens of milliseconds.
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


class Tokens:
    """Bearer headers for any role, signed with the data directory's development key."""

    def __init__(self, data_dir: Path) -> None:
        private_path, _ = ensure_dev_keys(data_dir)
        self._private = _private_key(private_path.read_bytes())

    def headers(
        self,
        role: Role | str,
        council: str = "lancashire",
        *,
        user_id: str | None = None,
        person_id: str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        role = Role(role)
        token = mint_token(
            self._private,
            user_id=user_id or f"{role.value}-1",
            role=role,
            council=council,
            person_id=person_id,
        )
        return {"Authorization": f"Bearer {token}", **extra}


# By migrations directory: a temporary directory (removed when the process ends) holding
# that service's database, migrated to head once.
_MIGRATED_TEMPLATES: dict[Path, tempfile.TemporaryDirectory[str]] = {}
_TEMPLATE_NAME = "template.db"


async def _migrated_template(migrations_dir: Path) -> Path:
    """A SQLite database this process migrated to head once, from the same migrations."""
    if migrations_dir not in _MIGRATED_TEMPLATES:
        where = tempfile.TemporaryDirectory(prefix="pbj-migrated-")
        database = Database(f"sqlite+aiosqlite:///{Path(where.name) / _TEMPLATE_NAME}")
        try:
            await database.migrate(migrations_dir)
        finally:
            await database.dispose()  # the last connection's close folds the WAL in
        _MIGRATED_TEMPLATES.setdefault(migrations_dir, where)
    return Path(_MIGRATED_TEMPLATES[migrations_dir].name) / _TEMPLATE_NAME


async def _start_from_a_migrated_copy(runtime: ServiceRuntime[Any]) -> None:
    # Migrating a new SQLite file from nothing is most of an in-process app's start (each
    # revision's batch operations copy tables); an app with a data directory of its own
    # starts from a copy migrated once, and its own start still runs the migrations, which
    # find it at head. Starting from nothing is what tests/test_migrations.py and every
    # service process in the end-to-end tests do.
    file = sqlite_file(runtime.database.url)
    if file is None:
        return
    template = await _migrated_template(runtime.migrations_dir)
    _copy_unless_present(template, file)


def _copy_unless_present(template: Path, path: Path) -> None:
    if not path.exists():  # an app started again on its data directory keeps its data
        shutil.copyfile(template, path)


_LOG_START_SECONDS = 30


@asynccontextmanager
async def running(app: FastAPI, *, wait_for_log: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (migrations, relay, consumers) and give a client for it.

    `wait_for_log=False`: go on before the log has started (a broker that is down)."""
    await _start_from_a_migrated_copy(runtime_of(app))
    async with app.router.lifespan_context(app):
        # The log starts in the background (a broker may be late). A test goes on once it
        # has: draining the outbox or dead-lettering before then would find no log.
        if wait_for_log:
            await asyncio.wait_for(runtime_of(app).log_started(), _LOG_START_SECONDS)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def runtime_of(app: FastAPI) -> ServiceRuntime[Any]:
    runtime: ServiceRuntime[Any] = app.state.runtime
    return runtime


def _record(envelope: Envelope, offset: int = 0) -> Record:
    return Record(
        topic=envelope.topic,
        partition=0,
        offset=offset,
        key=envelope.subject,
        value=envelope.to_message().value,
        timestamp_ms=int(envelope.time.timestamp() * 1000),
    )


async def deliver(app: FastAPI, event: Event | Envelope) -> Envelope:
    """Hand one event to every consumer of the app, as the log would deliver it."""
    envelope = event if isinstance(event, Envelope) else Envelope(event=event)
    record = _record(envelope)
    for consumer in runtime_of(app).consumers:
        await consumer.handle(record)
    return envelope


async def deliver_all(app: FastAPI, events: list[Event | Envelope]) -> list[Envelope]:
    """Hand events to every consumer of the app as one poll, applied in batches."""
    envelopes = [e if isinstance(e, Envelope) else Envelope(event=e) for e in events]
    records = [_record(envelope, offset) for offset, envelope in enumerate(envelopes)]
    for consumer in runtime_of(app).consumers:
        await consumer.handle_all(records)
    return envelopes


async def outbox_events(app: FastAPI) -> list[Envelope]:
    """Every event the service has committed to its outbox, oldest first."""
    runtime = runtime_of(app)
    async with runtime.database.sessions() as session:
        rows = (
            (
                await session.execute(
                    sa.select(runtime.outbox.c.value).order_by(runtime.outbox.c.seq)
                )
            )
            .scalars()
            .all()
        )
    return [decode(value) for value in rows]


async def outbox_events_of(app: FastAPI, event_cls: type[Event]) -> list[Any]:
    return [e.event for e in await outbox_events(app) if isinstance(e.event, event_cls)]


def named_public_key(data_dir: Path) -> Path:
    """The development public key, copied under a name of its own for the test's tokens.

    Outside the embedded default a service refuses the development key file itself (ADR
    12), not a named key, as a council's one static key would be.
    """
    _, dev_public_key = ensure_dev_keys(data_dir)
    public_key = data_dir / "test-signing-key.pub.pem"
    public_key.write_bytes(dev_public_key.read_bytes())
    return public_key


# --- a unit of work without a database, for handler tests -----------------------------------

Stored = TypeVar("Stored")
E = TypeVar("E", bound=Event)


class InMemoryStore:
    """A fake repository's rows: plain attributes, copied when a transaction begins and put
    back when it ends without a commit, so a refused use case leaves nothing behind."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow
        uow.stores.append(self)

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "_uow"})

    def restore(self, snapshot: dict[str, Any]) -> None:
        vars(self).update(copy.deepcopy(snapshot))


def _detached(aggregate: Stored) -> Stored:
    """A copy as a database would hold it: its own objects and no events waiting."""
    held = copy.deepcopy(aggregate)
    if isinstance(getattr(held, "events", None), list):
        held.events.clear()  # type: ignore[attr-defined]
    return held


class InMemoryRepository(InMemoryStore, Generic[Stored]):
    """Aggregates by key, handed out as copies and tracked like the real repositories'.

    `update` is the optimistic save: refused with `StaleVersion` when another transaction
    saved the aggregate after this one loaded it, as `servicekit.db.save_versioned` does.
    """

    def __init__(
        self, uow: InMemoryUnitOfWork, *, key: Callable[[Stored], Hashable], what: str
    ) -> None:
        super().__init__(uow)
        self._key = key
        self._what = what
        self.rows: dict[Hashable, Stored] = {}
        self.loaded_versions: dict[Hashable, int] = {}

    def load(self, key: Hashable) -> Stored | None:
        stored = self.rows.get(key)
        if stored is None:
            return None
        aggregate = _detached(stored)
        version = getattr(aggregate, "version", None)
        if isinstance(version, int):
            self.loaded_versions[key] = version
        return self._uow.track(aggregate)  # type: ignore[type-var]

    def find(self, wanted: Callable[[Stored], bool]) -> list[Stored]:
        keys = [key for key, stored in self.rows.items() if wanted(stored)]
        return [found for key in keys if (found := self.load(key)) is not None]

    def insert(self, aggregate: Stored) -> None:
        key = self._key(aggregate)
        if key in self.rows:
            raise ValueError(f"{self._what} {key} is already stored")
        self.rows[key] = _detached(aggregate)
        version = getattr(aggregate, "version", None)
        if isinstance(version, int):
            self.loaded_versions[key] = version
        self._uow.track(aggregate)  # type: ignore[type-var]

    def update(self, aggregate: Stored) -> None:
        key = self._key(aggregate)
        stored = self.rows[key]
        loaded = self.loaded_versions.get(key)
        if loaded is not None and getattr(stored, "version", None) != loaded:
            raise StaleVersion(f"{self._what} {key}", loaded)
        self.rows[key] = _detached(aggregate)
        version = getattr(aggregate, "version", None)
        if isinstance(version, int):
            self.loaded_versions[key] = version


class _Inbox(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.applied: set[tuple[str, str]] = set()


class InMemoryUnitOfWork(UnitOfWork):
    """The unit of work's contract over dicts: events collected from the aggregates it saw
    exactly as the real one does, `outbox` holding what a commit would have written, and
    nothing kept from a transaction that did not commit.

    A service's fake subclasses this and its real unit of work, and creates its fake
    repositories (`InMemoryRepository`) in `__init__`; they outlive each transaction, as
    the tables do. A use case that reads `uow.session` itself cannot run on a fake.
    """

    def __init__(self) -> None:
        outbox, inbox, _ = messaging_tables(sa.MetaData())
        super().__init__(async_sessionmaker(), outbox=outbox, inbox=inbox)
        self.stores: list[InMemoryStore] = []
        self.outbox: list[Envelope] = []
        self._inbox_rows = _Inbox(self)
        self._batch_outbox: list[Envelope] = []
        self._last_commit: list[dict[str, Any]] = []

    def _open(self) -> None:
        """The fake repositories were made once, in `__init__`."""

    def _checkpoint(self) -> None:
        self._last_commit = [store.snapshot() for store in self.stores]

    def _back_to_last_commit(self) -> None:
        for store, snapshot in zip(self.stores, self._last_commit, strict=True):
            store.restore(snapshot)

    async def __aenter__(self) -> Self:
        if self._in_batch:
            self.committed = False
            return self
        self._pending = []
        self._seen = {}
        self.committed = False
        self._checkpoint()
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._in_batch:
            return
        self._back_to_last_commit()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Self]:
        async with self:
            self._in_batch = True
            self._batch_outbox = []
            try:
                yield self
            except BaseException:
                self._in_batch = False
                self.committed = False
                raise
            self._in_batch = False
            self.outbox.extend(self._batch_outbox)
            self._checkpoint()
            self.committed = True

    async def commit(self) -> None:
        self.collect_new_events()
        if self._in_batch:
            self._batch_outbox.extend(self._pending)
            self._pending = []
            self.committed = True
            return
        self.outbox.extend(self._pending)
        self._pending = []
        self._checkpoint()
        self.committed = True

    async def rollback(self) -> None:
        if self._in_batch:
            raise RuntimeError("a use case inside a batch cannot roll the batch back alone")
        self._back_to_last_commit()
        self._pending = []
        self._seen = {}

    async def already_applied(self, consumer: str, event_id: str) -> bool:
        return (consumer, event_id) in self._inbox_rows.applied

    async def claim_unapplied(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        new = {e for e in event_ids if (consumer, e) not in self._inbox_rows.applied}
        self._inbox_rows.applied.update((consumer, event_id) for event_id in new)
        return new

    async def mark_all_applied(self, consumer: str, event_ids: list[str]) -> None:
        self._inbox_rows.applied.update((consumer, event_id) for event_id in event_ids)

    def events(self, event_type: type[E]) -> list[E]:
        """The committed events of one type, oldest first."""
        return [e.event for e in self.outbox if isinstance(e.event, event_type)]

    @property
    def event_types(self) -> list[str]:
        """The type of every committed event, oldest first: what a refusal leaves empty."""
        return [type(e.event).__name__ for e in self.outbox]
