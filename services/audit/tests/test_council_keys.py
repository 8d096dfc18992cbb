"""A person is (council, person_id): two councils with one person id never see each other.

Lancashire's P1 walks the whole journey; Council A's P1, another person, is only assessed.
Whatever order their events arrive in, each council's staff and each person's own token see
that council's P1 alone, and a replay of one council leaves the other's records as they were.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.registry import PUBLISHED_BY_TYPE
from servicekit.db import Database, alembic_config
from servicekit.testing import Tokens, deliver, running
from services.audit.api import MIGRATIONS, create_app
from services.audit.db import (
    REVIEWS_COMPLETED,
    _event_row,
    _sqlite_time,
    audit_events,
    audit_heads,
)
from services.audit.domain import (
    REVIEW_COMPLETED,
    chain,
    facts_from,
    project_person,
    short_name,
)
from services.audit.settings import Settings
from services.audit.tests.journey import Journey, at
from services.audit.tests.test_api import eventually, log_ready, publish, sql

LANCASHIRE, COUNCIL_A, COUNCIL_B = "lancashire", "council_a", "council_b"


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


def interleaved(*journeys: list[Envelope]) -> list[Envelope]:
    """The journeys' events taken in turns, as several services would send them."""
    longest = max(len(j) for j in journeys)
    return [j[n] for n in range(longest) for j in journeys if n < len(j)]


def lancashire_and_council_a_p1() -> tuple[list[Envelope], list[Envelope]]:
    lancashire = Journey("P1", LANCASHIRE, team="north").full()  # 10 events
    council_a = Journey("P1", COUNCIL_A, team="east")
    # Council A's P1 is assessed after Lancashire's P1 is paid: the latest event is Council
    # A's, which once moved the person to Council A's caseload.
    return lancashire, [council_a.started(at("2025-03-01")), council_a.validated(at("2025-03-08"))]


async def history(
    client: httpx.AsyncClient, headers: dict[str, str], person_id: str = "P1"
) -> httpx.Response:
    return await client.get(f"/v1/people/{person_id}/history", headers=headers)


def councils_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["data"]["council"] for item in response.json()["items"]]


async def caseload(client: httpx.AsyncClient, tokens: Tokens, council: str) -> list[Any]:
    response = await client.get("/v1/caseload", headers=tokens.headers("care_manager", council))
    assert response.status_code == 200, response.text
    return [(i["person_id"], i["team"], i["stage"]) for i in response.json()["items"]]


async def ni130(client: httpx.AsyncClient, tokens: Tokens, council: str) -> tuple[int, int]:
    response = await client.get(
        "/v1/kpis/ni130?as_of=2025-12-31", headers=tokens.headers("team_manager", council)
    )
    assert response.status_code == 200, response.text
    total = response.json()["total"]
    return total["numerator"], total["denominator"]


