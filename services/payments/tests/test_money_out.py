"""Money leaves only when it is due, through the real API, whoever calls.

Nothing is released before its due date by the service's own clock; an agreement is not
signed in the future nor before the plan it funds was signed off; instalments already past
due when they are scheduled (arrears) need a reason and a role whose limit covers them,
and are recorded; the dates the API takes have plausible ranges; concurrent uploads of one
confirmation file record one outcome.

Seed 004 = SCIE "Keeping personal budgets personal" (2011): Council A's sign-off limits
(care manager £250, team manager £415, above that the panel), applied to an arrears total.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import events as ev
from servicekit.testing import Tokens, deliver, outbox_events, outbox_events_of, running
from services.audit.api import create_app as create_audit_app
from services.audit.settings import Settings as AuditSettings
from services.payments.tests import test_api
from services.payments.tests.test_api import (
    SIGNED_ON,
    START,
    active_deployment,
    arrange,
    open_deployment,
    release_due,
    schedule,
    today_is,
)
from services.payments.tests.test_reconciliation import CSV, HEADER, read_whole_feed

tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

WEEKLY_200 = 1_040_000  # £10,400 a year: £200 a week


async def released_count(app: FastAPI) -> int:
    return len(await outbox_events_of(app, ev.PaymentReleased))


async def agree(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deployment_id: str,
    council: str = "lancashire",
    role: str = "care_manager",
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/deployments/{deployment_id}/agreement",
        json=body,
        headers=tokens.headers(role, council),
    )


# --- nothing released before it is due -------------------------------------------------------


async def test_release_due_with_as_of_in_the_future_is_refused_and_nothing_is_released(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    today_is(START + timedelta(days=14))
    for path in ("/v1/payments/release-due", f"/v1/deployments/{dep['deployment_id']}/release"):
        r = await client.post(path, json={"as_of": "2099-01-01"}, headers=tokens.headers("finance"))
        assert r.status_code == 422 and r.json()["error"] == "ReleaseDateInFuture", r.text
    assert {i["status"] for i in await schedule(client, tokens, dep["deployment_id"])} == {
        "scheduled"
    }
    assert await released_count(app) == 0


async def test_a_deployments_release_today_releases_only_what_is_due_dated_today(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    today = START + timedelta(days=14)  # weeks 1, 2 and 3 are due: START, +7, +14
    today_is(today)
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/release",
        json={},
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["as_of"], r.json()["count"]) == (today.isoformat(), 3)
    assert [p["due_on"] for p in r.json()["released"]] == [
        (START + timedelta(days=d)).isoformat() for d in (0, 7, 14)
    ]
    feed = await read_whole_feed(client, tokens)
    assert {i["released_on"] for i in feed} == {today.isoformat()}


async def test_an_earlier_as_of_catches_up_to_that_day_only_and_is_dated_today(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    today = START + timedelta(days=14)
    today_is(today)
    r = await client.post(
        "/v1/payments/release-due",
        json={"as_of": START.isoformat()},
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 200, r.text
    [payment] = r.json()["released"]
    assert (payment["due_on"], payment["released_on"]) == (START.isoformat(), today.isoformat())


# --- the agreement: not in the future, not before the plan's sign-off -----------------------


async def test_an_agreement_signed_in_the_future_is_refused_and_nothing_is_scheduled(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens)
    assert (await arrange(client, tokens, dep["deployment_id"])).is_success
    r = await agree(client, tokens, dep["deployment_id"], signed_on="2030-01-01")
    assert r.status_code == 422 and r.json()["error"] == "SignedInFuture", r.text
    after = await client.get(
        f"/v1/deployments/{dep['deployment_id']}", headers=tokens.headers("care_manager")
    )
    assert after.json()["status"] == "awaiting_agreement" and after.json()["schedules"] == []
    assert await outbox_events_of(app, ev.AgreementSigned) == []


async def test_an_agreement_signed_before_the_plan_was_signed_off_is_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Lancashire books the first review 42 days after sign-off: this plan was signed off
    # on SIGNED_ON itself.
    signed_off = SIGNED_ON
    dep = await open_deployment(
        app, client, tokens, first_review_on=signed_off + timedelta(days=42)
    )
    assert (await arrange(client, tokens, dep["deployment_id"])).is_success
    day_before = (signed_off - timedelta(days=1)).isoformat()
    r = await agree(client, tokens, dep["deployment_id"], signed_on=day_before)
    assert r.status_code == 422 and r.json()["error"] == "SignedBeforeSignOff", r.text
    assert signed_off.isoformat() in r.json()["detail"]
    on_the_day = await agree(client, tokens, dep["deployment_id"], signed_on=signed_off.isoformat())
    assert on_the_day.status_code == 200, on_the_day.text


# --- arrears (rules/arrears.py) ---------------------------------------------------------------


async def late_agreement(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> str:
    """Council A, £200 a week from START; the agreement comes back on START + 14, so the
    instalments of START and START + 7 are already past due: £400 of arrears."""
    dep = await open_deployment(app, client, tokens, "council_a", annual_pence=WEEKLY_200)
    r = await arrange(client, tokens, dep["deployment_id"], "council_a")
    assert r.status_code == 200, r.text
    today_is(START + timedelta(days=14))
    deployment_id: str = dep["deployment_id"]
    return deployment_id


async def test_a_back_dated_agreement_without_a_reason_is_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    deployment_id = await late_agreement(app, client, tokens)
    r = await agree(client, tokens, deployment_id, "council_a", role="team_manager")
    assert r.status_code == 422 and r.json()["error"] == "ArrearsNeedReason", r.text
    assert "40000 pence" in r.json()["detail"]
    assert await outbox_events_of(app, ev.AgreementSigned) == []


async def test_arrears_above_the_roles_limit_are_refused_with_403(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Seed 004 Council A: a care manager's limit is £250; the arrears are £400.
    deployment_id = await late_agreement(app, client, tokens)
    r = await agree(
        client, tokens, deployment_id, "council_a", arrears_reason="Agreement came back late"
    )
    assert r.status_code == 403 and r.json()["error"] == "AboveArrearsLimit", r.text
    assert "team_manager" in r.json()["detail"]
    assert await outbox_events_of(app, ev.AgreementSigned) == []
    assert await schedule(client, tokens, deployment_id, "council_a") == []


async def test_arrears_within_the_roles_limit_are_approved_recorded_and_shown_in_audit(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    data_dir: Any,
    policies_dir: Any,
) -> None:
    # Seed 004 Council A: a team manager may approve up to £415; the arrears are £400.
    deployment_id = await late_agreement(app, client, tokens)
    reason = "Agreement came back late; the PA has worked since the first payment date"
    r = await agree(
        client, tokens, deployment_id, "council_a", role="team_manager", arrears_reason=reason
    )
    assert r.status_code == 200, r.text
    [arrears] = await outbox_events_of(app, ev.ArrearsApproved)
    assert (arrears.instalments, arrears.amount_pence, arrears.earliest_due_on) == (
        2,
        40_000,
        START,
    )
    assert (arrears.reason, arrears.approved_by_role.value) == (reason, "team_manager")

    released = await release_due(client, tokens, START + timedelta(days=14), "council_a")
    assert released.json()["count"] == 3  # the two in arrears and today's

    audit = create_audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(audit) as audit_client:
        for envelope in await outbox_events(app):
            await deliver(audit, envelope)
        r = await audit_client.get(
            f"/v1/people/{arrears.person_id}/timeline",
            headers=tokens.headers("auditor", "council_a"),
        )
    assert r.status_code == 200, r.text
    [line] = [i for i in r.json()["items"] if i["kind"] == "arrears-approved"]
    assert line["amount_pence"] == 40_000 and reason in line["summary"]


async def test_a_switch_dated_back_is_arrears_too(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    await release_due(client, tokens, START)  # week 1 paid
    today_is(START + timedelta(days=21))  # weeks 2, 3 and 4 are due, not yet released
    switch = {
        "parts": [{"option": "council_managed"}],
        "frequency": "weekly",
        "first_due_on": (START + timedelta(days=7)).isoformat(),
    }
    path = f"/v1/deployments/{dep['deployment_id']}/arrangement"
    r = await client.put(path, json=switch, headers=tokens.headers("team_manager"))
    assert r.status_code == 422 and r.json()["error"] == "ArrearsNeedReason", r.text
    assert await outbox_events_of(app, ev.DeploymentSwitched) == []

    switch["arrears_reason"] = "Moved to a managed account from week 2, as agreed then"
    r = await client.put(path, json=switch, headers=tokens.headers("team_manager"))
    assert r.status_code == 200, r.text
    [arrears] = await outbox_events_of(app, ev.ArrearsApproved)
    assert (arrears.instalments, arrears.earliest_due_on) == (2, START + timedelta(days=7))


# --- no week paid twice, across every plan the person has had ------------------------------


async def test_a_revised_plan_dated_back_cannot_pay_weeks_an_earlier_plan_already_paid(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Found by the model walk (test_money_model.py): the handover checked only the
    # deployment it replaced, so a third plan dated back paid again a week the first paid.
    first = await active_deployment(app, client, tokens, person_id="p-2", annual_pence=WEEKLY_200)
    await release_due(client, tokens, START)  # week 1 of the first plan is paid
    second = await open_deployment(app, client, tokens, person_id="p-2")
    week_2 = (START + timedelta(days=7)).isoformat()
    assert (await arrange(client, tokens, second["deployment_id"], first_due_on=week_2)).is_success
    assert (await agree(client, tokens, second["deployment_id"])).status_code == 200

    third = await open_deployment(app, client, tokens, person_id="p-2")
    r = await arrange(client, tokens, third["deployment_id"], first_due_on=START.isoformat())
    assert r.status_code == 200, r.text
    r = await agree(
        client,
        tokens,
        third["deployment_id"],
        role="team_manager",
        arrears_reason="Plan agreed at the start of the month",
    )
    assert r.status_code == 409 and r.json()["error"] == "HandoverBlocked", r.text
    assert first["deployment_id"] in r.json()["detail"]
    assert await schedule(client, tokens, third["deployment_id"]) == []


# --- plausible dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_due_on", "accepted"),
    [
        ("0001-01-01", False),
        ("9999-12-01", False),
        ((SIGNED_ON - timedelta(days=366)).isoformat(), False),
        ((SIGNED_ON - timedelta(days=365)).isoformat(), True),
        ((SIGNED_ON + timedelta(days=730)).isoformat(), True),
        ((SIGNED_ON + timedelta(days=731)).isoformat(), False),
    ],
)
async def test_first_due_on_is_within_a_year_before_today_to_two_years_after(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, first_due_on: str, accepted: bool
) -> None:
    dep = await open_deployment(app, client, tokens)
    r = await arrange(client, tokens, dep["deployment_id"], first_due_on=first_due_on)
    if accepted:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 422 and r.json()["error"] == "DateOutOfRange", r.text
        detail = r.json()["detail"]
        assert "first_due_on" in detail and "YYYY-MM-DD" in detail
        assert (SIGNED_ON - timedelta(days=365)).isoformat() in detail


async def test_first_due_on_left_out_is_today(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens)
    r = await client.put(
        f"/v1/deployments/{dep['deployment_id']}/arrangement",
        json={
            "parts": [{"option": "direct_payment"}],
            "frequency": "weekly",
            "assessed_max_weekly_contribution_pence": 0,
        },
        headers=tokens.headers("care_manager"),
    )
    assert r.status_code == 200 and r.json()["first_due_on"] == SIGNED_ON.isoformat(), r.text


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("agreement", {"signed_on": "1999-12-31"}, "signed_on"),
        ("release", {"as_of": "1999-12-31"}, "as_of"),
        ("unspent-check", {"as_of": "1999-12-31", "balance_pence": 0}, "as_of"),
        (
            "returns",
            {"period_start": "1999-12-01", "period_end": "1999-12-31", "items": []}
            | {"balance_pence": 0},
            "period_start",
        ),
    ],
)
async def test_a_date_before_2000_is_refused_naming_the_field_and_the_range(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    route: str,
    body: dict[str, Any],
    field: str,
) -> None:
    if route == "agreement":
        dep = await open_deployment(app, client, tokens)
        assert (await arrange(client, tokens, dep["deployment_id"])).is_success
    else:
        dep = await active_deployment(app, client, tokens)
    r = await client.post(
        f"/v1/deployments/{dep['deployment_id']}/{route}",
        json=body,
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 422 and r.json()["error"] == "DateOutOfRange", r.text
    assert field in r.json()["detail"] and "from 2000-01-01" in r.json()["detail"]


async def test_a_confirmation_processed_after_today_is_refused_and_nothing_recorded(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    await release_due(client, tokens, START)
    [payment] = await read_whole_feed(client, tokens)
    tomorrow = (START + timedelta(days=1)).isoformat()
    line = f"{payment['payment_id']},paid,{payment['amount_pence']},{tomorrow},,BACS-1\r\n"
    r = await client.post(
        "/v1/payments/confirmations",
        content=(HEADER + line).encode(),
        headers=tokens.headers("finance", **CSV),
    )
    assert r.status_code == 422, r.text
    assert [x["column"] for x in r.json()["rejected"]] == ["processed_on"]
    assert await outbox_events_of(app, ev.PaymentConfirmed) == []


async def test_a_malformed_date_is_refused_with_422(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        "/v1/payments/release-due", json={"as_of": "31/12/2010"}, headers=tokens.headers("finance")
    )
    assert r.status_code == 422 and "as_of" in r.text


# --- one confirmation file uploaded twenty times at once --------------------------------------


async def test_twenty_concurrent_uploads_of_one_confirmation_file_record_one_outcome(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await active_deployment(app, client, tokens, annual_pence=WEEKLY_200)
    await release_due(client, tokens, START + timedelta(days=7))  # two payments
    paid_on = (START + timedelta(days=9)).isoformat()
    lines = [
        f"{p['payment_id']},paid,{p['amount_pence']},{paid_on},,BACS-{n}\r\n"
        for n, p in enumerate(await read_whole_feed(client, tokens))
    ]
    text = (HEADER + "".join(lines)).encode()
    today_is(START + timedelta(days=9))

    async def upload() -> httpx.Response:
        return await client.post(
            "/v1/payments/confirmations", content=text, headers=tokens.headers("finance", **CSV)
        )

    answers = await asyncio.gather(*(upload() for _ in range(20)))

    assert {r.status_code for r in answers} <= {200, 409}, [r.text for r in answers]
    ok = [r.json() for r in answers if r.status_code == 200]
    assert sorted((a["recorded_paid"], a["unchanged"]) for a in ok) == [(0, 2)] * (len(ok) - 1) + [
        (2, 0)
    ]
    assert {r.json()["error"] for r in answers if r.status_code == 409} <= {
        "ConcurrentConfirmation"
    }
    assert len(await outbox_events_of(app, ev.PaymentConfirmed)) == 2


def test_arrears_rule_applies_council_as_sign_off_limits_to_the_total() -> None:
    from contracts.policy import PolicyBook
    from contracts.vocabulary import Role
    from rules import arrears, authority
    from servicekit.testing import POLICIES_DIR

    council_a = PolicyBook.from_directory(POLICIES_DIR).current("council_a")
    due = [arrears.DueAmount(START + timedelta(days=7 * n), 20_000) for n in range(4)]
    owed = arrears.arrears_among(due, START + timedelta(days=14))
    assert (len(owed.instalments), owed.total_pence) == (2, 40_000)
    assert not authority.may_approve_arrears(council_a, Role.CARE_MANAGER, owed.total_pence)
    assert authority.may_approve_arrears(council_a, Role.TEAM_MANAGER, owed.total_pence)
    assert authority.who_may_approve_arrears(council_a, 41_501) == [Role.PANEL]
    assert not arrears.arrears_among(due, date(2010, 4, 5))  # due today is not arrears
