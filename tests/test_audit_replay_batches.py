"""A replay folded in batches rebuilds what the live consumer built, on SQLite and PostgreSQL.

The batch sizes are shrunk so a few journeys span many batches, people reappear after the
cache of heads has been reset, the store survey reads people a few at a time, and each
batch's rows go to SQLite in several multi-row statements and one for the rest: every
seam of the batched rebuild is crossed. The digest (store + projections) after each replay
must equal the digest the live consumer produced, one event at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Envelope, decode
from servicekit.testing import Tokens, deliver, named_public_key, running, runtime_of
from services.audit import db as audit_db
from services.audit import rebuild
from services.audit.api import create_app
from services.audit.domain import facts_from
from services.audit.settings import Settings
from services.audit.tests.journey import Journey
from services.audit.tests.test_api import (
    digest,
    eventually,
    finished,
    log_ready,
    publish,
    replay,
    sql,
)
from services.audit.tests.test_council_keys import digest_of, replayed
from tests.systems import database_of_its_own

PEOPLE = 5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def admin_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_admin_url")
    return url


@pytest.fixture
async def database_url(admin_url: str | None, data_dir: Path) -> AsyncIterator[str]:
    if admin_url is None:
        yield f"sqlite+aiosqlite:///{data_dir}/audit.db"
        return
    async with database_of_its_own(admin_url, "audit_replay") as url:
        yield url


@pytest.fixture
async def client(
    database_url: str, data_dir: Path, policies_dir: Path, tokens: Tokens
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    public_key = named_public_key(data_dir)
    app = create_app(
        Settings(
            data_dir=data_dir,
            policies_dir=policies_dir,
            database_url=database_url,
            jwt_public_key_file=public_key,
        )
    )
    async with running(app) as http:
        yield app, http


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "LOG_BATCH", 7)
    monkeypatch.setattr(rebuild, "PEOPLE_BATCH", 2)
    monkeypatch.setattr(rebuild, "CACHED_PEOPLE", 3)
    monkeypatch.setattr(audit_db, "SQLITE_MAX_PARAMETERS", 40)  # 3 events a statement


def interleaved_journeys() -> list[Envelope]:
    """Five people's journeys, their events interleaved as many services would send them."""
    journeys = [Journey(f"p-{n}", team="north" if n % 2 else "south").full() for n in range(PEOPLE)]
    return [journey[step] for step in range(len(journeys[0])) for journey in journeys]


async def applied(http: httpx.AsyncClient, tokens: Tokens, events: int) -> None:
    """Until the live consumer has stored this many events (a shared PostgreSQL is slow)."""

    async def done() -> bool:
        counted: int = (await digest(http, tokens))["rows"]["audit_events"]
        return counted == events

    await eventually(done, seconds=120)


