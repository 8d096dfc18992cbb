# ruff: noqa: E501  (RECIPES is a table: one route a line)
"""Every route × every role × own council / another council (× own person / another person).

The expected rights are data: contracts/rights.py. For each service the real app runs
in-process (its lifespan: migrations, relay, consumers) on a fresh SQLite data directory,
with records seeded through its own API and the events it consumes, for three people:
`p-own` (the caller's council; a person's or representative's token names them),
`p-neighbour` (the same council, another person) and `p-far` (another council). Then each
route listed for the service is called
- without a token: 401;
- by every role whose right it is not: 403 (before any record is looked up, so the
  answer says nothing about whether the id exists);
- by every role whose right it is, on p-far's record: 404 (in a file or a bulk request,
  the line or row naming it answered as if it did not exist); by a person or
  representative on p-neighbour's record: 404;
- by every role whose right it is, on p-own's record: neither 401, 403, 404 nor 5xx
  (a success where the seeded state allows it; a 409 when an earlier cell already did it);
- for a page of records: never a record of another council (nor, for a citizen, of
  another person).
Refusals are checked first, so a success cannot change what a refusal meets. The test
fails when a service documents a route the table does not list.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.policy import PolicyBook, load_policy, policy_document
from contracts.rights import RIGHTS, Right, Scope, rights_of, with_table
from contracts.vocabulary import CITIZEN_ROLES, AgeBand, ClientGroup, CompletedBy, Role
from pbj.journey import load_policies
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import (
    POLICIES_DIR,
    REPO_ROOT,
    Tokens,
    deliver,
    outbox_events,
    running,
    runtime_of,
)
from services.assessment.api import IDENTITIES_PATH
from services.assessment.financial import FINANCIAL_ASSESSMENT_PATH
from services.payments.statement_api import PERSONAL_DATA_PATHS as STATEMENT_PERSONAL_DATA_PATHS
from whatif.generate import outgoing

OWN, OTHER = "lancashire", "council_a"
SUBJECTS = {"own": (OWN, "p-own"), "neighbour": (OWN, "p-neighbour"), "far": (OTHER, "p-far")}
"""Whose record a cell aims at: (council, person)."""

SERVICES = ("assessment", "allocation", "planning", "payments", "audit")
START = date(2010, 4, 5)
TODAY = START + timedelta(days=14)
"""The services' today: payments are arranged to start on it, and nothing later is due."""
CARE_ACT_DAY = date(2015, 4, 1)
"""The Care Act's eligibility criteria apply from this day (policies/*.yaml `eligibility`)."""
BOOK: PolicyBook = load_policies(POLICIES_DIR)


@pytest.fixture(autouse=True)
def services_today() -> Iterator[None]:
    with clock.using(SettableClock(datetime.combine(TODAY, datetime.min.time(), UTC))):
        yield


@dataclass
class Service:
    name: str
    app: FastAPI
    client: httpx.AsyncClient
    tokens: Tokens
    tokens_dir: Path
    cache: dict[Any, Any] = field(default_factory=dict)

    def headers(self, role: Role, council: str = OWN, person_id: str = "p-own") -> dict[str, str]:
        person = person_id if role in CITIZEN_ROLES else None
        key = ("token", role, council, person)
        if key not in self.cache:
            self.cache[key] = self._mint(role, council, person)
        return dict(self.cache[key])

    def _mint(self, role: Role, council: str, person: str | None) -> dict[str, str]:
        return self.tokens.headers(
            role, council, user_id=f"{role.value}@{council}", person_id=person
        )

    async def ok(self, method: str, url: str, role: Role, council: str, **kwargs: Any) -> Any:
        r = await self.client.request(method, url, headers=self.headers(role, council), **kwargs)
        assert r.status_code < 300, f"seeding {method} {url}: {r.status_code} {r.text}"
        return r.json()


Target = dict[str, Any]
"""What one cell sends: path parameters and, for a route with a body, `json` (or `csv`,
the text of a file)."""


@dataclass(frozen=True)
class Recipe:
    """How to aim a route at a subject's record: seed it (fresh per route) and say what
    to send. Returns None when the route has nothing of that subject's to aim at."""

    target: Callable[[Service, str, str], Awaitable[Target | None]]
    elsewhere: Callable[[httpx.Response], bool] | None = None
    """For a route that answers another council's record inside its report (a line of a
    file, a row of a bulk request) rather than with 404: whether the answer to a cell
    aimed at another council's record says, there, that it does not exist."""
    succeeded: Callable[[httpx.Response], bool] | None = None
    """For a route that answers 200 with a result per row: whether the rows went through
    (a role may be allowed the route but held back by its approval limit in a row)."""
    today: date | None = None
    """The services' today for this route, where the rule it applies came into force after
    TODAY (the Care Act's eligibility criteria apply from 1 April 2015)."""


# --- seeding, per service ---------------------------------------------------------------


def domain_levels(council: str, level_index: int = 0) -> dict[str, int]:
    policy = BOOK.current(council)
    return {d.key: d.levels[level_index].level for d in policy.questionnaire.domains}


def validated(council: str, person_id: str) -> ev.AssessmentValidated:
    return ev.AssessmentValidated(
        person_id=person_id,
        council=council,
        assessment_id=uuid.uuid4(),
        client_group=ClientGroup.LEARNING_DISABILITY,
        completed_by=CompletedBy.SUPPORTED,
        team="North",
        key_worker_id="kw-1",
        age_band=AgeBand.AGE_18_64,
        community_based=True,
        domain_levels=domain_levels(council),
        adjustments=[],
        significant_informal_support=False,
        needs_24_7=False,
        carer_support_weekly_pence=0,
        other_funding=[],
        outcomes=["Live in my own flat"],
        risks=[],
        validated_by="care_manager:cm-1",
        policy_version=BOOK.current(council).policy_version,
    )


# assessment


async def assessment_in(s: Service, council: str, person_id: str, state: str) -> str:
    start = {
        "person_id": person_id,
        "client_group": "learning_disability",
        "completed_by": "supported",
        "team": "North",
        "key_worker_id": "kw-1",
        "age_band": "18-64",
    }
    a = await s.ok("POST", "/v1/assessments", Role.CARE_MANAGER, council, json=start)
    url = f"/v1/assessments/{a['assessment_id']}"
    if state in ("answered", "submitted"):
        await s.ok("PUT", f"{url}/answers", Role.CARE_MANAGER, council, json=answers(council))
    if state == "submitted":
        await s.ok("POST", f"{url}/submit", Role.CARE_MANAGER, council)
    return str(a["assessment_id"])


