"""The portal's file uploads in-process: the chosen file goes to the service as text/csv,
a clean file's counts come back as a message, and a refused file shows every refused row
with its line, column and reason, and says that nothing was imported.

The portal talks to the assessment and audit services run in-process through httpx's
ASGI transport; the confirmation file's whole path (released payment marked failed, the
failure on the finance and person pages) is in tests/test_portal_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from contracts.vocabulary import Role
from servicekit.testing import Tokens, running
from services.assessment.api import create_app as create_assessment
from services.assessment.settings import Settings as AssessmentSettings
from services.audit.api import create_app as create_audit
from services.audit.settings import Settings as AuditSettings
from services.payments.api import create_app as create_payments
from services.payments.settings import Settings as PaymentsSettings
from services.payments.tests import test_api as payments_tests
from services.payments.tests.test_api import START, active_deployment, release_due
from services.portal.api import create_app
from services.portal.clients import Services
from services.portal.finance import FEATURES, previous_quarters, quarter_of
from services.portal.formatting import money
from services.portal.settings import Settings
from services.portal.tests.test_portal import csrf_of, sign_in

HEADER = (
    "legacy_client_id,forename,surname,date_of_birth,nhs_number,postcode,"
    "client_group,team,key_worker,community_based\r\n"
)
GOOD = (
    HEADER + "CF100234,Edith,Wolstenholme,12/03/1938,943 476 5919,PR1 8XJ,OP,Preston OP,KW17,Y\r\n"
    "CF100235,Darren,Pilkington,1990-07-01,4010232137,BB2 1LX,LD,Blackburn LD,KW3,\r\n"
)
BAD = (
    GOOD
    + "CF200002,Tom,Young,2001-05-05,,PR2 2AA,older_people,,KW1,\r\n"
    + "CF200003,Too,Few,1950-01-01\r\n"
)

# Payments pays nothing before it is due by its own clock: the payments these tests release
# are released on the day they fall due, by payments' clock (autouse).
payments_clock = payments_tests.service_clock


@pytest.fixture
async def assessment(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[FastAPI]:
    app = create_assessment(AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app):
        yield app


@pytest.fixture
async def audit(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[FastAPI]:
    app = create_audit(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app):
        yield app


@pytest.fixture
async def portal(
    data_dir: Path, policies_dir: Path, assessment: FastAPI, audit: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """The portal; its calls to assessment and audit are served in-process, by host name."""
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        await services.close()
        services._client = httpx.AsyncClient(
            mounts={
                "http://assessment": httpx.ASGITransport(app=assessment),
                "http://audit": httpx.ASGITransport(app=audit),
            }
        )
        services.urls = {name: f"http://{name}" for name in services.urls}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


async def upload_people(portal: httpx.AsyncClient, text: str) -> httpx.Response:
    page = await portal.get("/imports")
    assert page.status_code == 200
    return await portal.post(
        "/imports/people",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("extract.csv", text.encode(), "text/csv")},
    )


async def people_in_assessment(tokens: Tokens, assessment: FastAPI) -> list[str]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=assessment), base_url="http://assessment"
    ) as client:
        response = await client.get(
            "/v1/assessments", headers=tokens.headers(Role.OPERATIONS, "lancashire")
        )
    assert response.status_code == 200, response.text
    return [item["person_id"] for item in response.json()["items"]]


async def test_a_clean_extract_is_sent_to_assessment_and_the_counts_shown(
    portal: httpx.AsyncClient, assessment: FastAPI, tokens: Tokens
) -> None:
    await sign_in(portal, "operations")
    response = await upload_people(portal, GOOD)
    assert response.status_code == 303 and response.headers["location"] == "/imports"
    page = await portal.get("/imports")
    assert "People imported: 2 line(s); 2 new" in page.text
    assert len(await people_in_assessment(tokens, assessment)) == 2

    again = await upload_people(portal, GOOD)  # the same file again changes nothing
    assert again.status_code == 303
    assert (
        "0 new (an assessment started for each), 2 imported before"
        in (await portal.get("/imports")).text
    )


async def test_a_refused_extract_lists_every_refused_row_and_imports_nobody(
    portal: httpx.AsyncClient, assessment: FastAPI, tokens: Tokens
) -> None:
    await sign_in(portal, "operations")
    response = await upload_people(portal, BAD)
    assert response.status_code == 422
    html = response.text
    assert "Nothing was imported" in html
    assert "2 of the 4 line(s) in the file were refused, so nothing in the file was imported" in (
        html
    )
    rows = re.findall(
        r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>',
        html,
    )
    refused = {(int(line), column) for line, column, _, _ in rows}
    assert refused == {(4, "date_of_birth"), (4, "team"), (5, "the whole line")}
    [child] = [r for r in rows if r[1] == "date_of_birth"]
    assert child[2] == "CF200002" and "under 18" in child[3]
    assert await people_in_assessment(tokens, assessment) == []


async def test_an_upload_needs_a_file_the_forms_token_and_a_role_that_may(
    portal: httpx.AsyncClient,
) -> None:
    await sign_in(portal, "operations")
    page = await portal.get("/imports")
    no_file = await portal.post(
        "/imports/people", data={"csrf_token": csrf_of(page.text)}, follow_redirects=True
    )
    assert "Choose a CSV file to upload." in no_file.text
    forged = await portal.post(
        "/imports/people",
        data={"csrf_token": "not-the-token"},
        files={"file": ("extract.csv", GOOD.encode(), "text/csv")},
    )
    assert forged.status_code == 403 and "This form has expired" in forged.text

    await sign_in(portal, "care_manager")
    page = await portal.get("/imports")
    assert "Only the operations role imports people." in page.text
    refused = await portal.post(
        "/imports/people",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("extract.csv", GOOD.encode(), "text/csv")},
        follow_redirects=True,
    )
    assert "You may not do this" in refused.text  # the service's refusal, not the portal's


async def test_the_cld_return_check_and_downloads_for_the_roles_allowed(
    portal: httpx.AsyncClient,
) -> None:
    await sign_in(portal, "auditor")
    page = await portal.get("/imports?quarter=2010-Q2")
    assert page.status_code == 200
    assert "meets every rule of" in page.text  # nobody yet: an empty return is valid
    assert 'href="/returns/cld.csv?quarter=2010-Q2"' in page.text
    csv = await portal.get("/returns/cld.csv?quarter=2010-Q2")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "cld-2010-Q2.csv" in csv.headers["content-disposition"]
    kpis = await portal.get("/returns/kpis.csv")
    assert kpis.status_code == 200 and "NI130" in kpis.text.upper().replace(" ", "")

    await sign_in(portal, "finance")
    page = await portal.get("/imports?quarter=2010-Q2")
    assert "cld.csv" not in page.text and "Auditors, operations and team managers" in page.text
    assert (await portal.get("/returns/cld.csv?quarter=2010-Q2")).status_code == 403


def test_finance_features_name_endpoints_the_services_offer(
    data_dir: Path, policies_dir: Path
) -> None:
    where = {"data_dir": data_dir, "policies_dir": policies_dir}
    documents = {
        "assessment": create_assessment(AssessmentSettings(**where)).openapi(),
        "audit": create_audit(AuditSettings(**where)).openapi(),
        "payments": create_payments(PaymentsSettings(**where)).openapi(),
    }
    for feature in FEATURES:
        paths = documents[feature.service]["paths"]
        assert feature.method in paths.get(feature.path, {}), (feature.key, feature.path)


def test_quarters_are_calendar_quarters_newest_first() -> None:
    assert quarter_of(date(2026, 9, 30)) == "2026-Q3"
    assert quarter_of(date(2026, 1, 1)) == "2026-Q1"
    assert previous_quarters(date(2026, 2, 10), 3) == ["2026-Q1", "2025-Q4", "2025-Q3"]


@pytest.fixture
async def payments(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[FastAPI]:
    app = create_payments(PaymentsSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app):
        yield app


@pytest.fixture
async def finance_portal(
    data_dir: Path, policies_dir: Path, payments: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """The portal with only payments behind it: the other services' paths answer 404 there,
    which the pages treat as nothing to show, as for a record the caller may not see."""
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        await services.close()
        services._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=payments))
        services.urls = {name: "http://payments" for name in services.urls}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


async def upload_confirmations(portal: httpx.AsyncClient, text: str) -> httpx.Response:
    page = await portal.get("/finance")
    return await portal.post(
        "/finance/confirmations",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("confirmations.csv", text.encode(), "text/csv")},
    )


async def test_a_confirmation_file_marks_a_payment_failed_on_the_finance_and_person_pages(
    finance_portal: httpx.AsyncClient, payments: FastAPI, tokens: Tokens
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=payments), base_url="http://payments"
    ) as service:
        deployment = await active_deployment(payments, service, tokens, person_id="p-1")
        released = await release_due(service, tokens, START)
        assert released.status_code == 200, released.text
        schedule = await service.get(
            f"/v1/deployments/{deployment['deployment_id']}/schedule",
            headers=tokens.headers("finance"),
        )
    [instalment] = [i for i in schedule.json()["items"] if i["payment_id"]]
    payment_id, amount = instalment["payment_id"], instalment["amount_pence"]
    header = "payment_id,outcome,amount_pence,processed_on,reason,finance_reference\r\n"
    on = START.isoformat()
    portal = finance_portal
    await sign_in(portal, "finance")

    refused = await upload_confirmations(
        portal, header + f"{payment_id},failed,{amount + 1},{on},Account closed,B-1\r\n"
    )
    assert refused.status_code == 422
    assert "1 of the 1 line(s) in the file was refused" in refused.text
    assert f'<td class="num">2</td><td>amount_pence</td><td>{payment_id}</td>' in refused.text
    assert "No failed payments." in refused.text  # nothing was recorded

    accepted = await upload_confirmations(
        portal, header + f"{payment_id},failed,{amount},{on},Account closed,B-1\r\n"
    )
    assert accepted.status_code == 303
    page = (await portal.get("/finance")).text
    assert "Confirmation file imported: 1 line(s); 0 paid, 1 failed, 0 already recorded." in page
    row = re.search(r'<tr><td><a href="/people/p-1#payments">p-1</a>.*?</tr>', page)
    assert row and money(amount) in row.group(0) and "Account closed" in row.group(0)

    person = (await portal.get("/people/p-1")).text
    assert "1 payment(s) failed" in person
    assert '<span class="tag bad">Failed</span> Account closed' in person

    await sign_in(portal, "person", person_id="p-1")
    mine = (await portal.get("/me")).text
    assert "This payment did not go through: Account closed. The council will contact you." in mine
