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

from contracts.policy import PolicyBook
from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC
from servicekit.consumer import EventConsumer, Handler
from servicekit.db import Database
from servicekit.eventlog import EventLog, open_event_log
from servicekit.outbox import OutboxRelay
from servicekit.sampling import sample_forever
from servicekit.settings import ServiceSettings
from servicekit.uow import UnitOfWork

log = structlog.get_logger(__name__)

U = TypeVar("U", bound=UnitOfWork)


class ServiceRuntime(Generic[U]):
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        metadata: sa.MetaData,
        migrations_dir: Path,
        unit_of_work: type[U],
    ) -> None:
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
        self._log_started = False

    def uow(self) -> U:
        """A fresh unit of work; its commit nudges the relay."""
        return self._unit_of_work(
            self.database.sessions,
            outbox=self.outbox,
            inbox=self.inbox,
            on_commit=self.relay.wake,
        )

    def add_consumer(
        self, *, topics: Sequence[str], handlers: dict[type, Handler], name: str | None = None
    ) -> EventConsumer:
        consumer = EventConsumer(
            name=name or self.name,
            event_log=self.event_log,
            topics=topics,
            handlers=handlers,
            unit_of_work=self.uow,
        )
        self.consumers.append(consumer)
        return consumer

    async def start(self) -> None:
        await self.database.migrate(self.migrations_dir)
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
        self._log_started = True
        self._tasks.append(asyncio.create_task(self.relay.run()))
        for consumer in self.consumers:
            self._tasks.append(asyncio.create_task(consumer.run()))
        self._tasks.append(asyncio.create_task(sample_forever(self)))

    async def ready(self) -> dict[str, bool]:
        checks = {
            "database": await self.database.ping(),
            "event_log": self._log_started and await self.event_log.ready(),
            "outbox_relay": self.relay.healthy,
        }
        checks.update({f"consumer:{c.name}": c.healthy for c in self.consumers})
        return checks

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._log_started:
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
