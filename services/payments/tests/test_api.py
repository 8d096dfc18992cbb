"""The payments service in-process: HTTP with tokens, events in with deliver(), events out
read from the outbox.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009).
Seed 004 = SCIE "Keeping personal budgets personal" (2011), Councils A-E in Appendix 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import (
    Tokens,
    deliver,
    outbox_events,
    outbox_events_of,
    running,
    runtime_of,
)
from services.payments import db
from services.payments.api import create_app
from services.payments.settings import Settings

START = date(2010, 4, 5)
SIGNED_ON = START - timedelta(days=3)
"""The day these tests begin: deployments are arranged and agreements signed on it."""
CLOCK = SettableClock(datetime.combine(SIGNED_ON, time(9), UTC))


def today_is(day: date) -> None:
    """Move the service's clock to nine in the morning of `day`."""
    CLOCK.set(datetime.combine(day, time(9), UTC))


@pytest.fixture(autouse=True)
def service_clock() -> Iterator[SettableClock]:
    """Every test starts on SIGNED_ON by the service's clock."""
    today_is(SIGNED_ON)
    with clock.using(CLOCK):
        yield CLOCK


class CachedTokens(Tokens):
    """Tokens that mint each (role, council, user, person) once: loading the key is slow."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._minted: dict[tuple[str, str, str | None, str | None], dict[str, str]] = {}

    def headers(
        self,
        role: Role | str,
        council: str = "lancashire",
        *,
        user_id: str | None = None,
        person_id: str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        key = (str(role), council, user_id, person_id)
        if key not in self._minted:
            self._minted[key] = super().headers(role, council, user_id=user_id, person_id=person_id)
        return {**self._minted[key], **extra}


@pytest.fixture
def tokens(data_dir: Path, tokens: Tokens) -> Tokens:
    """The shared fixture's key (it copies the session's key pair in), minting cached."""
    return CachedTokens(data_dir)


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The app running in-process; tokens first, so the signing key exists at start-up."""
    async with running(app) as client:
        yield client


def signed_plan(
    council: str = "lancashire",
    *,
    person_id: str = "p-1",
    annual_pence: int = 1_040_000,
    one_off_pence: int = 0,
    contingency_weekly_pence: int = 0,
    plan_id: UUID | None = None,
    plan_version: int = 1,
    first_review_on: date = SIGNED_ON,
) -> ev.PlanSignedOff:
    return ev.PlanSignedOff(
        person_id=person_id,
        council=council,
        plan_id=plan_id or uuid4(),
        budget_id=uuid4(),
        assessment_id=uuid4(),
        plan_version=plan_version,
        weekly_pence=annual_pence // 52,
        annual_pence=annual_pence,
        one_off_pence=one_off_pence,
        contingency_weekly_pence=contingency_weekly_pence,
        lines=[],
        request_for_more=False,
        signed_off_by="tm-1",
        signed_off_by_role=Role.TEAM_MANAGER,
        # planning books the first review 42 (or 91) days after sign-off: by default the
        # plan was signed off well before the agreement is
        first_review_on=first_review_on,
        policy_version=f"{council}/2010.1",
    )


async def open_deployment(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    council: str = "lancashire",
    **plan: Any,
) -> dict[str, Any]:
    """Deliver a signed-off plan and return the deployment it opened."""
    event = signed_plan(council, **plan)
    await deliver(app, event)
    r = await client.get(
        "/v1/deployments",
        params={"person_id": event.person_id, "status": "awaiting_arrangement"},
        headers=tokens.headers("care_manager", council),
    )
    assert r.status_code == 200, r.text
    [found] = [d for d in r.json()["items"] if d["plan_id"] == str(event.plan_id)]
    return found


async def arrange(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deployment_id: str,
    council: str = "lancashire",
    **body: Any,
) -> httpx.Response:
    payload = {
        "parts": [{"option": "direct_payment"}],
        "frequency": "weekly",
        "first_due_on": START.isoformat(),
        "assessed_max_weekly_contribution_pence": 0,
        **body,
    }
    return await client.put(
        f"/v1/deployments/{deployment_id}/arrangement",
        json=payload,
        headers=tokens.headers("care_manager", council),
    )


