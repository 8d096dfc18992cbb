"""Dates have plausible ranges and imported files hold no control characters.

A date that parses is not yet a plausible one: each date the API takes has a range
(docs/api.md, "Dates"), checked against the service's clock, and a date outside it is
refused with 422 naming YYYY-MM-DD and the range. The client import applies the same
date-of-birth rule as the API. A CSV cell holding a control character (a NUL, a stray
line break) is refused with its line and column.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from contracts.policy import load_policy, policy_document
from contracts.vocabulary import Role
from pbj.convert import read_clients
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import POLICIES_DIR, Tokens, running
from services.allocation.api import create_app as allocation_app
from services.allocation.settings import Settings as AllocationSettings
from services.assessment.api import create_app as assessment_app
from services.assessment.settings import Settings as AssessmentSettings
from services.audit.api import create_app as audit_app
from services.audit.settings import Settings as AuditSettings
from services.payments.api import create_app as payments_app
from services.payments.settings import Settings as PaymentsSettings
from services.planning.api import create_app as planning_app
from services.planning.settings import Settings as PlanningSettings

TODAY = date(2026, 6, 15)
APPS = {
    "assessment": (assessment_app, AssessmentSettings),
    "allocation": (allocation_app, AllocationSettings),
    "planning": (planning_app, PlanningSettings),
    "payments": (payments_app, PaymentsSettings),
    "audit": (audit_app, AuditSettings),
}


@pytest.fixture(autouse=True)
def on_a_known_day() -> Any:
    with clock.using(SettableClock(datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC))):
        yield


async def client_of(name: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    create_app, settings = APPS[name]
    async with running(create_app(settings(data_dir=data_dir, policies_dir=POLICIES_DIR))) as c:
        yield c


@pytest.fixture
async def assessment(data_dir: Path, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of("assessment", data_dir):
        yield c


@pytest.fixture
async def planning(data_dir: Path, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of("planning", data_dir):
        yield c


@pytest.fixture
async def audit(data_dir: Path, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of("audit", data_dir):
        yield c


@pytest.fixture
async def allocation(data_dir: Path, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of("allocation", data_dir):
        yield c


@pytest.fixture
async def payments(data_dir: Path, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of("payments", data_dir):
        yield c


def refused_naming_the_range(r: httpx.Response, first: str, last: str) -> bool:
    return r.status_code == 422 and "YYYY-MM-DD" in r.text and first in r.text and last in r.text


def start_with_born(born: str) -> dict[str, Any]:
    return {
        "person_id": "P1",
        "client_group": "older_people",
        "completed_by": "supported",
        "team": "North",
        "key_worker_id": "kw-1",
        "personal_details": {"name": "Ada Example", "date_of_birth": born},
    }


# --- dates of birth: the API and the import share one rule -----------------------------------


@pytest.mark.parametrize("born", ["0001-01-01", "1906-06-14", "2026-06-16"])
async def test_a_date_of_birth_in_the_future_or_over_120_years_ago_is_refused(
    assessment: httpx.AsyncClient, tokens: Tokens, born: str
):
    r = await assessment.post(
        "/v1/assessments", json=start_with_born(born), headers=tokens.headers(Role.CARE_MANAGER)
    )
    assert refused_naming_the_range(r, "1906-06-15", "2026-06-15"), r.text


async def test_a_date_of_birth_exactly_120_years_ago_is_accepted(
    assessment: httpx.AsyncClient, tokens: Tokens
):
    r = await assessment.post(
        "/v1/assessments",
        json=start_with_born("1906-06-15"),
        headers=tokens.headers(Role.CARE_MANAGER),
    )
    assert r.status_code == 201, r.text


EXTRACT_HEADER = (
    "legacy_client_id,forename,surname,date_of_birth,nhs_number,postcode,"
    "client_group,team,key_worker,community_based\r\n"
)


async def import_people(assessment: httpx.AsyncClient, tokens: Tokens, rows: str) -> httpx.Response:
    return await assessment.post(
        "/v1/imports/people",
        content=(EXTRACT_HEADER + rows).encode(),
        headers=tokens.headers(Role.OPERATIONS, **{"Content-Type": "text/csv"}),
    )


async def test_the_client_import_refuses_a_date_of_birth_as_the_api_does(
    assessment: httpx.AsyncClient, tokens: Tokens
):
    r = await import_people(
        assessment,
        tokens,
        "CF1,Ada,Old,1900-01-01,,PR1 8XJ,older_people,North,KW1,Y\r\n"
        "CF2,Bea,Unborn,2030-01-01,,PR1 8XJ,older_people,North,KW1,Y\r\n",
    )
    assert r.status_code == 422, r.text
    reasons = {(x["line"], x["column"]): x["reason"] for x in r.json()["rejected"]}
    assert set(reasons) == {(2, "date_of_birth"), (3, "date_of_birth")}
    assert all("from 1906-06-15 to 2026-06-15" in reason for reason in reasons.values())


# --- control characters in imported files -------------------------------------------------


async def test_a_control_character_in_any_cell_of_the_client_extract_is_refused_by_place(
    assessment: httpx.AsyncClient, tokens: Tokens
):
    r = await import_people(
        assessment,
        tokens,
        "CF1,Ada,Exam\x00ple,1950-01-01,,PR1 8XJ,older_people,North,KW1,Y\r\n"
        'CF2,Bea,Example,1950-01-01,,PR1 8XJ,older_people,"North\x0bTeam",KW1,Y\r\n',
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["accepted"] is False
    refused = {(x["line"], x["column"]): x["reason"] for x in body["rejected"]}
    assert set(refused) == {(2, "surname"), (3, "team")}
    assert "U+0000" in refused[(2, "surname")] and "control character" in refused[(2, "surname")]


async def test_a_control_character_in_the_finance_confirmation_file_is_refused_by_place(
    payments: httpx.AsyncClient, tokens: Tokens
):
    r = await payments.post(
        "/v1/payments/confirmations",
        content=(
            "payment_id,outcome,amount_pence,processed_on,reason,finance_reference\r\n"
            f"{uuid4()},failed,1000,2026-06-01,Account\x00closed,\r\n"
        ).encode(),
        headers=tokens.headers(Role.FINANCE, **{"Content-Type": "text/csv"}),
    )
    assert r.status_code == 422, r.text
    [refused] = r.json()["rejected"]
    assert (refused["line"], refused["column"]) == (2, "reason")
    assert "control character" in refused["reason"]


# --- planning: reviews and sign-off dates -------------------------------------------------


@pytest.mark.parametrize("due_on", ["0001-01-01", "1999-12-31", "2031-06-16"])
async def test_a_review_due_outside_2000_to_five_years_ahead_is_refused(
    planning: httpx.AsyncClient, tokens: Tokens, due_on: str
):
    r = await planning.post(
        "/v1/reviews",
        json={"plan_id": str(uuid4()), "due_on": due_on, "reason": "A change in needs"},
        headers=tokens.headers(Role.CARE_MANAGER),
    )
    assert refused_naming_the_range(r, "2000-01-01", "2031-06-15"), r.text


async def test_a_review_due_within_the_range_reaches_the_plan_lookup(
    planning: httpx.AsyncClient, tokens: Tokens
):
    r = await planning.post(
        "/v1/reviews",
        json={"plan_id": str(uuid4()), "due_on": "2031-06-15", "reason": "A change in needs"},
        headers=tokens.headers(Role.CARE_MANAGER),
    )
    assert r.status_code == 404, r.text  # the date passed; the plan does not exist


async def test_reviews_due_before_a_day_out_of_range_are_refused(
    planning: httpx.AsyncClient, tokens: Tokens
):
    r = await planning.get(
        "/v1/reviews", params={"due_before": "9999-12-31"}, headers=tokens.headers(Role.AUDITOR)
    )
    assert refused_naming_the_range(r, "2000-01-01", "2031-06-15"), r.text


# --- audit and allocation -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/kpis/ni130", "/v1/returns/kpis.csv"])
async def test_figures_as_of_a_day_out_of_range_are_refused(
    audit: httpx.AsyncClient, tokens: Tokens, path: str
):
    r = await audit.get(path, params={"as_of": "0001-01-01"}, headers=tokens.headers(Role.AUDITOR))
    assert refused_naming_the_range(r, "2000-01-01", "2031-06-15"), r.text


@pytest.mark.parametrize("quarter", ["1999-Q4", "2032-Q1"])
async def test_a_return_for_a_quarter_out_of_range_is_refused(
    audit: httpx.AsyncClient, tokens: Tokens, quarter: str
):
    r = await audit.get(
        "/v1/returns/cld", params={"quarter": quarter}, headers=tokens.headers(Role.AUDITOR)
    )
    assert r.status_code == 422 and "2000-Q1 to 2031-Q4" in r.text, r.text


async def test_a_policy_cannot_be_adopted_more_than_five_years_ahead(
    allocation: httpx.AsyncClient, tokens: Tokens
):
    policy = policy_document(load_policy(POLICIES_DIR / "lancashire.yaml"))
    policy["version"] = "2099.1"
    later = (TODAY + timedelta(days=6 * 366)).isoformat()
    r = await allocation.post(
        "/v1/policies",
        json={"policy": policy, "effective_from": later},
        headers=tokens.headers(Role.OPERATIONS),
    )
    assert refused_naming_the_range(r, "2000-01-01", "2031-06-15"), r.text


def test_a_control_character_in_the_conversion_file_is_refused_by_line_and_field(
    tmp_path: Path,
):
    clients = tmp_path / "clients.jsonl"
    clients.write_text(
        '{"ref": "LEG1", "row": {"team": "North"}}\n'
        '{"ref": "LEG2", "row": {"team": "Nor\\u0000th"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"clients.jsonl:2: row.team holds a control character"):
        read_clients(clients)
