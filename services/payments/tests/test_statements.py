"""The charge reaches payments, and the personal budget statement (Care Act 2014 s.26) with
its challenge: events in with deliver(), HTTP with tokens, events out from the outbox
(docs/charging.md, "The charge in payments" and "The personal budget statement")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import httpx
from fastapi import FastAPI

from contracts import events as ev
from servicekit.testing import Tokens, deliver, outbox_events_of, runtime_of
from services.payments.tests import test_api
from services.payments.tests.test_api import (
    SIGNED_ON,
    START,
    arrange,
    open_deployment,
    release_due,
    sign,
    today_is,
)

tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

WEEKLY = 24_150  # £241.50 a week
ANNUAL = WEEKLY * 52


def financial_assessment(
    outcome: ev.FinancialAssessmentOutcome = ev.FinancialAssessmentOutcome.ASSESSED,
    *,
    weekly_charge_pence: int | None = 8_985,
    assessed_on: date = SIGNED_ON,
    applies_from: date | None = None,
    council: str = "lancashire",
    person_id: str = "p-1",
) -> ev.FinancialAssessmentCompleted:
    charged = outcome not in (
        ev.FinancialAssessmentOutcome.DEFERRED,
        ev.FinancialAssessmentOutcome.REFUSED,
    )
    return ev.FinancialAssessmentCompleted(
        person_id=person_id,
        council=council,
        financial_assessment_id=uuid4(),
        assessment_id=uuid4(),
        outcome=outcome,
        assessed_on=assessed_on,
        cost_of_support_weekly_pence=WEEKLY if charged else None,
        capital=[],
        capital_counted_pence=0,
        tariff_income_weekly_pence=0,
        income_weekly=[],
        income_counted_weekly_pence=0,
        mig_circumstance=None,
        minimum_income_guarantee_weekly_pence=0,
        housing_costs_weekly_pence=0,
        disability_related_expenditure=[],
        disability_related_expenditure_weekly_pence=0,
        weekly_charge_pence=weekly_charge_pence if charged else None,
        lines=[],
        figures_to_confirm=[],
        reason=None if charged else "Waiting for the pension statement",
        assessed_by="finance:fin-1",
        policy_version=f"{council}/2010.1",
        applies_from=applies_from,
    )


async def arranged_on_the_charge(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, council: str = "lancashire"
) -> dict[str, Any]:
    dep = await open_deployment(app, client, tokens, council, annual_pence=ANNUAL)
    r = await arrange(
        client, tokens, dep["deployment_id"], council, assessed_max_weekly_contribution_pence=None
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def statements(
    client: httpx.AsyncClient,
    tokens: Tokens,
    person_id: str = "p-1",
    role: str = "person",
    council: str = "lancashire",
) -> httpx.Response:
    return await client.get(
        f"/v1/people/{person_id}/budget-statements",
        headers=tokens.headers(role, council, person_id="p-1" if role == "person" else None),
    )


async def test_a_deployment_arranged_without_a_figure_takes_the_assessed_charge(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, financial_assessment(weekly_charge_pence=8_985))
    dep = await arranged_on_the_charge(app, client, tokens)
    assert dep["contribution_annual_pence"] == 8_985 * 52
    assert dep["net_annual_pence"] == ANNUAL - 8_985 * 52
    [issued] = await outbox_events_of(app, ev.BudgetStatementIssued)
    assert (issued.total_weekly_pence, issued.person_pays_weekly_pence) == (24_150, 8_985)
    assert issued.council_pays_weekly_pence == 15_165
    assert issued.charge_outcome is ev.FinancialAssessmentOutcome.ASSESSED
    r = await statements(client, tokens)
    assert r.status_code == 200, r.text
    [statement] = r.json()["items"]
    assert "You pay £89.85 a week" in statement["text"] and statement["in_force"]


async def test_without_a_charge_or_a_figure_the_arrangement_still_asks_for_the_figure(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    r = await arrange(
        client, tokens, dep["deployment_id"], assessed_max_weekly_contribution_pence=None
    )
    assert r.status_code == 422 and "assessed_max_weekly_contribution_pence" in r.text


async def test_a_new_assessment_recalculates_unreleased_instalments_and_leaves_released_ones(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    assert (await arrange(client, tokens, dep["deployment_id"])).status_code == 200
    assert (await sign(client, tokens, dep["deployment_id"])).status_code == 200
    url = f"/v1/deployments/{dep['deployment_id']}/schedule"
    await release_due(client, tokens, START + timedelta(days=7))  # weeks 1 and 2
    april = START + timedelta(days=14)
    today_is(april)
    uprating = financial_assessment(weekly_charge_pence=5_000, assessed_on=april)
    await deliver(app, uprating)
    await deliver(app, uprating)  # a redelivery changes nothing more
    [recalculated] = await outbox_events_of(app, ev.ContributionRecalculated)
    assert recalculated.previous_contribution_annual_pence == 0
    assert recalculated.contribution_annual_pence == 5_000 * 52
    assert recalculated.cancelled_instalments == 50  # weeks 3 to 52
    assert recalculated.rescheduled_pence == (ANNUAL - 5_000 * 52) * 50 // 52
    r = await client.get(url, headers=tokens.headers("finance"), params={"limit": 200})
    items = r.json()["items"]
    released = [i["amount_pence"] for i in items if i["status"] == "released"]
    scheduled = [i for i in items if i["status"] == "scheduled"]
    assert released == [WEEKLY, WEEKLY]
    assert {i["amount_pence"] for i in scheduled} == {WEEKLY - 5_000}
    assert min(i["due_on"] for i in scheduled) == april.isoformat()
    issued = await outbox_events_of(app, ev.BudgetStatementIssued)
    assert [s.person_pays_weekly_pence for s in issued] == [0, 5_000]
    assert issued[-1].applies_from == april


async def test_an_uprating_adopted_ahead_changes_only_the_instalments_from_its_date(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    assert (await arrange(client, tokens, dep["deployment_id"])).status_code == 200
    assert (await sign(client, tokens, dep["deployment_id"])).status_code == 200
    today = START + timedelta(days=7)
    today_is(today)
    from_april = START + timedelta(days=28)  # the new figures' date, four weeks on
    await deliver(
        app,
        financial_assessment(weekly_charge_pence=5_000, assessed_on=today, applies_from=from_april),
    )
    [recalculated] = await outbox_events_of(app, ev.ContributionRecalculated)
    assert recalculated.applies_from == from_april
    r = await client.get(
        f"/v1/deployments/{dep['deployment_id']}/schedule",
        headers=tokens.headers("finance"),
        params={"limit": 200},
    )
    scheduled = [i for i in r.json()["items"] if i["status"] == "scheduled"]
    before = {i["amount_pence"] for i in scheduled if i["due_on"] < from_april.isoformat()}
    after = {i["amount_pence"] for i in scheduled if i["due_on"] >= from_april.isoformat()}
    assert before == {WEEKLY}, "weeks before the uprating's date keep the old charge"
    assert after == {WEEKLY - 5_000}


async def test_a_deferred_assessment_keeps_the_charge_before_it(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, financial_assessment(weekly_charge_pence=8_985))
    await arranged_on_the_charge(app, client, tokens)
    await deliver(app, financial_assessment(ev.FinancialAssessmentOutcome.DEFERRED))
    assert await outbox_events_of(app, ev.ContributionRecalculated) == []
    assert len(await outbox_events_of(app, ev.BudgetStatementIssued)) == 1
    # a revised plan's deployment arranged after the deferral still takes £89.85
    revised = await arranged_on_the_charge(app, client, tokens)
    assert revised["contribution_annual_pence"] == 8_985 * 52


async def test_a_refusal_means_the_full_cost_within_council_cs_75_percent_share(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await arranged_on_the_charge_of(app, client, tokens, "council_c")


async def arranged_on_the_charge_of(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, council: str
) -> None:
    await deliver(app, financial_assessment(ev.FinancialAssessmentOutcome.REFUSED, council=council))
    dep = await arranged_on_the_charge(app, client, tokens, council)
    assert dep["contribution_annual_pence"] == ANNUAL * 3 // 4
    [issued] = await outbox_events_of(app, ev.BudgetStatementIssued)
    assert "you chose not to have a financial assessment" in issued.text


async def test_a_statement_is_issued_only_when_a_figure_changes(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    for _ in range(2):
        r = await arrange(client, tokens, dep["deployment_id"])
        assert r.status_code == 200, r.text
    assert len(await outbox_events_of(app, ev.BudgetStatementIssued)) == 1
    r = await arrange(
        client, tokens, dep["deployment_id"], assessed_max_weekly_contribution_pence=1
    )
    assert len(await outbox_events_of(app, ev.BudgetStatementIssued)) == 2


async def test_the_person_challenges_and_a_team_manager_answers_from_the_queue(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, financial_assessment())
    await arranged_on_the_charge(app, client, tokens)
    [statement] = (await statements(client, tokens)).json()["items"]
    url = f"/v1/budget-statements/{statement['statement_id']}/challenges"
    reason = {"reason": "  Nothing is left for the evening visits I need  "}
    r = await client.post(url, json=reason, headers=tokens.headers("care_manager"))
    assert r.status_code == 403
    r = await client.post(url, json=reason, headers=tokens.headers("person", person_id="p-2"))
    assert r.status_code == 404 and r.json()["error"] == "StatementNotFound"
    r = await client.post(
        url, json={"reason": " "}, headers=tokens.headers("person", person_id="p-1")
    )
    assert r.status_code == 422
    r = await client.post(url, json=reason, headers=tokens.headers("person", person_id="p-1"))
    assert r.status_code == 201, r.text
    challenge = r.json()
    assert challenge["reason"] == "Nothing is left for the evening visits I need"
    assert challenge["status"] == "open"

    queue = await client.get("/v1/statement-challenges", headers=tokens.headers("team_manager"))
    assert [c["challenge_id"] for c in queue.json()["items"]] == [challenge["challenge_id"]]
    elsewhere = await client.get(
        "/v1/statement-challenges", headers=tokens.headers("team_manager", "council_a")
    )
    assert elsewhere.json()["items"] == []

    answer_url = f"/v1/statement-challenges/{challenge['challenge_id']}/answer"
    upheld = {"outcome": "upheld", "response": "Evening needs were not assessed"}
    r = await client.post(
        answer_url, json=upheld, headers=tokens.headers("team_manager", "council_a")
    )
    assert r.status_code == 404
    r = await client.post(answer_url, json=upheld, headers=tokens.headers("team_manager"))
    assert r.status_code == 200, r.text
    assert r.json()["review_requested"] is True and r.json()["status"] == "answered"
    r = await client.post(answer_url, json=upheld, headers=tokens.headers("team_manager"))
    assert r.status_code == 409 and r.json()["error"] == "ChallengeAlreadyAnswered"

    [challenged] = await outbox_events_of(app, ev.BudgetStatementChallenged)
    [answered] = await outbox_events_of(app, ev.StatementChallengeAnswered)
    assert challenged.challenged_by.startswith("person:")
    assert answered.outcome is ev.ChallengeOutcome.UPHELD and answered.review_requested
    queue = await client.get("/v1/statement-challenges", headers=tokens.headers("team_manager"))
    assert queue.json()["items"] == []
    [statement] = (await statements(client, tokens, role="care_manager")).json()["items"]
    assert statement["challenges"][0]["outcome"] == "upheld"


async def test_only_the_statement_in_force_can_be_challenged(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    await arrange(client, tokens, dep["deployment_id"])
    await arrange(client, tokens, dep["deployment_id"], assessed_max_weekly_contribution_pence=1)
    newest, older = (await statements(client, tokens)).json()["items"]
    r = await client.post(
        f"/v1/budget-statements/{older['statement_id']}/challenges",
        json={"reason": "Too little"},
        headers=tokens.headers("person", person_id="p-1"),
    )
    assert r.status_code == 409 and newest["statement_id"] in r.json()["detail"]


async def test_a_person_with_no_statement_or_another_councils_is_not_found(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await deliver(app, financial_assessment())
    await arranged_on_the_charge(app, client, tokens)
    assert (await statements(client, tokens, role="care_manager")).status_code == 200
    r = await statements(client, tokens, role="care_manager", council="council_a")
    assert r.status_code == 404 and r.json()["error"] == "PersonHasNoStatement"
    r = await client.get(
        "/v1/people/p-1/budget-statements", headers=tokens.headers("person", person_id="p-2")
    )
    assert r.status_code == 404


async def test_a_batch_reads_the_latest_statements_once_and_sees_the_ones_it_adds(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """What the bulk conversion's prefetch answers is what a read of each row would."""
    dep = await open_deployment(app, client, tokens, annual_pence=ANNUAL)
    person = dep["person_id"]
    await arrange(client, tokens, dep["deployment_id"])
    await arrange(client, tokens, dep["deployment_id"], assessed_max_weekly_contribution_pence=1)
    runtime = runtime_of(app)
    async with runtime.uow() as uow:
        read_alone = await uow.statements.latest_statement("lancashire", person)
    assert read_alone is not None and read_alone.figures.person_pays_annual_pence == 52

    async with runtime.uow() as uow:
        await uow.statements.prefetch_people("lancashire", [person, "nobody-yet"])
        assert await uow.statements.latest_statement("lancashire", person) == read_alone
        assert await uow.statements.latest_statement("lancashire", "nobody-yet") is None
        # Another council's person of the same id is not this council's.
        assert await uow.statements.latest_statement("council_a", person) is None
        newer = replace(read_alone, statement_id=uuid4())
        await uow.statements.add_statement(newer)
        assert await uow.statements.latest_statement("lancashire", person) == newer
        await uow.rollback()
    async with runtime.uow() as uow:
        assert await uow.statements.latest_statement("lancashire", person) == read_alone
