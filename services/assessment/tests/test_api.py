"""Assessment over HTTP, in-process: who may do what, bad input, retries and versions."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import (
    AssessmentReturned,
    AssessmentStarted,
    AssessmentSubmitted,
    AssessmentValidated,
    BudgetIssued,
    BudgetStage,
    Scale,
)
from contracts.vocabulary import ClientGroup, Role
from servicekit.testing import Tokens, deliver, outbox_events, outbox_events_of, runtime_of
from services.assessment.db import assessment_history, assessments

# Seed 003 ch.2 Step 1 §ii: Lancashire's six domains; Staying Safe answered at its maximum.
FULL_ANSWERS = {
    "staying_safe": 5,
    "communication": 2,
    "work_leisure_learning": 3,
    "essential_living_tasks": 3,
    "personal_care": 4,
    "health": 2,
}


@pytest.fixture
def person(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(Role.PERSON, "lancashire", user_id="u-p123", person_id="P123")


def start_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_id": "P123",
        "client_group": "learning_disability",
        "completed_by": "supported",
        "team": "Preston LD team",
        "key_worker_id": "kw-7",
        "age_band": "18-64",
    }
    body.update(changes)
    return body


def answers_body(domains: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "domains": FULL_ANSWERS if domains is None else domains,
        "significant_informal_support": True,
        "needs_24_7": False,
        "carer_support_weekly_pence": 5_000,
        "other_funding": [{"source": "independent_living_fund", "weekly_pence": 12_000}],
        "outcomes": ["Go to college two days a week"],
        "risks": [
            {
                "risk_id": "R1",
                "description": "Crossing busy roads alone",
                "persons_view": "I can manage with a phone",
            }
        ],
    }
    body.update(changes)
    return body


async def started(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.post("/v1/assessments", json=start_body(), headers=headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def submitted(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    a = await started(client, headers)
    url = f"/v1/assessments/{a['assessment_id']}"
    r = await client.put(f"{url}/answers", json=answers_body(), headers=headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{url}/submit", headers=headers)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def found_eligible(
    client: httpx.AsyncClient, assessment: dict[str, Any], headers: dict[str, str]
) -> None:
    """A practitioner records a determination finding the needs eligible (docs/charging.md)."""
    r = await client.post(
        f"/v1/assessments/{assessment['assessment_id']}/eligibility",
        json={
            "needs_from_impairment_or_illness": True,
            "outcomes": [
                {
                    "outcome": "managing_and_maintaining_nutrition",
                    "difficulties": ["only_with_assistance"],
                },
                {
                    "outcome": "using_the_home_safely",
                    "difficulties": ["endangers_health_or_safety"],
                },
            ],
            "significant_impact_on_wellbeing": True,
        },
        headers=headers,
    )
    assert r.status_code == 201 and r.json()["eligible"], r.text


async def row_counts(app: FastAPI) -> tuple[int, int, int]:
    """(assessments, history entries, outbox events): proof that nothing was half-written."""
    runtime = runtime_of(app)
    async with runtime.database.sessions() as session:
        counts = []
        for table in (assessments, assessment_history, runtime.outbox):
            counts.append(
                (await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
    return counts[0], counts[1], counts[2]


# --- the questionnaire --------------------------------------------------------------------


async def test_the_questionnaire_lists_lancashires_domains_levels_and_points(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    r = await client.get("/v1/questionnaires/lancashire", headers=person)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policy_version"] == "lancashire/2009.1"
    staying_safe = body["domains"][0]
    assert staying_safe["key"] == "staying_safe"
    # Seed 003 ch.2 Step 1 §ii: Staying Safe scores from 5 to 30 points.
    assert [lvl["points"] for lvl in staying_safe["levels"]][::4] == [5, 30]
    assert all(lvl["statement"] for lvl in staying_safe["levels"])
    assert body["max_points"] == 70


async def test_another_councils_questionnaire_is_not_found(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    r = await client.get("/v1/questionnaires/council_a", headers=person)
    assert r.status_code == 404


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/questionnaires/lancashire")).status_code == 401
    assert (await client.post("/v1/assessments", json=start_body())).status_code == 401
    assert (await client.get("/v1/assessments")).status_code == 401


# --- starting -----------------------------------------------------------------------------


async def test_a_person_starts_their_own_assessment(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    body = await started(client, person)
    assert body["status"] == "draft"
    assert body["version"] == 1
    assert body["policy_version"] == "lancashire/2009.1"
    assert body["council"] == "lancashire"
    assert body["history"][0]["by"] == "person:u-p123"
    [event] = await outbox_events_of(app, AssessmentStarted)
    assert event.assessment_id == UUID(body["assessment_id"])
    assert event.person_id == "P123"
    assert event.completed_by == "supported"


async def test_a_person_cannot_start_one_for_someone_else(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    r = await client.post("/v1/assessments", json=start_body(person_id="P999"), headers=person)
    assert r.status_code == 403
    assert r.json()["error"] == "NotAllowed"
    assert await row_counts(app) == (0, 0, 0)


async def test_a_care_manager_starts_one_for_anyone_in_the_council(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/assessments",
        json=start_body(person_id="P555", completed_by="practitioner"),
        headers=care_manager,
    )
    assert r.status_code == 201, r.text
    assert r.json()["person_id"] == "P555"


async def test_finance_cannot_start_an_assessment(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        "/v1/assessments", json=start_body(), headers=tokens.headers(Role.FINANCE)
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_group": "carers"}, "client_group"),  # Lancashire budgets no carers
        ({"client_group": "astronauts"}, "client_group"),
        ({"completed_by": "robot"}, "completed_by"),
        ({"age_band": "12-17"}, "age_band"),
        ({"person_id": "Jane Smith"}, "person_id"),
        ({"team": ""}, "team"),
        ({"key_worker_id": "k" * 201}, "key_worker_id"),
        ({"community_based": "yes"}, "community_based"),
        ({"council": "council_a"}, "council"),
    ],
)
async def test_bad_start_input_is_refused_naming_the_field(
    app: FastAPI,
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    changes: dict[str, Any],
    field: str,
) -> None:
    r = await client.post("/v1/assessments", json=start_body(**changes), headers=care_manager)
    assert r.status_code == 422
    assert field in r.text
    assert await row_counts(app) == (0, 0, 0)


async def test_carers_can_start_where_the_council_budgets_for_them(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 Council C: carers may hold a PB in their own right.
    r = await client.post(
        "/v1/assessments",
        json=start_body(client_group=ClientGroup.CARERS.value),
        headers=tokens.headers(Role.CARE_MANAGER, "council_c"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["policy_version"].startswith("council_c/")


# --- answering ----------------------------------------------------------------------------


async def test_partial_answers_are_kept_while_drafting(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await started(client, person)
    r = await client.put(
        f"/v1/assessments/{a['assessment_id']}/answers",
        json=answers_body({"staying_safe": 2}),
        headers=person,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answers"]["domains"] == {"staying_safe": 2}
    assert body["answers"]["carer_support_weekly_pence"] == 5_000
    assert body["risks"][0]["persons_view"] == "I can manage with a phone"
    assert body["risks"][0]["practitioners_view"] is None
    assert body["version"] == 2
    assert body["history"][-1]["action"] == "answered"


async def test_an_unknown_domain_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await started(client, person)
    before = await row_counts(app)
    r = await client.put(
        f"/v1/assessments/{a['assessment_id']}/answers",
        json=answers_body({**FULL_ANSWERS, "Flying": 3}),
        headers=person,
    )
    assert r.status_code == 422
    assert "Flying" in r.json()["detail"]
    assert r.json()["error"] == "UnknownDomain"
    assert await row_counts(app) == before
    unchanged = (await client.get(f"/v1/assessments/{a['assessment_id']}", headers=person)).json()
    assert unchanged["version"] == 1 and unchanged["answers"]["domains"] == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"domains": {"staying_safe": 9}}, "staying_safe"),
        ({"domains": {"staying_safe": "5"}}, "staying_safe"),
        ({"domains": {"staying_safe": 2.5}}, "staying_safe"),
        ({"carer_support_weekly_pence": -1}, "carer_support_weekly_pence"),
        ({"carer_support_weekly_pence": 10.5}, "carer_support_weekly_pence"),
        ({"other_funding": [{"source": "lottery", "weekly_pence": 1}]}, "source"),
        ({"other_funding": [{"source": "other", "weekly_pence": -5}]}, "weekly_pence"),
        ({"outcomes": ["x" * 2001]}, "outcomes"),
        ({"outcomes": ["o"] * 51}, "outcomes"),
        ({"risks": [{"risk_id": "R1"}]}, "description"),
        ({"needs_24_7": None}, "needs_24_7"),
        ({"expected_version": 0}, "expected_version"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_answers_are_refused_naming_the_field_and_nothing_is_written(
    app: FastAPI,
    client: httpx.AsyncClient,
    person: dict[str, str],
    changes: dict[str, Any],
    field: str,
) -> None:
    a = await started(client, person)
    before = await row_counts(app)
    r = await client.put(
        f"/v1/assessments/{a['assessment_id']}/answers",
        json=answers_body(**changes),
        headers=person,
    )
    assert r.status_code == 422, r.text
    assert field in r.text
    assert await row_counts(app) == before


async def test_a_malformed_json_body_is_a_clear_422(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await started(client, person)
    r = await client.put(
        f"/v1/assessments/{a['assessment_id']}/answers",
        content=b"{not json",
        headers={**person, "Content-Type": "application/json"},
    )
    assert r.status_code == 422


async def test_another_person_cannot_see_or_answer_my_assessment(
    client: httpx.AsyncClient, person: dict[str, str], tokens: Tokens
) -> None:
    a = await started(client, person)
    stranger = tokens.headers(Role.PERSON, "lancashire", user_id="u-9", person_id="P999")
    url = f"/v1/assessments/{a['assessment_id']}"
    assert (await client.get(url, headers=stranger)).status_code == 404
    r = await client.put(f"{url}/answers", json=answers_body(), headers=stranger)
    assert r.status_code == 404


async def test_another_councils_assessment_is_not_found(
    client: httpx.AsyncClient, person: dict[str, str], tokens: Tokens
) -> None:
    a = await started(client, person)
    elsewhere = tokens.headers(Role.CARE_MANAGER, "council_a")
    url = f"/v1/assessments/{a['assessment_id']}"
    assert (await client.get(url, headers=elsewhere)).status_code == 404
    r = await client.post(f"{url}/validate", json={}, headers=elsewhere)
    assert r.status_code == 404
    listed = (await client.get("/v1/assessments", headers=elsewhere)).json()
    assert listed["items"] == []


async def test_an_unknown_assessment_is_not_found(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    r = await client.get(f"/v1/assessments/{uuid4()}", headers=care_manager)
    assert r.status_code == 404
    assert r.json()["error"] == "AssessmentNotFound"


async def test_an_auditor_may_read_but_not_answer(
    client: httpx.AsyncClient, person: dict[str, str], tokens: Tokens
) -> None:
    a = await started(client, person)
    auditor = tokens.headers(Role.AUDITOR)
    url = f"/v1/assessments/{a['assessment_id']}"
    assert (await client.get(url, headers=auditor)).status_code == 200
    r = await client.put(f"{url}/answers", json=answers_body(), headers=auditor)
    assert r.status_code == 403


# --- submitting ---------------------------------------------------------------------------


async def test_submitting_needs_every_domain_answered(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await started(client, person)
    url = f"/v1/assessments/{a['assessment_id']}"
    await client.put(f"{url}/answers", json=answers_body({"staying_safe": 5}), headers=person)
    r = await client.post(f"{url}/submit", json={}, headers=person)
    assert r.status_code == 422
    assert r.json()["error"] == "DomainsUnanswered"
    for missing in ("communication", "work_leisure_learning", "personal_care", "health"):
        assert missing in r.json()["detail"]
    assert await outbox_events_of(app, AssessmentSubmitted) == []


async def test_a_complete_assessment_is_submitted(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    body = await submitted(client, person)
    assert body["status"] == "submitted"
    [event] = await outbox_events_of(app, AssessmentSubmitted)
    assert event.answers == FULL_ANSWERS
    assert event.policy_version == "lancashire/2009.1"


async def test_answers_cannot_change_once_submitted(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await submitted(client, person)
    r = await client.put(
        f"/v1/assessments/{a['assessment_id']}/answers", json=answers_body(), headers=person
    )
    assert r.status_code == 409
    assert "waiting for validation" in r.json()["detail"]


# --- validating ---------------------------------------------------------------------------


async def test_a_practitioner_validates_adjusting_a_level_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    # Seed 003 ch.5 §9: people "over-egg" the SRQ; the original answer stays on record.
    a = await submitted(client, person)
    await found_eligible(client, a, care_manager)
    reason = "Goes out alone daily; needs someone nearby only in the evening"
    r = await client.post(
        f"/v1/assessments/{a['assessment_id']}/validate",
        json={
            "adjustments": [{"domain": "staying_safe", "level": 3, "reason": reason}],
            "risks": [
                {"risk_id": "R1", "practitioners_view": "Hit by a car in 2008", "flagged": True},
                {
                    "risk_id": "R2",
                    "description": "Leaves the gas on",
                    "practitioners_view": "Needs a cooker guard",
                    "flagged": False,
                },
            ],
            "carer_support_weekly_pence": 7_500,
            "expected_version": a["version"],
        },
        headers=care_manager,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "validated"
    assert body["answers"]["domains"]["staying_safe"] == 5
    assert body["validation"]["domain_levels"]["staying_safe"] == 3
    assert body["validation"]["adjustments"] == [
        {"domain": "staying_safe", "original_level": 5, "validated_level": 3, "reason": reason}
    ]
    assert body["validation"]["validated_by"] == "care_manager:cm-1"
    r1, r2 = body["risks"]
    assert (r1["persons_view"], r1["practitioners_view"], r1["flagged"]) == (
        "I can manage with a phone",
        "Hit by a car in 2008",
        True,
    )
    assert r2["raised_by"] == "practitioner" and r2["persons_view"] is None
    assert [h["action"] for h in body["history"]] == [
        "started",
        "answered",
        "submitted",
        "validated",
    ]
    assert body["history"][-1]["by"] == "care_manager:cm-1"

    [event] = await outbox_events_of(app, AssessmentValidated)
    assert event.domain_levels == {**FULL_ANSWERS, "staying_safe": 3}
    assert event.adjustments[0].original_level == 5
    assert event.carer_support_weekly_pence == 7_500
    assert event.other_funding[0].weekly_pence == 12_000
    assert event.significant_informal_support is True and event.needs_24_7 is False
    assert event.validated_by == "care_manager:cm-1"
    assert event.policy_version == "lancashire/2009.1"
    assert event.risks[0].persons_view == "I can manage with a phone"
    assert event.risks[0].practitioners_view == "Hit by a car in 2008"


@pytest.mark.parametrize("reason", [None, "", "  ok  "])
async def test_an_adjusted_level_without_a_real_reason_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    person: dict[str, str],
    care_manager: dict[str, str],
    reason: str | None,
) -> None:
    a = await submitted(client, person)
    before = await row_counts(app)
    adjustment: dict[str, Any] = {"domain": "staying_safe", "level": 3}
    if reason is not None:
        adjustment["reason"] = reason
    r = await client.post(
        f"/v1/assessments/{a['assessment_id']}/validate",
        json={"adjustments": [adjustment]},
        headers=care_manager,
    )
    assert r.status_code == 422
    assert r.json()["error"] == "ReasonRequired"
    assert "staying_safe" in r.json()["detail"]
    assert await row_counts(app) == before


async def test_a_person_cannot_validate_their_own_assessment(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await submitted(client, person)
    r = await client.post(f"/v1/assessments/{a['assessment_id']}/validate", json={}, headers=person)
    assert r.status_code == 403


async def test_a_draft_cannot_be_validated(
    client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    a = await started(client, person)
    r = await client.post(
        f"/v1/assessments/{a['assessment_id']}/validate", json={}, headers=care_manager
    )
    assert r.status_code == 409
    assert "still a draft" in r.json()["detail"]


async def test_a_validated_assessment_cannot_be_answered_or_validated_again(
    client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    a = await submitted(client, person)
    await found_eligible(client, a, care_manager)
    url = f"/v1/assessments/{a['assessment_id']}"
    assert (await client.post(f"{url}/validate", json={}, headers=care_manager)).status_code == 200
    again = await client.post(f"{url}/validate", json={}, headers=care_manager)
    assert again.status_code == 409
    r = await client.put(f"{url}/answers", json=answers_body(), headers=person)
    assert r.status_code == 409
    assert "validated" in r.json()["detail"]


# --- returning ----------------------------------------------------------------------------


async def test_a_returned_assessment_is_changed_and_submitted_again(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    a = await submitted(client, person)
    url = f"/v1/assessments/{a['assessment_id']}"
    reason = "Please check Personal Care: you told us you dress yourself"
    r = await client.post(f"{url}/return", json={"reasons": [reason]}, headers=care_manager)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "returned"
    assert r.json()["return_reasons"] == [reason]
    [returned] = await outbox_events_of(app, AssessmentReturned)
    assert returned.reasons == [reason] and returned.returned_by == "care_manager:cm-1"

    changed = answers_body({**FULL_ANSWERS, "personal_care": 2})
    assert (await client.put(f"{url}/answers", json=changed, headers=person)).status_code == 200
    r = await client.post(f"{url}/submit", headers=person)
    assert r.status_code == 200
    first, second = await outbox_events_of(app, AssessmentSubmitted)
    assert (first.answers["personal_care"], second.answers["personal_care"]) == (4, 2)


async def test_returning_needs_at_least_one_reason(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    a = await submitted(client, person)
    url = f"/v1/assessments/{a['assessment_id']}/return"
    before = await row_counts(app)
    bodies: list[dict[str, Any]] = [{"reasons": []}, {"reasons": ["   "]}, {}]
    for body in bodies:
        r = await client.post(url, json=body, headers=care_manager)
        assert r.status_code == 422, body
        assert "reasons" in r.text
    assert await row_counts(app) == before


async def test_a_person_cannot_return_an_assessment(
    client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await submitted(client, person)
    r = await client.post(
        f"/v1/assessments/{a['assessment_id']}/return", json={"reasons": ["x"]}, headers=person
    )
    assert r.status_code == 403


# --- versions and retries -----------------------------------------------------------------


async def test_a_stale_expected_version_is_409_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str]
) -> None:
    a = await started(client, person)
    url = f"/v1/assessments/{a['assessment_id']}"
    await client.put(f"{url}/answers", json=answers_body(expected_version=1), headers=person)
    before = await row_counts(app)
    r = await client.post(f"{url}/submit", json={"expected_version": 1}, headers=person)
    assert r.status_code == 409
    assert r.json()["error"] == "StaleVersion"
    assert await row_counts(app) == before
    r = await client.post(f"{url}/submit", json={"expected_version": 2}, headers=person)
    assert r.status_code == 200


async def test_a_retried_start_with_the_same_idempotency_key_starts_one_assessment(
    app: FastAPI, client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    headers = {**care_manager, "Idempotency-Key": "start-P123-1"}
    first = await client.post("/v1/assessments", json=start_body(), headers=headers)
    again = await client.post("/v1/assessments", json=start_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["assessment_id"] == first.json()["assessment_id"]
    assert len(await outbox_events_of(app, AssessmentStarted)) == 1
    different = await client.post(
        "/v1/assessments", json=start_body(team="Lancaster OP team"), headers=headers
    )
    assert different.status_code == 422


async def test_a_redelivered_event_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    # Assessment consumes no events: what the log delivers to it, once or twice, is ignored.
    a = await submitted(client, person)
    envelope = Envelope(
        event=BudgetIssued(
            person_id="P123",
            council="lancashire",
            budget_id=uuid4(),
            assessment_id=UUID(a["assessment_id"]),
            client_group=ClientGroup.LEARNING_DISABILITY,
            stage=BudgetStage.INDICATIVE,
            revision=1,
            points=51,
            scale=Scale.LOWER,
            weekly_pence=40_800,
            annual_pence=2_121_600,
            ceiling_weekly_pence=None,
            ceiling_exception=False,
            explanation=[],
            agreed_by="team_manager:tm-1",
            agreed_by_role=Role.TEAM_MANAGER,
            policy_version="lancashire/2009.1",
        )
    )
    before_rows = await row_counts(app)
    before_events = len(await outbox_events(app))
    await deliver(app, envelope)
    await deliver(app, envelope)
    after = (await client.get(f"/v1/assessments/{a['assessment_id']}", headers=care_manager)).json()
    assert after["version"] == a["version"] and after["status"] == "submitted"
    assert await row_counts(app) == before_rows
    assert len(await outbox_events(app)) == before_events


# --- listing ------------------------------------------------------------------------------


async def test_assessments_are_listed_a_page_at_a_time(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    ids = []
    for n in range(5):
        r = await client.post(
            "/v1/assessments", json=start_body(person_id=f"P{n}"), headers=care_manager
        )
        ids.append(r.json()["assessment_id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/assessments", params=params, headers=care_manager)).json()
        seen += [item["assessment_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # newest first, each once


async def test_the_list_filters_by_person_and_status(
    client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    await submitted(client, person)
    await client.post("/v1/assessments", json=start_body(person_id="P7"), headers=care_manager)
    r = await client.get("/v1/assessments", params={"status": "submitted"}, headers=care_manager)
    assert [i["person_id"] for i in r.json()["items"]] == ["P123"]
    r = await client.get("/v1/assessments", params={"person_id": "P7"}, headers=care_manager)
    assert [i["status"] for i in r.json()["items"]] == ["draft"]


async def test_a_person_lists_only_their_own_assessments(
    client: httpx.AsyncClient, person: dict[str, str], care_manager: dict[str, str]
) -> None:
    await started(client, person)
    await client.post("/v1/assessments", json=start_body(person_id="P7"), headers=care_manager)
    mine = (await client.get("/v1/assessments", headers=person)).json()
    assert [i["person_id"] for i in mine["items"]] == ["P123"]
    theirs = await client.get("/v1/assessments", params={"person_id": "P7"}, headers=person)
    assert theirs.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"status": "lost"}, {"cursor": "not-a-cursor"}],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, care_manager: dict[str, str], params: dict[str, Any]
) -> None:
    r = await client.get("/v1/assessments", params=params, headers=care_manager)
    assert r.status_code == 422


# --- bounds found by the API fuzz test (tests/test_api_fuzz.py) ----------------------------

BEYOND_64_BITS = 2**63  # one more than the largest integer SQLite or PostgreSQL can store


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"carer_support_weekly_pence": BEYOND_64_BITS}, "carer_support_weekly_pence"),
        ({"carer_support_weekly_pence": 10**12 + 1}, "carer_support_weekly_pence"),
        (
            {"other_funding": [{"source": "other", "weekly_pence": BEYOND_64_BITS}]},
            "weekly_pence",
        ),
    ],
)
async def test_money_beyond_ten_billion_pounds_is_refused_and_nothing_is_written(
    app: FastAPI,
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    changes: dict[str, Any],
    field: str,
) -> None:
    draft = await started(client, care_manager)
    done = await submitted(client, care_manager)
    before = await row_counts(app)
    answer = await client.put(
        f"/v1/assessments/{draft['assessment_id']}/answers",
        json=answers_body(**changes),
        headers=care_manager,
    )
    validate = await client.post(
        f"/v1/assessments/{done['assessment_id']}/validate", json=changes, headers=care_manager
    )
    for r in (answer, validate):
        assert r.status_code == 422 and field in r.json()["errors"][0]["field"]
    assert await row_counts(app) == before
