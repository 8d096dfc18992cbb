"""The allocation service in-process: events in, HTTP with tokens, BudgetIssued out.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1.
Seed 004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.envelope import Envelope, decode
from contracts.events import (
    AssessmentValidated,
    BudgetIssued,
    BudgetStage,
    OtherFunding,
    OtherFundingSource,
    PlanSignedOff,
)
from contracts.registry import DEAD_LETTER_TOPIC
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import (
    Tokens,
    deliver,
    outbox_events_of,
    runtime_of,
)
from services.allocation.db import budget_revisions, budgets

# Seed 003 ch.2 Step 1 §ii: Lancashire's six domains at their highest level = 70 points.
HIGHEST = {
    "staying_safe": 5,
    "communication": 5,
    "work_leisure_learning": 5,
    "essential_living_tasks": 5,
    "personal_care": 5,
    "health": 5,
}
LOWEST = dict.fromkeys(HIGHEST, 1)  # 12 points, the seed's minimum
TWENTY_FIVE_POINTS = {**LOWEST, "staying_safe": 3, "communication": 3}  # 16+3+1+2+1+2
THIRTEEN_POINTS = {**LOWEST, "communication": 2}


def validated(
    person_id: str = "P-1",
    council: str = "lancashire",
    *,
    domain_levels: dict[str, int] = HIGHEST,
    group: ClientGroup = ClientGroup.OLDER_PEOPLE,
    informal: bool = False,
    needs_24_7: bool = False,
    carer: int = 0,
    funding: list[OtherFunding] | None = None,
    assessment_id: uuid.UUID | None = None,
) -> AssessmentValidated:
    versions = {"lancashire": "2009.1"}
    return AssessmentValidated(
        person_id=person_id,
        council=council,
        assessment_id=assessment_id or uuid.uuid4(),
        client_group=group,
        completed_by=CompletedBy.SUPPORTED,
        team="North",
        key_worker_id="cm-1",
        age_band=AgeBand.AGE_65_74,
        community_based=True,
        domain_levels=domain_levels,
        adjustments=[],
        significant_informal_support=informal,
        needs_24_7=needs_24_7,
        carer_support_weekly_pence=carer,
        other_funding=funding or [],
        outcomes=["Stay in my own home"],
        risks=[],
        validated_by="care_manager:cm-1",
        policy_version=f"{council}/{versions.get(council, '2010.1')}",
    )


def signed_off(budget_id: str, person_id: str = "P-1", **changes: Any) -> PlanSignedOff:
    fields: dict[str, Any] = {
        "person_id": person_id,
        "council": "lancashire",
        "plan_id": uuid.uuid4(),
        "budget_id": uuid.UUID(budget_id),
        "assessment_id": uuid.uuid4(),
        "plan_version": 1,
        "weekly_pence": 68_000,
        "annual_pence": 3_536_000,
        "one_off_pence": 0,
        "contingency_weekly_pence": 2_000,
        "lines": [],
        "request_for_more": False,
        "signed_off_by": "team_manager:tm-9",
        "signed_off_by_role": Role.TEAM_MANAGER,
        "first_review_on": date(2010, 7, 13),
        "policy_version": "lancashire/2009.1",
    }
    fields.update(changes)
    return PlanSignedOff(**fields)


async def budget_of(
    client: httpx.AsyncClient, tokens: Tokens, person_id: str = "P-1", council: str = "lancashire"
) -> dict[str, Any]:
    r = await client.get(
        "/v1/budgets",
        params={"person_id": person_id},
        headers=tokens.headers("care_manager", council),
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1
    got = await client.get(
        f"/v1/budgets/{items[0]['budget_id']}", headers=tokens.headers("care_manager", council)
    )
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def agree(
    client: httpx.AsyncClient,
    tokens: Tokens,
    budget_id: str,
    role: str = "team_manager",
    council: str = "lancashire",
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/budgets/{budget_id}/agree",
        json=body or None,  # the body is optional: no body at all when nothing to say
        headers=tokens.headers(role, council, user_id=f"{role}-7"),
    )


async def a_penny_more(
    client: httpx.AsyncClient, tokens: Tokens, person_id: str, council: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The person's budget, and it revised by a care manager to a penny a week more."""
    budget = await budget_of(client, tokens, person_id, council)
    revised = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json={"reason": "a penny of transport", "additional_weekly_pence": 1},
        headers=tokens.headers("care_manager", council),
    )
    assert revised.status_code == 201, revised.text
    return budget, revised.json()


