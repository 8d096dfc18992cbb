"""A budget is calculated only for eligible needs: over HTTP, an assessment is validated
(and so budgeted) only after a determination that found the needs eligible, or with a
recorded reason to go ahead without one (Care Act 2014 s.19(3): urgent needs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.events import AssessmentValidated, ValidationBasis
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import Tokens, deliver, outbox_events, outbox_events_of, running
from services.assessment.tests.test_api import answers_body, start_body
from services.audit.api import create_app as create_audit_app
from services.audit.settings import Settings as AuditSettings

TODAY = datetime(2025, 6, 2, 10, tzinfo=UTC)
TWO_OUTCOMES = [
    {"outcome": "managing_and_maintaining_nutrition", "difficulties": ["only_with_assistance"]},
    {"outcome": "using_the_home_safely", "difficulties": ["endangers_health_or_safety"]},
]


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with clock.using(SettableClock(TODAY)):
        yield


async def submitted(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await client.post("/v1/assessments", json=start_body(), headers=headers)
    assert r.status_code == 201, r.text
    url = f"/v1/assessments/{r.json()['assessment_id']}"
    assert (await client.put(f"{url}/answers", json=answers_body(), headers=headers)).is_success
    assert (await client.post(f"{url}/submit", headers=headers)).is_success
    return url


async def determined(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], *, eligible: bool
) -> str:
    r = await client.post(
        f"{url}/eligibility",
        json={
            "needs_from_impairment_or_illness": True,
            "outcomes": TWO_OUTCOMES if eligible else TWO_OUTCOMES[:1],
            "significant_impact_on_wellbeing": True,
        },
        headers=headers,
    )
    assert r.status_code == 201 and r.json()["eligible"] is eligible, r.text
    return str(r.json()["determination_id"])


async def test_needs_found_eligible_are_validated_and_the_event_names_the_determination(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str]
) -> None:
    url = await submitted(client, care_manager)
    determination_id = await determined(client, url, care_manager, eligible=True)
    r = await client.post(f"{url}/validate", json={}, headers=care_manager)
    assert r.status_code == 200, r.text
    assert r.json()["validation"]["eligibility"]["basis"] == "eligible"
    [event] = await outbox_events_of(app, AssessmentValidated)
    assert event.eligibility is not None
    assert event.eligibility.basis is ValidationBasis.ELIGIBLE
    assert str(event.eligibility.determination_id) == determination_id


async def test_needs_found_not_eligible_are_refused_and_told_what_to_do(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str]
) -> None:
    url = await submitted(client, care_manager)
    await determined(client, url, care_manager, eligible=False)
    r = await client.post(f"{url}/validate", json={}, headers=care_manager)
    assert r.status_code == 409 and r.json()["error"] == "NeedsNotEligible"
    assert "not eligible" in r.json()["detail"] and "urgent_need" in r.json()["detail"]
    assert (await client.get(url, headers=care_manager)).json()["status"] == "submitted"
    assert await outbox_events_of(app, AssessmentValidated) == []


async def test_without_any_determination_validation_is_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    url = await submitted(client, care_manager)
    r = await client.post(f"{url}/validate", json={}, headers=care_manager)
    assert r.status_code == 409 and r.json()["error"] == "NoEligibilityDetermination"
    assert "record the determination first" in r.json()["detail"]


async def test_the_latest_determination_decides(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    url = await submitted(client, care_manager)
    await determined(client, url, care_manager, eligible=True)
    await determined(client, url, care_manager, eligible=False)  # the needs were reconsidered
    r = await client.post(f"{url}/validate", json={}, headers=care_manager)
    assert r.json()["error"] == "NeedsNotEligible"
    await determined(client, url, care_manager, eligible=True)
    assert (await client.post(f"{url}/validate", json={}, headers=care_manager)).is_success


@pytest.mark.parametrize(
    ("going_ahead", "field"),
    [
        ({"reason": "eligible", "explanation": "They are eligible really"}, "reason"),
        ({"reason": "urgent_need"}, "explanation"),
    ],
)
async def test_a_reason_outside_the_list_or_without_words_is_refused(
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    going_ahead: dict[str, Any],
    field: str,
) -> None:
    url = await submitted(client, care_manager)
    r = await client.post(
        f"{url}/validate",
        json={"going_ahead_without_eligibility": going_ahead},
        headers=care_manager,
    )
    assert r.status_code == 422 and field in r.json()["errors"][0]["field"]


async def test_a_one_word_explanation_is_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    url = await submitted(client, care_manager)
    r = await client.post(
        f"{url}/validate",
        json={"going_ahead_without_eligibility": {"reason": "urgent_need", "explanation": "x"}},
        headers=care_manager,
    )
    assert r.status_code == 422 and r.json()["error"] == "ExplanationRequired"


async def test_urgent_need_goes_ahead_with_its_reason_in_the_event_and_the_audit(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    tokens: Tokens,
    data_dir: Path,
    policies_dir: Path,
) -> None:
    url = await submitted(client, care_manager)
    await determined(client, url, care_manager, eligible=False)
    why = "Carer admitted to hospital tonight; support cannot wait for a reassessment"
    r = await client.post(
        f"{url}/validate",
        json={"going_ahead_without_eligibility": {"reason": "urgent_need", "explanation": why}},
        headers=care_manager,
    )
    assert r.status_code == 200, r.text
    [event] = await outbox_events_of(app, AssessmentValidated)
    assert event.eligibility is not None
    assert (event.eligibility.basis, event.eligibility.explanation) == (
        ValidationBasis.URGENT_NEED,
        why,
    )
    assert event.eligibility.determined_eligible is False
    audit = create_audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(audit) as audit_client:
        for envelope in await outbox_events(app):
            await deliver(audit, envelope)
        auditor = tokens.headers(Role.AUDITOR, "lancashire")
        history = await audit_client.get("/v1/people/P123/history", headers=auditor)
        timeline = await audit_client.get("/v1/people/P123/timeline", headers=auditor)
    [validated] = [
        item for item in history.json()["items"] if "assessment-validated" in item["type"]
    ]
    assert validated["data"]["eligibility"]["basis"] == "urgent_need"
    summaries = [item["summary"] for item in timeline.json()["items"]]
    assert any("basis: urgent need" in line and why in line for line in summaries), summaries


async def test_a_converted_client_goes_ahead_as_converted_from_the_legacy_system(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str]
) -> None:
    row = {"ref": "conv-1", "start": start_body(), "answers": answers_body(), "validation": {}}
    r = await client.post("/v1/conversions/assessments", json={"rows": [row]}, headers=care_manager)
    assert r.status_code == 200 and r.json()["rows"][0]["outcome"] == "done", r.text
    [event] = await outbox_events_of(app, AssessmentValidated)
    assert event.eligibility is not None
    assert event.eligibility.basis is ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM
    assert event.eligibility.explanation is not None and "conv-1" in event.eligibility.explanation