async def run_replay(
    http: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    started = await replay(http, tokens, body or {})
    assert started.status_code == 202, started.text
    status = await finished(http, tokens, started.json()["replay_id"])
    assert status["status"] == "done", status
    return status


async def test_batched_replays_rebuild_the_live_digest(
    client: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens
) -> None:
    app, http = client
    await log_ready(app, http)
    events = interleaved_journeys()
    await publish(app, events)
    await applied(http, tokens, len(events))
    live = await digest(http, tokens)
    assert live["rows"]["audit_heads"] == PEOPLE

    # Over a sound store: every chain is kept, nothing changes.
    status = await run_replay(http, tokens)
    assert (status["processed"], status["appended"], status["changed_people"]) == (50, 0, 0)
    assert (await digest(http, tokens))["digest"] == live["digest"] == status["digest"]

    # From a time: the projections are rebuilt from the store a few people at a time.
    await sql(app, "DELETE FROM audit_people WHERE person_id IN ('p-0', 'p-4')")
    await sql(app, "UPDATE audit_people SET team = 'wrong' WHERE person_id = 'p-2'")
    assert (await digest(http, tokens))["digest"] != live["digest"]
    status = await run_replay(http, tokens, {"since": "2000-01-01T00:00:00"})
    assert status["appended"] == 0
    assert (await digest(http, tokens))["digest"] == live["digest"]

    # The live consumer carries on after the replays: each new event applied once.
    later = Journey("p-9").full()[:3]
    await publish(app, later)
    await applied(http, tokens, len(events) + len(later))


async def test_the_batch_fold_builds_what_the_live_consumer_builds_one_event_at_a_time(
    client: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens
) -> None:
    app, http = client
    events = interleaved_journeys()
    for event in events:
        await deliver(app, event)
    live = await digest(http, tokens)
    assert live["rows"]["audit_events"] == len(events)
    live_rows = await stored_rows(app)
    for table in ("audit_events", "audit_heads", "audit_people", "inbox"):
        await sql(app, f"DELETE FROM {table}")

    runtime = runtime_of(app)
    decoded = [decode(event.to_message().value) for event in events]
    async with runtime.uow() as uow:
        folder = rebuild.ChainFolder(uow, runtime.name, "lancashire", remark=False)
        for start in range(0, len(decoded), 7):  # people come back after the cache is reset
            await folder.append(
                [(facts_from(envelope), envelope.event) for envelope in decoded[start : start + 7]]
            )
        await uow.commit()
    assert (await digest(http, tokens))["digest"] == live["digest"]
    assert await sql(app, "SELECT count(*) FROM inbox") == [(len(events),)]
    # Read back as the driver holds them (no SQLAlchemy types): the replay writes through
    # the driver, the live consumer through SQLAlchemy, and the values must be the same.
    assert await stored_rows(app) == live_rows


async def stored_rows(app: FastAPI) -> dict[str, list[Any]]:
    """Every row of the store and projections, and the inbox's event ids, as stored."""
    rows = {"audit_events": await sql(app, "SELECT * FROM audit_events ORDER BY person_id, seq")}
    for table in ("audit_heads", "audit_people"):
        rows[table] = await sql(app, f"SELECT * FROM {table} ORDER BY person_id")
    rows["inbox"] = await sql(app, "SELECT consumer, event_id FROM inbox ORDER BY event_id")
    return rows


async def test_a_councils_batched_replay_leaves_the_other_councils_records_as_they_were(
    client: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens
) -> None:
    app, http = client
    await log_ready(app, http)
    # Council A's p-0 … p-4 are other people than Lancashire's, under the same ids.
    council_a = [Journey(f"p-{n}", "council_a").full()[:4] for n in range(PEOPLE)]
    await publish(app, [*interleaved_journeys(), *(e for j in council_a for e in j)])

    async def all_applied() -> bool:
        rows = [(await digest_of(http, tokens, c))["rows"] for c in ("lancashire", "council_a")]
        return [r["audit_events"] for r in rows] == [50, 20]

    await eventually(all_applied, seconds=120)
    live = {c: await digest_of(http, tokens, c) for c in ("lancashire", "council_a")}
    assert live["council_a"]["rows"]["audit_heads"] == PEOPLE

    # Both councils' projections are damaged; Council A's replay rebuilds Council A's alone.
    await sql(app, "UPDATE audit_people SET team = 'wrong'")
    await sql(app, "DELETE FROM audit_people WHERE person_id = 'p-0'")
    status = await replayed(http, tokens, "council_a")
    assert (status["status"], status["council"]) == ("done", "council_a"), status
    assert (await digest_of(http, tokens, "council_a"))["digest"] == live["council_a"]["digest"]
    assert (await digest_of(http, tokens, "lancashire"))["digest"] != live["lancashire"]["digest"]
    assert (await replayed(http, tokens, "lancashire"))["status"] == "done"
    for council in ("lancashire", "council_a"):
        assert (await digest_of(http, tokens, council))["digest"] == live[council]["digest"]

    # Every chain of both councils loses its second event; Council A's replay repairs
    # Council A's chains alone, from the log.
    await sql(app, "DELETE FROM audit_events WHERE seq = 2")
    assert (await replayed(http, tokens, "council_a"))["status"] == "done"
    assert await verified(http, tokens, "council_a") == (True, 20)
    assert await verified(http, tokens, "lancashire") == (False, 45)
    assert (await replayed(http, tokens, "lancashire"))["status"] == "done"
    assert await verified(http, tokens, "lancashire") == (True, 50)


async def verified(http: httpx.AsyncClient, tokens: Tokens, council: str) -> tuple[bool, int]:
    """Whether the council's chains verify, and how many people's events it holds (a
    repair also records tamper findings, on a chain of their own the digest leaves out)."""
    report = (await http.get("/v1/verify", headers=tokens.headers("auditor", council))).json()
    return report["ok"], (await digest_of(http, tokens, council))["rows"]["audit_events"]


async def test_a_replay_over_an_altered_chain_quarantines_it_and_rebuilds_the_live_digest(
    client: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens
) -> None:
    app, http = client
    await log_ready(app, http)
    events = interleaved_journeys()
    await publish(app, events)
    await applied(http, tokens, len(events))
    live = await digest(http, tokens)
    await sql(app, "UPDATE audit_events SET canonical = canonical || ' ' WHERE person_id = 'p-3'")

    status = await run_replay(http, tokens)
    [finding] = status["tamper_findings"]
    assert (finding["chain"], finding["first_bad_seq"], finding["difference"]) == (
        "p-3",
        1,
        "altered",
    )
    kept = await sql(
        app, "SELECT count(*) FROM audit_quarantine WHERE finding_id = :f", f=finding["finding_id"]
    )
    assert kept == [(10,)]
    verified = await http.get("/v1/verify", headers=tokens.headers("auditor", "lancashire"))
    assert verified.json()["ok"] is True and verified.json()["open_tamper_findings"] == 1

    # TamperDetected comes back through the log onto the findings chain, which the digest
    # leaves out: the store digests as the replay left it.
    async def recorded() -> bool:
        r = await http.get(
            "/v1/people/tamper:lancashire/history",
            headers=tokens.headers("auditor", "lancashire"),
        )
        return r.status_code == 200 and len(r.json()["items"]) == 1

    await eventually(recorded, seconds=120)
    after = await digest(http, tokens)
    assert after["digest"] == status["digest"] and after["rows"] == live["rows"]
