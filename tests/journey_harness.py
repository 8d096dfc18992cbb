"""The five services in one process for the journey model: one data directory, one
embedded event log, and no background workers.

Each app runs its real lifespan (migrations, policies, the event log), but its outbox relay
and consumers are stopped before they start: `settle()` moves every committed event to the
log and applies it in every consumer, round after round, until nothing moves. A step of
the model therefore sees the same state on every run, however slow the machine, and no
test waits on a timer.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from fastapi import FastAPI

from contracts.policy import Policy, PolicyBook, load_policy
from contracts.vocabulary import CITIZEN_ROLES, Role
from pbj import log_operations
from servicekit.eventlog import Consumer, OutgoingRecord
from servicekit.eventlog.embedded import EmbeddedEventLog, stored_records
from servicekit.testing import POLICIES_DIR, Tokens, runtime_of

SERVICES = ("assessment", "allocation", "planning", "payments", "audit")

_SETTLE_ROUNDS = 50


@dataclass(frozen=True)
class Identity:
    """Who calls: a staff user of a council in a role, or a person (or representative)."""

    council: str
    role: Role
    user: str
    person_id: str | None = None

    def __str__(self) -> str:
        who = f"{self.role.value}:{self.user}@{self.council}"
        return f"{who}/{self.person_id}" if self.person_id else who


def staff(council: str, role: Role | str, user: str = "ann") -> Identity:
    return Identity(council, Role(role), user)


def citizen(council: str, person_id: str, role: Role = Role.PERSON) -> Identity:
    assert role in CITIZEN_ROLES
    return Identity(council, role, f"citizen-{person_id}", person_id)


@dataclass
class Call:
    """One HTTP call the model made, kept so it can be retried or replayed."""

    service: str
    method: str
    path: str
    body: dict[str, Any] | None
    identity: Identity
    key: str | None
    status: int
    replayed: bool

    def __str__(self) -> str:
        return f"{self.method} {self.service}{self.path} as {self.identity} -> {self.status}"


class ServerError(AssertionError):
    """A service answered 5xx: never acceptable, whatever the model thinks."""


@functools.cache
def _policy_files(directory: Path) -> tuple[Policy, ...]:
    return tuple(load_policy(path) for path in sorted(directory.glob("*.yaml")))


def _policies_read_once(cls: type[PolicyBook], directory: Path) -> PolicyBook:
    return cls(list(_policy_files(directory)))


class Journey:
    """The five services started in-process on one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.tokens = Tokens(data_dir)
        self._headers: dict[Identity, dict[str, str]] = {}
        self.apps: dict[str, FastAPI] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self._stacks: dict[str, AsyncExitStack] = {}
        self._handles: dict[str, list[tuple[Any, Consumer]]] = {}
        self._log = EmbeddedEventLog(data_dir / "eventlog.db")
        self.calls: list[Call] = []
        self._keys = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self._log.start()
        for name in SERVICES:
            await self.start_service(name)

    async def start_service(self, name: str) -> None:
        api = importlib.import_module(f"services.{name}.api")
        settings = importlib.import_module(f"services.{name}.settings")
        # The files are parsed once per test process, not once per service start: a
        # restart is then as quick as in production, where the YAML is read once.
        with mock.patch.object(PolicyBook, "from_directory", classmethod(_policies_read_once)):
            app: FastAPI = api.create_app(
                settings.Settings(data_dir=self.data_dir, policies_dir=POLICIES_DIR)
            )
        runtime = runtime_of(app)
        # Stopped before they start: a stop before run() is honoured, so run() returns at
        # once and settle() does their work, in a known order.
        runtime.relay.stop()
        for consumer in runtime.consumers:
            consumer.stop()
        stack = AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        for _ in range(2000):
            if (await runtime.ready())["event_log"]:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError(f"{name}: the event log never opened")
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        stack.push_async_callback(client.aclose)
        self.apps[name] = app
        self.clients[name] = client
        self._stacks[name] = stack
        self._handles[name] = [
            (consumer, runtime.event_log.consumer(consumer.name, consumer._topics))
            for consumer in runtime.consumers
        ]

    async def stop_service(self, name: str) -> None:
        for _, handle in self._handles.pop(name, []):
            await handle.close()
        if name == "audit":
            await self.apps[name].state.replays.wait()
        await self._stacks.pop(name).aclose()
        del self.apps[name], self.clients[name]

    async def restart_service(self, name: str) -> None:
        await self.stop_service(name)
        await self.start_service(name)

    async def close(self) -> None:
        for name in list(self._stacks):
            await self.stop_service(name)
        await self._log.close()

    # --- the log ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Publish every outbox and apply every event everywhere, until nothing moves."""
        for _ in range(_SETTLE_ROUNDS):
            moved = 0
            for name in SERVICES:
                relay = runtime_of(self.apps[name]).relay
                while published := await relay.publish_pending():
                    moved += published
            for name in SERVICES:
                for consumer, handle in self._handles[name]:
                    while records := await handle.poll(max_records=500, timeout_ms=0):
                        await consumer.handle_all(records)
                        await handle.commit(records)
                        moved += len(records)
            if not moved:
                return
        raise AssertionError(f"the services did not settle in {_SETTLE_ROUNDS} rounds")

    def published_records(self) -> list[tuple[str, str, bytes]]:
        """Every record on the log's service topics: (topic, key, value), in append order."""
        return [
            (record.topic, record.key, record.value)
            for record in stored_records(self.data_dir / "eventlog.db")
            if record.topic.startswith("pb.") and record.topic != "pb.dead-letter"
        ]

    async def redeliver(self, topic: str, key: str, value: bytes) -> None:
        """Append a record the log already holds once more, as an at-least-once log may."""
        await self._log.publish([OutgoingRecord(topic=topic, key=key, value=value)])

    async def redeliver_by_operator(self, event_id: str, council: str) -> None:
        """What `pbj events redeliver --event-id` does: the event once more, recorded."""
        await log_operations.redeliver(
            self._log,
            selection=log_operations.Selection(event_ids=frozenset({event_id})),
            council=council,
            performed_by="operations:model",
            reason="Checking that a second delivery changes nothing",
        )

    # --- HTTP ------------------------------------------------------------------------------

    def headers(self, identity: Identity) -> dict[str, str]:
        if identity not in self._headers:
            self._headers[identity] = self.tokens.headers(
                identity.role,
                identity.council,
                user_id=identity.user,
                person_id=identity.person_id,
            )
        return dict(self._headers[identity])

    def fresh_key(self) -> str:
        self._keys += 1
        return f"model-key-{self._keys}"

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        identity: Identity,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> httpx.Response:
        headers = self.headers(identity)
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await self.clients[service].request(method, path, json=body, headers=headers)
        call = Call(
            service,
            method,
            path,
            body,
            identity,
            key,
            response.status_code,
            response.headers.get("Idempotent-Replayed") == "true",
        )
        if method != "GET":
            self.calls.append(call)
        if response.status_code >= 500:
            raise ServerError(f"{call}: {response.text[:500]}")
        return response


def iso(day: date) -> str:
    return day.isoformat()