def answers(council: str) -> dict[str, Any]:
    return {
        "domains": domain_levels(council),
        "significant_informal_support": False,
        "needs_24_7": False,
    }


def an_assessment(state: str, body: Callable[[str], Any] | None = None) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        out: Target = {"assessment_id": await assessment_in(s, council, person_id, state)}
        if body is not None:
            out["json"] = body(council)
        return out

    return Recipe(target)


async def start_body(s: Service, council: str, person_id: str) -> Target | None:
    if council != OWN:
        return None  # a new assessment is always the caller's council's
    return {
        "json": {
            "person_id": person_id,
            "client_group": "learning_disability",
            "completed_by": "self",
            "team": "North",
            "key_worker_id": "kw-1",
            "age_band": "18-64",
        }
    }


async def questionnaire(s: Service, council: str, person_id: str) -> Target:
    return {"council": council}


def personal_details(council: str, person_id: str) -> dict[str, Any]:
    return {"name": f"Someone {person_id}", "postcode": "PR1 2HE"}


async def details_to_correct(s: Service, council: str, person_id: str) -> Target:
    await assessment_in(s, council, person_id, "draft")
    return {"person_id": person_id, "json": personal_details(council, person_id)}


async def details_to_erase(s: Service, council: str, person_id: str) -> Target:
    """A person with sealed details whose retention has ended: the service's retention
    check takes RETENTION_TODAY as today (see SETTINGS)."""
    await details_to_correct(s, council, person_id)
    url = f"/v1/people/{person_id}/personal-details"
    await s.ok("PUT", url, Role.CARE_MANAGER, council, json=personal_details(council, person_id))
    return {"person_id": person_id}


async def identities_of(s: Service, council: str, person_id: str) -> Target:
    """A person with sealed details, named in the body of a request for a return (a
    person of their own: the erasure route's cells erase the others' details)."""
    await details_to_erase(s, council, f"{person_id}-cld")
    return {"json": {"person_ids": [f"{person_id}-cld"]}}


def no_identity(answer: httpx.Response) -> bool:
    """Another council's person is left out of the answer, as one never recorded is."""
    return answer.status_code == 200 and answer.json()["items"] == []


async def people_extract(s: Service, council: str, person_id: str) -> Target | None:
    """A CareFirst-style extract of one client: everyone in it joins the caller's council."""
    if council != OWN:
        return None
    header = "legacy_client_id,forename,surname,date_of_birth,postcode,client_group,team,key_worker"
    row = f"CF-{person_id},Alex,Someone,1970-05-01,PR1 2HE,LD,North,kw-1"
    return {"csv": f"{header}\n{row}\n"}


async def assessments_to_convert(s: Service, council: str, person_id: str) -> Target | None:
    """One existing client; a row names only a person, who is always the caller's council's."""
    if council != OWN:
        return None
    start = (await start_body(s, council, f"{person_id}-converted")) or {}
    row = {
        "ref": f"conv-{person_id}",
        "start": start["json"],
        "answers": answers(council),
        "validation": {},
    }
    return {"json": {"rows": [row]}}


def rows_as_unknown(answer: httpx.Response) -> bool:
    """A bulk request's rows naming another council's records: each answered on its own as
    if the record had not arrived (pending), and none of them written."""
    if answer.status_code != 200:
        return False
    body = answer.json()
    return body["done"] == 0 and all(row["outcome"] == "pending" for row in body["rows"])


def rows_converted(answer: httpx.Response) -> bool:
    rows = answer.json()["rows"]
    return bool(rows) and all(row["outcome"] in ("done", "already_done") for row in rows)


def bulk(target: Callable[[Service, str, str], Awaitable[Target | None]]) -> Recipe:
    return Recipe(target, elsewhere=rows_as_unknown, succeeded=rows_converted)


# allocation


async def budget_of(s: Service, council: str, person_id: str, *, agreed: bool = False) -> str:
    """The person's budget (one a person), with a fresh revision from a new validation:
    agreed, or awaiting agreement."""
    await deliver(s.app, validated(council, person_id))
    url = f"/v1/budgets?person_id={person_id}"
    (budget,) = (await s.ok("GET", url, Role.AUDITOR, council))["items"]
    if agreed:
        await s.ok(
            "POST", f"/v1/budgets/{budget['budget_id']}/agree", Role.TEAM_MANAGER, council, json={}
        )
    return str(budget["budget_id"])


def a_budget(*, agreed: bool, body: Any = None) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        out: Target = {"budget_id": await budget_of(s, council, person_id, agreed=agreed)}
        if body is not None:
            out["json"] = body
        return out

    return Recipe(target)


async def calculation(s: Service, council: str, person_id: str) -> Target | None:
    if council != OWN:
        return None
    return {
        "json": {
            "client_group": "learning_disability",
            "domain_levels": domain_levels(council),
            "significant_informal_support": False,
            "needs_24_7": False,
        }
    }


def policy_proposal(council: str, effective_from: date | None = None) -> dict[str, Any]:
    document = policy_document(load_policy(POLICIES_DIR / f"{council}.yaml"))
    document["version"] = "2099.1"  # no policy file has it
    if effective_from is not None:
        document["effective_from"] = effective_from.isoformat()
    return document


async def adoption(s: Service, council: str, person_id: str) -> Target:
    """A version for next year: adopting it leaves the policy in force, and so every
    later route's answers, as they were."""
    effective_from = TODAY + timedelta(days=365)
    body = {
        "policy": policy_proposal(council, effective_from),
        "effective_from": str(effective_from),
    }
    return {"json": body}


async def whatif(s: Service, council: str, person_id: str) -> Target:
    """The what-if reads the cohort from the event log itself (the other recipes hand
    events to the consumers directly), so one validated assessment goes onto the log; its
    person is one of their own, whose budget no other cell looks at."""
    if council == OWN:
        envelope = Envelope(event=validated(council, f"{person_id}-whatif"))
        await runtime_of(s.app).event_log.publish([outgoing(envelope)])
    return {"json": {"policy": policy_proposal(council)}}


async def budgets_to_agree(s: Service, council: str, person_id: str) -> Target:
    """A calculated budget awaiting agreement, named by its person in a conversion row."""
    converted = f"{person_id}-converted"
    await deliver(s.app, validated(council, converted))
    return {"json": {"rows": [{"ref": f"conv-{person_id}", "person_id": converted}]}}


