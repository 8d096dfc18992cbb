"""The portal in-process: sign-in, the session cookie, CSRF, and how it writes things.

The pages' work with real services is in tests/test_portal_browser.py; here the
portal talks to an audit service run in-process through httpx's ASGI transport.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from servicekit.testing import Tokens, deliver, running, runtime_of
from services.audit.api import create_app as create_audit
from services.audit.settings import Settings as AuditSettings
from services.audit.tests.journey import Journey, at
from services.portal.api import create_app
from services.portal.chart import Series, line_chart
from services.portal.clients import ServiceError, Services, _detail
from services.portal.formatting import (
    BadAmount,
    long_date,
    money,
    pence_from_pounds,
    plain,
    words,
)
from services.portal.settings import Settings
from services.portal.views import month_ends


@pytest.fixture
async def audit(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[FastAPI]:
    """The audit service in-process (the tokens fixture makes the key it trusts)."""
    app = create_audit(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app):
        yield app


@pytest.fixture
async def portal(
    data_dir: Path, policies_dir: Path, audit: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """The portal, its calls to the audit service served in-process."""
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        await services.close()
        services._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=audit), base_url="http://audit"
        )
        services.urls = {name: "http://audit" for name in services.urls}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, role: str, **extra: str) -> httpx.Response:
    page = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "council": "lancashire",
            "role": role,
            "user_id": "tm-raj",
            "next": "/caseload",
            **extra,
        },
    )


async def test_pages_send_you_to_sign_in_first(portal: httpx.AsyncClient) -> None:
    response = await portal.get("/caseload")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/caseload"


async def test_the_session_cookie_is_signed_httponly_and_samesite_lax(
    portal: httpx.AsyncClient,
) -> None:
    response = await sign_in(portal, "team_manager")
    assert response.status_code == 303 and response.headers["location"] == "/caseload"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    tampered = portal.cookies["pbj_portal"][:-4] + "AAAA"
    portal.cookies.set("pbj_portal", tampered)
    assert (await portal.get("/caseload")).status_code == 303  # a forged session is nobody


async def test_a_post_without_the_sessions_csrf_token_is_refused(
    portal: httpx.AsyncClient,
) -> None:
    await sign_in(portal, "team_manager")
    for token in ("", "not-the-token"):
        response = await portal.post("/sign-out", data={"csrf_token": token})
        assert response.status_code == 403 and "This form has expired" in response.text
    assert (await portal.get("/caseload")).status_code == 200  # still signed in


async def test_sign_in_says_what_is_missing(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/sign-in")
    response = await portal.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "council": "nowhere", "role": "person"},
        follow_redirects=True,
    )
    for problem in (
        "Choose a council.",
        "Enter a user name.",
        "A person or their representative must enter the person",
    ):
        assert problem in response.text


async def test_the_caseload_lists_people_from_the_audit_service(
    portal: httpx.AsyncClient, audit: FastAPI
) -> None:
    await deliver(audit, Journey("p-north", team="north").started(at("2025-01-06")))
    await deliver(audit, Journey("p-south", team="south").started(at("2025-01-06")))
    await sign_in(portal, "team_manager")
    page = await portal.get("/caseload?team=north")
    assert page.status_code == 200
    assert "p-north" in page.text and "p-south" not in page.text
    assert "Assessment" in page.text and "6 January 2025" in page.text


async def test_a_person_is_sent_to_their_own_page(portal: httpx.AsyncClient) -> None:
    await sign_in(portal, "person", person_id="p-1")
    response = await portal.get("/caseload")
    assert response.status_code == 303 and response.headers["location"] == "/me"


async def test_a_service_refusal_shows_its_reason(
    portal: httpx.AsyncClient, audit: FastAPI
) -> None:
    await sign_in(portal, "team_manager")
    response = await portal.get("/caseload?stage=finished")
    assert response.status_code == 422
    assert "Please check what you entered" in response.text and "stage" in response.text


def test_money_and_dates_read_as_people_write_them() -> None:
    assert money(123456) == "£1,234.56"
    assert money(None) == "—"
    assert long_date("2026-11-23") == "23 November 2026"
    assert long_date("2026-11-03T10:00:00Z") == "3 November 2026"
    assert words("four_weekly") == "every four weeks"
    assert words("something_new") == "Something new"
    assert (
        plain("Plan signed off by team_manager: first review by 2027-01-04")
        == "Plan signed off by team manager: first review by 4 January 2027"
    )


def test_amounts_typed_in_pounds_become_pence_or_a_clear_refusal() -> None:
    assert pence_from_pounds("£1,234.50", "Cost") == 123450
    assert pence_from_pounds(" 415 ", "Cost") == 41500
    assert pence_from_pounds("", "Cost") == 0
    for bad in ("ten", "-5", "1.234"):
        with pytest.raises(BadAmount, match="Cost"):
            pence_from_pounds(bad, "Cost")


def test_not_yet_arrived_events_read_as_try_again() -> None:
    waiting = ServiceError("planning", 422, "budget_id: no issued budget", "BudgetNotKnown")
    assert waiting.message.startswith("Not ready yet")
    refused = ServiceError("allocation", 403, "a care_manager may not agree", "Forbidden")
    assert refused.message == "You may not do this: a care_manager may not agree"
    down = ServiceError("payments", 0, "connection refused", None)
    assert "not answering" in down.message


def test_the_chart_is_an_image_with_a_title_and_description() -> None:
    svg = str(
        line_chart(
            [Series("Budget", [(date(2026, 1, 1), 100.0), (date(2026, 3, 1), 50.0)])],
            chart_id="c",
            title="Budget over time",
            description="One line",
            value_label=lambda v: f"{v:g}",
        )
    )
    assert 'role="img"' in svg and 'aria-labelledby="c-title c-desc"' in svg
    assert '<title id="c-title">Budget over time</title>' in svg
    assert "1 January 2026" in svg and "1 March 2026" in svg
    assert line_chart([], chart_id="e", title="", description="", value_label=str) == ""


def test_performance_is_read_at_each_month_end_and_today() -> None:
    assert month_ends(date(2026, 2, 10), 3) == [
        "2025-11-30",
        "2025-12-31",
        "2026-01-31",
        "2026-02-10",
    ]


def test_a_services_problem_document_is_shown_as_its_fields_and_what_they_expect() -> None:
    bad_input = {
        "type": "urn:pb-journey:problem:InvalidInput",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "body.as_of: expected a date like 2026-04-01 (YYYY-MM-DD)",
        "error": "InvalidInput",
        "errors": [
            {"field": "body.as_of", "message": "expected a date like 2026-04-01 (YYYY-MM-DD)"}
        ],
    }
    assert _detail(bad_input) == (
        "as_of: expected a date like 2026-04-01 (YYYY-MM-DD)",
        "InvalidInput",
    )
    refused = {"detail": "a team manager may not agree this", "error": "PanelOnly", "status": 403}
    assert _detail(refused) == ("a team manager may not agree this", "PanelOnly")


async def test_a_person_page_says_when_their_audit_record_was_found_altered(
    portal: httpx.AsyncClient, audit: FastAPI
) -> None:
    from services.audit.tamper import Finding, TamperFindings

    for event in Journey("p-1").full():
        await deliver(audit, event)
    async with runtime_of(audit).database.sessions() as session:
        await session.execute(
            sa.text("UPDATE audit_events SET canonical = canonical || ' ' WHERE seq = 3")
        )
        await session.commit()
    await sign_in(portal, "auditor")
    page = await portal.get("/people/p-1")
    assert page.status_code == 200
    assert "was found altered" in page.text and "fails verification at seq 3" in page.text

    async with runtime_of(audit).uow() as uow:
        await TamperFindings(uow.session).add_if_absent(
            Finding(
                finding_id="5b7e0f0e-33a4-4a51-9d4b-2f1c9c1f6a10",
                council="lancashire",
                chain="p-1",
                first_bad_seq=3,
                first_bad_event_id="e-3",
                difference="altered",
                reason="hash does not match the stored document (edited)",
                quarantined_events=10,
                head_seq=10,
                head_hash="0" * 64,
                replay_id="0d6f3c55-6a43-4f57-8d0e-7a3cb0f1d2e4",
                detected_by="operations:ops-1",
                detected_at=datetime(2025, 4, 1, 9, tzinfo=UTC),
            )
        )
        await uow.commit()
    page = await portal.get("/people/p-1")
    assert "at position 3 (e-3) altered" in page.text and "Not yet acknowledged" in page.text
