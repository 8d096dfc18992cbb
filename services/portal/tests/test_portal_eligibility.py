"""The assessment page records the eligibility determination and, when none found the
needs eligible, the reason to go ahead without one (docs/charging.md). The portal talks to
an assessment service run in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.vocabulary import Role
from servicekit.testing import Tokens, running
from services.assessment.api import create_app as create_assessment
from services.assessment.settings import Settings as AssessmentSettings
from services.assessment.tests.test_api import answers_body, start_body
from services.portal.api import create_app
from services.portal.clients import Services
from services.portal.settings import Settings
from services.portal.tests.test_portal import csrf_of, sign_in


@pytest.fixture
async def assessment(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_assessment(
        AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir)
    )
    async with running(app) as client:
        yield client


@pytest.fixture
async def portal(
    data_dir: Path, policies_dir: Path, assessment: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        await services.close()
        services._client = assessment
        services.urls = {name: str(assessment.base_url).rstrip("/") for name in services.urls}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


async def submitted(assessment: httpx.AsyncClient, tokens: Tokens) -> str:
    staff = tokens.headers(Role.CARE_MANAGER, "lancashire", user_id="cm-1")
    r = await assessment.post("/v1/assessments", json=start_body(), headers=staff)
    url = f"/v1/assessments/{r.json()['assessment_id']}"
    assert (await assessment.put(f"{url}/answers", json=answers_body(), headers=staff)).is_success
    assert (await assessment.post(f"{url}/submit", headers=staff)).is_success
    return str(r.json()["assessment_id"])


async def posted(
    portal: httpx.AsyncClient, page: str, action: str, form: dict[str, Any]
) -> httpx.Response:
    html = (await portal.get(page)).text
    return await portal.post(
        f"{page}/{action}", data={"csrf_token": csrf_of(html), **form}, follow_redirects=True
    )


async def test_the_page_records_an_eligible_determination_and_then_validates(
    portal: httpx.AsyncClient, assessment: httpx.AsyncClient, tokens: Tokens
) -> None:
    page = f"/assessments/{await submitted(assessment, tokens)}"
    await sign_in(portal, "care_manager")
    before = (await portal.get(page)).text
    assert "No eligibility determination yet" in before and "going_ahead_reason" in before
    recorded = await posted(
        portal,
        page,
        "eligibility",
        {
            "needs_from_impairment": "yes",
            "outcome_managing_and_maintaining_nutrition": "only_with_assistance",
            "outcome_using_the_home_safely": "endangers_health_or_safety",
            "significant_impact": "yes",
        },
    )
    assert "The needs meet the eligibility criteria" in recorded.text
    assert "going_ahead_reason" not in recorded.text  # nothing to explain now
    await posted(portal, page, "validate", {})
    validated = (await portal.get(page)).text
    assert "on the basis: eligible" in validated


async def test_without_a_determination_the_page_shows_why_and_an_urgent_need_goes_ahead(
    portal: httpx.AsyncClient, assessment: httpx.AsyncClient, tokens: Tokens
) -> None:
    page = f"/assessments/{await submitted(assessment, tokens)}"
    await sign_in(portal, "care_manager")
    refused = await posted(portal, page, "validate", {})
    assert "record the determination first" in refused.text
    why = "Carer taken into hospital tonight"
    await posted(
        portal,
        page,
        "validate",
        {"going_ahead_reason": "urgent_need", "going_ahead_explanation": why},
    )
    validated = (await portal.get(page)).text
    assert f"on the basis: urgent need ({why})" in validated