# planning


async def issued_budget(s: Service, council: str, person_id: str) -> uuid.UUID:
    assessment = validated(council, person_id)
    await deliver(s.app, assessment)
    budget_id = uuid.uuid4()
    await deliver(
        s.app,
        ev.BudgetIssued(
            person_id=person_id,
            council=council,
            budget_id=budget_id,
            assessment_id=assessment.assessment_id,
            client_group=assessment.client_group,
            stage=ev.BudgetStage.INDICATIVE,
            revision=1,
            points=40,
            scale=ev.Scale.STANDARD,
            weekly_pence=25_000,
            annual_pence=25_000 * 52,
            ceiling_weekly_pence=None,
            ceiling_exception=False,
            explanation=[],
            agreed_by="team_manager:tm-1",
            agreed_by_role=Role.TEAM_MANAGER,
            policy_version=assessment.policy_version,
        ),
    )
    return budget_id


def plan_body(person_id: str, budget_id: uuid.UUID) -> dict[str, Any]:
    line = {
        "description": "Personal assistant, mornings",
        "provider_kind": "personal_assistant",
        "frequency": "weekly",
        "amount_pence": 10_000,
        "domains": ["personal_care"],
    }
    return {"person_id": person_id, "budget_id": str(budget_id), "lines": [line]}


async def plan_in(s: Service, council: str, person_id: str, state: str) -> tuple[str, str]:
    budget_id = await issued_budget(s, council, person_id)
    plan = await s.ok(
        "POST", "/v1/plans", Role.CARE_MANAGER, council, json=plan_body(person_id, budget_id)
    )
    url = f"/v1/plans/{plan['plan_id']}"
    if state in ("submitted", "signed-off"):
        await s.ok("POST", f"{url}/submit", Role.CARE_MANAGER, council, json={})
    if state == "signed-off":
        on = {"on": START.isoformat()}
        await s.ok("POST", f"{url}/sign-off", Role.TEAM_MANAGER, council, json=on)
    return str(plan["plan_id"]), str(budget_id)


def a_plan(state: str, body: Callable[[str, str], Any] | None = None) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        plan_id, budget_id = await plan_in(s, council, person_id, state)
        out: Target = {"plan_id": plan_id}
        if body is not None:
            out["json"] = body(person_id, budget_id)
        return out

    return Recipe(target)


async def new_plan(s: Service, council: str, person_id: str) -> Target:
    budget_id = await issued_budget(s, council, person_id)
    return {"json": plan_body(person_id, budget_id)}


async def a_review_of(s: Service, council: str, person_id: str) -> str:
    plan_id, _ = await plan_in(s, council, person_id, "signed-off")
    page = await s.ok("GET", "/v1/reviews?limit=100", Role.CARE_MANAGER, council)
    (review_id,) = [r["review_id"] for r in page["items"] if r["plan_id"] == plan_id]
    return str(review_id)


def a_review(body: Any = None) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        out: Target = {"review_id": await a_review_of(s, council, person_id)}
        if body is not None:
            out["json"] = body
        return out

    return Recipe(target)


async def new_review(s: Service, council: str, person_id: str) -> Target:
    plan_id, _ = await plan_in(s, council, person_id, "signed-off")
    due = {"plan_id": plan_id, "due_on": "2010-06-01", "reason": "A change in needs"}
    return {"json": due}


async def new_change_of_circumstances(s: Service, council: str, person_id: str) -> Target:
    plan_id, _ = await plan_in(s, council, person_id, "signed-off")
    change = {"plan_id": plan_id, "change": "carer_stopped", "happened_on": START.isoformat()}
    return {"json": change}


async def plans_to_convert(s: Service, council: str, person_id: str) -> Target:
    converted = f"{person_id}-converted"
    budget_id = await issued_budget(s, council, converted)
    row = {
        "ref": f"conv-{person_id}",
        "plan": plan_body(converted, budget_id),
        "sign_off_on": START.isoformat(),
    }
    return {"json": {"rows": [row]}}


# payments


async def deployment_of(s: Service, council: str, person_id: str, state: str) -> str:
    async def ids() -> set[str]:
        page = await s.ok("GET", "/v1/deployments?limit=100", Role.FINANCE, council)
        return {d["deployment_id"] for d in page["items"] if d["person_id"] == person_id}

    before = await ids()
    await deliver(
        s.app,
        ev.PlanSignedOff(
            person_id=person_id,
            council=council,
            plan_id=uuid.uuid4(),
            budget_id=uuid.uuid4(),
            assessment_id=uuid.uuid4(),
            plan_version=1,
            weekly_pence=20_000,
            annual_pence=20_000 * 52,
            one_off_pence=0,
            contingency_weekly_pence=0,
            lines=[],
            request_for_more=False,
            signed_off_by="tm-1",
            signed_off_by_role=Role.TEAM_MANAGER,
            first_review_on=START,  # signed off weeks before START
            policy_version=BOOK.current(council).policy_version,
        ),
    )
    (deployment_id,) = (await ids()) - before
    url = f"/v1/deployments/{deployment_id}"
    if state in ("arranged", "agreed", "suspended"):
        await s.ok("PUT", f"{url}/arrangement", Role.CARE_MANAGER, council, json=ARRANGEMENT)
    if state in ("agreed", "suspended"):
        signed = {"signed_on": (START - timedelta(days=3)).isoformat()}
        await s.ok("POST", f"{url}/agreement", Role.CARE_MANAGER, council, json=signed)
    if state == "suspended":
        await s.ok("POST", f"{url}/suspend", Role.FINANCE, council, json=HOLD)
    return str(deployment_id)


ARRANGEMENT = {
    "parts": [{"option": "direct_payment"}],
    "frequency": "weekly",
    "first_due_on": TODAY.isoformat(),
    "assessed_max_weekly_contribution_pence": 0,
}
HOLD = {"reason": "Bank details being checked"}


def a_deployment(state: str, body: Any = None) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        out: Target = {"deployment_id": await deployment_of(s, council, person_id, state)}
        if body is not None:
            out["json"] = body
        return out

    return Recipe(target)


def council_wide(body: Any = None, query: str = "") -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target | None:
        if council != OWN:
            return None
        out: Target = {"query": query}
        if body is not None:
            out["json"] = body
        return out

    return Recipe(target)