async def test_two_councils_with_the_same_person_id_each_see_their_own_person_only(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    lancashire, council_a = lancashire_and_council_a_p1()
    for envelope in interleaved(lancashire, council_a):
        await deliver(app, envelope)

    lancashire_staff = tokens.headers("care_manager", LANCASHIRE)
    council_a_staff = tokens.headers("care_manager", COUNCIL_A)
    assert councils_of(await history(client, lancashire_staff)) == [LANCASHIRE] * 10
    assert councils_of(await history(client, council_a_staff)) == [COUNCIL_A] * 2
    lancashire_p1 = tokens.headers("person", LANCASHIRE, person_id="P1")
    council_a_p1 = tokens.headers("person", COUNCIL_A, person_id="P1")
    assert councils_of(await history(client, lancashire_p1)) == [LANCASHIRE] * 10
    assert councils_of(await history(client, council_a_p1)) == [COUNCIL_A] * 2

    # Each council's P1 is a chain of its own, from seq 1, and both verify.
    for headers, events in ((lancashire_staff, 10), (council_a_staff, 2)):
        verified = (await client.get("/v1/people/P1/verify", headers=headers)).json()
        assert (verified["ok"], verified["events"]) == (True, events)
    seqs = [i["seq"] for i in (await history(client, council_a_staff)).json()["items"]]
    assert seqs == [1, 2]

    lancashire_budget = (await client.get("/v1/people/P1/budget", headers=lancashire_p1)).json()
    council_a_budget = (await client.get("/v1/people/P1/budget", headers=council_a_p1)).json()
    assert (lancashire_budget["council"], lancashire_budget["events"]) == (LANCASHIRE, 10)
    assert lancashire_budget["payments"]["count"] == 1
    assert (council_a_budget["council"], council_a_budget["events"]) == (COUNCIL_A, 2)
    assert council_a_budget["budgets"] == [] and council_a_budget["payments"]["count"] == 0
    timeline = await client.get("/v1/people/P1/timeline", headers=council_a_staff)
    assert [i["kind"] for i in timeline.json()["items"]] == [
        "assessment-started",
        "assessment-validated",
    ]

    # Council A's later events leave Lancashire's P1 on Lancashire's caseload and KPIs.
    assert await caseload(client, tokens, LANCASHIRE) == [("P1", "north", "receiving_payments")]
    assert await caseload(client, tokens, COUNCIL_A) == [("P1", "east", "assessment")]
    assert await ni130(client, tokens, LANCASHIRE) == (1, 1)
    assert await ni130(client, tokens, COUNCIL_A) == (0, 1)


async def test_a_citizen_of_another_council_naming_a_lancashire_person_reads_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for envelope in Journey("LANC1", LANCASHIRE).full():
        await deliver(app, envelope)
    impostor = tokens.headers("person", COUNCIL_B, person_id="LANC1")
    for path in ("history", "budget", "timeline", "verify", "subject-access"):
        response = await client.get(f"/v1/people/LANC1/{path}", headers=impostor)
        assert response.status_code == 404, (path, response.text)

    # Council B starts "their own" LANC1's assessment: they see that one event, no more.
    await deliver(app, Journey("LANC1", COUNCIL_B).started(at("2025-04-01")))
    assert councils_of(await history(client, impostor, "LANC1")) == [COUNCIL_B]
    held = (await client.get("/v1/people/LANC1/subject-access", headers=impostor)).json()
    assert {row["council"] for rows in held["tables"].values() for row in rows} == {COUNCIL_B}
    assert held["tables"].keys() == {
        "audit_events",
        "audit_heads",
        "audit_people",
    }
    assert len(held["tables"]["audit_events"]) == 1

    lancashire_p = tokens.headers("person", LANCASHIRE, person_id="LANC1")
    assert councils_of(await history(client, lancashire_p, "LANC1")) == [LANCASHIRE] * 10
    assert await caseload(client, tokens, LANCASHIRE) == [("LANC1", "north", "receiving_payments")]
    verified = await client.get("/v1/verify", headers=tokens.headers("auditor", LANCASHIRE))
    assert (verified.json()["ok"], verified.json()["events"]) == (True, 10)


async def digest_of(client: httpx.AsyncClient, tokens: Tokens, council: str) -> dict[str, Any]:
    response = await client.get(
        "/v1/projections/digest", headers=tokens.headers("auditor", council)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def replayed(
    client: httpx.AsyncClient, tokens: Tokens, council: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    operations = tokens.headers("operations", council)
    started = await client.post("/v1/replay", json=body or {}, headers=operations)
    assert started.status_code == 202, started.text
    replay_id = started.json()["replay_id"]
    result: dict[str, Any] = {}

    async def done() -> bool:
        response = await client.get(f"/v1/replay/{replay_id}", headers=operations)
        result.update(response.json())
        return bool(result["status"] != "running")

    await eventually(done)
    return result


async def test_a_replay_rebuilds_the_callers_council_only(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    lancashire, council_a = lancashire_and_council_a_p1()
    await publish(app, interleaved(lancashire, council_a))

    async def all_applied() -> bool:
        counts = [
            (await digest_of(client, tokens, c))["rows"]["audit_events"]
            for c in (LANCASHIRE, COUNCIL_A)
        ]
        return counts == [10, 2]

    await eventually(all_applied)
    live = {c: await digest_of(client, tokens, c) for c in (LANCASHIRE, COUNCIL_A)}
    assert live[COUNCIL_A]["rows"] == {
        "audit_events": 2,
        "audit_heads": 1,
        "audit_people": 1,
    }

    # Council A's projections are damaged; Council A's operations rebuild Council A's alone.
    await sql(app, "UPDATE audit_people SET team = 'wrong' WHERE person_id = 'P1'")
    status = await replayed(client, tokens, COUNCIL_A)
    assert status["status"] == "done", status
    assert (status["council"], status["appended"], status["changed_people"]) == (COUNCIL_A, 0, 0)
    assert status["digest"] == live[COUNCIL_A]["digest"]
    rebuilt_a = await digest_of(client, tokens, COUNCIL_A)
    assert (rebuilt_a["digest"], rebuilt_a["version"]) == (live[COUNCIL_A]["digest"], 1)
    # Lancashire's row was left as it was: still wrong, and its version unchanged.
    untouched = await digest_of(client, tokens, LANCASHIRE)
    assert untouched["digest"] != live[LANCASHIRE]["digest"] and untouched["version"] == 0

    # Lancashire cannot read Council A's replay; Lancashire's own rebuilds Lancashire.
    other = await client.get(
        f"/v1/replay/{status['replay_id']}", headers=tokens.headers("operations", LANCASHIRE)
    )
    assert other.status_code == 404, other.text
    status = await replayed(client, tokens, LANCASHIRE)
    assert status["status"] == "done" and status["council"] == LANCASHIRE
    assert (await digest_of(client, tokens, LANCASHIRE))["digest"] == live[LANCASHIRE]["digest"]
    assert (await digest_of(client, tokens, COUNCIL_A))["digest"] == live[COUNCIL_A]["digest"]


async def test_operations_of_a_council_the_deployment_does_not_serve_cannot_replay(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/v1/replay", json={}, headers=tokens.headers("operations", "atlantis")
    )
    # A token naming a council the deployment does not serve is refused before any route.
    assert response.status_code == 401, response.text
    assert "does not serve" in response.json()["detail"]


PREVIOUS_REVISION = "c739e992347e"  # the store keyed by person_id alone
REKEYED_REVISION = "4d7e1c0b9a26"  # keyed by council, the timeline still stored


async def test_the_migration_keeps_each_rows_council_and_a_replay_splits_a_shared_id(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    # Before: Lancashire's P1 and Council A's P1 shared one chain, whose head and KPI row
    # took the council of the latest event (Council A's).
    lancashire, council_a = lancashire_and_council_a_p1()
    envelopes = [*lancashire, *council_a]
    links = chain([facts_from(e) for e in envelopes])
    database = Database(f"sqlite+aiosqlite:///{data_dir}/audit.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade_to, PREVIOUS_REVISION)
        for stored in links:
            await conn.execute(
                sa.text(
                    "INSERT INTO audit_events VALUES (:person_id, :seq, :event_id, :council, "
                    ":type, :time, :correlation_id, :causation_id, :policy_version, "
                    ":canonical, :prev_hash, :hash)"
                ),
                {**_event_row(stored), "time": _sqlite_time(stored.time)},
            )
            await conn.execute(
                sa.text("INSERT INTO inbox VALUES ('audit', :event_id, '2025-03-08 10:00:00')"),
                {"event_id": stored.event_id},
            )
        last = links[-1]
        await conn.execute(
            sa.text("INSERT INTO audit_heads VALUES ('P1', :council, :seq, :hash)"),
            {"council": last.council, "seq": last.seq, "hash": last.hash},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO audit_timeline VALUES ('P1', 11, '2025-03-01 10:00:00.000000', "
                "'assessment-started', NULL, NULL, NULL, 'Assessment started')"
            )
        )
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade_to, REKEYED_REVISION)
        timeline = (await conn.execute(sa.text("SELECT council FROM audit_timeline"))).all()
    assert timeline == [(COUNCIL_A,)]  # the line took its event's council
    await database.migrate(MIGRATIONS)
    async with database.engine.connect() as conn:
        events = (
            await conn.execute(sa.text("SELECT council, seq FROM audit_events ORDER BY seq"))
        ).all()
    await database.dispose()
    assert events == [(s.council, s.seq) for s in links]  # every row kept its council

    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        await log_ready(app, client)
        await publish(app, envelopes)
        # Each council's part of the old chain is seen as a chain of its own, and is broken
        # (Lancashire's has no head; Council A's starts at seq 11) until a replay.
        for council in (LANCASHIRE, COUNCIL_A):
            auditor = tokens.headers("auditor", council)
            assert not (await client.get("/v1/verify", headers=auditor)).json()["ok"]
            status = await replayed(client, tokens, council)
            assert status["status"] == "done", status
            verified = (await client.get("/v1/verify", headers=auditor)).json()
            assert verified["ok"], verified
        staff = {c: tokens.headers("care_manager", c) for c in (LANCASHIRE, COUNCIL_A)}
        assert councils_of(await history(client, staff[LANCASHIRE])) == [LANCASHIRE] * 10
        assert councils_of(await history(client, staff[COUNCIL_A])) == [COUNCIL_A] * 2
        assert await caseload(client, tokens, LANCASHIRE) == [("P1", "north", "receiving_payments")]
        assert await caseload(client, tokens, COUNCIL_A) == [("P1", "east", "assessment")]


def _upgrade_to(connection: sa.Connection, revision: str) -> None:
    config = alembic_config(MIGRATIONS)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


TIMELINE_STORED_REVISION = "5d0c7a1e9b42"  # the last revision that stored the timeline


async def test_the_lean_store_migration_keeps_every_event_and_renders_the_timeline_it_stored(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    links = chain([facts_from(e) for e in Journey("P1", LANCASHIRE).full()])
    inputs, lines = project_person(links)
    assert inputs is not None
    database = Database(f"sqlite+aiosqlite:///{data_dir}/audit.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade_to, TIMELINE_STORED_REVISION)
        for stored in links:
            await conn.execute(audit_events.insert().values(**_event_row(stored)))
        last = links[-1]
        await conn.execute(
            audit_heads.insert().values(
                person_id="P1", council=LANCASHIRE, last_seq=last.seq, last_hash=last.hash
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO audit_timeline VALUES (:person_id, :council, :seq, :time, :kind, "
                ":ref_id, :amount_pence, :on_date, :summary)"
            ),
            [{**line.__dict__, "time": _sqlite_time(line.time)} for line in lines],
        )
    await database.migrate(MIGRATIONS)
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        kept = (await conn.execute(sa.select(audit_events.c.hash))).scalars().all()
    await database.dispose()
    assert "audit_timeline" not in tables
    assert sorted(kept) == sorted(stored.hash for stored in links)

    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        auditor = tokens.headers("auditor", LANCASHIRE)
        page = await client.get("/v1/people/P1/timeline?limit=100", headers=auditor)
        assert [(i["seq"], i["kind"], i["summary"]) for i in page.json()["items"]] == [
            (line.seq, line.kind, line.summary) for line in lines
        ]
        assert (await client.get("/v1/verify", headers=auditor)).json()["ok"]
        assert councils_of(await history(client, auditor)) == [LANCASHIRE] * len(links)


def test_the_reviews_index_holds_every_published_version_of_review_completed_and_no_other():
    prefix = str(REVIEWS_COMPLETED).split("'")[1].removesuffix("%")
    for event_type in PUBLISHED_BY_TYPE:
        is_review = short_name(event_type) == REVIEW_COMPLETED
        assert event_type.startswith(prefix) == is_review, event_type
