"""Prepaid card accounts through the payments API: the provider's file, the surplus above
the council's threshold, and a recoup only after a written notice and its period.

Seed 004 App.1 Council A: unspent funds above 10 weeks of the direct payment are repaid.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from servicekit.testing import Tokens, outbox_events
from services.payments.tests import test_api
from services.payments.tests.test_api import START, active_deployment, today_is

# The service's own fixtures: the app in-process, its client, tokens signed for it.
tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

COUNCIL = "council_a"
TODAY = START + timedelta(days=60)
HEADER = (
    "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,merchant_category"
)
WEEKLY_DP = 20_000  # £200 a week: Council A lets the person keep 10 weeks, £2,000


def card_file(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode("utf-8")


ON = (START + timedelta(days=30)).isoformat()
FIRST_FILE = card_file(
    f"PPC-001,p-card,transaction,TX-1,{ON},260000,council_load",
    f"PPC-001,p-card,transaction,TX-2,{ON},-12000,personal_assistant",
    f"PPC-001,p-card,transaction,TX-3,{ON},-2500,leisure",
    f"PPC-001,p-card,transaction,TX-4,{ON},-3000,personal_assistant",
    f"PPC-001,p-card,balance,,{ON},242500,",
)


async def upload(
    client: httpx.AsyncClient, tokens: Tokens, content: bytes, council: str = COUNCIL
) -> httpx.Response:
    headers = {**tokens.headers("finance", council), "Content-Type": "text/csv"}
    return await client.post("/v1/card-accounts/transactions", content=content, headers=headers)


async def card_person(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> None:
    """p-card: a direct payment of £200 a week under a signed agreement in Council A."""
    await active_deployment(
        app, client, tokens, COUNCIL, person_id="p-card", annual_pence=WEEKLY_DP * 52
    )
    today_is(TODAY)


async def the_account(client: httpx.AsyncClient, tokens: Tokens, role: str = "finance") -> Any:
    r = await client.get(
        "/v1/card-accounts", params={"person_id": "p-card"}, headers=tokens.headers(role, COUNCIL)
    )
    assert r.status_code == 200, r.text
    [account] = r.json()["items"]
    return account


async def events_named(app: FastAPI, name: str) -> list[Any]:
    return [e for e in await outbox_events(app) if type(e.event).__name__ == name]


async def test_an_imported_file_keeps_the_balance_and_spending_and_flags_the_surplus(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    r = await upload(client, tokens, FIRST_FILE)
    assert r.status_code == 200, r.text
    assert r.json() | {"rejected": []} == {
        "accepted": True,
        "lines": 5,
        "rejected": [],
        "accounts": 1,
        "transactions": 4,
        "balances": 1,
        "unchanged": 0,
        "surpluses_flagged": 1,
    }
    account = await the_account(client, tokens)
    assert (account["balance_pence"], account["spent_pence"]) == (242_500, 17_500)
    assert account["spent_by_category"] == [
        {"category": "personal_assistant", "spent_pence": 15_000},
        {"category": "leisure", "spent_pence": 2_500},
    ]
    # 10 weeks of £200 is £2,000: £2,425 on the card is £425 over
    [surplus] = account["surpluses"]
    assert (surplus["allowance_pence"], surplus["surplus_pence"]) == (200_000, 42_500)
    [imported] = await events_named(app, "CardTransactionsImported")
    assert imported.event.transactions == 4 and imported.event.balance_pence == 242_500
    [flagged] = await events_named(app, "CardSurplusFlagged")
    assert flagged.event.surplus_pence == 42_500


async def test_a_balance_within_ten_weeks_is_no_surplus(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    r = await upload(client, tokens, card_file(f"PPC-001,p-card,balance,,{ON},200000,"))
    assert r.json()["surpluses_flagged"] == 0
    assert (await the_account(client, tokens))["surpluses"] == []


async def test_every_bad_row_is_named_and_nothing_is_recorded(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    r = await upload(
        client,
        tokens,
        card_file(
            f"PPC-001,p-card,transaction,TX-1,{ON},-100,groceries",
            f"PPC-001,p-card,transaction,TX-2,{ON},12.50,groceries",
            f"PPC-001,p-card,transaction,,{ON},-100,groceries",
            f"PPC-001,p-card,transaction,TX-4,{tomorrow},-100,groceries",
            f"PPC-001,p-card,transaction,TX-5,{ON},-100,",
            f"PPC-001,p-card,transaction,TX-1,{ON},-100,groceries",
            f"PPC-001,p-card,balance,,{ON},-5,",
            f"PPC-002,p-nobody,balance,,{ON},100,",
        ),
    )
    assert r.status_code == 422 and r.json()["error"] == "CardRowsRefused"
    refused = {(x["line"], x["column"]) for x in r.json()["rejected"]}
    assert refused == {
        (3, "amount_pence"),
        (4, "transaction_id"),
        (5, "posted_on"),
        (6, "merchant_category"),
        (7, "transaction_id"),
        (8, "amount_pence"),
        (9, "person_id"),
    }
    listed = await client.get("/v1/card-accounts", headers=tokens.headers("finance", COUNCIL))
    assert listed.json()["items"] == []
    assert await events_named(app, "CardTransactionsImported") == []


async def test_the_same_file_twice_records_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    assert (await upload(client, tokens, FIRST_FILE)).status_code == 200
    before = await the_account(client, tokens)
    again = await upload(client, tokens, FIRST_FILE)
    assert again.status_code == 200
    assert (again.json()["transactions"], again.json()["unchanged"]) == (0, 5)
    assert await the_account(client, tokens) == before
    assert len(await events_named(app, "CardTransactionsImported")) == 1
    assert len(await events_named(app, "CardSurplusFlagged")) == 1


async def test_a_transaction_in_two_files_is_counted_once_and_a_changed_one_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    await upload(client, tokens, FIRST_FILE)
    later = (START + timedelta(days=40)).isoformat()
    r = await upload(
        client,
        tokens,
        card_file(
            f"PPC-001,p-card,transaction,TX-3,{ON},-2500,leisure",
            f"PPC-001,p-card,transaction,TX-9,{later},-1000,leisure",
        ),
    )
    assert (r.json()["transactions"], r.json()["unchanged"]) == (1, 1)
    account = await the_account(client, tokens)
    assert account["spent_pence"] == 18_500 and account["transactions"] == 5
    changed = await upload(
        client, tokens, card_file(f"PPC-001,p-card,transaction,TX-9,{later},-9999,leisure")
    )
    assert changed.status_code == 422
    [refusal] = changed.json()["rejected"]
    assert refusal["column"] == "transaction_id" and "imported before" in refusal["reason"]


async def notice(
    client: httpx.AsyncClient, tokens: Tokens, account_id: str, amount_pence: int
) -> httpx.Response:
    return await client.post(
        f"/v1/card-accounts/{account_id}/recoup-notices",
        json={"amount_pence": amount_pence, "reason": "Money has built up beyond the plan"},
        headers=tokens.headers("finance", COUNCIL),
    )


async def recoup(
    client: httpx.AsyncClient, tokens: Tokens, account_id: str, amount_pence: int
) -> httpx.Response:
    return await client.post(
        f"/v1/card-accounts/{account_id}/recoups",
        json={"amount_pence": amount_pence},
        headers=tokens.headers("finance", COUNCIL),
    )


async def test_a_recoup_refused_before_its_notice_period_ends(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    await upload(client, tokens, FIRST_FILE)
    account_id = (await the_account(client, tokens))["account_id"]

    without = await recoup(client, tokens, account_id, 42_500)
    assert (without.status_code, without.json()["error"]) == (409, "NoRecoupNotice")
    above = await notice(client, tokens, account_id, 42_501)
    assert (above.status_code, above.json()["error"]) == (422, "NoticeAboveSurplus")

    sent = await notice(client, tokens, account_id, 42_500)
    assert sent.status_code == 201, sent.text
    [given] = sent.json()["notices"]
    # Council A's policy: 28 days to respond (monitoring.recoup_notice)
    assert given["respond_by"] == (TODAY + timedelta(days=28)).isoformat()

    today_is(TODAY + timedelta(days=28))
    early = await recoup(client, tokens, account_id, 42_500)
    assert (early.status_code, early.json()["error"]) == (409, "NoticePeriodNotOver")
    assert given["respond_by"] in early.json()["detail"]
    assert await events_named(app, "CardFundsRecouped") == []

    today_is(TODAY + timedelta(days=29))
    too_much = await recoup(client, tokens, account_id, 42_501)
    assert (too_much.status_code, too_much.json()["error"]) == (422, "RecoupAboveNotice")
    done = await recoup(client, tokens, account_id, 42_500)
    assert done.status_code == 201, done.text
    assert done.json()["balance_pence"] == 200_000
    twice = await recoup(client, tokens, account_id, 1)
    assert (twice.status_code, twice.json()["error"]) == (409, "AlreadyRecouped")
    [recouped] = await events_named(app, "CardFundsRecouped")
    assert recouped.event.amount_pence == 42_500


async def test_the_person_responds_to_the_notice_from_the_citizen_view(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    await upload(client, tokens, FIRST_FILE)
    account = await the_account(client, tokens, "finance")
    sent = await notice(client, tokens, account["account_id"], 20_000)
    notice_id = sent.json()["notices"][0]["notice_id"]
    url = f"/v1/card-accounts/{account['account_id']}/recoup-notices/{notice_id}/responses"
    body = {"response": "disagrees", "comments": "I am saving for a short break"}

    stranger = await client.post(
        url, json=body, headers=tokens.headers("person", COUNCIL, person_id="p-other")
    )
    assert stranger.status_code == 404
    r = await client.post(
        url, json=body, headers=tokens.headers("person", COUNCIL, person_id="p-card")
    )
    assert r.status_code == 201, r.text
    [answer] = r.json()["responses"]
    assert answer["response"] == "disagrees" and answer["recorded_by"].startswith("person:")
    own = await the_account(client, tokens, "finance")
    assert own["responses"] == [answer]
    [recorded] = await events_named(app, "RecoupResponseRecorded")
    assert recorded.event.comments == "I am saving for a short break"


async def test_another_councils_finance_cannot_see_or_recoup_the_account(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await card_person(app, client, tokens)
    await upload(client, tokens, FIRST_FILE)
    account_id = (await the_account(client, tokens))["account_id"]
    r = await client.post(
        f"/v1/card-accounts/{account_id}/recoups",
        json={"amount_pence": 1},
        headers=tokens.headers("finance", "lancashire"),
    )
    assert r.status_code == 404


async def test_a_surplus_recouped_once_cannot_be_noticed_and_recouped_again(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Found by the card model: a second notice for the same flagged surplus took the
    person's balance below the 10 weeks they may keep."""
    await card_person(app, client, tokens)
    await upload(client, tokens, FIRST_FILE)
    account_id = (await the_account(client, tokens))["account_id"]
    assert (await notice(client, tokens, account_id, 30_000)).status_code == 201
    today_is(TODAY + timedelta(days=29))
    assert (await recoup(client, tokens, account_id, 30_000)).status_code == 201

    again = await notice(client, tokens, account_id, 42_500)
    assert (again.status_code, again.json()["error"]) == (422, "NoticeAboveSurplus")
    assert "12500 pence" in again.json()["detail"]
    rest = await notice(client, tokens, account_id, 12_500)
    assert rest.status_code == 201, rest.text
    today_is(TODAY + timedelta(days=58))
    assert (await recoup(client, tokens, account_id, 12_500)).status_code == 201
    account = await the_account(client, tokens)
    assert account["balance_pence"] == 200_000  # what the person may keep, untouched
    nothing_left = await notice(client, tokens, account_id, 1)
    assert (nothing_left.status_code, nothing_left.json()["error"]) == (409, "NoSurplus")