async def released(s: Service, council: str, person_id: str) -> Target | None:
    """Payments released, so there is something to export."""
    if council != OWN:
        return None
    await deployment_of(s, council, person_id, "agreed")
    as_of = {"as_of": (START + timedelta(days=14)).isoformat()}
    await s.ok("POST", "/v1/payments/release-due", Role.FINANCE, council, json=as_of)
    return {"json": {"up_to": "2010-12-31"}}


async def export_batch(s: Service, council: str, person_id: str) -> Target:
    await deployment_of(s, council, person_id, "agreed")
    as_of = {"as_of": (START + timedelta(days=14)).isoformat()}
    await s.ok("POST", "/v1/payments/release-due", Role.FINANCE, council, json=as_of)
    batch = await s.ok(
        "POST", "/v1/exports/payments", Role.FINANCE, council, json={"up_to": "2010-12-31"}
    )
    return {"batch_id": batch["batch_id"]}


async def released_payment(s: Service, council: str, person_id: str) -> dict[str, Any]:
    """One payment of the person's released, as the feed hands it to finance."""
    await deployment_of(s, council, person_id, "agreed")
    as_of = {"as_of": TODAY.isoformat()}
    await s.ok("POST", "/v1/payments/release-due", Role.FINANCE, council, json=as_of)
    feed = await s.ok("GET", "/v1/payments/feed?limit=100", Role.FINANCE, council)
    return next(item for item in feed["items"] if item["person_id"] == person_id)


CONFIRMATION_HEADER = "payment_id,outcome,amount_pence,processed_on,reason,finance_reference"


def confirmation(payment: dict[str, Any], outcome: str) -> str:
    reason = "Account closed" if outcome == "failed" else ""
    line = (
        f"{payment['payment_id']},{outcome},{payment['amount_pence']},"
        f"{payment['released_on']},{reason},FIN-{payment['instalment_number']}"
    )
    return f"{CONFIRMATION_HEADER}\n{line}\n"


async def confirmations(s: Service, council: str, person_id: str) -> Target:
    return {"csv": confirmation(await released_payment(s, council, person_id), "paid")}


def payment_unknown(answer: httpx.Response) -> bool:
    """A confirmation line naming another council's payment: refused as no such payment."""
    if answer.status_code != 422:
        return False
    rejected = answer.json().get("rejected", [])
    return [r["column"] for r in rejected] == ["payment_id"] and all(
        "no payment with this id" in r["reason"] for r in rejected
    )


async def failed_payments(s: Service, council: str, person_id: str) -> Target:
    """A payment finance reported failed, for each person (people of their own: the
    deployments other routes seeded would hold theirs back; so a citizen's page holds
    nothing of theirs, and the check is that it holds nobody else's)."""
    payment = await released_payment(s, council, f"{person_id}-outcomes")
    headers = {**s.headers(Role.FINANCE, council), "Content-Type": "text/csv"}
    content = confirmation(payment, "failed").encode("utf-8")
    r = await s.client.post("/v1/payments/confirmations", headers=headers, content=content)
    assert r.status_code == 200, r.text
    return {"query": "status=failed"}


async def deployments_to_convert(s: Service, council: str, person_id: str) -> Target:
    """A deployment opened by a signed-off plan, set up by a conversion row."""
    deployment_id = await deployment_of(s, council, person_id, "new")
    deployment = await s.ok("GET", f"/v1/deployments/{deployment_id}", Role.FINANCE, council)
    row = {
        "ref": f"conv-{person_id}",
        "person_id": person_id,
        "plan_id": deployment["plan_id"],
        "arrangement": ARRANGEMENT,
        "signed_on": (START - timedelta(days=3)).isoformat(),
    }
    return {"json": {"rows": [row]}}


CARD_HEADER = (
    "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,merchant_category"
)


def card_file(person_id: str) -> str:
    """A card account holding £5,000: above what any council lets a person keep on £200 a
    week (Council A: 10 weeks, £2,000; hold_or_clawback councils: nothing)."""
    return (
        f"{CARD_HEADER}\n"
        f"PPC-{person_id},{person_id},transaction,TX-{person_id},{START},-1500,groceries\n"
        f"PPC-{person_id},{person_id},balance,,{START},500000,\n"
    )


async def card_file_for(s: Service, council: str, person_id: str) -> Target:
    await deployment_of(s, council, person_id, "agreed")
    return {"csv": card_file(person_id)}


def person_unknown(answer: httpx.Response) -> bool:
    """A card file row naming another council's person: refused as nobody paid here."""
    if answer.status_code != 422:
        return False
    rejected = answer.json().get("rejected", [])
    return {r["column"] for r in rejected} == {"person_id"} and all(
        "no direct payment" in r["reason"] for r in rejected
    )


async def card_account_of(s: Service, council: str, person_id: str, *, notice: bool) -> Target:
    """The person's card account with a surplus flagged (and a notice sent), seeded on
    TODAY whatever day the route's cells run on."""
    with clock.using(SettableClock(datetime.combine(TODAY, time(10), UTC))):
        await deployment_of(s, council, person_id, "agreed")
        headers = {**s.headers(Role.FINANCE, council), "Content-Type": "text/csv"}
        content = card_file(person_id).encode("utf-8")
        r = await s.client.post("/v1/card-accounts/transactions", headers=headers, content=content)
        assert r.status_code == 200, r.text
        page = await s.ok("GET", f"/v1/card-accounts?person_id={person_id}", Role.FINANCE, council)
        account_id = page["items"][0]["account_id"]
        out: Target = {"account_id": account_id}
        if notice:
            sent = await s.ok(
                "POST",
                f"/v1/card-accounts/{account_id}/recoup-notices",
                Role.FINANCE,
                council,
                json={"amount_pence": 100, "reason": "Money built up beyond the plan"},
            )
            out["notice_id"] = sent["notices"][-1]["notice_id"]
    return out


def a_card_account(body: Any = None, *, notice: bool = False) -> Recipe:
    async def target(s: Service, council: str, person_id: str) -> Target:
        out = await card_account_of(s, council, person_id, notice=notice)
        if body is not None:
            out["json"] = body
        return out

    return Recipe(target)


async def card_accounts_listed(s: Service, council: str, person_id: str) -> Target:
    await card_account_of(s, council, f"{person_id}-cards", notice=False)
    return {}


NOTICE_OVER = TODAY + timedelta(days=60)
"""Past every council's period to respond (policies/*.yaml monitoring.recoup_notice)."""