# --- a budget from a validated assessment -------------------------------------------------


async def test_a_validated_assessment_opens_a_budget_awaiting_agreement_and_issues_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    assert budget["status"] == "awaiting_agreement"
    assert budget["version"] == 1
    current = budget["current_revision"]
    # Seed 003 ch.2 §ii: the 70-point maximum, at Lancashire's £10 a point (policy data).
    assert (current["points"], current["weekly_pence"], current["annual_pence"]) == (
        70,
        70_000,
        3_640_000,
    )
    assert current["scale"] == "standard"
    assert current["policy_version"] == "lancashire/2009.1"
    assert [r["revision"] for r in budget["revisions"]] == [1]
    assert await outbox_events_of(app, BudgetIssued) == []


async def test_the_same_assessment_delivered_twice_makes_one_budget(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    envelope = Envelope(event=validated())
    await deliver(app, envelope)
    await deliver(app, envelope)
    budget = await budget_of(client, tokens)
    assert len(budget["revisions"]) == 1
    assert budget["version"] == 1


async def test_a_reassessment_revises_the_persons_budget_rather_than_opening_another(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated(domain_levels=LOWEST))
    first = await budget_of(client, tokens)
    assert (await agree(client, tokens, first["budget_id"])).status_code == 200
    await deliver(app, validated(domain_levels=HIGHEST))
    budget = await budget_of(client, tokens)
    assert budget["budget_id"] == first["budget_id"]
    assert budget["status"] == "awaiting_agreement"
    assert [(r["revision"], r["points"], r["state"]) for r in budget["revisions"]] == [
        (1, 12, "agreed"),
        (2, 70, "awaiting_agreement"),
    ]


async def test_the_lower_scale_applies_with_informal_support_and_no_24_7_need(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 003 ch.2 Step 1 §i; Lancashire's lower scale is 80% (policy data).
    await deliver(app, validated(informal=True))
    current = (await budget_of(client, tokens))["current_revision"]
    assert (current["scale"], current["weekly_pence"]) == ("lower", 56_000)
    assert any(line["label"].startswith("Lower scale") for line in current["explanation"])


async def test_supporting_people_and_ilf_are_netted_off(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 003 ch.2 Step 1 §v.
    funding = [
        OtherFunding(source=OtherFundingSource.SUPPORTING_PEOPLE, weekly_pence=3_000),
        OtherFunding(source=OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=10_000),
    ]
    await deliver(app, validated(funding=funding))
    current = (await budget_of(client, tokens))["current_revision"]
    assert current["points"] == 70
    assert current["weekly_pence"] == 57_000
    labels = [line["label"] for line in current["explanation"]]
    assert "Less Supporting People: \u2212£30.00" in labels
    assert "Less Independent Living Fund: \u2212£100.00" in labels


# --- agreement in principle ---------------------------------------------------------------


async def test_agreement_in_principle_issues_the_indicative_budget(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    r = await agree(client, tokens, budget["budget_id"], expected_version=1)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "agreed"
    assert r.json()["version"] == 2
    [issued] = await outbox_events_of(app, BudgetIssued)
    assert issued.stage is BudgetStage.INDICATIVE
    assert issued.revision == 1
    assert (issued.points, issued.weekly_pence, issued.annual_pence) == (70, 70_000, 3_640_000)
    assert issued.agreed_by == "team_manager:team_manager-7"
    assert issued.agreed_by_role is Role.TEAM_MANAGER
    assert issued.policy_version == "lancashire/2009.1"
    assert issued.explanation[-1].label == "Policy lancashire/2009.1"


async def test_council_a_care_manager_agrees_250_a_week_but_not_a_penny_more(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 App.1 Council A: care manager up to £250 a week, team manager up to £415.
    await deliver(app, validated("A-1", "council_a", domain_levels=TWENTY_FIVE_POINTS))
    await deliver(app, validated("A-2", "council_a", domain_levels=TWENTY_FIVE_POINTS))
    at_limit = await budget_of(client, tokens, "A-1", "council_a")
    assert at_limit["current_revision"]["weekly_pence"] == 25_000
    r = await agree(client, tokens, at_limit["budget_id"], "care_manager", "council_a")
    assert r.status_code == 200, r.text

    above, revised = await a_penny_more(client, tokens, "A-2", "council_a")
    assert revised["current_revision"]["weekly_pence"] == 25_001
    refused = await agree(client, tokens, above["budget_id"], "care_manager", "council_a")
    assert refused.status_code == 403
    assert "care_manager" in refused.text and "£250.00" in refused.text
    assert refused.json()["error"] == "AboveAgreementLimit"
    r = await agree(client, tokens, above["budget_id"], "team_manager", "council_a")
    assert r.status_code == 200, r.text
    issued = await outbox_events_of(app, BudgetIssued)
    assert [(e.person_id, e.weekly_pence, e.agreed_by_role) for e in issued] == [
        ("A-1", 25_000, Role.CARE_MANAGER),
        ("A-2", 25_001, Role.TEAM_MANAGER),
    ]


async def test_above_council_bs_mental_health_ceiling_only_the_panel_agrees_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 App.1 Council B: a £120 a week ceiling for mental health PBs.
    await deliver(
        app,
        validated(
            "B-1", "council_b", domain_levels=THIRTEEN_POINTS, group=ClientGroup.MENTAL_HEALTH
        ),
    )
    budget = await budget_of(client, tokens, "B-1", "council_b")
    current = budget["current_revision"]
    assert (current["weekly_pence"], current["ceiling_weekly_pence"]) == (13_000, 12_000)
    assert current["above_ceiling"] is True
    assert "Ceiling for mental health: £120.00 a week \u2014 exceeded, needs an exception" in [
        line["label"] for line in current["explanation"]
    ]
    budget_id = budget["budget_id"]
    assert (await agree(client, tokens, budget_id, "team_manager", "council_b")).status_code == 403
    no_reason = await agree(client, tokens, budget_id, "panel", "council_b")
    assert no_reason.status_code == 422
    assert "ceiling_exception_reason" in no_reason.text
    assert await outbox_events_of(app, BudgetIssued) == []
    r = await agree(
        client, tokens, budget_id, "panel", "council_b", ceiling_exception_reason="crisis cover"
    )
    assert r.status_code == 200, r.text
    assert r.json()["current_revision"]["ceiling_exception_reason"] == "crisis cover"
    [issued] = await outbox_events_of(app, BudgetIssued)
    assert issued.ceiling_exception is True
    assert issued.ceiling_weekly_pence == 12_000


async def test_council_c_team_manager_may_not_agree_a_mental_health_budget_only_the_panel(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 App.1 Council C: "All mental health requests go to a panel", whatever the
    # amount: £120 a week is well within the team manager's £300 limit.
    await deliver(
        app, validated("C-1", "council_c", domain_levels=LOWEST, group=ClientGroup.MENTAL_HEALTH)
    )
    await deliver(app, validated("C-2", "council_c", domain_levels=LOWEST))
    mental_health = await budget_of(client, tokens, "C-1", "council_c")
    assert mental_health["current_revision"]["weekly_pence"] == 12_000
    refused = await agree(client, tokens, mental_health["budget_id"], "team_manager", "council_c")
    assert refused.status_code == 403
    assert refused.json()["error"] == "PanelOnly"
    assert "mental health" in refused.json()["detail"]
    assert await outbox_events_of(app, BudgetIssued) == []

    older = await budget_of(client, tokens, "C-2", "council_c")
    r = await agree(client, tokens, older["budget_id"], "team_manager", "council_c")
    assert r.status_code == 200, r.text
    r = await agree(client, tokens, mental_health["budget_id"], "panel", "council_c")
    assert r.status_code == 200, r.text
    issued = await outbox_events_of(app, BudgetIssued)
    assert [(e.person_id, e.agreed_by_role) for e in issued] == [
        ("C-2", Role.TEAM_MANAGER),
        ("C-1", Role.PANEL),
    ]


async def test_council_b_budget_above_300_a_week_is_agreed_at_the_panels_separate_sitting(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 App.1 Council B: the panel meets "twice for budgets greater than £300 per
    # week and once for budgets less than this". 37 points x £10 = £370 a week.
    await deliver(app, validated("B-1", "council_b", domain_levels={**LOWEST, "staying_safe": 5}))
    await deliver(app, validated("B-2", "council_b", domain_levels=LOWEST))
    above = await budget_of(client, tokens, "B-1", "council_b")
    assert above["current_revision"]["weekly_pence"] == 37_000
    at_ordinary = await agree(
        client, tokens, above["budget_id"], "panel", "council_b", panel_sitting="ordinary"
    )
    assert at_ordinary.status_code == 403
    assert at_ordinary.json()["error"] == "NeedsSeparatePanel"
    assert await outbox_events_of(app, BudgetIssued) == []

    r = await agree(client, tokens, above["budget_id"], "panel", "council_b")
    assert r.status_code == 200, r.text
    assert r.json()["current_revision"]["panel_sitting"] == "separate"
    below = await budget_of(client, tokens, "B-2", "council_b")
    assert below["current_revision"]["weekly_pence"] == 12_000
    r = await agree(client, tokens, below["budget_id"], "panel", "council_b")
    assert r.status_code == 200, r.text
    assert r.json()["current_revision"]["panel_sitting"] == "ordinary"
    assert len(await outbox_events_of(app, BudgetIssued)) == 2


# --- revisions: carer-neutral restore ----------------------------------------------------


async def test_carer_support_reduces_the_money_and_a_revision_restores_it_when_the_carer_stops(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 App.1 Council C and §7.8: carer-neutral allocation.
    await deliver(app, validated(carer=15_000))
    budget = await budget_of(client, tokens)
    current = budget["current_revision"]
    assert (current["points"], current["weekly_pence"]) == (70, 55_000)
    assert (await agree(client, tokens, budget["budget_id"])).status_code == 200

    r = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json={"reason": "carer has gone into hospital", "carer_support_weekly_pence": 0},
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "awaiting_agreement"
    assert [(x["revision"], x["points"], x["weekly_pence"]) for x in body["revisions"]] == [
        (1, 70, 55_000),
        (2, 70, 70_000),
    ]
    assert body["current_revision"]["created_by"] == "care_manager:care_manager-1"
    assert (await agree(client, tokens, budget["budget_id"])).status_code == 200
    issued = await outbox_events_of(app, BudgetIssued)
    assert [(e.revision, e.weekly_pence, e.revision_reason) for e in issued] == [
        (1, 55_000, "assessment validated"),
        (2, 70_000, "carer has gone into hospital"),
    ]


async def test_a_stale_expected_version_is_refused_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    r = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json={"reason": "2-to-1 support", "additional_weekly_pence": 5_000, "expected_version": 9},
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 409
    assert r.json()["error"] == "StaleVersion"
    stale_agree = await agree(client, tokens, budget["budget_id"], expected_version=2)
    assert stale_agree.status_code == 409
    after = await budget_of(client, tokens)
    assert (after["version"], len(after["revisions"]), after["status"]) == (
        1,
        1,
        "awaiting_agreement",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "x", "additional_weekly_pence": -1}, "additional_weekly_pence"),
        ({"reason": "x", "additional_weekly_pence": 12.5}, "additional_weekly_pence"),
        ({"reason": "x", "carer_support_weekly_pence": "100"}, "carer_support_weekly_pence"),
        ({"reason": "x", "other_funding": [{"source": "lottery", "weekly_pence": 1}]}, "source"),
        ({"reason": "x", "expected_version": 0}, "expected_version"),
        ({"reason": "x", "colour": "blue"}, "colour"),
    ],
)
async def test_a_bad_revision_is_refused_naming_the_field_and_nothing_is_written(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    body: dict[str, Any],
    field: str,
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    r = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json=body,
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 422
    assert field in r.text
    after = await budget_of(client, tokens)
    assert (after["version"], len(after["revisions"])) == (1, 1)


async def test_a_retried_revision_with_the_same_idempotency_key_is_applied_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    url = f"/v1/budgets/{budget['budget_id']}/revisions"
    headers = tokens.headers("care_manager", **{"Idempotency-Key": "rev-1"})
    body = {"reason": "2-to-1 support for moving and handling", "additional_weekly_pence": 9_000}
    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = await client.post(url, json={**body, "additional_weekly_pence": 1}, headers=headers)
    assert other.status_code == 422
    after = await budget_of(client, tokens)
    assert len(after["revisions"]) == 2
    assert after["current_revision"]["weekly_pence"] == 79_000


async def test_revising_an_unknown_budget_is_not_found(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        f"/v1/budgets/{uuid.uuid4()}/revisions",
        json={"reason": "x"},
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 404


# --- final budget --------------------------------------------------------------------------


async def test_a_signed_off_plan_issues_the_final_budget_at_the_plans_cost(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    assert (await agree(client, tokens, budget["budget_id"])).status_code == 200
    plan = signed_off(budget["budget_id"])
    await deliver(app, plan)
    await deliver(app, plan)  # a different envelope of the same fact changes nothing
    issued = await outbox_events_of(app, BudgetIssued)
    assert [e.stage for e in issued] == [BudgetStage.INDICATIVE, BudgetStage.FINAL]
    final = issued[-1]
    assert final.revision == 2
    assert (final.weekly_pence, final.annual_pence) == (68_000, 3_536_000)
    assert final.revision_reason == "support plan signed off"
    assert (final.agreed_by, final.agreed_by_role) == ("team_manager:tm-9", Role.TEAM_MANAGER)
    assert final.explanation[-1].label == "Signed-off support plan: £680.00 a week"
    assert final.points == 70
    after = await budget_of(client, tokens)
    assert after["status"] == "final"
    assert after["current_revision"]["stage"] == "final"
    assert [r["state"] for r in after["revisions"]] == ["agreed", "final"]


async def test_a_plan_for_an_unknown_budget_is_dead_lettered_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    runtime = runtime_of(app)
    await deliver(app, signed_off(str(uuid.uuid4())))
    assert await outbox_events_of(app, BudgetIssued) == []
    reader = runtime.event_log.consumer("test-reader", [DEAD_LETTER_TOPIC])
    records = await reader.poll(timeout_ms=1000)
    await reader.close()
    assert len(records) == 1
    assert b"BudgetNotFound" in records[0].value


# --- explanation and preview ---------------------------------------------------------------


async def test_the_explanation_has_every_figure_and_a_plain_english_summary(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated(carer=15_000))
    budget = await budget_of(client, tokens)
    r = await client.get(
        f"/v1/budgets/{budget['budget_id']}/explanation", headers=tokens.headers("team_manager")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    labels = [line["label"] for line in body["lines"]]
    assert "Staying Safe: level 5 = 30 points" in labels
    assert "70 points \u00d7 £10.00 a point (older people)" in labels
    assert "Less agreed carer support: \u2212£150.00" in labels
    assert "Policy lancashire/2009.1" in labels
    assert "70 points" in body["summary"]
    assert "carer" in body["summary"]
    assert "£550.00 a week" in body["summary"]


def preview_body(**changes: Any) -> dict[str, Any]:
    return {
        "client_group": "older_people",
        "domain_levels": HIGHEST,
        "significant_informal_support": False,
        "needs_24_7": False,
        "carer_support_weekly_pence": 0,
        "other_funding": [],
        **changes,
    }


async def test_a_preview_calculates_without_storing_anything(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        "/v1/calculations",
        json=preview_body(
            carer_support_weekly_pence=5_000,
            other_funding=[{"source": "supporting_people", "weekly_pence": 2_500}],
        ),
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 200, r.text
    calc = r.json()
    assert (calc["points"], calc["weekly_pence"]) == (70, 62_500)
    assert calc["policy_version"] == "lancashire/2009.1"
    assert calc["explanation"]
    listed = await client.get("/v1/budgets", headers=tokens.headers("care_manager"))
    assert listed.json()["items"] == []
    assert await outbox_events_of(app, BudgetIssued) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"domain_levels": {**HIGHEST, "flying": 3}}, "flying"),
        ({"domain_levels": {**HIGHEST, "staying_safe": 6}}, "staying_safe"),
        ({"domain_levels": {"staying_safe": 5}}, "health"),
        ({"client_group": "carers"}, "client_group"),
        ({"client_group": "pirates"}, "client_group"),
        ({"carer_support_weekly_pence": -5}, "carer_support_weekly_pence"),
        ({"carer_support_weekly_pence": 10.5}, "carer_support_weekly_pence"),
        ({"needs_24_7": None}, "needs_24_7"),
        ({"council": "council_a"}, "council"),
    ],
)
async def test_a_bad_calculation_is_refused_naming_the_field(
    client: httpx.AsyncClient, tokens: Tokens, changes: dict[str, Any], named: str
) -> None:
    r = await client.post(
        "/v1/calculations", json=preview_body(**changes), headers=tokens.headers("care_manager")
    )
    assert r.status_code == 422
    assert named in r.text


# --- who may do what ----------------------------------------------------------------------


async def test_without_a_token_every_route_answers_401(client: httpx.AsyncClient) -> None:
    budget_id = uuid.uuid4()
    assert (await client.get("/v1/budgets")).status_code == 401
    assert (await client.get(f"/v1/budgets/{budget_id}")).status_code == 401
    assert (await client.post(f"/v1/budgets/{budget_id}/agree", json={})).status_code == 401
    assert (await client.post("/v1/calculations", json=preview_body())).status_code == 401


async def test_the_wrong_role_answers_403(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    assert (await agree(client, tokens, budget["budget_id"], "finance")).status_code == 403
    r = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json={"reason": "x"},
        headers=tokens.headers("auditor"),
    )
    assert r.status_code == 403
    person = tokens.headers("person", person_id="P-1")
    assert (
        await client.post("/v1/calculations", json=preview_body(), headers=person)
    ).status_code == 403
    # Seed 003 ch.2 §iv: agreement in principle is the team manager's or the panel's.
    r = await agree(client, tokens, budget["budget_id"], "care_manager")
    assert r.status_code == 403
    assert r.json()["error"] == "MayNotAgree"
    assert (await budget_of(client, tokens))["status"] == "awaiting_agreement"


async def test_another_councils_budget_answers_404(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    budget_id = budget["budget_id"]
    elsewhere = tokens.headers("team_manager", "council_a")
    assert (await client.get(f"/v1/budgets/{budget_id}", headers=elsewhere)).status_code == 404
    assert (
        await client.get(f"/v1/budgets/{budget_id}/explanation", headers=elsewhere)
    ).status_code == 404
    assert (await agree(client, tokens, budget_id, "team_manager", "council_a")).status_code == 404
    r = await client.post(
        f"/v1/budgets/{budget_id}/revisions", json={"reason": "x"}, headers=elsewhere
    )
    assert r.status_code == 404
    listed = await client.get("/v1/budgets", headers=elsewhere)
    assert listed.json()["items"] == []
    assert (await budget_of(client, tokens))["version"] == 1


async def test_a_person_sees_only_their_own_budget_and_only_once_agreed(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated("P-1"))
    await deliver(app, validated("P-2"))
    budget = await budget_of(client, tokens, "P-1")
    url = f"/v1/budgets/{budget['budget_id']}"
    me = tokens.headers("person", person_id="P-1")
    # Seed 003 ch.2 §iv: agreement in principle comes before the person is told.
    assert (await client.get(url, headers=me)).status_code == 404
    assert (await client.get("/v1/budgets", headers=me)).json()["items"] == []
    assert (await agree(client, tokens, budget["budget_id"])).status_code == 200
    mine = await client.get(url, headers=me)
    assert mine.status_code == 200
    assert mine.json()["status"] == "agreed"
    listed = await client.get("/v1/budgets", headers=me)
    assert [b["person_id"] for b in listed.json()["items"]] == ["P-1"]
    someone_else = tokens.headers("person", person_id="P-2")
    assert (await client.get(url, headers=someone_else)).status_code == 404
    snooping = await client.get("/v1/budgets", params={"person_id": "P-1"}, headers=someone_else)
    assert snooping.json()["items"] == []


# --- lists --------------------------------------------------------------------------------


async def test_budgets_are_listed_a_page_at_a_time(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for n in range(5):
        await deliver(app, validated(f"P-{n}"))
    staff = tokens.headers("auditor")
    first = await client.get("/v1/budgets", params={"limit": 2}, headers=staff)
    assert first.status_code == 200
    seen = [b["person_id"] for b in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = await client.get("/v1/budgets", params={"limit": 2, "cursor": cursor}, headers=staff)
        seen += [b["person_id"] for b in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert sorted(seen) == [f"P-{n}" for n in range(5)]
    agreed = await client.get("/v1/budgets", params={"status": "agreed"}, headers=staff)
    assert agreed.json() == {"items": [], "next_cursor": None}
    assert (
        await client.get("/v1/budgets", params={"cursor": "not-a-cursor"}, headers=staff)
    ).status_code == 422
    assert (
        await client.get("/v1/budgets", params={"limit": 201}, headers=staff)
    ).status_code == 422


async def test_of_two_changes_racing_on_one_budget_the_second_is_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget_id = uuid.UUID((await budget_of(client, tokens))["budget_id"])
    runtime = runtime_of(app)
    policy = runtime.policies.current("lancashire")
    manager = Caller(record="team_manager:tm-1", role=Role.TEAM_MANAGER, council="lancashire")
    async with runtime.uow() as first, runtime.uow() as second:
        mine = await first.budgets.get(budget_id)
        theirs = await second.budgets.get(budget_id)
        assert mine is not None and theirs is not None
        for uow, budget in ((first, mine), (second, theirs)):
            budget.agree(
                by=manager,
                policy=policy,
                at=datetime.now(UTC),
            )
            if uow is first:
                await uow.budgets.save(budget)
                await uow.commit()
        with pytest.raises(StaleVersion):
            await second.budgets.save(theirs)
    after = await budget_of(client, tokens)
    assert (after["version"], after["status"]) == (2, "agreed")


async def test_emitted_events_decode_against_the_contract(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    await agree(client, tokens, budget["budget_id"])
    runtime = runtime_of(app)
    async with runtime.database.sessions() as session:
        [value] = (await session.execute(sa.select(runtime.outbox.c.value))).scalars().all()
    envelope = decode(value)
    assert envelope.subject == "P-1"
    assert envelope.policy_version == "lancashire/2009.1"


# --- bounds found by the API fuzz test (tests/test_api_fuzz.py) ----------------------------

BEYOND_64_BITS = 2**63  # one more than the largest integer SQLite or PostgreSQL can store


async def stored_rows(app: FastAPI) -> dict[str, list[Any]]:
    """Every budget, revision and outbox row: proof that nothing was half-written."""
    runtime = runtime_of(app)
    async with runtime.database.sessions() as session:
        return {
            t.name: [tuple(r) for r in (await session.execute(t.select())).all()]
            for t in (budgets, budget_revisions, runtime.outbox)
        }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"additional_weekly_pence": BEYOND_64_BITS}, "additional_weekly_pence"),
        ({"carer_support_weekly_pence": 10**12 + 1}, "carer_support_weekly_pence"),
        (
            {"other_funding": [{"source": "other", "weekly_pence": BEYOND_64_BITS}]},
            "weekly_pence",
        ),
    ],
)
async def test_a_revision_beyond_ten_billion_pounds_is_refused_and_nothing_is_written(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, changes: dict[str, Any], field: str
) -> None:
    # Found by the fuzz test: 2^63 pence a week reached SQLite and the answer was a 500.
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    before = await stored_rows(app)
    r = await client.post(
        f"/v1/budgets/{budget['budget_id']}/revisions",
        json={"reason": "two carers at night", **changes},
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 422, r.text
    assert field in r.json()["errors"][0]["field"]
    assert await stored_rows(app) == before


async def test_a_preview_beyond_ten_billion_pounds_is_refused_naming_the_field(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        "/v1/calculations",
        json={
            "client_group": "older_people",
            "domain_levels": HIGHEST,
            "significant_informal_support": False,
            "needs_24_7": False,
            "additional_weekly_pence": BEYOND_64_BITS,
        },
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 422 and "additional_weekly_pence" in r.text


async def test_budget_times_are_given_in_utc(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Found by the fuzz test: read back from SQLite the times had lost their offset and
    # were not the RFC 3339 date-times the API documents.
    await deliver(app, validated())
    budget = await budget_of(client, tokens)
    listed = await client.get("/v1/budgets", headers=tokens.headers("care_manager"))
    times = [
        budget["created_at"],
        budget["updated_at"],
        budget["current_revision"]["created_at"],
        listed.json()["items"][0]["updated_at"],
    ]
    assert all(t.endswith("Z") for t in times), times
