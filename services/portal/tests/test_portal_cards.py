"""Card accounts through the portal, with payments in-process: finance imports the card
provider's file, sees the surplus on the person's page and sends the written notice; the
person reads it in plain words and answers; a recoup before the period ends is refused
with the day it ends; after it, the recoup shows on both pages.

Seed 004 App.1 Council A: unspent funds above 10 weeks of the direct payment are repaid.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from servicekit.testing import Tokens
from services.payments.tests import test_api as payments_tests
from services.payments.tests.test_api import START, active_deployment, today_is
from services.portal.tests import test_portal_files
from services.portal.tests.test_portal import csrf_of, sign_in

payments_clock = payments_tests.service_clock
payments = test_portal_files.payments
finance_portal = test_portal_files.finance_portal

COUNCIL = "council_a"
TODAY = START + timedelta(days=60)
ON = (START + timedelta(days=30)).isoformat()
HEADER = (
    "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,"
    "merchant_category\r\n"
)
CARD_FILE = (
    HEADER
    + f"PPC-001,p-card,transaction,TX-1,{ON},-15000,personal_assistant\r\n"
    + f"PPC-001,p-card,balance,,{ON},242500,\r\n"
)


async def post_form(portal: httpx.AsyncClient, page: str, action: str, **data: str) -> str:
    """Submit a form from `page` and return the page it leads back to."""
    html = (await portal.get(page)).text
    answer = await portal.post(action, data={"csrf_token": csrf_of(html), **data})
    assert answer.status_code == 303, answer.text
    return (await portal.get(answer.headers["location"].split("#")[0])).text


async def test_surplus_notice_response_and_recoup_on_the_pages(
    finance_portal: httpx.AsyncClient, payments: FastAPI, tokens: Tokens
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=payments), base_url="http://payments"
    ) as service:
        await active_deployment(
            payments, service, tokens, COUNCIL, person_id="p-card", annual_pence=20_000 * 52
        )
    today_is(TODAY)
    portal = finance_portal
    await sign_in(portal, "finance", council=COUNCIL)

    page = (await portal.get("/finance")).text
    refused = await portal.post(
        "/finance/card-file",
        data={"csrf_token": csrf_of(page)},
        files={
            "file": ("card.csv", (HEADER + "PPC-001,p-card,balance,,2010-13-01,5,\r\n").encode())
        },
    )
    assert refused.status_code == 422 and "Nothing was imported" in refused.text
    assert "<td>posted_on</td>" in refused.text
    accepted = await portal.post(
        "/finance/card-file",
        data={"csrf_token": csrf_of(page)},
        files={"file": ("card.csv", CARD_FILE.encode())},
    )
    assert accepted.status_code == 303
    assert "1 surplus(es) flagged" in (await portal.get("/finance")).text

    person = (await portal.get("/people/p-card")).text
    assert "Surplus of £425.00" in person and "Personal assistant" in person
    account_id = person.split('action="/card-accounts/')[1].split("/")[0]

    person = await post_form(
        portal,
        "/people/p-card",
        f"/card-accounts/{account_id}/notice",
        person_id="p-card",
        amount="425.00",
        reason="Money has built up beyond what your plan needs",
    )
    assert "Written notice sent on" in person and "may respond until 2 July 2010" in person
    notice_id = person.split("/notices/")[1].split("/")[0]
    person = await post_form(
        portal,
        "/people/p-card",
        f"/card-accounts/{account_id}/recoup",
        person_id="p-card",
        amount="425.00",
        notice_id=notice_id,
    )
    assert "the person may respond until 2 July 2010" in person
    assert "Recouped" not in person

    await sign_in(portal, "person", council=COUNCIL, person_id="p-card")
    mine = (await portal.get("/me")).text
    assert "we plan to take back <strong>£425.00</strong>" in mine
    assert "We will not take any money back before then." in mine
    mine = await post_form(
        portal,
        "/me",
        f"/card-accounts/{account_id}/notices/{notice_id}/response",
        response="disagrees",
        comments="I am saving for a short break",
    )
    assert "that you do not agree" in mine

    today_is(TODAY + timedelta(days=29))
    await sign_in(portal, "finance", council=COUNCIL)
    person = await post_form(
        portal,
        "/people/p-card",
        f"/card-accounts/{account_id}/recoup",
        person_id="p-card",
        amount="425.00",
        notice_id=notice_id,
    )
    assert "£425.00 recouped from the card account." in person
    assert "Disagrees" in person and "I am saving for a short break" in person

    await sign_in(portal, "person", council=COUNCIL, person_id="p-card")
    mine = (await portal.get("/me")).text
    assert "we took back £425.00 from your card" in mine