async def statement_of(s: Service, council: str, person_id: str) -> str:
    """The person's personal budget statement, issued when their deployment is arranged."""
    await deployment_of(s, council, person_id, "arranged")
    url = f"/v1/people/{person_id}/budget-statements"
    return str((await s.ok("GET", url, Role.FINANCE, council))["items"][0]["statement_id"])


async def statements_held(s: Service, council: str, person_id: str) -> Target:
    await statement_of(s, council, person_id)
    return {"person_id": person_id}


async def a_statement(s: Service, council: str, person_id: str) -> Target:
    return {
        "statement_id": await statement_of(s, council, person_id),
        "json": {"reason": "Nothing is left for the evening visits I need"},
    }


async def a_challenge(s: Service, council: str, person_id: str) -> Target:
    statement_id = await statement_of(s, council, person_id)
    r = await s.client.post(
        f"/v1/budget-statements/{statement_id}/challenges",
        json={"reason": "Nothing is left for the evening visits I need"},
        headers=s.headers(Role.PERSON, council, person_id),
    )
    assert r.status_code == 201, r.text
    return {
        "challenge_id": r.json()["challenge_id"],
        "json": {"outcome": "not_upheld", "response": "The evening visits are in the plan"},
    }


# every service


async def held_on(s: Service, council: str, person_id: str) -> Target:
    """Something the service holds on the person, for a subject access request."""
    await LIST_SEEDS[s.name](s, council, person_id)
    return {"person_id": person_id}


# audit


async def person_history(s: Service, council: str, person_id: str) -> Target:
    key = ("journey", council, person_id)
    if key not in s.cache:
        from services.audit.tests.journey import Journey

        for envelope in Journey(person_id, council=council).full():
            await deliver(s.app, envelope)
        s.cache[key] = True
    return {"person_id": person_id}


async def a_replay(s: Service, council: str, person_id: str) -> Target | None:
    if council != OWN:
        return None
    headers = s.headers(Role.OPERATIONS, council)
    for _ in range(200):  # the replay an earlier cell started may still be running
        started = await s.client.post("/v1/replay", headers=headers, json={})
        if started.status_code != 409:
            break
        await asyncio.sleep(0.05)
    assert started.status_code < 300, started.text
    replay = started.json()
    url = f"/v1/replay/{replay['replay_id']}"
    while (await s.ok("GET", url, Role.OPERATIONS, council))["status"] == "running":
        await asyncio.sleep(0.05)
    return {"replay_id": replay["replay_id"]}


async def a_tamper_finding(s: Service, council: str, person_id: str) -> Target:
    """An open finding about the person's chain, as a replay records it."""
    from services.audit.tamper import Finding, TamperFindings

    finding_id = str(uuid.uuid4())
    async with runtime_of(s.app).uow() as uow:
        await TamperFindings(uow.session).add_if_absent(
            Finding(
                finding_id=finding_id,
                council=council,
                chain=person_id,
                first_bad_seq=3,
                first_bad_event_id=None,
                difference="altered",
                reason="hash does not match the stored document (edited)",
                quarantined_events=10,
                head_seq=10,
                head_hash="0" * 64,
                replay_id=str(uuid.uuid4()),
                detected_by="operations:ops-1",
                detected_at=datetime.combine(START, time(10), tzinfo=UTC),
            )
        )
        await uow.commit()
    return {"finding_id": finding_id, "json": {"reason": "Reviewed with the council's IT"}}


