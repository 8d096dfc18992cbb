"""Helpers for tests: run an app in-process, mint tokens, feed it events, read its outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from contracts.envelope import Envelope, decode
from contracts.events import Event
from contracts.vocabulary import Role
from servicekit.auth import ensure_dev_keys, mint_token
from servicekit.eventlog import Record
from servicekit.runtime import ServiceRuntime

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO_ROOT / "policies"


class Tokens:
    """Bearer headers for any role, signed with the data directory's development key."""

    def __init__(self, data_dir: Path) -> None:
        private_path, _ = ensure_dev_keys(data_dir)
        # Parsed once: loading a PEM key checks it, a quarter of a second each time.
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._private = key

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


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (migrations, relay, consumers) and give a client for it."""
    async with app.router.lifespan_context(app):
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


async def event_log_started(app: FastAPI, attempts: int = 200) -> None:
    """Until the app's event log is ready: it starts in the background, and a test that
    dead-letters needs the dead-letter topic there."""
    for _ in range(attempts):
        if await runtime_of(app).event_log.ready():
            return
        await asyncio.sleep(0.01)
