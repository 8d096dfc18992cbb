"""The audit service in-process: events in through its consumer, HTTP out.

Seed 001 = Barnet (NI130 2,246 / 6,704 = 33.50%); seed 003 = Lancashire (ch.1: has a
personal budget = knows the indicative budget, plan signed off and money released, reviewed
within a year).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog.testing
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.policy import load_policy
from servicekit.db import compare_with_models
from servicekit.eventlog import OutgoingRecord
from servicekit.policies import adoption_event
from servicekit.testing import (
    POLICIES_DIR,
    Tokens,
    deliver,
    named_public_key,
    running,
    runtime_of,
)
from servicekit.testing import deliver_all as deliver_as_one_poll
from services.audit import rebuild
from services.audit.api import create_app
from services.audit.db import metadata
from services.audit.domain import chain_hash
from services.audit.handlers import ReplayService
from services.audit.settings import Settings
from services.audit.tests.journey import Journey, at
from services.audit.tests.journey import envelope as envelope_at

AUDITOR = ("auditor", "lancashire")


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The app running in-process (the tokens fixture makes the signing key it trusts)."""
    async with running(app) as client:
        yield client


async def deliver_all(app: FastAPI, envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        await deliver(app, envelope)


async def sql(app: FastAPI, statement: str, **params: Any) -> list[Any]:
    """Run SQL straight against the service's database, as someone with DB access could."""
    async with runtime_of(app).database.sessions() as session:
        result: Any = await session.execute(sa.text(statement), params)
        rows = list(result.all()) if result.returns_rows else []
        await session.commit()
    return rows


async def digest(client: httpx.AsyncClient, tokens: Tokens) -> dict[str, Any]:
    response = await client.get("/v1/projections/digest", headers=tokens.headers(*AUDITOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def eventually(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def history(
    client: httpx.AsyncClient, tokens: Tokens, person_id: str, query: str = ""
) -> httpx.Response:
    return await client.get(
        f"/v1/people/{person_id}/history{query}", headers=tokens.headers(*AUDITOR)
    )


# --- who may see what ----------------------------------------------------------------------


async def test_no_token_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    await deliver_all(app, Journey("p-1").full()[:2])
    for path in (
        "/v1/people/p-1/history",
        "/v1/people/p-1/budget",
        "/v1/verify",
        "/v1/kpis/ni130",
        "/v1/projections/digest",
    ):
        assert (await client.get(path)).status_code == 401, path
    assert (await client.post("/v1/replay", json={})).status_code == 401


async def test_a_role_without_the_right_gets_403(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full()[:2])
    person = tokens.headers("person", "lancashire", person_id="p-1")
    assert (await client.get("/v1/kpis/ni130", headers=person)).status_code == 403
    care_manager = tokens.headers("care_manager", "lancashire")
    assert (await client.get("/v1/verify", headers=care_manager)).status_code == 403
    assert (await client.get("/v1/projections/digest", headers=care_manager)).status_code == 403
    auditor = tokens.headers(*AUDITOR)
    response = await client.post("/v1/replay", json={}, headers=auditor)
    assert response.status_code == 403
    assert (await digest(client, tokens))["version"] == 0  # no replay was recorded


async def test_another_councils_person_is_404_like_one_that_does_not_exist(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full()[:2])
    other = tokens.headers("auditor", "council_a")
    theirs = await client.get("/v1/people/p-1/history", headers=other)
    nobody = await client.get("/v1/people/p-nobody/history", headers=other)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"] == nobody.json()["error"] == "PersonNotFound"
    for path in ("budget", "verify", "timeline"):
        assert (await client.get(f"/v1/people/p-1/{path}", headers=other)).status_code == 404


async def test_a_person_sees_their_own_history_and_nobody_elses(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, [*Journey("p-1").full()[:2], *Journey("p-2").full()[:2]])
    me = tokens.headers("person", "lancashire", person_id="p-1")
    mine = await client.get("/v1/people/p-1/history", headers=me)
    assert mine.status_code == 200 and len(mine.json()["items"]) == 2
    assert (await client.get("/v1/people/p-2/history", headers=me)).status_code == 404
    assert (await client.get("/v1/people/p-1/budget", headers=me)).status_code == 200


async def test_staff_of_the_council_see_a_persons_history(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full()[:2])
    for role in ("care_manager", "team_manager", "panel", "finance", "auditor", "operations"):
        response = await client.get(
            "/v1/people/p-1/history", headers=tokens.headers(role, "lancashire")
        )
        assert response.status_code == 200, role


# --- the chain -----------------------------------------------------------------------------


async def test_a_persons_history_is_chained_in_the_order_applied(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    events = Journey("p-1").full()
    await deliver_all(app, events)
    items = (await history(client, tokens, "p-1")).json()["items"]
    assert [i["seq"] for i in items] == list(range(1, 11))
    assert [i["event_id"] for i in items] == [e.id for e in events]
    assert items[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(items))
    assert items[2]["name"] == "budget-issued" and items[2]["data"]["weekly_pence"] == 25_000


async def test_the_chain_of_a_person_after_several_events_verifies(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    response = await client.get("/v1/people/p-1/verify", headers=tokens.headers(*AUDITOR))
    assert response.status_code == 200
    assert response.json() | {"head_hash": None} == {
        "person_id": "p-1",
        "ok": True,
        "events": 10,
        "first_bad_seq": None,
        "first_bad_event_id": None,
        "reason": None,
        "head_hash": None,
    }


async def verify(client: httpx.AsyncClient, tokens: Tokens) -> dict[str, Any]:
    response = await client.get("/v1/people/p-1/verify", headers=tokens.headers(*AUDITOR))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_editing_a_stored_events_data_is_detected(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    events = Journey("p-1").full()
    await deliver_all(app, events)
    await sql(
        app,
        "UPDATE audit_events SET canonical = replace(canonical, :old, :new) "
        "WHERE person_id='p-1' AND seq=3",
        old='"weekly_pence":25000',
        new='"weekly_pence":95000',
    )
    report = await verify(client, tokens)
    assert report["ok"] is False
    assert report["first_bad_seq"] == 3 and report["first_bad_event_id"] == events[2].id
    assert "edited" in report["reason"]


async def test_deleting_a_stored_event_is_detected(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    await sql(app, "DELETE FROM audit_events WHERE person_id='p-1' AND seq=4")
    report = await verify(client, tokens)
    assert report["ok"] is False and report["first_bad_seq"] == 4
    assert "missing" in report["reason"]


async def test_inserting_an_event_is_detected(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    await sql(app, "UPDATE audit_events SET seq = seq + 1000 WHERE person_id='p-1' AND seq >= 3")
    await sql(app, "UPDATE audit_events SET seq = seq - 999 WHERE person_id='p-1' AND seq > 1000")
    await sql(
        app,
        "INSERT INTO audit_events (person_id, seq, event_id, council, type, time, "
        "correlation_id, causation_id, policy_version, canonical, prev_hash, hash) "
        "SELECT person_id, 3, 'forged-1', council, type, time, correlation_id, causation_id, "
        "policy_version, replace(canonical, id_of, 'forged-1'), hash, hash "
        "FROM (SELECT *, event_id AS id_of FROM audit_events "
        "WHERE person_id='p-1' AND seq=2) AS original",
    )
    report = await verify(client, tokens)
    assert report["ok"] is False
    assert report["first_bad_seq"] == 3 and report["first_bad_event_id"] == "forged-1"


async def test_an_insertion_with_a_well_forged_hash_is_named_by_the_head(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    (row,) = await sql(
        app, "SELECT event_id, canonical, hash FROM audit_events WHERE person_id='p-1' AND seq=2"
    )
    forged = row.canonical.replace(row.event_id, "forged-2")
    await sql(app, "UPDATE audit_events SET seq = seq + 1000 WHERE person_id='p-1' AND seq >= 3")
    await sql(app, "UPDATE audit_events SET seq = seq - 999 WHERE person_id='p-1' AND seq > 1000")
    await sql(
        app,
        "INSERT INTO audit_events SELECT person_id, 3, 'forged-2', council, type, time, "
        "correlation_id, causation_id, policy_version, :doc, :prev, :hash "
        "FROM audit_events WHERE person_id='p-1' AND seq=2",
        doc=forged,
        prev=row.hash,
        hash=chain_hash(row.hash, forged),
    )
    report = await verify(client, tokens)
    # seq 4's link to it breaks, but the head vouches for seq 4: the forgery is named
    assert report["ok"] is False and report["first_bad_seq"] == 3
    assert report["first_bad_event_id"] == "forged-2" and "inserted" in report["reason"]


async def test_swapping_two_stored_events_is_detected(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    await sql(app, "UPDATE audit_events SET seq = -1 WHERE person_id='p-1' AND seq=5")
    await sql(app, "UPDATE audit_events SET seq = 5 WHERE person_id='p-1' AND seq=6")
    await sql(app, "UPDATE audit_events SET seq = 6 WHERE person_id='p-1' AND seq=-1")
    report = await verify(client, tokens)
    assert report["ok"] is False and report["first_bad_seq"] == 5
    assert "prev_hash" in report["reason"]


async def test_verifying_everyone_names_each_broken_chain(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, [*Journey("p-1").full(), *Journey("p-2").full()[:3]])
    await deliver_all(app, Journey("p-9", council="council_a").full()[:2])
    # The council's chain of adopted policies is checked too, and not counted as a person.
    lancashire = load_policy(POLICIES_DIR / "lancashire.yaml")
    adopted = adoption_event(lancashire, adopted_by="officer-1")
    await deliver(app, envelope_at(adopted, datetime(2010, 3, 1, tzinfo=UTC)))
    sound = await client.get("/v1/verify", headers=tokens.headers("operations", "lancashire"))
    assert sound.json() | {"bad": []} == {
        "ok": True,
        "council": "lancashire",
        "people": 2,
        "policy_chains": 1,
        "finding_chains": 0,
        "open_tamper_findings": 0,
        "events": 14,
        "bad_count": 0,
        "bad": [],
    }
    await sql(app, "DELETE FROM audit_events WHERE person_id='p-2' AND seq=2")
    broken = (await client.get("/v1/verify", headers=tokens.headers(*AUDITOR))).json()
    assert broken["ok"] is False and broken["bad_count"] == 1
    assert broken["bad"][0]["person_id"] == "p-2" and broken["bad"][0]["first_bad_seq"] == 2


async def test_a_redelivered_event_is_appended_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    journey = Journey("p-1")
    started = journey.started(at("2025-01-06"))
    await deliver(app, started)
    before = await digest(client, tokens)
    await deliver(app, started)
    assert await digest(client, tokens) == before
    assert len((await history(client, tokens, "p-1")).json()["items"]) == 1


async def test_the_audit_service_emits_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    await deliver_all(app, Journey("p-1").full())
    assert await sql(app, "SELECT count(*) FROM outbox") == [(0,)]


# --- history filters -----------------------------------------------------------------------


async def test_history_filters_by_short_name_or_full_type(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    journey = Journey("p-1")
    await deliver_all(app, [*journey.full(), journey.budget(at("2025-04-01"), revision=2)])
    short = (await history(client, tokens, "p-1", "?type=budget-issued")).json()["items"]
    assert [(i["seq"], i["data"]["revision"]) for i in short] == [(3, 1), (11, 2)]
    full = await history(client, tokens, "p-1", "?type=pb.payments.payment-released.v1")
    assert [i["name"] for i in full.json()["items"]] == ["payment-released"]


async def test_history_filters_by_date_range(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full(start="2025-01-06"))
    # Weekly steps: 13 Jan validated, 20 Jan budget, 27 Jan signed off, 3 Feb deployed + agreed.
    items = (await history(client, tokens, "p-1", "?since=2025-01-13&until=2025-02-03")).json()
    assert [i["name"] for i in items["items"]] == [
        "assessment-validated",
        "budget-issued",
        "plan-signed-off",
        "deployment-set-up",
        "agreement-signed",
    ]
    combined = await history(client, tokens, "p-1", "?type=budget-issued&since=2025-01-21")
    assert combined.json()["items"] == []


async def test_history_pages_through_with_a_cursor(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    seen: list[int] = []
    query = "?limit=4"
    while True:
        page = (await history(client, tokens, "p-1", query)).json()
        seen += [i["seq"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=4&cursor={page['next_cursor']}"
    assert seen == list(range(1, 11))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?type=budget-spent", "type"),
        ("?since=2025-02-01&until=2025-01-01", "since"),
        ("?since=2025-13-01", "since"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?cursor=not-a-cursor", "cursor"),
    ],
)
async def test_bad_history_queries_are_422_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, query: str, field: str
) -> None:
    await deliver_all(app, Journey("p-1").full()[:2])
    response = await history(client, tokens, "p-1", query)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_a_malformed_person_id_is_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get("/v1/people/p%20x/history", headers=tokens.headers(*AUDITOR))
    assert response.status_code == 422 and "person_id" in response.text


# --- as of a date --------------------------------------------------------------------------


async def test_a_budget_revised_later_shows_the_earlier_revision_as_of_an_earlier_date(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    journey = Journey("p-1")
    await deliver_all(
        app,
        [
            *journey.full(start="2025-01-06"),
            journey.budget(
                at("2025-06-02"),
                revision=2,
                weekly_pence=41_500,
                reason="Review found 2:1 support was needed",
            ),
        ],
    )
    headers = tokens.headers("care_manager", "lancashire")
    earlier = (await client.get("/v1/people/p-1/budget?as_of=2025-03-01", headers=headers)).json()
    assert [b["revision"] for b in earlier["budgets"]] == [1]
    assert earlier["current_budget"]["weekly_pence"] == 25_000
    later = (await client.get("/v1/people/p-1/budget?as_of=2025-06-02", headers=headers)).json()
    assert [(b["revision"], b["current"]) for b in later["budgets"]] == [(1, False), (2, True)]
    assert later["current_budget"]["weekly_pence"] == 41_500
    assert later["plan"]["status"] == "signed_off" and later["plan"]["weekly_pence"] == 24_000
    assert later["deployment"]["net_annual_pence"] == 24_000 * 52
    assert later["payments"] == {
        "count": 1,
        "total_pence": 96_000,
        "items": later["payments"]["items"],
    }
    assert [r["status"] for r in later["reviews"]] == ["completed"]
    assert later["assessment"]["domain_levels"]["staying_safe"] == 5


async def test_as_of_before_anything_happened_is_empty_but_found(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full(start="2025-01-06"))
    response = await client.get(
        "/v1/people/p-1/budget?as_of=2024-12-31", headers=tokens.headers(*AUDITOR)
    )
    body = response.json()
    assert response.status_code == 200 and body["events"] == 0 and body["budgets"] == []
    assert body["payments"] == {"count": 0, "total_pence": 0, "items": []}


async def test_a_bad_as_of_date_is_422(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full()[:1])
    response = await client.get(
        "/v1/people/p-1/budget?as_of=31/12/2025", headers=tokens.headers(*AUDITOR)
    )
    assert response.status_code == 422 and "as_of" in response.text


async def test_the_timeline_reads_like_the_journey(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver_all(app, Journey("p-1").full())
    page = (
        await client.get("/v1/people/p-1/timeline?limit=3", headers=tokens.headers(*AUDITOR))
    ).json()
    assert [i["kind"] for i in page["items"]] == [
        "assessment-started",
        "assessment-validated",
        "budget-issued",
    ]
    assert page["items"][2]["summary"].startswith("Budget revision 1 (indicative) issued: £250.00")
    assert page["next_cursor"] is not None


# --- caseload ------------------------------------------------------------------------------


async def test_the_caseload_lists_people_by_stage_team_and_key_worker(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assessing = Journey("p-assessing", team="north", key_worker_id="kw-1")
    planning = Journey("p-planning", team="north", key_worker_id="kw-2")
    paid = Journey("p-paid", team="south", key_worker_id="kw-1")
    await deliver(app, assessing.started(at("2025-01-06")))
    await deliver_all(
        app, [planning.validated(at("2025-01-06")), planning.budget(at("2025-01-07"))]
    )
    await deliver_all(app, paid.full())
    await deliver(app, Journey("p-other", council="council_a").started(at("2025-01-06")))
    headers = tokens.headers("care_manager", "lancashire")

    everyone = (await client.get("/v1/caseload", headers=headers)).json()
    assert [(i["person_id"], i["stage"]) for i in everyone["items"]] == [
        ("p-assessing", "assessment"),
        ("p-paid", "receiving_payments"),
        ("p-planning", "support_planning"),
    ]
    assert everyone["items"][2]["latest_summary"].startswith("Budget revision 1 (indicative)")
    north = (await client.get("/v1/caseload?team=north", headers=headers)).json()
    assert [i["person_id"] for i in north["items"]] == ["p-assessing", "p-planning"]
    kw1 = (await client.get("/v1/caseload?key_worker_id=kw-1", headers=headers)).json()
    assert [i["person_id"] for i in kw1["items"]] == ["p-assessing", "p-paid"]
    staged = (await client.get("/v1/caseload?stage=support_planning", headers=headers)).json()
    assert [i["person_id"] for i in staged["items"]] == ["p-planning"]

    first = (await client.get("/v1/caseload?limit=2", headers=headers)).json()
    second = (
        await client.get(f"/v1/caseload?limit=2&cursor={first['next_cursor']}", headers=headers)
    ).json()
    assert [i["person_id"] for i in first["items"] + second["items"]] == [
        "p-assessing",
        "p-paid",
        "p-planning",
    ]
    assert second["next_cursor"] is None


async def test_the_caseload_is_for_staff_only_and_checks_its_filters(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    person = tokens.headers("person", "lancashire", person_id="p-1")
    assert (await client.get("/v1/caseload", headers=person)).status_code == 403
    assert (await client.get("/v1/caseload")).status_code == 401
    staff = tokens.headers("finance", "lancashire")
    bad = await client.get("/v1/caseload?stage=finished", headers=staff)
    assert bad.status_code == 422 and "stage" in bad.text
    assert (await client.get("/v1/caseload?cursor=nonsense", headers=staff)).status_code == 422


# --- KPIs ----------------------------------------------------------------------------------


async def test_ni130_with_barnet_like_counts(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 001: Barnet's 2,246 of 6,704 community-based clients; here 2 of 6.
    for n in range(6):
        journey = Journey(f"p-{n}", team="east" if n < 3 else "west")
        await deliver(app, journey.validated(at("2025-01-06")))
        if n in (0, 3):
            await deliver(app, journey.budget(at("2025-01-20")))
    residential = Journey("p-care-home", community_based=False)
    await deliver_all(
        app, [residential.validated(at("2025-01-06")), residential.budget(at("2025-01-20"))]
    )
    headers = tokens.headers("team_manager", "lancashire")
    body = (await client.get("/v1/kpis/ni130?as_of=2025-03-31", headers=headers)).json()
    assert body["total"] == {
        "key": "total",
        "numerator": 2,
        "denominator": 6,
        "percentage": "33.33",
    }
    assert body["items"] == [
        {"key": "lancashire", "numerator": 2, "denominator": 6, "percentage": "33.33"}
    ]
    by_team = (await client.get("/v1/kpis/ni130?by=team&as_of=2025-03-31", headers=headers)).json()
    assert [(i["key"], i["percentage"]) for i in by_team["items"]] == [
        ("east", "33.33"),
        ("west", "33.33"),
    ]
    before = (await client.get("/v1/kpis/ni130?as_of=2025-01-10", headers=headers)).json()
    assert before["total"]["numerator"] == 0 and before["total"]["denominator"] == 6


async def test_kpis_by_key_worker_are_paginated(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for n in range(3):
        await deliver(app, Journey(f"p-{n}", key_worker_id=f"kw-{n}").validated(at("2025-01-06")))
    headers = tokens.headers(*AUDITOR)
    first = (await client.get("/v1/kpis/ni130?by=key_worker&limit=2", headers=headers)).json()
    assert [i["key"] for i in first["items"]] == ["kw-0", "kw-1"]
    second = (
        await client.get(
            f"/v1/kpis/ni130?by=key_worker&limit=2&cursor={first['next_cursor']}", headers=headers
        )
    ).json()
    assert [i["key"] for i in second["items"]] == ["kw-2"] and second["next_cursor"] is None
    bad = await client.get("/v1/kpis/ni130?by=region", headers=headers)
    assert bad.status_code == 422 and "by" in bad.text


async def test_kpis_count_only_the_callers_council(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, Journey("p-1").validated(at("2025-01-06")))
    await deliver(app, Journey("p-2", council="council_a").validated(at("2025-01-06")))
    body = (
        await client.get("/v1/kpis/ni130", headers=tokens.headers("auditor", "council_a"))
    ).json()
    assert body["council"] == "council_a" and body["total"]["denominator"] == 1


async def test_the_lancashire_measure_needs_all_three_conditions(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    complete = Journey("p-all")
    await deliver_all(app, complete.full(start="2025-01-06"))  # reviewed 17 March 2025
    no_review = Journey("p-no-review")
    await deliver_all(
        app,
        [
            e
            for e in no_review.full(start="2025-01-06")
            if e.type != "pb.planning.review-completed.v1"
        ],
    )
    not_paid = Journey("p-not-paid")
    await deliver_all(
        app,
        [
            e
            for e in not_paid.full(start="2025-01-06")
            if e.type != "pb.payments.payment-released.v1"
        ],
    )
    budget_only = Journey("p-budget-only")
    await deliver_all(
        app, [budget_only.validated(at("2025-01-13")), budget_only.budget(at("2025-01-20"))]
    )
    headers = tokens.headers("auditor", "lancashire")
    lancs = (await client.get("/v1/kpis/lancashire?as_of=2025-12-31", headers=headers)).json()
    assert lancs["measure"] == "lancashire"
    assert lancs["total"] == {
        "key": "total",
        "numerator": 1,
        "denominator": 4,
        "percentage": "25.00",
    }
    ni = (await client.get("/v1/kpis/ni130?as_of=2025-12-31", headers=headers)).json()
    assert ni["total"]["numerator"] == 4
    # Thirteen months after the only review, nobody meets Lancashire's definition.
    later = (await client.get("/v1/kpis/lancashire?as_of=2026-04-18", headers=headers)).json()
    assert later["total"]["numerator"] == 0


# --- replay --------------------------------------------------------------------------------


async def publish(app: FastAPI, envelopes: list[Envelope]) -> None:
    """Put events on the embedded log, as the producing services' relays would."""
    runtime = runtime_of(app)
    await runtime.event_log.publish(
        [
            OutgoingRecord(topic=e.topic, key=e.subject, value=e.to_message().value)
            for e in envelopes
        ]
    )


async def log_ready(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await eventually(ready)


async def applied(client: httpx.AsyncClient, tokens: Tokens, events: int) -> None:
    async def done() -> bool:
        counted: int = (await digest(client, tokens))["rows"]["audit_events"]
        return counted == events

    await eventually(done)


async def replay(
    client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(
        "/v1/replay", json=body, headers=tokens.headers("operations", "lancashire", **headers)
    )


async def finished(client: httpx.AsyncClient, tokens: Tokens, replay_id: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    async def done() -> bool:
        response = await client.get(
            f"/v1/replay/{replay_id}", headers=tokens.headers("operations", "lancashire")
        )
        result.update(response.json())
        return bool(result["status"] != "running")

    await eventually(done)
    return result


async def test_a_replay_from_the_start_rebuilds_byte_identical_projections_and_store(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    events = [*Journey("p-1").full(), *Journey("p-2", team="south").full(start="2025-02-03")]
    await publish(app, events)
    await applied(client, tokens, 20)
    live = await digest(client, tokens)
    assert live["rows"] == {
        "audit_events": 20,
        "audit_heads": 2,
        "audit_people": 2,
    }

    operations = tokens.headers("operations", "lancashire", **{"Idempotency-Key": "replay-1"})
    started = await client.post("/v1/replay", json={}, headers=operations)
    assert started.status_code == 202, started.text
    replay_id = started.json()["replay_id"]
    again = await client.post("/v1/replay", json={}, headers=operations)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["replay_id"] == replay_id

    status = await finished(client, tokens, replay_id)
    assert status["status"] == "done", status
    assert (status["processed"], status["total"]) == (20, 20)
    assert status["changed_people"] == 0 and status["appended"] == 0
    assert status["requested_by"] == "operations:operations-1"
    rebuilt = await digest(client, tokens)
    assert rebuilt["digest"] == live["digest"] == status["digest"]
    assert rebuilt["rows"] == live["rows"] and rebuilt["version"] == 1


async def test_a_replay_keeps_the_order_audit_applied_across_topics(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Payments' event reaches audit before planning's; a plain read of the log would put
    # the planning topic first. The rebuilt chain must still be the one audit made.
    await log_ready(app, client)
    journey = Journey("p-1")
    await publish(app, journey.full()[:7])
    await applied(client, tokens, 7)
    await publish(app, [journey.paid(at("2025-03-01"))])
    await applied(client, tokens, 8)
    await publish(app, [journey.reviewed(at("2025-03-01"))])
    await applied(client, tokens, 9)
    live = await digest(client, tokens)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done" and status["changed_people"] == 0
    assert (await digest(client, tokens))["digest"] == live["digest"]


async def test_a_replay_from_a_date_rebuilds_the_projections(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    await publish(app, Journey("p-1").full())
    await applied(client, tokens, 10)
    live = await digest(client, tokens)
    await sql(app, "DELETE FROM audit_people")
    assert (await digest(client, tokens))["digest"] != live["digest"]
    since = "2000-01-01T00:00:00"  # as `pbj replay --since` sends it: no offset, so UTC
    status = await finished(
        client, tokens, (await replay(client, tokens, {"since": since})).json()["replay_id"]
    )
    assert status["status"] == "done" and status["appended"] == 0
    assert (await digest(client, tokens))["digest"] == live["digest"]


async def test_a_replay_from_the_start_repairs_a_tampered_chain_from_the_log(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    await publish(app, Journey("p-1").full())
    await applied(client, tokens, 10)
    live = await digest(client, tokens)
    await sql(app, "DELETE FROM audit_events WHERE person_id='p-1' AND seq=4")
    assert (await verify(client, tokens))["ok"] is False
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done" and status["changed_people"] == 0
    assert (await verify(client, tokens))["ok"] is True
    assert (await digest(client, tokens))["digest"] == live["digest"]


async def test_an_event_the_log_lacks_keeps_its_place_in_a_rebuilt_chain(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    events = Journey("p-1").full()
    await publish(app, events[:3])
    await applied(client, tokens, 3)
    await deliver(app, events[3])  # reached audit, but the log no longer holds it
    await publish(app, events[4:6])
    await applied(client, tokens, 6)
    live = await digest(client, tokens)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done"
    assert (status["missing_from_log"], status["dropped"], status["changed_people"]) == (1, 0, 0)
    assert (await digest(client, tokens))["digest"] == live["digest"]


async def test_a_broken_chain_is_rebuilt_from_the_log_alone_and_the_loss_counted(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    events = Journey("p-1").full()
    await publish(app, events[:2])
    await applied(client, tokens, 2)
    await deliver(app, events[2])  # only in the store
    await sql(app, "UPDATE audit_events SET canonical = canonical || ' ' WHERE seq = 1")
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done"
    assert (status["dropped"], status["changed_people"]) == (1, 1)
    report = await verify(client, tokens)
    assert report["ok"] is True and report["events"] == 2


async def test_events_arriving_after_a_replay_are_applied_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    journey = Journey("p-1")
    await publish(app, journey.full()[:5])
    await applied(client, tokens, 5)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done"
    await publish(app, journey.full()[5:])
    await applied(client, tokens, 10)
    assert (await verify(client, tokens))["ok"] is True


async def test_a_replay_that_fails_leaves_the_store_and_projections_as_they_were(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    await log_ready(app, client)
    await publish(app, Journey("p-1").full())
    await applied(client, tokens, 10)
    live = await digest(client, tokens)

    def broken(*_: Any) -> None:
        raise RuntimeError("disk full")

    # Fails after the replay has already cleared the projections and the inbox inside its
    # transaction.
    monkeypatch.setattr(rebuild, "inputs_of_chain", broken)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "failed" and "disk full" in status["error"]
    assert (await digest(client, tokens))["digest"] == live["digest"]
    assert await sql(app, "SELECT count(*) FROM audit_replay_log") == [(0,)]


async def test_a_stale_expected_version_is_409_and_starts_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    first = await replay(client, tokens, {"expected_version": 0})
    assert first.status_code == 202 and first.json()["version"] == 1
    await finished(client, tokens, first.json()["replay_id"])
    stale = await replay(client, tokens, {"expected_version": 0})
    assert stale.status_code == 409 and stale.json()["error"] == "ProjectionsChangedMeanwhile"
    assert (await digest(client, tokens))["version"] == 1
    fresh = await replay(client, tokens, {"expected_version": 1})
    assert fresh.status_code == 202
    await finished(client, tokens, fresh.json()["replay_id"])


async def test_a_second_replay_while_one_runs_is_409(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    replays: ReplayService = app.state.replays
    async with replays.gate:  # the first replay waits here, as it would behind the consumer
        first = await replay(client, tokens, {})
        assert first.status_code == 202
        running_now = await client.get(
            f"/v1/replay/{first.json()['replay_id']}",
            headers=tokens.headers("operations", "lancashire"),
        )
        assert running_now.json()["status"] == "running"
        second = await replay(client, tokens, {})
        assert second.status_code == 409 and second.json()["error"] == "ReplayAlreadyRunning"
    assert (await finished(client, tokens, first.json()["replay_id"]))["status"] == "done"


async def test_the_live_consumer_waits_while_the_replay_gate_is_held(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    replays: ReplayService = app.state.replays
    started = Journey("p-1").started(at("2025-01-06"))
    async with replays.gate:
        pending = asyncio.create_task(deliver(app, started))
        await asyncio.sleep(0.1)
        assert not pending.done()
    await pending
    assert len((await history(client, tokens, "p-1")).json()["items"]) == 1


async def test_a_poll_chains_and_projects_exactly_what_one_event_at_a_time_does(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    journeys = [Journey(f"p-{n}", team="north" if n % 2 else "south").full() for n in range(4)]
    interleaved = [journey[step] for step in range(len(journeys[0])) for journey in journeys]
    other_council = Journey("p-0", council="council_b").full()[:3]
    poll = [*interleaved[:9], *other_council, *interleaved[9:]]
    digests = []
    for name, deliver_them in (("one-by-one", deliver_all), ("one-poll", deliver_as_one_poll)):
        app = create_app(
            Settings(
                data_dir=data_dir / name,
                policies_dir=policies_dir,
                jwt_public_key_file=named_public_key(data_dir),
            )
        )
        async with running(app) as client:
            await deliver(app, poll[0])  # a head and KPI inputs already held before the poll
            with structlog.testing.capture_logs() as logged:
                await deliver_them(app, poll[1:])
            assert not [entry for entry in logged if entry["event"] == "consumer_batch_fallback"]
            digests.append(
                [
                    (
                        await client.get(
                            "/v1/projections/digest", headers=tokens.headers("auditor", council)
                        )
                    ).json()
                    for council in ("lancashire", "council_b")
                ]
            )
    assert digests[0] == digests[1]
    assert [d["rows"]["audit_events"] for d in digests[1]] == [len(interleaved), 3]


async def test_a_poll_waits_for_the_replay_gate_and_each_event_is_chained_once_in_order(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    replays: ReplayService = app.state.replays
    journey = Journey("p-1").full()
    async with replays.gate:
        pending = asyncio.create_task(deliver_as_one_poll(app, [*journey, journey[0]]))
        await asyncio.sleep(0.1)
        assert not pending.done()
    await pending
    items = (await history(client, tokens, "p-1")).json()["items"]
    assert [item["event_id"] for item in items] == [envelope.id for envelope in journey]
    assert (await client.get("/v1/people/p-1/verify", headers=tokens.headers(*AUDITOR))).json()[
        "ok"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": "2025-01-01T25:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"expected_version": -1}, "expected_version"),
        ({"from": "start"}, "from"),
    ],
)
async def test_a_bad_replay_request_is_422_and_starts_nothing(
    client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], field: str
) -> None:
    response = await replay(client, tokens, body)
    assert response.status_code == 422 and field in response.text
    assert (await digest(client, tokens))["version"] == 0


async def test_an_unknown_replay_is_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get(
        f"/v1/replay/{uuid.uuid4()}", headers=tokens.headers("operations", "lancashire")
    )
    assert response.status_code == 404 and response.json()["error"] == "ReplayNotFound"


async def test_the_migrations_build_exactly_the_tables_the_code_uses(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runtime = runtime_of(app)
    async with runtime.database.engine.connect() as connection:
        differences = await connection.run_sync(compare_with_models, metadata)
    assert differences == []


# --- edges found by the API fuzz test (tests/test_api_fuzz.py) -----------------------------


async def test_dates_at_the_end_of_the_calendar_are_refused_naming_the_range_not_500(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Found by the fuzz test: until/as_of=9999-12-31 overflowed computing the next day.
    # Such a day is outside any report's range (2000-01-01 to five years ahead): 422.
    journey = Journey("p-1").full()
    await deliver_all(app, journey)
    auditor = tokens.headers(*AUDITOR)
    for path in (
        "/v1/people/p-1/history?until=9999-12-31",
        "/v1/people/p-1/budget?as_of=9999-12-31",
        "/v1/kpis/ni130?as_of=9999-12-31",
        "/v1/kpis/lancashire?as_of=9999-12-31",
        "/v1/kpis/lancashire?as_of=0001-01-01",
        "/v1/returns/kpis.csv?as_of=0001-01-01",
    ):
        r = await client.get(path, headers=auditor)
        assert r.status_code == 422, path
        assert "YYYY-MM-DD" in r.text and "2000-01-01" in r.text, r.text
    until = datetime.now(UTC).date().isoformat()  # the journey is in 2025
    everything = await history(client, tokens, "p-1", f"?until={until}&limit=200")
    assert everything.status_code == 200 and len(everything.json()["items"]) == len(journey)


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
async def test_a_replay_since_a_time_out_of_range_in_utc_is_refused_naming_since(
    client: httpx.AsyncClient, tokens: Tokens, since: str
) -> None:
    # Found by the fuzz test: converting such a time to UTC overflowed to a 500.
    r = await client.post(
        "/v1/replay", json={"since": since}, headers=tokens.headers("operations", "lancashire")
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.since"
    assert (await digest(client, tokens))["version"] == 0  # no replay was started