RECIPES: dict[tuple[str, str, str], Recipe] = {
    # assessment
    ("assessment", "GET", "/v1/questionnaires/{council}"): Recipe(questionnaire),
    ("assessment", "POST", "/v1/assessments"): Recipe(start_body),
    ("assessment", "PUT", "/v1/assessments/{assessment_id}/answers"): an_assessment("draft", answers),
    ("assessment", "POST", "/v1/assessments/{assessment_id}/submit"): an_assessment("answered", lambda c: {}),
    ("assessment", "POST", "/v1/assessments/{assessment_id}/validate"): an_assessment("submitted", lambda c: {}),
    ("assessment", "POST", "/v1/assessments/{assessment_id}/return"): an_assessment("submitted", lambda c: {"reasons": ["Please say more about mornings"]}),
    ("assessment", "POST", "/v1/assessments/{assessment_id}/eligibility"): replace(an_assessment("submitted", lambda c: {"needs_from_impairment_or_illness": True, "outcomes": [{"outcome": "managing_toilet_needs", "difficulties": ["cannot"]}, {"outcome": "maintaining_personal_hygiene", "difficulties": ["only_with_assistance"]}], "significant_impact_on_wellbeing": True}), today=CARE_ACT_DAY),
    ("assessment", "POST", "/v1/assessments/{assessment_id}/financial-assessment"): an_assessment("submitted", lambda c: {"path": "deferred", "reason": "Waiting for the pension statement"}),
    ("assessment", "GET", "/v1/assessments/{assessment_id}"): an_assessment("submitted"),
    ("assessment", "PUT", "/v1/people/{person_id}/personal-details"): Recipe(details_to_correct),
    ("assessment", "GET", "/v1/people/{person_id}/subject-access"): Recipe(held_on),
    ("assessment", "POST", "/v1/people/{person_id}/erasure"): Recipe(details_to_erase),
    ("assessment", "POST", "/v1/imports/people"): Recipe(people_extract),
    ("assessment", "POST", "/v1/people/identities"): Recipe(identities_of, no_identity),
    ("assessment", "POST", "/v1/conversions/assessments"): bulk(assessments_to_convert),
    # allocation
    ("allocation", "POST", "/v1/calculations"): Recipe(calculation),
    ("allocation", "GET", "/v1/budgets/{budget_id}"): a_budget(agreed=True),
    ("allocation", "GET", "/v1/budgets/{budget_id}/explanation"): a_budget(agreed=True),
    ("allocation", "POST", "/v1/budgets/{budget_id}/agree"): a_budget(agreed=False, body={}),
    ("allocation", "POST", "/v1/budgets/{budget_id}/revisions"): a_budget(agreed=True, body={"reason": "More support at night", "additional_weekly_pence": 1_000}),
    ("allocation", "POST", "/v1/policies"): Recipe(adoption),
    ("allocation", "POST", "/v1/policies/whatif"): Recipe(whatif),
    ("allocation", "POST", "/v1/policies/revisions"): council_wide({}),
    ("allocation", "GET", "/v1/people/{person_id}/subject-access"): Recipe(held_on),
    ("allocation", "POST", "/v1/conversions/budget-agreements"): bulk(budgets_to_agree),
    # planning
    ("planning", "POST", "/v1/plans"): Recipe(new_plan),
    ("planning", "PUT", "/v1/plans/{plan_id}"): a_plan("draft", plan_body),
    ("planning", "GET", "/v1/plans/{plan_id}"): a_plan("draft"),
    ("planning", "GET", "/v1/plans/{plan_id}/checks"): a_plan("draft"),
    ("planning", "POST", "/v1/plans/{plan_id}/submit"): a_plan("draft", lambda p, b: {}),
    ("planning", "POST", "/v1/plans/{plan_id}/sign-off"): a_plan("submitted", lambda p, b: {"on": START.isoformat()}),
    ("planning", "POST", "/v1/plans/{plan_id}/return"): a_plan("submitted", lambda p, b: {"reasons": ["Cost the evenings too"]}),
    ("planning", "POST", "/v1/reviews"): Recipe(new_review),
    ("planning", "POST", "/v1/reviews/run-due"): council_wide({"as_of": "2010-12-31"}),
    ("planning", "POST", "/v1/changes-of-circumstances"): Recipe(new_change_of_circumstances),
    ("planning", "GET", "/v1/reviews/{review_id}"): a_review(),
    ("planning", "GET", "/v1/people/{person_id}/subject-access"): Recipe(held_on),
    ("planning", "POST", "/v1/reviews/{review_id}/complete"): a_review({"outcome": "no_change", "completed_on": "2010-06-01"}),
    ("planning", "POST", "/v1/conversions/plans"): bulk(plans_to_convert),
    # payments
    ("payments", "GET", "/v1/deployments/{deployment_id}"): a_deployment("new"),
    ("payments", "PUT", "/v1/deployments/{deployment_id}/arrangement"): a_deployment("new", ARRANGEMENT),
    ("payments", "POST", "/v1/deployments/{deployment_id}/agreement"): a_deployment("arranged", {"signed_on": START.isoformat()}),
    ("payments", "GET", "/v1/deployments/{deployment_id}/schedule"): a_deployment("agreed"),
    ("payments", "POST", "/v1/deployments/{deployment_id}/release"): a_deployment("agreed", {"as_of": (START + timedelta(days=7)).isoformat()}),
    ("payments", "POST", "/v1/payments/release-due"): council_wide({"as_of": "2010-04-19"}),
    ("payments", "POST", "/v1/deployments/{deployment_id}/suspend"): a_deployment("agreed", HOLD),
    ("payments", "POST", "/v1/deployments/{deployment_id}/resume"): a_deployment("suspended", HOLD),
    ("payments", "POST", "/v1/deployments/{deployment_id}/returns"): a_deployment("agreed", {"period_start": "2010-04-05", "period_end": "2010-07-04", "items": [{"description": "PA wages", "amount_pence": 10_000, "receipt": True}], "balance_pence": 0}),
    ("payments", "POST", "/v1/deployments/{deployment_id}/unspent-check"): a_deployment("agreed", {"as_of": "2010-07-05", "balance_pence": 0}),
    ("payments", "GET", "/v1/deployments/{deployment_id}/statement"): a_deployment("agreed"),
    ("payments", "POST", "/v1/exports/payments"): Recipe(released),
    ("payments", "GET", "/v1/exports/payments"): council_wide(),
    ("payments", "GET", "/v1/exports/payments/{batch_id}.csv"): Recipe(export_batch),
    ("payments", "GET", "/v1/people/{person_id}/subject-access"): Recipe(held_on),
    ("payments", "POST", "/v1/payments/confirmations"): Recipe(confirmations, payment_unknown),
    ("payments", "GET", "/v1/payments"): Recipe(failed_payments),
    ("payments", "POST", "/v1/conversions/deployments"): bulk(deployments_to_convert),
    ("payments", "POST", "/v1/card-accounts/transactions"): Recipe(card_file_for, person_unknown),
    ("payments", "GET", "/v1/card-accounts"): Recipe(card_accounts_listed),
    ("payments", "GET", "/v1/card-accounts/{account_id}"): a_card_account(),
    ("payments", "POST", "/v1/card-accounts/{account_id}/recoup-notices"): a_card_account({"amount_pence": 100, "reason": "Money built up beyond the plan"}),
    ("payments", "POST", "/v1/card-accounts/{account_id}/recoup-notices/{notice_id}/responses"): a_card_account({"response": "agrees"}, notice=True),
    ("payments", "POST", "/v1/card-accounts/{account_id}/recoups"): replace(a_card_account({"amount_pence": 100}, notice=True), today=NOTICE_OVER),
    ("payments", "GET", "/v1/people/{person_id}/budget-statements"): Recipe(statements_held),
    ("payments", "POST", "/v1/budget-statements/{statement_id}/challenges"): Recipe(a_statement),
    ("payments", "POST", "/v1/statement-challenges/{challenge_id}/answer"): Recipe(a_challenge),
    # audit
    ("audit", "GET", "/v1/people/{person_id}/history"): Recipe(person_history),
    ("audit", "GET", "/v1/people/{person_id}/budget"): Recipe(person_history),
    ("audit", "GET", "/v1/people/{person_id}/timeline"): Recipe(person_history),
    ("audit", "GET", "/v1/people/{person_id}/verify"): Recipe(person_history),
    ("audit", "GET", "/v1/kpis/lancashire"): council_wide(query="as_of=2011-03-31"),
    ("audit", "GET", "/v1/replay/{replay_id}"): Recipe(a_replay),
    ("audit", "GET", "/v1/people/{person_id}/subject-access"): Recipe(held_on),
    ("audit", "GET", "/v1/returns/cld"): council_wide(query=f"quarter={TODAY.year}-Q{(TODAY.month - 1) // 3 + 1}"),
    ("audit", "GET", "/v1/returns/cld.csv"): council_wide(query=f"quarter={TODAY.year}-Q{(TODAY.month - 1) // 3 + 1}"),
    ("audit", "POST", "/v1/tamper-findings/{finding_id}/acknowledge"): Recipe(a_tamper_finding),
}  # fmt: skip
"""Routes whose cells need a seeded record or a body. Any other route is called as it is,
with its seeded records for a page (Scope.LIST) or nothing (a council-wide report)."""

