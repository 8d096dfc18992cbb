"""Adopting a council policy on allocation: PolicyAdopted, new budgets, revisions, what-if.

Figures: Lancashire's 70-point maximum (seed 003 ch.2 §ii) at £10 a point a week is £700;
the proposal here prices a point for older people at £9, so the same answers give £630.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from contracts.events import BudgetIssued, PolicyAdopted, ReviewCompleted, ReviewOutcome
from contracts.policy import content_sha256, load_policy, policy_document, today
from servicekit.testing import POLICIES_DIR, Tokens, deliver, outbox_events_of, running
from services.allocation.api import create_app
from services.allocation.settings import Settings
from services.allocation.tests.test_api import agree, budget_of, signed_off, validated
from whatif.generate import write_cohort
from whatif.runner import run_whatif

NEW = "lancashire/2026.1"


def proposal(
    version: str = "2026.1", older_people_pence: int = 900, effective: date | None = None
) -> dict[str, Any]:
    document = policy_document(load_policy(POLICIES_DIR / "lancashire.yaml"))
    document["version"] = version
    document["effective_from"] = (effective or today()).isoformat()
    document["ras"]["price_per_point_weekly_pence"]["older_people"] = older_people_pence
    return document


async def adopt(
    client: httpx.AsyncClient,
    tokens: Tokens,
    document: dict[str, Any],
    effective: date | str | None = None,
    *,
    role: str = "operations",
    council: str = "lancashire",
) -> httpx.Response:
    effective = effective or today()
    return await client.post(
        "/v1/policies",
        json={"policy": document, "effective_from": str(effective)},
        headers=tokens.headers(role, council, user_id="ops-1"),
    )


async def versions(client: httpx.AsyncClient, tokens: Tokens) -> list[tuple[str, str, bool]]:
    r = await client.get("/v1/policies", headers=tokens.headers("auditor"))
    assert r.status_code == 200, r.text
    return [(i["policy_version"], i["source"], i["in_force"]) for i in r.json()["items"]]


async def test_an_adoption_records_the_whole_document_and_new_budgets_use_it(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await adopt(client, tokens, proposal())
    assert r.status_code == 201, r.text
    assert r.json()["policy_version"] == NEW and r.json()["adopted_by"] == "operations:ops-1"
    [event] = await outbox_events_of(app, PolicyAdopted)
    assert event.person_id == "policy:lancashire"
    assert event.effective_from == today()
    assert event.policy["ras"]["price_per_point_weekly_pence"]["older_people"] == 900
    assert event.content_sha256 == content_sha256(event.policy)
    assert await versions(client, tokens) == [
        ("lancashire/2009.1", "file", False),
        (NEW, "adopted", True),
    ]
    await deliver(app, validated("P-NEW"))
    current = (await budget_of(client, tokens, "P-NEW"))["current_revision"]
    assert (current["policy_version"], current["weekly_pence"]) == (NEW, 63_000)


async def test_before_the_effective_date_the_policy_in_force_still_applies(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    tomorrow = today() + timedelta(days=1)
    assert (await adopt(client, tokens, proposal(effective=tomorrow), tomorrow)).status_code == 201
    await deliver(app, validated("P-TODAY"))
    current = (await budget_of(client, tokens, "P-TODAY"))["current_revision"]
    assert (current["policy_version"], current["weekly_pence"]) == ("lancashire/2009.1", 70_000)
    assert await versions(client, tokens) == [
        ("lancashire/2009.1", "file", True),
        (NEW, "adopted", False),
    ]


async def test_the_same_adoption_again_changes_nothing_and_other_content_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await adopt(client, tokens, proposal())).status_code == 201
    again = await adopt(client, tokens, proposal())
    assert again.status_code == 200, again.text
    other = await adopt(client, tokens, proposal(older_people_pence=800))
    assert other.status_code == 409
    assert "already adopted" in other.json()["detail"]
    assert len(await outbox_events_of(app, PolicyAdopted)) == 1


async def test_an_invalid_policy_is_refused_naming_the_field_and_nothing_is_recorded(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    document = proposal()
    document["ras"]["price_per_point_weekly_pence"]["older_people"] = "nine pounds"
    r = await adopt(client, tokens, document)
    assert r.status_code == 422
    assert "ras.price_per_point_weekly_pence.older_people" in r.json()["detail"]
    missing_price = proposal()
    del missing_price["ras"]["price_per_point_weekly_pence"]["mental_health"]
    r = await adopt(client, tokens, missing_price)
    assert r.status_code == 422 and "mental_health" in r.json()["detail"]
    assert await outbox_events_of(app, PolicyAdopted) == []
    assert await versions(client, tokens) == [("lancashire/2009.1", "file", True)]


async def test_bad_dates_and_reused_file_versions_are_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    yesterday = today() - timedelta(days=1)
    past = await adopt(client, tokens, proposal(), yesterday)
    assert past.status_code == 422 and "effective_from" in past.json()["detail"]
    wrong_format = await adopt(client, tokens, proposal(), "23/11/2026")
    assert wrong_format.status_code == 422 and "effective_from" in wrong_format.text
    file_version = await adopt(client, tokens, proposal(version="2009.1"))
    assert file_version.status_code == 409
    assert await outbox_events_of(app, PolicyAdopted) == []


async def test_only_operations_of_the_councils_own_staff_may_adopt(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await adopt(client, tokens, proposal(), role="team_manager")).status_code == 403
    assert (await adopt(client, tokens, proposal(), role="auditor")).status_code == 403
    other_council = await adopt(client, tokens, proposal(), council="council_a")
    assert other_council.status_code == 404
    assert "council_a" in other_council.json()["detail"]


async def test_existing_budgets_keep_their_policy_until_a_bulk_revision(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated("P-1"))
    budget = await budget_of(client, tokens, "P-1")
    assert (await agree(client, tokens, budget["budget_id"], role="panel")).status_code == 200
    await deliver(app, validated("P-2"))  # never agreed: its revision waits for agreement
    assert (await adopt(client, tokens, proposal())).status_code == 201
    unchanged = (await budget_of(client, tokens, "P-1"))["current_revision"]
    assert (unchanged["policy_version"], unchanged["weekly_pence"]) == ("lancashire/2009.1", 70_000)

    operations = tokens.headers("operations", user_id="ops-2")
    refused = await client.post(
        "/v1/policies/revisions", json={"limit": 1}, headers=tokens.headers("team_manager")
    )
    assert refused.status_code == 403
    stale = await client.post(
        "/v1/policies/revisions",
        json={"expected_policy_version": "lancashire/2027.1"},
        headers=operations,
    )
    assert stale.status_code == 409
    first = await client.post("/v1/policies/revisions", json={"limit": 1}, headers=operations)
    assert first.status_code == 200, first.text
    assert first.json()["total_budgets"] == 2 and first.json()["next_cursor"]
    second = await client.post(
        "/v1/policies/revisions",
        json={"limit": 1, "cursor": first.json()["next_cursor"]},
        headers=operations,
    )
    done = [first.json(), second.json()]
    assert sum(d["issued"] for d in done) == 1
    assert sum(d["awaiting_agreement"] for d in done) == 1
    assert second.json()["next_cursor"] is None

    revised = await budget_of(client, tokens, "P-1")
    current = revised["current_revision"]
    assert (current["policy_version"], current["weekly_pence"], current["state"]) == (
        NEW,
        63_000,
        "agreed",
    )
    issued = [e for e in await outbox_events_of(app, BudgetIssued) if e.person_id == "P-1"]
    assert [(e.revision, e.policy_version, e.weekly_pence) for e in issued] == [
        (1, "lancashire/2009.1", 70_000),
        (2, NEW, 63_000),
    ]
    assert issued[-1].revision_reason is not None and "ops-2" in issued[-1].revision_reason
    pending = (await budget_of(client, tokens, "P-2"))["current_revision"]
    assert (pending["policy_version"], pending["state"]) == (NEW, "awaiting_agreement")

    again = await client.post("/v1/policies/revisions", json={}, headers=operations)
    assert again.json()["already_on_policy"] == 2 and again.json()["issued"] == 0


async def test_a_completed_review_revises_the_budget_under_the_policy_in_force(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated("P-1"))
    budget = await budget_of(client, tokens, "P-1")
    assert (await agree(client, tokens, budget["budget_id"], role="panel")).status_code == 200
    await deliver(app, signed_off(budget["budget_id"], "P-1"))
    assert (await adopt(client, tokens, proposal())).status_code == 201
    final = (await budget_of(client, tokens, "P-1"))["current_revision"]
    assert (final["stage"], final["policy_version"]) == ("final", "lancashire/2009.1")
    await deliver(
        app,
        ReviewCompleted(
            person_id="P-1",
            council="lancashire",
            review_id=uuid.uuid4(),
            plan_id=uuid.uuid4(),
            outcome=ReviewOutcome.NO_CHANGE,
            completed_on=today(),
            completed_by="care_manager:cm-3",
        ),
    )
    current = (await budget_of(client, tokens, "P-1"))["current_revision"]
    assert (current["policy_version"], current["weekly_pence"], current["stage"]) == (
        NEW,
        63_000,
        "indicative",
    )
    last = (await outbox_events_of(app, BudgetIssued))[-1]
    assert (last.policy_version, last.agreed_by, last.agreed_by_role.value) == (
        NEW,
        "care_manager:cm-3",
        "care_manager",
    )


async def test_a_restarted_service_still_knows_every_adopted_version(
    app: FastAPI, data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    async with running(app) as client:
        assert (await adopt(client, tokens, proposal())).status_code == 201
    restarted = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(restarted) as client:
        assert (NEW, "adopted", True) in await versions(client, tokens)
        await deliver(restarted, validated("P-LATER"))
        current = (await budget_of(client, tokens, "P-LATER"))["current_revision"]
        assert current["policy_version"] == NEW


async def test_the_whatif_endpoint_gives_the_same_figures_as_the_command(
    data_dir: Path, policies_dir: Path, tokens: Tokens, tmp_path: Path
) -> None:
    policy = load_policy(POLICIES_DIR / "lancashire.yaml")
    await write_cohort(data_dir / "eventlog.db", policy, 60, seed=7)
    proposed_file = tmp_path / "proposal.yaml"
    proposed_file.write_text(yaml.safe_dump(proposal()))
    by_command = await run_whatif(
        proposed_file,
        log_url=f"sqlite:///{data_dir / 'eventlog.db'}",
        out_dir=tmp_path / "out",
        formats=("json",),
        show_progress=False,
    )
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        body = {"policy": proposal()}
        refused = await client.post(
            "/v1/policies/whatif", json=body, headers=tokens.headers("care_manager")
        )
        assert refused.status_code == 403
        r = await client.post("/v1/policies/whatif", json=body, headers=tokens.headers("auditor"))
        assert r.status_code == 200, r.text
        totals = r.json()["totals"]
        assert totals["people"] == 60
        assert totals["annual_proposed_pence"] == by_command.comparison.total.annual_proposed
        assert totals["annual_now_pence"] == by_command.comparison.total.annual_now
        html = await client.post(
            "/v1/policies/whatif",
            params={"format": "html"},
            json=body,
            headers=tokens.headers("operations"),
        )
        assert html.headers["content-type"].startswith("text/html")
        assert "2026.1" in html.text and "Equality" in html.text
        csv = await client.post(
            "/v1/policies/whatif",
            params={"format": "csv"},
            json=body,
            headers=tokens.headers("auditor"),
        )
        assert len(csv.text.strip().splitlines()) == 61
        bad = dict(body["policy"], version="not a version!")
        invalid = await client.post(
            "/v1/policies/whatif", json={"policy": bad}, headers=tokens.headers("auditor")
        )
        assert invalid.status_code == 422 and "version" in invalid.json()["detail"]
