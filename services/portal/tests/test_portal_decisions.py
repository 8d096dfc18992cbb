"""Decisions the portal's forms carry to the services: the reason arrears are paid, and the
panel sitting that signed a plan off. The portal asks `rules/authority.py` what to offer,
sends what the user chose, and shows the service's own reason when it refuses.

Each test runs the one service it needs in-process behind the portal (httpx's ASGI
transport); the other services' paths answer 404 there, which the person page reads as
nothing to show.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import events as ev
from servicekit.testing import Tokens, deliver, outbox_events_of, running
from services.allocation.api import create_app as create_allocation
from services.allocation.settings import Settings as AllocationSettings
from services.allocation.tests.test_api import LOWEST, budget_of, validated
from services.payments.api import create_app as create_payments
from services.payments.settings import Settings as PaymentsSettings
from services.payments.tests import test_api as payments_tests
from services.payments.tests.test_api import START, arrange, open_deployment, today_is
from services.planning.api import create_app as create_planning
from services.planning.settings import Settings as PlanningSettings
from services.planning.tests.test_api import Service, a_line, budget_for, plan_body, submitted
from services.portal.api import create_app
from services.portal.clients import Services
from services.portal.settings import Settings
from services.portal.tests.test_portal import csrf_of, sign_in

# Payments decides arrears by its own clock (autouse): each test starts on payments' day.
payments_clock = payments_tests.service_clock

PortalFor = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def portal_for(data_dir: Path, policies_dir: Path) -> PortalFor:
    """The portal with one service behind it, served in-process."""

    @asynccontextmanager
    async def portal(service: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            await services.close()
            services._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service))
            services.urls = {name: "http://service" for name in services.urls}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
                yield client

    return portal


async def post_form(
    portal: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    """Post a form of `page` as a user would, then follow the redirect to what it shows."""
    html = (await portal.get(page)).text
    return await portal.post(
        action, data={"csrf_token": csrf_of(html), **fields}, follow_redirects=True
    )


def messages(html: str) -> str:
    """The page's text with its markup and entities removed, to read what a user reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


# --- arrears: a first payment due before today ------------------------------------------------