LIST_SEEDS: dict[str, Callable[[Service, str, str], Awaitable[Any]]] = {
    "assessment": lambda s, c, p: assessment_in(s, c, p, "submitted"),
    "allocation": lambda s, c, p: budget_of(s, c, p, agreed=True),
    "planning": lambda s, c, p: a_review_of(s, c, p),
    "payments": lambda s, c, p: deployment_of(s, c, p, "agreed"),
    "audit": lambda s, c, p: person_history(s, c, p),
}


# --- the matrix -------------------------------------------------------------------------


PEOPLE_PER_ROUTE = {"payments"}
"""Services whose records are one per person in a way a route's cells would trip over (a
person's next deployment waits for the previous one's releases): each route's cells aim
at people of their own (p-own-7, p-far-7, ...; a citizen's token names p-own-7)."""


RETENTION_TODAY = date(2200, 1, 1)
SETTINGS: dict[str, dict[str, Any]] = {"assessment": {"retention_today": RETENTION_TODAY}}
"""Settings beyond the data and policies directories: an erasure is allowed only once the
council's retention period has ended, so the retention check takes a day far ahead."""


@contextlib.asynccontextmanager
async def started(name: str, data_dir: Path) -> AsyncIterator[Service]:
    tokens = Tokens(data_dir)
    api = importlib.import_module(f"services.{name}.api")
    settings = importlib.import_module(f"services.{name}.settings")
    app = api.create_app(
        settings.Settings(data_dir=data_dir, policies_dir=POLICIES_DIR, **SETTINGS.get(name, {}))
    )
    async with running(app) as client:
        yield Service(name, app, client, tokens, data_dir)


@pytest.fixture(params=SERVICES)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    async with started(request.param, tmp_path) as service:
        yield service


def documented_routes(app: FastAPI) -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and path.startswith("/v1/")
    }


@dataclass
class Cell:
    route: str
    role: str
    aimed_at: str
    expected: str
    got: int
    detail: str = ""


async def call(
    s: Service, right: Right, target: Target, headers: dict[str, str] | None
) -> httpx.Response:
    path = right.path
    for name, value in target.items():
        path = path.replace("{" + name + "}", str(value))
    query = target.get("query", "")
    url = f"{path}?{query}" if query else path
    if "csv" in target:
        headers = {**(headers or {}), "Content-Type": "text/csv"}
        content = target["csv"].encode("utf-8")
        return await s.client.request(right.method, url, headers=headers, content=content)
    body = target.get("json")
    if body is None and right.method in ("POST", "PUT"):
        body = {}
    return await s.client.request(right.method, url, headers=headers or {}, json=body)


PER_PERSON = (Scope.RECORD, Scope.PERSON, Scope.NEW)


def expectation(right: Right, role: Role, aimed_at: str) -> str:
    if role not in right.roles:
        return "403"
    if aimed_at == "own":
        return "ok"
    if aimed_at == "neighbour":
        return str(right.citizen_for_another)
    if right.scope is Scope.NEW:
        return "404|422"  # another council's record named in a body: as if it did not exist
    return "404"


POLICY_LIMITS = (
    "AboveApprovalLimit",
    "AboveAgreementLimit",
    "MayNotAgree",
    "CeilingExceptionNotAllowed",
    "PanelOnly",
    "NeedsSeparatePanel",
    "AboveArrearsLimit",
)
"""Refusals by the council's policy (approval limits by role), not by the rights table."""


def meets(expected: str, answer: httpx.Response) -> bool:
    status = answer.status_code
    if expected == "ok":
        if status == 403:  # the role may, but not this much: the policy's approval limit
            return answer.json().get("error") in POLICY_LIMITS
        return status < 500 and status not in (401, 403, 404)
    return str(status) in expected.split("|")


async def walk(s: Service, right: Right, suffix: str = "") -> tuple[list[Cell], int]:
    """Every cell of one route; returns the cells that did not meet their expectation and
    how many allowed cells succeeded outright."""
    recipe = RECIPES.get(right.key)
    targets: dict[str, Target | None] = {}
    for subject, (council, person_id) in SUBJECTS.items():
        if recipe is not None:
            targets[subject] = await recipe.target(s, council, person_id + suffix)
        elif right.scope is Scope.LIST:
            if ("listed", subject) not in s.cache:  # one record each serves every page
                await LIST_SEEDS[s.name](s, council, person_id)
                s.cache[("listed", subject)] = True
            targets[subject] = {} if subject == "own" else None
        else:
            targets[subject] = {} if subject == "own" else None
    if right.scope in (Scope.LIST, Scope.COUNCIL_WIDE):
        targets = {
            "own": targets["own"],
            "far": targets.get("far") if right.scope is Scope.COUNCIL_WIDE else None,
        }

    failures: list[Cell] = []
    route = f"{right.method} {right.path}"
    own = targets["own"]
    assert own is not None, f"{route}: no record to aim at"

    anonymous = await call(s, right, own, None)
    if anonymous.status_code != 401:
        failures.append(
            Cell(route, "no token", "own", "401", anonymous.status_code, anonymous.text[:200])
        )

    # Refusals first, then the calls that may change state.
    plan: list[tuple[Role, str]] = []
    for role in Role:
        for subject in ("far", "neighbour"):
            if subject == "neighbour" and (
                role not in CITIZEN_ROLES or right.scope not in PER_PERSON
            ):
                continue
            if targets.get(subject) is not None:
                plan.append((role, subject))
    plan += [(role, "own") for role in Role if role not in right.roles]
    plan += [(role, "own") for role in Role if role in right.roles]

    successes = 0
    for role, subject in plan:
        target = targets[subject]
        assert target is not None
        answer = await call(s, right, target, s.headers(role, person_id="p-own" + suffix))
        expected = expectation(right, role, subject)
        if subject == "far" and expected != "403" and recipe and recipe.elsewhere:
            expected = "answered as unknown"
            if not recipe.elsewhere(answer):
                failures.append(
                    Cell(
                        route, role.value, subject, expected, answer.status_code, answer.text[:300]
                    )
                )
            continue
        if not meets(expected, answer):
            failures.append(
                Cell(route, role.value, subject, expected, answer.status_code, answer.text[:200])
            )
            continue
        if expected == "ok" and answer.status_code < 300:
            if recipe and recipe.succeeded and not recipe.succeeded(answer):
                continue
            successes += 1
            if right.scope is Scope.LIST:
                leaked = ["p-far"] + (["p-neighbour"] if role in CITIZEN_ROLES else [])
                for person_id in leaked:
                    if person_id in answer.text:
                        failures.append(
                            Cell(
                                route,
                                role.value,
                                "own",
                                f"no {person_id}",
                                answer.status_code,
                                "leaked",
                            )
                        )
    return failures, successes


