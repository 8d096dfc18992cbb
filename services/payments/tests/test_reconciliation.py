"""Reconciliation and the pull feed, in-process: the finance system's confirmation file
imported back (PaymentConfirmed / PaymentFailed out, failed payments listed for the
portal), and `GET /v1/payments/feed` read page by page while payments keep arriving."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from contracts import events as ev
from servicekit.testing import Tokens, outbox_events_of
from services.payments.tests import test_api
from services.payments.tests.test_api import START, active_deployment, release_due, today_is

# The service's own fixtures: the app in-process, its client, tokens signed for it.
tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

CSV = {"Content-Type": "text/csv"}
PAID_ON = START + timedelta(days=9)
HEADER = "payment_id,outcome,amount_pence,processed_on,reason,finance_reference\r\n"


async def released(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, *, weeks: int = 2, **plan: Any
) -> list[dict[str, Any]]:
    """A weekly direct payment with `weeks` instalments released; the feed's items for them."""
    await active_deployment(app, client, tokens, **plan)
    r = await release_due(client, tokens, START + timedelta(weeks=weeks - 1))
    assert r.status_code == 200, r.text
    return [
        item
        for item in await read_whole_feed(client, tokens)
        if item["person_id"] == plan.get("person_id", "p-1")
    ]


async def read_whole_feed(
    client: httpx.AsyncClient, tokens: Tokens, limit: int = 200
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        r = await client.get("/v1/payments/feed", params=params, headers=tokens.headers("finance"))
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        after = page["next_after"]
        if not page["items"]:
            return items


async def upload(
    client: httpx.AsyncClient, tokens: Tokens, text: str, role: str = "finance"
) -> httpx.Response:
    """Finance sends its file back a couple of weeks after the payments were made."""
    today_is(PAID_ON + timedelta(days=14))
    return await client.post(
        "/v1/payments/confirmations",
        content=text.encode(),
        headers=tokens.headers(role, **CSV),
    )


async def test_a_confirmation_file_records_paid_and_failed_and_the_portal_lists_the_failure(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, second = await released(app, client, tokens, person_id="p-1")
    paid_on = (START + timedelta(days=9)).isoformat()  # released on day 7
    text = (
        HEADER
        + f"{first['payment_id']},paid,{first['amount_pence']},{paid_on},,BACS-0001\r\n"
        + f"{second['payment_id']},failed,{second['amount_pence']},{paid_on},"
        + '"account closed, ARUDD 2",BACS-0002\r\n'
    )
    r = await upload(client, tokens, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] and (body["recorded_paid"], body["recorded_failed"]) == (1, 1)

    confirmed = await outbox_events_of(app, ev.PaymentConfirmed)
    failed = await outbox_events_of(app, ev.PaymentFailed)
    assert [str(e.payment_id) for e in confirmed] == [first["payment_id"]]
    assert [(str(e.payment_id), e.reason) for e in failed] == [
        (second["payment_id"], "account closed, ARUDD 2")
    ]

    listed = await client.get(
        "/v1/payments", params={"status": "failed"}, headers=tokens.headers("care_manager")
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["payment_id"] == second["payment_id"] and item["reason"].startswith("account")
    own = await client.get(
        "/v1/payments",
        params={"status": "failed"},
        headers=tokens.headers("person", person_id="someone-else"),
    )
    assert own.json()["items"] == []  # a person sees only their own payments

    feed = await read_whole_feed(client, tokens)
    assert {i["payment_id"]: i["status"] for i in feed} == {
        first["payment_id"]: "paid",
        second["payment_id"]: "failed",
    }

    again = await upload(client, tokens, text)  # the same file twice: nothing new
    assert again.status_code == 200 and again.json()["unchanged"] == 2
    assert len(await outbox_events_of(app, ev.PaymentConfirmed)) == 1
    assert len(await outbox_events_of(app, ev.PaymentFailed)) == 1


async def test_a_failed_payment_is_not_counted_as_paid_into_a_managed_account(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, second = await released(
        app,
        client,
        tokens,
        person_id="p-9",
        arrangement={"parts": [{"option": "third_party_managed"}]},
    )
    deployment = first["deployment_id"]

    async def paid_in() -> tuple[int, int, int]:
        r = await client.get(
            f"/v1/deployments/{deployment}/statement", headers=tokens.headers("auditor")
        )
        assert r.status_code == 200, r.text
        [account] = r.json()["accounts"]
        return account["paid_in_pence"], account["failed_pence"], r.json()["balance_left_pence"]

    released_pence = first["amount_pence"] + second["amount_pence"]
    assert await paid_in() == (released_pence, 0, released_pence)
    day = PAID_ON.isoformat()
    failed = f"{second['payment_id']},failed,{second['amount_pence']},{day},bank closed,\r\n"
    assert (await upload(client, tokens, HEADER + failed)).status_code == 200
    assert await paid_in() == (first["amount_pence"], second["amount_pence"], first["amount_pence"])

    # Finance corrects the bank details and pays it after all: paid in again.
    later = (PAID_ON + timedelta(days=3)).isoformat()
    paid = f"{second['payment_id']},paid,{second['amount_pence']},{later},,BACS-9\r\n"
    r = await upload(client, tokens, HEADER + paid)
    assert r.status_code == 200, r.text
    assert await paid_in() == (released_pence, 0, released_pence)


async def test_mismatched_lines_are_refused_with_reasons_and_nothing_is_recorded(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, second = await released(app, client, tokens, person_id="p-2")
    day = (START + timedelta(days=9)).isoformat()
    ok = f"{first['payment_id']},paid,{first['amount_pence']},{day},,\r\n"
    assert (await upload(client, tokens, HEADER + ok)).status_code == 200

    text = (
        HEADER
        + f"{second['payment_id']},paid,{second['amount_pence']},{day},,\r\n"  # fine alone
        + f"{first['payment_id']},failed,{first['amount_pence']},{day},bounced,\r\n"
        + f"00000000-0000-0000-0000-000000000000,paid,100,{day},,\r\n"
        + f"{second['payment_id']},paid,{second['amount_pence'] + 1},{day},,\r\n"
        + "not-an-id,maybe,12.50,31/02/2010,,\r\n"
    )
    r = await upload(client, tokens, text)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["accepted"] is False and body["error"] == "ConfirmationLinesRefused"
    reasons = [(x["line"], x["column"], x["reason"]) for x in body["rejected"]]
    assert reasons[0][:2] == (3, "outcome") and "already confirmed paid" in reasons[0][2]
    assert reasons[1][:2] == (4, "payment_id") and "no payment" in reasons[1][2]
    assert reasons[2][:2] == (5, "payment_id") and "already on line 2" in reasons[2][2]
    assert {(line, column) for line, column, _ in reasons[3:]} == {
        (6, "payment_id"),
        (6, "outcome"),
        (6, "amount_pence"),
        (6, "processed_on"),
    }
    assert await outbox_events_of(app, ev.PaymentConfirmed) != []
    # The good line 2 was not recorded either: the file is all or nothing.
    paid = await client.get(
        "/v1/payments", params={"status": "paid"}, headers=tokens.headers("finance")
    )
    assert [i["payment_id"] for i in paid.json()["items"]] == [first["payment_id"]]


async def test_an_amount_that_differs_from_the_released_one_is_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, _ = await released(app, client, tokens, person_id="p-3")
    wrong = first["amount_pence"] - 1
    r = await upload(client, tokens, HEADER + f"{first['payment_id']},paid,{wrong},{PAID_ON},,\r\n")
    assert r.status_code == 422
    [refused] = r.json()["rejected"]
    assert refused["column"] == "amount_pence" and str(first["amount_pence"]) in refused["reason"]


async def test_a_file_that_is_not_a_confirmation_file_is_refused_whole(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await upload(client, tokens, "id,status\r\n1,paid\r\n")
    assert r.status_code == 422 and "payment_id" in r.json()["detail"]
    r = await client.post(
        "/v1/payments/confirmations",
        json={"payment_id": "x"},
        headers=tokens.headers("finance"),
    )
    assert r.status_code == 415 and r.json()["error"] == "NotCsv"


async def test_only_finance_imports_confirmations_and_reads_the_feed(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await upload(client, tokens, HEADER, role="care_manager")).status_code == 403
    r = await client.get("/v1/payments/feed", headers=tokens.headers("care_manager"))
    assert r.status_code == 403


async def test_another_councils_payment_is_unknown_to_the_confirmation_file(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, _ = await released(app, client, tokens, person_id="p-4")
    r = await client.post(
        "/v1/payments/confirmations",
        content=(
            HEADER + f"{first['payment_id']},paid,{first['amount_pence']},{PAID_ON},,"
        ).encode(),
        headers=tokens.headers("finance", "council_a", **CSV),
    )
    assert r.status_code == 422 and "no payment" in r.json()["rejected"][0]["reason"]


async def test_the_feed_pages_without_gaps_or_repeats_while_payments_keep_arriving(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for n in range(4):
        await active_deployment(app, client, tokens, person_id=f"feed-{n}")
    weeks = [START + timedelta(weeks=w) for w in range(6)]

    async def keep_releasing() -> None:
        for as_of in weeks:
            r = await release_due(client, tokens, as_of)
            assert r.status_code == 200, r.text
            await asyncio.sleep(0)

    seen: list[str] = []
    positions: list[str] = []
    after: str | None = None

    async def read_page() -> bool:
        """One page from where the reader got to; False when it was empty."""
        nonlocal after
        params: dict[str, Any] = {"limit": 3}
        if after:
            params["after"] = after
        r = await client.get("/v1/payments/feed", params=params, headers=tokens.headers("finance"))
        assert r.status_code == 200, r.text
        page = r.json()
        seen.extend(i["payment_id"] for i in page["items"])
        positions.extend(i["position"] for i in page["items"])
        after = page["next_after"]
        return bool(page["items"])

    releasing = asyncio.create_task(keep_releasing())
    while not releasing.done():  # read while releases commit between and during the reads
        await read_page()
        await asyncio.sleep(0)
    await releasing
    while await read_page():  # then read on from where the reader got to
        pass

    assert len(seen) == len(set(seen)) == 4 * 6  # every released payment exactly once
    schedule_total = await read_whole_feed(client, tokens, limit=7)
    assert [i["payment_id"] for i in schedule_total] == seen  # the same order every reading
    assert positions[-1] == after
    later = await client.get(
        "/v1/payments/feed", params={"after": after}, headers=tokens.headers("finance")
    )
    assert later.json() == {"items": [], "next_after": after}


async def test_a_cursor_the_feed_did_not_give_out_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.get(
        "/v1/payments/feed", params={"after": "bm90LWEtY3Vyc29y"}, headers=tokens.headers("finance")
    )
    assert r.status_code == 422