async def test_an_agreement_after_the_first_payment_was_due_asks_why_and_sends_the_reason(
    data_dir: Path, policies_dir: Path, tokens: Tokens, portal_for: PortalFor
) -> None:
    payments = create_payments(PaymentsSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(payments) as service, portal_for(payments) as portal:
        # Council A, £200 a week from START; the agreement comes back two weeks later, so
        # the instalments of START and START + 7 are past due: £400 of arrears.
        deployment = await open_deployment(payments, service, tokens, "council_a")
        deployment_id = deployment["deployment_id"]
        assert (await arrange(service, tokens, deployment_id, "council_a")).status_code == 200
        today_is(START + timedelta(days=14))
        # Seed 004 App.1 Council A: a team manager may approve up to £415; a care manager £250.
        await sign_in(portal, "team_manager", council="council_a")

        page = (await portal.get("/people/p-1")).text
        assert 'name="arrears_reason"' in page
        assert "The first payment was due on 5 April 2010, before today" in page

        agreement = f"/deployments/{deployment_id}/agreement"
        signed_on = (START + timedelta(days=14)).isoformat()
        refused = await post_form(
            portal, "/people/p-1", agreement, person_id="p-1", signed_on=signed_on
        )
        assert "2 instalment(s) of 40000 pence were due before today" in messages(refused.text)
        assert "give arrears_reason" in messages(refused.text)
        assert await outbox_events_of(payments, ev.AgreementSigned) == []

        await sign_in(portal, "care_manager", council="council_a")
        too_much = await post_form(
            portal,
            "/people/p-1",
            agreement,
            person_id="p-1",
            signed_on=signed_on,
            arrears_reason="The agreement came back late",
        )
        assert "You may not do this:" in messages(too_much.text)
        assert "approved by: team_manager, panel" in messages(too_much.text)

        await sign_in(portal, "team_manager", council="council_a")
        signed = await post_form(
            portal,
            "/people/p-1",
            agreement,
            person_id="p-1",
            signed_on=signed_on,
            arrears_reason="The agreement came back late",
        )
        assert "Signed agreement recorded" in signed.text
    [arrears] = await outbox_events_of(payments, ev.ArrearsApproved)
    assert (arrears.amount_pence, arrears.reason) == (40_000, "The agreement came back late")


async def test_an_agreement_on_time_asks_for_no_arrears_reason(
    data_dir: Path, policies_dir: Path, tokens: Tokens, portal_for: PortalFor
) -> None:
    payments = create_payments(PaymentsSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(payments) as service, portal_for(payments) as portal:
        deployment = await open_deployment(payments, service, tokens, "council_a")
        assert (
            await arrange(service, tokens, deployment["deployment_id"], "council_a")
        ).status_code == 200
        await sign_in(portal, "team_manager", council="council_a")
        page = (await portal.get("/people/p-1")).text
        assert "Record the signed agreement" in page and "arrears_reason" not in page


# --- Council B's panel: a separate sitting above £300 a week ------------------------------------


@pytest.fixture
async def planning(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[Service]:
    app = create_planning(PlanningSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        yield Service(app, client, tokens)


async def sign_off_form(portal: httpx.AsyncClient, plan_id: str, **fields: str) -> httpx.Response:
    return await post_form(
        portal, "/people/p-1", f"/plans/{plan_id}/sign-off", person_id="p-1", **fields
    )


async def plan_history(planning: Service, plan_id: str) -> list[dict[str, Any]]:
    r = await planning.client.get(
        f"/v1/plans/{plan_id}", headers=planning.as_("panel", "council_b")
    )
    assert r.status_code == 200, r.text
    history: list[dict[str, Any]] = r.json()["history"]
    return history


async def test_council_bs_panel_names_its_sitting_and_the_ordinary_one_cannot_sign_above_300(
    planning: Service, portal_for: PortalFor
) -> None:
    # Seed 004 App.1 Council B: the panel meets "twice for budgets greater than £300 per
    # week and once for budgets less than this"; £300.01 goes to the separate sitting.
    budget = await budget_for(planning, "p-1", 50_000, council="council_b")
    plan_id = await submitted(planning, plan_body(budget, a_line(30_001)), "council_b")
    async with portal_for(planning.app) as portal:
        await sign_in(portal, "panel", council="council_b")
        page = (await portal.get("/people/p-1")).text
        assert 'name="panel_sitting"' in page
        assert '<option value="separate" selected>' in page
        assert "this one goes to its separate sitting" in messages(page)
        queue = (await portal.get("/approvals")).text
        assert f'id="sitting-{plan_id}" name="panel_sitting"' in queue

        at_ordinary = await sign_off_form(portal, plan_id, panel_sitting="ordinary")
        assert (
            "You may not do this: £300.01 a week is decided at the panel's separate sitting"
            in messages(at_ordinary.text)
        )
        assert (await plan_history(planning, plan_id))[-1]["detail"].get("panel_sitting") is None

        at_separate = await sign_off_form(portal, plan_id, panel_sitting="separate")
        assert "Plan signed off." in at_separate.text
    assert (await plan_history(planning, plan_id))[-1]["detail"]["panel_sitting"] == "separate"


async def test_only_a_panel_member_of_a_council_whose_panel_sits_twice_is_asked_the_sitting(
    planning: Service, portal_for: PortalFor
) -> None:
    for council in ("council_b", "council_a"):
        budget = await budget_for(planning, "p-1", 50_000, council=council)
        await submitted(planning, plan_body(budget, a_line(30_001)), council)
    async with portal_for(planning.app) as portal:
        await sign_in(portal, "team_manager", council="council_b")
        assert 'name="panel_sitting"' not in (await portal.get("/people/p-1")).text
        await sign_in(portal, "panel", council="council_a")
        assert 'name="panel_sitting"' not in (await portal.get("/people/p-1")).text


async def test_council_bs_panel_names_its_sitting_when_it_agrees_a_budget_above_300(
    data_dir: Path, policies_dir: Path, tokens: Tokens, portal_for: PortalFor
) -> None:
    allocation = create_allocation(AllocationSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(allocation) as service, portal_for(allocation) as portal:
        # Council B's RAS: 37 points x £10 = £370 a week, for the panel's separate sitting.
        levels = {**LOWEST, "staying_safe": 5}
        await deliver(allocation, validated("p-1", "council_b", domain_levels=levels))
        budget = await budget_of(service, tokens, "p-1", "council_b")
        agree = f"/budgets/{budget['budget_id']}/agree"
        await sign_in(portal, "panel", council="council_b")
        page = (await portal.get("/people/p-1")).text
        assert 'id="budget_panel_sitting" name="panel_sitting"' in page

        at_ordinary = await post_form(
            portal, "/people/p-1", agree, person_id="p-1", panel_sitting="ordinary"
        )
        assert "You may not do this: £370.00 a week is decided at the panel's separate sitting" in (
            messages(at_ordinary.text)
        )
        assert await outbox_events_of(allocation, ev.BudgetIssued) == []

        at_separate = await post_form(
            portal, "/people/p-1", agree, person_id="p-1", panel_sitting="separate"
        )
        assert "Budget agreed and issued to the person." in at_separate.text
        agreed = await budget_of(service, tokens, "p-1", "council_b")
        assert agreed["current_revision"]["panel_sitting"] == "separate"
    [issued] = await outbox_events_of(allocation, ev.BudgetIssued)
    assert issued.weekly_pence == 37_000