async def test_every_route_answers_every_role_as_the_rights_table_says(service: Service) -> None:
    table = rights_of(service.name)
    documented = documented_routes(service.app)
    unlisted = sorted(documented - set(table))
    assert not unlisted, (
        f"{service.name} has routes contracts/rights.py does not classify: {unlisted}; "
        "add a Right(...) line for each (and a recipe here if it needs a record or a body)"
    )
    assert not sorted(set(table) - documented), "contracts/rights.py lists routes that are gone"

    failures: list[Cell] = []
    never_succeeded = []
    unattributed: list[str] = []
    for number, right in enumerate(table.values()):
        separate = service.name in PEOPLE_PER_ROUTE and right.scope is not Scope.LIST
        suffix = f"-{number}" if separate else ""
        recipe = RECIPES.get(right.key)
        on = recipe.today if recipe is not None else None
        with (
            clock.using(SettableClock(datetime.combine(on, time(10), UTC)))
            if on is not None
            else contextlib.nullcontext()
        ):
            cells, successes = await walk(service, right, suffix)
        failures += cells
        if successes == 0:
            never_succeeded.append(f"{right.method} {right.path}")
    report = "\n".join(
        f"{c.route:60} {c.role:15} {c.aimed_at:9} expected {c.expected:>5} got {c.got} {c.detail}"
        for c in failures
    )
    assert not failures, f"{len(failures)} cells differ from contracts/rights.py:\n{report}"
    assert not never_succeeded, f"no role succeeded on: {never_succeeded}"
    unattributed += await without_actor(service.app)
    assert not unattributed, f"state changes that do not record who made them: {unattributed}"


async def without_actor(app: FastAPI) -> list[str]:
    """Events in the outbox that name no actor: every event a request causes must carry
    the caller (`role:user_id`); one a consumer emits names the event that caused it."""
    return [e.type for e in await outbox_events(app) if not e.actor and not e.causation_id]


def test_every_service_has_rights_listed() -> None:
    assert {r.service for r in RIGHTS} == set(SERVICES)
    keys = [r.key for r in RIGHTS]
    assert len(keys) == len(set(keys)), "a route is listed twice"


def test_the_security_doc_shows_the_rights_the_matrix_checks() -> None:
    doc = REPO_ROOT / "docs" / "security.md"
    assert doc.read_text() == with_table(doc.read_text()), (
        "docs/security.md is out of date: run `python -m contracts.rights --write docs/security.md`"
    )


MUTATING = ("POST", "PUT", "PATCH", "DELETE")
ANSWERS_NEVER_KEPT = {
    ("assessment", IDENTITIES_PATH),
    ("assessment", FINANCIAL_ASSESSMENT_PATH),
    *(("payments", path) for path in STATEMENT_PERSONAL_DATA_PATHS),
}
"""Routes whose answers hold personal data: a retry runs them again (servicekit.app)."""


async def test_an_idempotency_key_replays_its_answer_only_to_the_identity_that_used_it(
    service: Service,
) -> None:
    """For every state change: a call with key K that succeeds, then the same key and body
    from every other role of the council under the same user id, from the same role of
    another council, and for a person's route from another person. None of them gets the
    stored answer; each gets what the rights table gives it without a key. Then the first
    caller's retry gets the stored answer back."""
    s = service
    failures: list[str] = []
    replayed = mutating = 0
    for number, right in enumerate(rights_of(s.name).values()):
        if right.method not in MUTATING:
            continue
        mutating += 1
        route = f"{right.method} {right.path}"
        recipe = RECIPES.get(right.key)
        suffix = f"-key{number}"
        person = f"p-own{suffix}"
        target = await recipe.target(s, OWN, person) if recipe is not None else {}
        if target is None:
            continue

        def as_(role: Role, council: str = OWN, person_id: str = person) -> dict[str, str]:
            return s.tokens.headers(
                role,
                council,
                user_id="one-login",  # the same subject in every role and council
                person_id=person_id if role in CITIZEN_ROLES else None,
            )

        first = None
        for number_of_try, role in enumerate(r for r in Role if r in right.roles):
            key = f"{s.name}-{number}-{number_of_try}"
            answer = await call(s, right, target, {**as_(role), "Idempotency-Key": key})
            if 200 <= answer.status_code < 300:
                first = (role, key, answer)
                break
        if first is None:
            continue
        role, key, original = first
        replayed += 1
        others: list[tuple[Role, str, str, str]] = [
            (other, OWN, person, "own") for other in Role if other is not role
        ]
        others.append((role, OTHER, person, "far"))
        if role in CITIZEN_ROLES:
            others.append((role, OWN, f"p-neighbour{suffix}", "neighbour"))
        for other, council, person_id, aimed_at in others:
            answer = await call(
                s, right, target, {**as_(other, council, person_id), "Idempotency-Key": key}
            )
            who = f"{other.value} of {council}" + (f" as {person_id}" if aimed_at else "")
            if answer.headers.get("Idempotent-Replayed") == "true":
                failures.append(f"{route}: {who} was served {role.value}'s stored answer")
                continue
            if aimed_at == "far":
                # Another council's caller acts in its own council: a refusal, or an answer
                # of its own (a record of its own person under the same id); never ours.
                if answer.status_code >= 500 or answer.content == original.content:
                    failures.append(f"{route}: {who} got {answer.status_code} {answer.text[:160]}")
                continue
            expected = expectation(right, other, aimed_at)
            if not meets(expected, answer):
                failures.append(
                    f"{route}: {who} expected {expected}, got {answer.status_code} "
                    f"{answer.text[:160]}"
                )
        again = await call(s, right, target, {**as_(role), "Idempotency-Key": key})
        kept = (s.name, right.path) not in ANSWERS_NEVER_KEPT
        if kept and (
            again.headers.get("Idempotent-Replayed") != "true"
            or (again.status_code, again.content) != (original.status_code, original.content)
        ):
            failures.append(f"{route}: {role.value}'s own retry did not get its stored answer")
        if not kept and again.headers.get("Idempotent-Replayed") == "true":
            failures.append(f"{route}: an answer holding personal data was kept for a retry")
    assert not failures, "\n".join(failures)
    assert replayed >= mutating // 2, f"only {replayed} of {mutating} state changes succeeded"
