"""A service starts before its log is up: it reports not-ready, keeps accepting work, loses
none; and the in-process harness hands an app over only once its log has started."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.vocabulary import Role
from pbj.idp import IDP_ISSUER, JwksServer, LocalIdentityProvider
from servicekit.eventlog.embedded import EmbeddedEventLog
from servicekit.testing import Tokens, running, runtime_of
from services.assessment.api import create_app
from services.assessment.settings import Settings


def a_port_nobody_listens_on() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_service_started_without_its_broker_is_not_ready_but_keeps_every_event(
    data_dir: Path, policies_dir: Path
):
    # On Kafka a service trusts only an identity provider's key set, never the dev key.
    identity = JwksServer(LocalIdentityProvider(data_dir / "idp")).start()
    settings = Settings(
        data_dir=data_dir,
        policies_dir=policies_dir,
        event_log_url=f"kafka://127.0.0.1:{a_port_nobody_listens_on()}",
        jwks_url=identity.jwks_url,
        jwt_issuer=IDP_ISSUER,
    )
    app = create_app(settings)
    token = identity.idp.mint(user_id="cm-1", role=Role.CARE_MANAGER, council="lancashire")
    async with running(app, wait_for_log=False) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["event_log"] is False
        assert (await client.get("/healthz")).status_code == 200
        created = await client.post(
            "/v1/assessments",
            json={
                "person_id": "P77",
                "client_group": "older_people",
                "completed_by": "self",
                "team": "North",
                "key_worker_id": "KW1",
                "age_band": "85+",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        runtime = runtime_of(app)
        async with runtime.database.sessions() as session:
            waiting = await session.scalar(
                sa.select(sa.func.count()).where(runtime.outbox.c.published_at.is_(None))
            )
        assert waiting == 1, "the AssessmentStarted event waits in the outbox for the broker"
    identity.stop()


async def test_an_app_whose_log_opens_late_is_handed_over_once_it_has_opened(
    data_dir: Path, policies_dir: Path, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
):
    # A loaded machine opened the log after a test's first request: draining the outbox
    # then raised "event log is closed".
    opens = EmbeddedEventLog.start

    async def opens_late(self: EmbeddedEventLog) -> None:
        await asyncio.sleep(0.5)
        await opens(self)

    monkeypatch.setattr(EmbeddedEventLog, "start", opens_late)
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    for _ in range(2):  # and again when the same app starts a second time
        async with running(app) as client:
            ready = await client.get("/readyz")
            assert ready.json()["checks"]["event_log"] is True
            await runtime_of(app).relay.drain()
