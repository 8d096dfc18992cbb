"""A service's composition root: database, event log, outbox relay, consumers, policies.

Each service builds one ServiceRuntime in its `create_app(settings)`; nothing is created
at import time. Start-up never waits for the event log: the relay and the consumers
retry with backoff, and /readyz reports not-ready until the log answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import sqlalchemy as sa
import structlog

from contracts.envelope import Envelope
from contracts.events import PolicyAdopted
from contracts.policy import Policy, PolicyBook, PolicyError
from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC, topic_for
from servicekit.consumer import BatchHandler, EventConsumer, Handler
from servicekit.db import Database
from servicekit.eventlog import EventLog, open_event_log
from servicekit.files import keep_files_private
from servicekit.outbox import OutboxRelay
from servicekit.policies import adopted_rows, record_adoption
from servicekit.sampling import sample_forever
from servicekit.settings import ServiceSettings
from servicekit.statistics import analyse_new_tables_forever
from servicekit.uow import UnitOfWork

_GRACEFUL_STOP_SECONDS = 10.0
"""How long the relay and the consumers get at shutdown to finish the batch in hand."""

log = structlog.get_logger(__name__)

U = TypeVar("U", bound=UnitOfWork)

POLICY_RELOAD_SECONDS = 5.0


class ServiceRuntime(Generic[U]):
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        metadata: sa.MetaData,
        migrations_dir: Path,
        unit_of_work: type[U],
    ) -> None:
        keep_files_private()  # before the database and the event log create their files
        self.name = settings.service_name
        self.settings = settings
        self.metadata = metadata
        self.migrations_dir = migrations_dir
        self.database = Database(settings.db_url)
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        self.idempotency = metadata.tables["idempotency_keys"]
        self.event_log: EventLog = open_event_log(settings.log_url)
        self.policies = PolicyBook.from_directory(settings.policies_dir)
        self.relay = OutboxRelay(
            service=self.name,
            database=self.database,
            outbox=self.outbox,
            event_log=self.event_log,
        )
        self._unit_of_work = unit_of_work
        self.consumers: list[EventConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []  # the relay and the consumers
        self._log_started = asyncio.Event()
        # A service whose database has the adopted_policies table computes with policy:
        # it follows the councils' adoptions (servicekit.policies).
        self.adopted_policies: sa.Table | None = metadata.tables.get("adopted_policies")
        if self.adopted_policies is not None:
            self.add_consumer(
                name=f"{self.name}-policies",
                topics=[topic_for(PolicyAdopted)],
                handlers={PolicyAdopted: self._on_policy_adopted},
            )

    async def _on_policy_adopted(self, envelope: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(envelope.event, PolicyAdopted) and self.adopted_policies is not None
        policy = await record_adoption(
            uow.session, self.adopted_policies, envelope.event, envelope.id
        )
        await uow.commit()
        if policy is not None:
            self.learn_policy(policy)

    def learn_policy(self, policy: Policy) -> None:
        """Add an adopted version to the book (after its row is committed)."""
        try:
            if self.policies.add(policy):
                log.info(
                    "policy_adopted",
                    service=self.name,
                    policy_version=policy.policy_version,
                    effective_from=policy.effective_from.isoformat(),
                )
        except PolicyError as err:  # a file in policies/ claims the same version
            log.error("policy_version_clash", service=self.name, error=str(err))

    async def _load_adopted_policies(self) -> None:
        if self.adopted_policies is None:
            return
        async with self.database.sessions() as session:
            for row in await adopted_rows(session, self.adopted_policies):
                self.learn_policy(row.policy)

    async def _reload_adopted_policies(self) -> None:
        """Replicas sharing one consumer group: only one applies each adoption; the others
        learn it from the shared table within POLICY_RELOAD_SECONDS."""
        while True:
            await asyncio.sleep(POLICY_RELOAD_SECONDS)
            try:
                await self._load_adopted_policies()
            except Exception as err:  # the database is away: the next round tries again
                log.warning("policy_reload_failed", service=self.name, error=str(err))

    def uow(self) -> U:
        """A fresh unit of work; its commit nudges the relay."""
        return self._unit_of_work(
            self.database.sessions,
            outbox=self.outbox,
            inbox=self.inbox,
            on_commit=self.relay.wake,
        )

    def add_consumer(
        self,
        *,
        topics: Sequence[str],
        handlers: dict[type, Handler],
        name: str | None = None,
        batch_handlers: dict[type, BatchHandler] | None = None,
    ) -> EventConsumer:
        consumer = EventConsumer(
            name=name or self.name,
            event_log=self.event_log,
            topics=topics,
            handlers=handlers,
            unit_of_work=self.uow,
            batch=self.settings.consumer_batch,
            batch_handlers=batch_handlers,
        )
        self.consumers.append(consumer)
        return consumer

    async def start(self) -> None:
        await self.database.migrate(self.migrations_dir)
        self._tasks.append(asyncio.create_task(analyse_new_tables_forever(self)))
        await self._load_adopted_policies()
        if self.adopted_policies is not None:
            self._tasks.append(asyncio.create_task(self._reload_adopted_policies()))
        self._log_started = asyncio.Event()  # a runtime started again waits for its log again
        self._tasks.append(asyncio.create_task(self._start_log_then_workers()))

    async def _start_log_then_workers(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self.event_log.start()
                await self.event_log.ensure_topics([*ALL_TOPICS, DEAD_LETTER_TOPIC])
                break
            except Exception as err:  # the broker is not up yet: keep trying
                log.warning("event_log_unavailable", service=self.name, error=str(err))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self._log_started.set()
        self._workers = [asyncio.create_task(self.relay.run())]
        self._workers += [asyncio.create_task(consumer.run()) for consumer in self.consumers]
        self._tasks += self._workers
        self._tasks.append(asyncio.create_task(sample_forever(self)))

    async def log_started(self) -> None:
        """Until the log is open with every topic, and the relay and consumers run."""
        await self._log_started.wait()

    async def ready(self) -> dict[str, bool]:
        checks = {
            "database": await self.database.ping(),
            "event_log": self._log_started.is_set() and await self.event_log.ready(),
            "outbox_relay": self.relay.healthy,
        }
        checks.update({f"consumer:{c.name}": c.healthy for c in self.consumers})
        return checks

    async def stop(self) -> None:
        # The relay and the consumers finish the batch in hand rather than being cancelled
        # inside a transaction: a cancelled SQLite connection is closed while its thread
        # may still wait on the write lock, and shutdown then stalls for the busy timeout.
        self.relay.stop()
        for consumer in self.consumers:
            consumer.stop()
        for task in self._tasks:
            if task not in self._workers:
                task.cancel()
        if self._tasks:
            _, stragglers = await asyncio.wait(self._tasks, timeout=_GRACEFUL_STOP_SECONDS)
            for task in stragglers:  # a broker that does not answer, say
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._workers.clear()
        if self._log_started.is_set():
            try:
                await asyncio.wait_for(self.relay.drain(), 5)
            except Exception as err:  # shutting down: what is left waits in the outbox
                log.warning("outbox_drain_incomplete", service=self.name, error=str(err))
        await self.event_log.close()
        await self.database.dispose()


def make_runtime_factory(
    *, metadata: sa.MetaData, migrations_dir: Path, unit_of_work: type[U]
) -> Callable[[ServiceSettings], ServiceRuntime[U]]:
    def build(settings: ServiceSettings) -> ServiceRuntime[U]:
        return ServiceRuntime(
            settings=settings,
            metadata=metadata,
            migrations_dir=migrations_dir,
            unit_of_work=unit_of_work,
        )

    return build