async def sign(
    client: httpx.AsyncClient, tokens: Tokens, deployment_id: str, council: str = "lancashire"
) -> httpx.Response:
    return await client.post(
        f"/v1/deployments/{deployment_id}/agreement",
        json={"signed_on": SIGNED_ON.isoformat()},
        headers=tokens.headers("care_manager", council),
    )


async def active_deployment(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    council: str = "lancashire",
    arrangement: dict[str, Any] | None = None,
    **plan: Any,
) -> dict[str, Any]:
    dep = await open_deployment(app, client, tokens, council, **plan)
    r = await arrange(client, tokens, dep["deployment_id"], council, **(arrangement or {}))
    assert r.status_code == 200, r.text
    r = await sign(client, tokens, dep["deployment_id"], council)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def release_due(
    client: httpx.AsyncClient, tokens: Tokens, as_of: date, council: str = "lancashire"
) -> httpx.Response:
    """On the day as_of, finance releases everything due."""
    today_is(as_of)
    return await client.post(
        "/v1/payments/release-due",
        json={"as_of": as_of.isoformat()},
        headers=tokens.headers("finance", council),
    )


async def schedule(
    client: httpx.AsyncClient, tokens: Tokens, deployment_id: str, council: str = "lancashire"
) -> list[dict[str, Any]]:
    r = await client.get(
        f"/v1/deployments/{deployment_id}/schedule",
        headers=tokens.headers("finance", council),
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# --- events in -----------------------------------------------------------------------------


async def test_a_signed_off_plan_opens_a_deployment_awaiting_its_arrangement(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=1_040_000, one_off_pence=5_000)
    r = await client.get(
        f"/v1/deployments/{dep['deployment_id']}", headers=tokens.headers("care_manager")
    )
    body = r.json()
    assert body["status"] == "awaiting_arrangement" and body["version"] == 1
    assert (body["gross_annual_pence"], body["one_off_pence"]) == (1_040_000, 5_000)
    assert body["policy_version"] == "lancashire/2009.1"
    assert body["contribution_annual_pence"] is None and body["schedules"] == []


async def test_a_redelivered_plan_signed_off_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    envelope = Envelope(event=signed_plan(person_id="p-9"))
    await deliver(app, envelope)
    before = await client.get(
        "/v1/deployments", params={"person_id": "p-9"}, headers=tokens.headers("care_manager")
    )
    events_before = await outbox_events(app)

    await deliver(app, envelope)  # the same envelope again
    await deliver(app, Envelope(event=envelope.event))  # the same plan under a new event id

    after = await client.get(
        "/v1/deployments", params={"person_id": "p-9"}, headers=tokens.headers("care_manager")
    )
    assert len(after.json()["items"]) == 1
    assert after.json() == before.json()
    assert len(await outbox_events(app)) == len(events_before)


async def test_a_revised_plan_supersedes_a_deployment_that_never_started(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    plan_id = uuid4()
    first = await open_deployment(app, client, tokens, person_id="p-7", plan_id=plan_id)
    second = await open_deployment(
        app, client, tokens, person_id="p-7", plan_id=plan_id, plan_version=2
    )
    r = await client.get(
        f"/v1/deployments/{first['deployment_id']}", headers=tokens.headers("care_manager")
    )
    assert r.json()["status"] == "superseded"
    assert r.json()["superseded_by"] == second["deployment_id"]
    [superseded] = await outbox_events_of(app, ev.DeploymentSuperseded)
    assert str(superseded.superseded_by) == second["deployment_id"]


async def test_a_revised_plan_takes_over_the_old_deployments_future_instalments(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    old = await active_deployment(app, client, tokens, person_id="p-8", annual_pence=520_000)
    await release_due(client, tokens, START + timedelta(days=7))  # weeks 1 and 2 paid
    new = await open_deployment(app, client, tokens, person_id="p-8", annual_pence=780_000)
    assert (
        await arrange(client, tokens, new["deployment_id"], first_due_on="2010-04-19")
    ).is_success

    # until the revised plan's agreement is signed, the old deployment goes on paying
    r = await client.get(
        f"/v1/deployments/{old['deployment_id']}", headers=tokens.headers("care_manager")
    )
    assert r.json()["status"] == "active" and r.json()["successor_id"] == new["deployment_id"]

    assert (await sign(client, tokens, new["deployment_id"])).status_code == 200
    r = await client.get(
        f"/v1/deployments/{old['deployment_id']}", headers=tokens.headers("care_manager")
    )
    assert r.json()["status"] == "superseded"
    assert r.json()["balance"]["released_pence"] == 20_000
    assert r.json()["balance"]["to_release_pence"] == 0

    released = await release_due(client, tokens, START + timedelta(days=14))
    assert [(p["deployment_id"], p["amount_pence"]) for p in released.json()["released"]] == [
        (new["deployment_id"], 15_000)
    ]


# --- arrangement ---------------------------------------------------------------------------


async def test_council_c_mix_is_split_by_amount_after_a_75_percent_capped_contribution(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 Council C: 75% of the plan, up to the means-tested maximum.
    dep = await open_deployment(app, client, tokens, "council_c", annual_pence=1_000_000)
    r = await arrange(
        client,
        tokens,
        dep["deployment_id"],
        "council_c",
        parts=[
            {"option": "direct_payment", "annual_pence": 250_000},
            {"option": "individual_service_fund", "annual_pence": 750_000},
        ],
        assessed_max_weekly_contribution_pence=10_000,  # £100 x 52 = £5,200 < £7,500
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contribution_annual_pence"] == 520_000
    assert body["net_annual_pence"] == 480_000
    assert [(p["option"], p["annual_pence"], p["net_annual_pence"]) for p in body["parts"]] == [
        ("direct_payment", 250_000, 120_000),
        ("individual_service_fund", 750_000, 360_000),
    ]
    assert body["status"] == "awaiting_agreement" and body["version"] == 2
    [setup] = await outbox_events_of(app, ev.DeploymentSetUp)
    assert (setup.contribution_annual_pence, setup.net_annual_pence) == (520_000, 480_000)
    assert setup.policy_version == "council_c/2010.1"


async def test_council_c_contribution_is_75_percent_when_the_means_test_allows_more(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, "council_c", annual_pence=1_000_000)
    r = await arrange(
        client,
        tokens,
        dep["deployment_id"],
        "council_c",
        assessed_max_weekly_contribution_pence=20_000,  # £200 x 52 = £10,400 > £7,500
    )
    assert r.json()["contribution_annual_pence"] == 750_000
    assert r.json()["net_annual_pence"] == 250_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "parts": [
                    {"option": "direct_payment", "annual_pence": 500_000},
                    {"option": "council_managed", "annual_pence": 500_001},
                ]
            },
            "parts",
        ),
        ({"parts": [{"option": "direct_payment", "annual_pence": -1}]}, "annual_pence"),
        ({"parts": [{"option": "direct_payment", "annual_pence": 10.5}]}, "annual_pence"),
        ({"parts": [{"option": "cash_in_hand"}]}, "option"),
        ({"parts": []}, "parts"),
        ({"frequency": "daily"}, "frequency"),
        ({"first_due_on": "5 April"}, "first_due_on"),
        ({"assessed_max_weekly_contribution_pence": "lots"}, "assessed_max_weekly"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_a_bad_arrangement_is_refused_naming_the_field_and_nothing_is_written(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    body: dict[str, Any],
    field: str,
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=1_000_000)
    r = await arrange(client, tokens, dep["deployment_id"], **body)
    assert r.status_code == 422 and field in r.text
    after = await client.get(
        f"/v1/deployments/{dep['deployment_id']}", headers=tokens.headers("care_manager")
    )
    assert after.json()["version"] == 1 and after.json()["parts"] == []
    assert await outbox_events_of(app, ev.DeploymentSetUp) == []


async def test_a_stale_expected_version_is_refused_with_409(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens)
    assert (await arrange(client, tokens, dep["deployment_id"], expected_version=1)).is_success
    r = await arrange(client, tokens, dep["deployment_id"], expected_version=1)
    assert r.status_code == 409 and r.json()["error"] == "StaleVersion"
    assert len(await outbox_events_of(app, ev.DeploymentSetUp)) == 1


async def test_council_a_audit_tier_at_exactly_5000_pounds_is_light_touch(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 Council A: 'in excess of £5,000' is detailed; council_a.yaml puts £5,000
    # itself in light touch.
    for annual, tier in ((500_000, "light_touch"), (500_001, "detailed_annual_account")):
        dep = await open_deployment(app, client, tokens, "council_a", annual_pence=annual)
        r = await arrange(client, tokens, dep["deployment_id"], "council_a")
        assert r.json()["audit_tier"] == tier


# --- who may do what -----------------------------------------------------------------------


async def test_without_a_token_the_answer_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/deployments")).status_code == 401
    r = await client.post("/v1/payments/release-due", json={"as_of": "2010-04-05"})
    assert r.status_code == 401


async def test_a_role_that_may_not_act_gets_403_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, person_id="p-3")
    r = await client.put(
        f"/v1/deployments/{dep['deployment_id']}/arrangement",
        json={
            "parts": [{"option": "direct_payment"}],
            "frequency": "weekly",
            "first_due_on": "2010-04-05",
            "assessed_max_weekly_contribution_pence": 0,
        },
        headers=tokens.headers("person", person_id="p-3"),
    )
    assert r.status_code == 403
    r = await client.post(
        "/v1/payments/release-due",
        json={"as_of": "2010-04-05"},
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 403
    r = await client.post(
        "/v1/exports/payments", json={"up_to": "2010-04-05"}, headers=tokens.headers("auditor")
    )
    assert r.status_code == 403
    assert await outbox_events_of(app, ev.DeploymentSetUp) == []


async def test_another_councils_deployment_or_another_persons_is_not_found(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, person_id="p-4")
    path = f"/v1/deployments/{dep['deployment_id']}"
    assert (
        await client.get(path, headers=tokens.headers("care_manager", "council_a"))
    ).status_code == 404
    r = await arrange(client, tokens, dep["deployment_id"], "council_a")
    assert r.status_code == 404
    other = tokens.headers("person", person_id="p-5")
    assert (await client.get(path, headers=other)).status_code == 404
    listed = await client.get("/v1/deployments", headers=other)
    assert listed.json()["items"] == []
    own = tokens.headers("person", person_id="p-4")
    assert (await client.get(path, headers=own)).status_code == 200
    listed = await client.get("/v1/deployments", headers=own)
    assert [d["deployment_id"] for d in listed.json()["items"]] == [dep["deployment_id"]]


# --- agreement and release (seed 003 ch.4) -------------------------------------------------


async def test_release_before_the_agreement_is_signed_is_409_and_nothing_is_released(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens)
    await arrange(client, tokens, dep["deployment_id"])
    today_is(START + timedelta(days=30))
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/release",
        json={"as_of": (START + timedelta(days=30)).isoformat()},
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 409 and "the agreement has not been signed" in r.json()["detail"]
    assert (await release_due(client, tokens, START + timedelta(days=30))).json()["count"] == 0
    assert await schedule(client, tokens, dep["deployment_id"]) == []
    assert await outbox_events_of(app, ev.PaymentReleased) == []


async def test_the_agreement_schedules_instalments_that_add_up_to_the_net_exactly(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=1_000_001, one_off_pence=7)
    items = await schedule(client, tokens, dep["deployment_id"])
    assert len(items) == 53
    assert sum(i["amount_pence"] for i in items) == 1_000_001 + 7
    assert {i["status"] for i in items} == {"scheduled"}
    scheduled = await outbox_events_of(app, ev.PaymentScheduled)
    assert sorted((e.frequency.value, e.instalments, e.total_pence) for e in scheduled) == [
        ("one_off", 1, 7),
        ("weekly", 52, 1_000_001),
    ]
    [signed] = await outbox_events_of(app, ev.AgreementSigned)
    assert signed.recorded_by == "care_manager:care_manager-1"


async def test_release_due_twice_releases_each_instalment_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=520_000)
    first = await release_due(client, tokens, START + timedelta(days=14))
    again = await release_due(client, tokens, START + timedelta(days=14))
    assert (first.json()["count"], first.json()["total_pence"]) == (3, 30_000)
    assert again.json()["count"] == 0
    released = await outbox_events_of(app, ev.PaymentReleased)
    assert [e.instalment_number for e in released] == [1, 2, 3]
    statuses = [i["status"] for i in await schedule(client, tokens, dep["deployment_id"])]
    assert statuses.count("released") == 3


async def test_an_idempotency_key_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens)
    await arrange(client, tokens, dep["deployment_id"])
    headers = tokens.headers("care_manager", **{"Idempotency-Key": "sign-1"})
    body = {"signed_on": "2010-04-02"}
    path = f"/v1/deployments/{dep['deployment_id']}/agreement"
    first = await client.post(path, json=body, headers=headers)
    replay = await client.post(path, json=body, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert len(await outbox_events_of(app, ev.AgreementSigned)) == 1
    different = await client.post(path, json={"signed_on": "2010-04-03"}, headers=headers)
    assert different.status_code == 422


async def test_a_suspended_deployment_is_passed_over_until_resumed(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=520_000)
    path = f"/v1/deployments/{dep['deployment_id']}"
    r = await client.post(
        f"{path}/suspend",
        json={"reason": "bank account closed"},
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 200 and r.json()["suspended"] is True
    assert (await release_due(client, tokens, START)).json()["count"] == 0
    r = await client.post(f"{path}/release", json={}, headers=tokens.headers("finance"))
    assert r.status_code == 409
    await client.post(
        f"{path}/resume", json={"reason": "new account"}, headers=tokens.headers("finance")
    )
    assert (await release_due(client, tokens, START)).json()["count"] == 1
    assert len(await outbox_events_of(app, ev.PaymentsSuspended)) == 1
    assert len(await outbox_events_of(app, ev.PaymentsResumed)) == 1


# --- switching (seed 004 §6.1: no reassessment) ---------------------------------------------


async def test_switching_option_keeps_released_payments_and_replaces_future_ones(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(
        app,
        client,
        tokens,
        "council_c",
        annual_pence=1_040_000,
        arrangement={
            "parts": [{"option": "council_managed"}],
            "assessed_max_weekly_contribution_pence": 5_000,
        },
    )
    assert dep["net_annual_pence"] == 1_040_000 - 260_000
    await release_due(client, tokens, START + timedelta(days=21), "council_c")  # 4 weeks

    r = await client.put(
        f"/v1/deployments/{dep['deployment_id']}/arrangement",
        json={
            "parts": [
                {"option": "direct_payment", "annual_pence": 520_000},
                {"option": "council_managed", "annual_pence": 520_000},
            ],
            "frequency": "weekly",
            "first_due_on": (START + timedelta(days=28)).isoformat(),
            "expected_version": dep["version"] + 1,
        },
        headers=tokens.headers("care_manager", "council_c"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contribution_annual_pence"] == 260_000  # no reassessment: unchanged
    assert body["balance"]["released_pence"] == 60_000
    assert body["balance"]["released_pence"] + body["balance"]["to_release_pence"] == 780_000
    items = await schedule(client, tokens, dep["deployment_id"], "council_c")
    released = [i for i in items if i["status"] == "released"]
    assert [(i["option"], i["instalment_number"]) for i in released] == [
        ("council_managed", n) for n in (1, 2, 3, 4)
    ]
    future = [i for i in items if i["status"] == "scheduled"]
    assert {i["option"] for i in future} == {"direct_payment", "council_managed"}
    assert len(future) == 96  # 48 weeks left in the plan year, for each option
    assert len(await outbox_events_of(app, ev.DeploymentSetUp)) == 2
    [switched] = await outbox_events_of(app, ev.DeploymentSwitched)
    assert (switched.released_pence, switched.remaining_net_pence) == (60_000, 720_000)


# --- monitoring (seed 004 App.1) -----------------------------------------------------------


async def test_council_d_return_lists_items_of_50_pounds_or_more_without_a_receipt(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, "council_d", person_id="p-6")
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/returns",
        json={
            "period_start": "2010-04-05",
            "period_end": "2010-07-04",
            "items": [
                {"description": "taxi", "amount_pence": 4_999, "receipt": False},
                {"description": "cleaner", "amount_pence": 5_000, "receipt": False},
                {"description": "PA wages", "amount_pence": 90_000, "receipt": True},
            ],
            "balance_pence": 12_000,
        },
        headers=tokens.headers("person", "council_d", person_id="p-6"),
    )
    assert r.status_code == 201, r.text
    assert [m["description"] for m in r.json()["missing_receipts"]] == ["cleaner"]
    assert r.json()["spent_pence"] == 99_999
    [submitted] = await outbox_events_of(app, ev.ReturnSubmitted)
    assert (submitted.missing_receipts, submitted.recorded_by) == (1, "person:person-1")


async def test_a_return_with_its_period_backwards_is_refused_and_not_recorded(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens)
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/returns",
        json={
            "period_start": "2010-07-04",
            "period_end": "2010-04-05",
            "items": [],
            "balance_pence": 0,
        },
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 422 and "period_end" in r.text
    assert await outbox_events_of(app, ev.ReturnSubmitted) == []


async def test_council_b_shows_its_quarterly_return_due(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, "council_b")
    assert dep["monitoring"]["returns_every_months"] == 3
    assert dep["monitoring"]["next_return_due_on"] == "2010-07-05"


async def test_council_a_claws_back_only_unspent_funds_above_10_weeks(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 Council A: £200 a week of direct payments, so 10 weeks = £2,000 may stay.
    dep = await active_deployment(app, client, tokens, "council_a", annual_pence=1_040_000)
    path = f"/v1/deployments/{dep['deployment_id']}/unspent-check"
    at_limit = await client.post(
        path,
        json={"as_of": "2010-10-01", "balance_pence": 200_000},
        headers=tokens.headers("finance", "council_a"),
    )
    assert at_limit.status_code == 200, at_limit.text
    assert (at_limit.json()["allowance_pence"], at_limit.json()["clawback_pence"]) == (200_000, 0)
    above = await client.post(
        path,
        json={"as_of": "2010-10-01", "balance_pence": 200_001},
        headers=tokens.headers("finance", "council_a"),
    )
    assert above.json()["clawback_pence"] == 1
    [raised] = await outbox_events_of(app, ev.ClawbackRaised)
    assert (raised.amount_pence, raised.rule) == (1, "above_weeks_of_payment")
    denied = await client.post(
        path,
        json={"as_of": "2010-10-01", "balance_pence": 1},
        headers=tokens.headers("care_manager", "council_a"),
    )
    assert denied.status_code == 403


async def test_a_managed_account_statement_shows_paid_in_spent_and_left(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 §6.2: people with managed accounts want to know what they have left.
    dep = await active_deployment(
        app,
        client,
        tokens,
        annual_pence=520_000,
        arrangement={"parts": [{"option": "third_party_managed"}]},
    )
    await release_due(client, tokens, START + timedelta(days=7))
    await client.post(
        f"/v1/deployments/{dep['deployment_id']}/returns",
        json={
            "period_start": "2010-04-05",
            "period_end": "2010-04-18",
            "items": [{"description": "day centre", "amount_pence": 12_500, "receipt": True}],
            "balance_pence": 7_500,
        },
        headers=tokens.headers("care_manager"),
    )
    r = await client.get(
        f"/v1/deployments/{dep['deployment_id']}/statement", headers=tokens.headers("auditor")
    )
    assert r.json()["accounts"] == [
        {
            "option": "third_party_managed",
            "paid_in_pence": 20_000,
            "spent_pence": 12_500,
            "balance_left_pence": 7_500,
            "last_reported_balance_pence": 7_500,
            "failed_pence": 0,
        }
    ]


# --- finance export ------------------------------------------------------------------------


async def test_an_export_batch_gives_identical_bytes_every_time_with_control_totals(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await active_deployment(app, client, tokens, person_id="p-1", annual_pence=1_000_001)
    await active_deployment(app, client, tokens, person_id="p-2", annual_pence=520_000)
    await release_due(client, tokens, START + timedelta(days=7))
    finance = tokens.headers("finance")

    r = await client.post("/v1/exports/payments", json={"up_to": "2010-04-12"}, headers=finance)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert (batch["rows"], batch["control_total_pence"]) == (4, 19_231 * 2 + 10_000 * 2)

    path = f"/v1/exports/payments/{batch['batch_id']}.csv"
    first = await client.get(path, headers=finance)
    second = await client.get(path, headers=tokens.headers("auditor"))
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/csv")
    assert first.content == second.content
    lines = list(csv.reader(io.StringIO(first.text)))
    assert lines[0] == [
        "batch_id",
        "line_number",
        "payment_id",
        "person_id",
        "council",
        "deployment_id",
        "option",
        "instalment_number",
        "due_on",
        "released_on",
        "amount_pence",
        "amount_gbp",
    ]
    assert lines[-1][:4] == ["CONTROL", "4", str(batch["control_total_pence"]), "584.62"]
    assert sum(int(line[10]) for line in lines[1:-1]) == batch["control_total_pence"]

    again = await client.post("/v1/exports/payments", json={"up_to": "2010-04-12"}, headers=finance)
    assert again.status_code == 409  # every payment is already in a batch
    listed = await client.get("/v1/exports/payments", headers=finance)
    assert [b["batch_id"] for b in listed.json()["items"]] == [batch["batch_id"]]
    assert (await client.get(path, headers=tokens.headers("care_manager"))).status_code == 403
    other = tokens.headers("finance", "council_a")
    assert (await client.get(path, headers=other)).status_code == 404


async def test_lists_are_paginated(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> None:
    for person in ("p-1", "p-2", "p-3"):
        await open_deployment(app, client, tokens, person_id=person)
    headers = tokens.headers("team_manager")
    page = await client.get("/v1/deployments", params={"limit": 2}, headers=headers)
    assert len(page.json()["items"]) == 2 and page.json()["next_cursor"]
    rest = await client.get(
        "/v1/deployments",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=headers,
    )
    assert len(rest.json()["items"]) == 1
    bad = await client.get("/v1/deployments", params={"cursor": "nonsense"}, headers=headers)
    assert bad.status_code == 422


# --- bounds found by the API fuzz test (tests/test_api_fuzz.py) ----------------------------

BEYOND_64_BITS = 2**63  # one more than the largest integer SQLite or PostgreSQL can store
TEN_BILLION_POUNDS = 10**12  # the most any money field of a request may carry (pence)


async def stored_rows(app: FastAPI) -> dict[str, list[Any]]:
    """Every row of every payments table and the outbox: proof nothing was half-written."""
    runtime = runtime_of(app)
    tables = [
        db.deployments,
        db.schedules,
        db.instalments,
        db.monitoring_returns,
        db.unspent_checks,
        db.export_batches,
        runtime.outbox,
    ]
    # The relay marks outbox rows published whenever it runs: its bookkeeping, not a write
    # of the request under test, so the comparison leaves that column out.
    columns = {t.name: [c for c in t.columns if c.name != "published_at"] for t in tables}
    async with runtime.database.sessions() as session:
        return {
            t.name: [tuple(r) for r in (await session.execute(sa.select(*columns[t.name]))).all()]
            for t in tables
        }


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        (
            "returns",
            {
                "period_start": "2010-04-05",
                "period_end": "2010-05-02",
                "items": [],
                "balance_pence": BEYOND_64_BITS,
            },
            "balance_pence",
        ),
        (
            "returns",
            {
                "period_start": "2010-04-05",
                "period_end": "2010-05-02",
                "items": [
                    {"description": "cleaner", "amount_pence": BEYOND_64_BITS, "receipt": True}
                ],
                "balance_pence": 0,
            },
            "amount_pence",
        ),
        (
            "unspent-check",
            {"as_of": "2010-10-01", "balance_pence": TEN_BILLION_POUNDS + 1},
            "balance_pence",
        ),
    ],
)
async def test_money_beyond_ten_billion_pounds_is_refused_naming_the_field_and_nothing_is_written(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    route: str,
    body: dict[str, Any],
    field: str,
) -> None:
    # Found by the fuzz test: 2^63 pence reached SQLite and the answer was a 500.
    dep = await active_deployment(app, client, tokens)
    before = await stored_rows(app)
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/{route}",
        json=body,
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 422, r.text
    assert field in r.json()["errors"][0]["field"]
    assert await stored_rows(app) == before


async def test_an_arrangement_beyond_ten_billion_pounds_is_refused_and_nothing_is_written(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=1_000_000)
    before = await stored_rows(app)
    for body in (
        {"parts": [{"option": "direct_payment", "annual_pence": TEN_BILLION_POUNDS + 1}]},
        {"assessed_max_weekly_contribution_pence": BEYOND_64_BITS},
    ):
        r = await arrange(client, tokens, dep["deployment_id"], **body)
        assert r.status_code == 422 and "less than or equal to 1000000000000" in r.text
    assert await stored_rows(app) == before


async def test_export_batches_carry_their_time_in_utc_when_listed(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Found by the fuzz test: read back from SQLite, created_at had lost its offset and
    # was not the RFC 3339 date-time the API documents.
    await active_deployment(app, client, tokens)
    await release_due(client, tokens, START + timedelta(days=7))
    finance = tokens.headers("finance")
    made = await client.post("/v1/exports/payments", json={"up_to": "2010-04-12"}, headers=finance)
    listed = await client.get("/v1/exports/payments", headers=finance)
    [batch] = listed.json()["items"]
    assert batch["created_at"].endswith("Z")
    assert batch["created_at"] == made.json()["created_at"]
