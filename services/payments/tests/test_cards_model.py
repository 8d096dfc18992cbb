"""No card money is recouped that the person was not told of in time: a model-based walk.

One person's prepaid card account in Council A (a direct payment of £200 a week, so the
person may keep 10 weeks, £2,000), driven through the real API by a seeded random walk:
the provider's daily file (new transactions and the day's balance; the same file again; a
transaction id used again with another amount; a bad row), days passing on the service's
clock, notices for amounts around the surplus flagged, the person's responses, recoups
before, on and after the last day to respond, around the notice's amount and the balance,
repeated, with and without an Idempotency-Key, callers in the wrong role and another
council's finance officer. The walk keeps its own reference of the account (it never asks
`rules/recoup.py`), and after every step:

- no recoup before the notice's period to respond is over (the notice's day plus 28
  days), none without a notice, none above the notice's amount, above the surplus the
  notice was given for (together with every other recoup for that surplus) or above the
  balance at the time, and at most one per notice;
- the balance is the imported transactions' sum less what was recouped;
- a refused call changes nothing, and every refusal is problem details with its `error`;
- no call answers 5xx.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from servicekit import clock
from servicekit.testing import Tokens
from services.payments.tests import test_api
from services.payments.tests.test_api import START, active_deployment, today_is

tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

COUNCIL = "council_a"
PERSON = "p-card"
REFERENCE = "PPC-9"
WEEKLY_DP = 20_000
MAY_KEEP = 10 * WEEKLY_DP  # seed 004 App.1, Council A: 10 weeks of the direct payment
RESPOND_WITHIN_DAYS = 28  # every council's policy today (docs/integrations.md)
HEADER = (
    "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,merchant_category"
)
STEPS = 80
CATEGORIES = ("personal_assistant", "groceries", "leisure")
BODIES = [("recoups", {"amount_pence": 1}), ("recoup-notices", {"amount_pence": 1, "reason": "x"})]


@dataclass
class Notice:
    notice_id: str
    amount_pence: int
    sent_on: date
    surplus_id: str


@dataclass
class Reference:
    """The account as the walk expects it, built from what it sent and when."""

    transactions: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    balance_days: dict[str, int] = field(default_factory=dict)
    surpluses: list[tuple[str, int]] = field(default_factory=list)  # (surplus id, pence)
    notices: list[Notice] = field(default_factory=list)
    recouped: dict[str, int] = field(default_factory=dict)  # notice id -> pence
    responses: int = 0

    @property
    def balance(self) -> int:
        return sum(t[1] for t in self.transactions.values()) - sum(self.recouped.values())

    def recouped_for_surplus(self, surplus_id: str) -> int:
        return sum(
            self.recouped.get(n.notice_id, 0) for n in self.notices if n.surplus_id == surplus_id
        )

    def may_give_notice(self, amount: int) -> bool:
        if not self.surpluses:
            return False
        if self.notices and self.notices[-1].notice_id not in self.recouped:
            return False  # one notice at a time
        surplus_id, surplus = self.surpluses[-1]
        return 0 < amount <= surplus - self.recouped_for_surplus(surplus_id)

    def may_recoup(self, notice: Notice | None, amount: int, today: date) -> bool:
        if notice is None or notice.notice_id in self.recouped:
            return False
        if today <= notice.sent_on + timedelta(days=RESPOND_WITHIN_DAYS):
            return False
        surplus = dict(self.surpluses)[notice.surplus_id]
        left_of_surplus = surplus - self.recouped_for_surplus(notice.surplus_id)
        return 0 < amount <= min(notice.amount_pence, self.balance, left_of_surplus)


def card_file(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode("utf-8")


class CardWalk:
    def __init__(self, client: httpx.AsyncClient, tokens: Tokens, rng: random.Random) -> None:
        self.client, self.tokens, self.rng = client, tokens, rng
        self.model = Reference()
        self.account_id: str | None = None
        self.last_file: bytes | None = None
        self.last_recoup: tuple[dict[str, Any], str, bool] | None = None
        self.next_tx = 0
        self.keys = 0

    async def call(
        self,
        method: str,
        path: str,
        role: str = "finance",
        body: Any = None,
        *,
        council: str = COUNCIL,
        content: bytes | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        extra = {"Idempotency-Key": key} if key else {}
        if content is not None:
            extra["Content-Type"] = "text/csv"
        person = PERSON if role == "person" else None
        headers = self.tokens.headers(role, council, person_id=person, **extra)
        r = await self.client.request(method, path, json=body, content=content, headers=headers)
        assert r.status_code < 500, f"{method} {path} {body}: {r.status_code} {r.text}"
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            assert r.json()["error"] and r.json()["status"] == r.status_code, r.text
        return r

    async def account(self) -> dict[str, Any] | None:
        r = await self.call("GET", f"/v1/card-accounts?person_id={PERSON}")
        items: list[dict[str, Any]] = r.json()["items"]
        assert len(items) <= 1, items
        return items[0] if items else None

    async def expect(self, r: httpx.Response, allowed: bool, before: dict[str, Any] | None) -> bool:
        """A 2xx exactly when the reference allows it; a refusal changes nothing."""
        after = await self.account()
        if allowed:
            assert r.status_code < 300, f"refused what may be done: {r.status_code} {r.text}"
        else:
            assert r.status_code >= 400, f"did what must never be done: {r.text}"
            assert after == before, "a refused call changed the account"
        return allowed

    # --- the provider's file ---------------------------------------------------------------

    def tx_id(self) -> str:
        self.next_tx += 1
        return f"TX-{self.next_tx}"

    async def provider_file(self) -> None:
        """The day's new transactions and the balance the provider reports after them."""
        today = clock.today()
        if today.isoformat() in self.model.balance_days:
            today_is(today + timedelta(days=1))  # the provider reports one balance a day
            today = clock.today()
        rows: dict[str, tuple[str, int, str]] = {}
        balance = self.model.balance
        for _ in range(self.rng.randint(0, 4)):
            posted = (today - timedelta(days=self.rng.choice([0, 0, 1, 5]))).isoformat()
            if self.rng.random() < 0.4 or balance < 1_000:
                amount = self.rng.choice([WEEKLY_DP, 4 * WEEKLY_DP, 12 * WEEKLY_DP])
                rows[self.tx_id()] = (posted, amount, "")
            else:
                amount = -self.rng.randint(1, min(balance, 60_000))
                rows[self.tx_id()] = (posted, amount, self.rng.choice(CATEGORIES))
            balance += amount
        content = card_file(
            *(
                f"{REFERENCE},{PERSON},transaction,{tx},{posted},{amount},{category}"
                for tx, (posted, amount, category) in rows.items()
            ),
            f"{REFERENCE},{PERSON},balance,,{today.isoformat()},{balance},",
        )
        r = await self.call("POST", "/v1/card-accounts/transactions", content=content)
        assert r.status_code == 200, r.text
        self.last_file = content
        self.model.transactions.update(rows)
        self.model.balance_days[today.isoformat()] = balance
        if balance > MAY_KEEP:
            self.model.surpluses.append(("?", balance - MAY_KEEP))

    async def refused_file(self, content: bytes) -> None:
        before = await self.account()
        r = await self.call("POST", "/v1/card-accounts/transactions", content=content)
        await self.expect(r, False, before)
        assert r.json()["error"] == "CardRowsRefused", r.text

    # --- a step ------------------------------------------------------------------------------

    async def step(self) -> str:
        rng, model = self.rng, self.model
        today = clock.today()
        path = f"/v1/card-accounts/{self.account_id}"
        action = rng.choice(
            [
                "provider file",
                "same file again",
                "transaction id with another amount",
                "bad row",
                "days pass",
                "days pass",
                "days pass",
                "notice",
                "notice",
                "notice",
                "response",
                "recoup",
                "recoup",
                "recoup",
                "recoup",
                "recoup",
                "recoup retried",
                "wrong role",
                "another council",
            ]
        )
        if action == "provider file":
            await self.provider_file()
        elif action == "same file again" and self.last_file:
            before = await self.account()
            r = await self.call("POST", "/v1/card-accounts/transactions", content=self.last_file)
            assert r.status_code == 200 and r.json()["unchanged"] == r.json()["lines"], r.text
            assert await self.account() == before, "the same file again changed the account"
        elif action == "transaction id with another amount" and model.transactions:
            tx, (posted, amount, category) = rng.choice(sorted(model.transactions.items()))
            other = amount + rng.choice([-1, 1, 100])
            category = category or ("groceries" if other < 0 else "")
            await self.refused_file(
                card_file(f"{REFERENCE},{PERSON},transaction,{tx},{posted},{other},{category}")
            )
        elif action == "bad row":
            tomorrow = (today + timedelta(days=1)).isoformat()
            bad = rng.choice(
                [
                    f"{REFERENCE},{PERSON},transaction,{self.tx_id()},{tomorrow},-100,groceries",
                    f"{REFERENCE},{PERSON},transaction,{self.tx_id()},{today},12.50,groceries",
                    f"{REFERENCE},{PERSON},transaction,{self.tx_id()},{today},-100,",
                    f"{REFERENCE},{PERSON},balance,,{today},-5,",
                    f"{REFERENCE},p-nobody,transaction,{self.tx_id()},{today},100,",
                ]
            )
            good = f"{REFERENCE},{PERSON},transaction,{self.tx_id()},{today},500,"
            await self.refused_file(card_file(good, bad))
        elif action == "days pass":
            today_is(today + timedelta(days=rng.choice([1, 3, 13, 27, 28, 29, 30])))
        elif action == "notice" and self.account_id:
            surplus = model.surpluses[-1][1] if model.surpluses else 10_000
            left = surplus - (
                model.recouped_for_surplus(model.surpluses[-1][0]) if model.surpluses else 0
            )
            amount = rng.choice([left - 1, left, left + 1, surplus, surplus, 1, 0, -5, left // 2])
            before = await self.account()
            r = await self.call(
                "POST", f"{path}/recoup-notices", body={"amount_pence": amount, "reason": "model"}
            )
            if await self.expect(r, model.may_give_notice(amount), before):
                notice = r.json()["notices"][-1]
                assert (
                    notice["respond_by"]
                    == (today + timedelta(days=RESPOND_WITHIN_DAYS)).isoformat()
                ), notice
                model.notices.append(
                    Notice(notice["notice_id"], amount, today, notice["surplus_id"])
                )
        elif action == "response" and self.account_id and model.notices:
            notice = rng.choice(model.notices)
            before = await self.account()
            r = await self.call(
                "POST",
                f"{path}/recoup-notices/{notice.notice_id}/responses",
                rng.choice(["person", "care_manager", "finance"]),
                {"response": rng.choice(["agrees", "disagrees"])},
            )
            if await self.expect(r, notice.notice_id not in model.recouped, before):
                model.responses += 1
        elif action == "recoup" and self.account_id:
            await self.recoup(path, today)
        elif action == "recoup retried" and self.last_recoup:
            body, key, done = self.last_recoup
            if done:  # the first answer again, and nothing recouped twice
                before = await self.account()
                r = await self.call("POST", f"{path}/recoups", body=body, key=key)
                assert r.status_code == 201, r.text
                assert await self.account() == before, "a retried recoup changed the account"
            else:  # a refusal is not kept: the retry is decided again
                await self.recoup(path, today, body, key)
        elif action == "wrong role" and self.account_id:
            before = await self.account()
            role = rng.choice(["care_manager", "person", "team_manager"])
            target, body = rng.choice(BODIES)
            r = await self.call("POST", f"{path}/{target}", role, body)
            await self.expect(r, False, before)
            assert r.status_code == 403, r.text
        elif action == "another council" and self.account_id:
            before = await self.account()
            target, body = rng.choice(BODIES)
            r = await self.call("POST", f"{path}/{target}", body=body, council="council_b")
            await self.expect(r, False, before)
            assert r.status_code == 404, r.text
        return action

    async def recoup(
        self, path: str, today: date, body: dict[str, Any] | None = None, key: str | None = None
    ) -> None:
        rng, model = self.rng, self.model
        if body is None:
            body = self.recoup_body()
            self.keys += 1
            key = f"recoup-{self.keys}" if rng.random() < 0.5 else None
        if "notice_id" in body:
            notice = next((n for n in model.notices if n.notice_id == body["notice_id"]), None)
        else:
            notice = model.notices[-1] if model.notices else None
        before = await self.account()
        r = await self.call("POST", f"{path}/recoups", body=body, key=key)
        allowed = model.may_recoup(notice, body["amount_pence"], today)
        if await self.expect(r, allowed, before):
            assert notice is not None
            model.recouped[notice.notice_id] = body["amount_pence"]
        if key:
            self.last_recoup = (body, key, allowed)

    def recoup_body(self) -> dict[str, Any]:
        rng, model = self.rng, self.model
        named = rng.choice(["latest", "latest", "latest", "earlier", "unknown", "none given"])
        notice: Notice | None = model.notices[-1] if model.notices else None
        body: dict[str, Any] = {}
        if named == "earlier" and model.notices:
            notice = rng.choice(model.notices)
        if named in ("latest", "earlier") and notice is not None:
            body["notice_id"] = notice.notice_id
        if named == "unknown":
            body["notice_id"] = str(uuid4())
            notice = None
        base = notice.amount_pence if notice else 1_000
        body["amount_pence"] = rng.choice(
            [base, base, base // 2, base - 1, base + 1, model.balance, model.balance + 1, 1, 0]
        )
        return body

    async def check(self) -> None:
        account = await self.account()
        model = self.model
        if account is None:
            assert not model.transactions, "transactions were imported but there is no account"
            return
        self.account_id = account["account_id"]
        assert account["balance_pence"] == model.balance, (account["balance_pence"], model.balance)
        assert account["transactions"] == len(model.transactions)
        # the surpluses flagged are the reference's, in order; learn their ids
        assert [s["surplus_pence"] for s in account["surpluses"]] == [
            pence for _, pence in model.surpluses
        ]
        assert {s["allowance_pence"] for s in account["surpluses"]} <= {MAY_KEEP}
        model.surpluses = [(s["surplus_id"], s["surplus_pence"]) for s in account["surpluses"]]
        notices = {n["notice_id"]: n for n in account["notices"]}
        assert list(notices) == [n.notice_id for n in model.notices]
        recoups = account["recoups"]
        assert {r["notice_id"]: r["amount_pence"] for r in recoups} == model.recouped
        assert len({r["notice_id"] for r in recoups}) == len(recoups), "two recoups, one notice"
        surplus_of = dict(model.surpluses)
        for done in recoups:
            notice = notices[done["notice_id"]]
            recouped_on = date.fromisoformat(done["recouped_on"])
            assert recouped_on > date.fromisoformat(notice["respond_by"]), (done, notice)
            assert date.fromisoformat(notice["respond_by"]) == date.fromisoformat(
                notice["sent_on"]
            ) + timedelta(days=RESPOND_WITHIN_DAYS)
            assert 0 < done["amount_pence"] <= notice["amount_pence"], (done, notice)
        for surplus_id, pence in surplus_of.items():
            assert model.recouped_for_surplus(surplus_id) <= pence, "recouped beyond a surplus"
        assert len(account["responses"]) == model.responses


@pytest.mark.parametrize("seed", range(4))
async def test_no_recoup_the_person_was_not_told_of_in_time_after_any_sequence_of_calls(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, seed: int
) -> None:
    await active_deployment(
        app, client, tokens, COUNCIL, person_id=PERSON, annual_pence=WEEKLY_DP * 52
    )
    today_is(START + timedelta(days=60))
    walk = CardWalk(client, tokens, random.Random(seed))
    await walk.provider_file()
    history = ["provider file"]
    await walk.check()
    for _ in range(STEPS):
        history.append(await walk.step())
        try:
            await walk.check()
        except AssertionError as err:
            raise AssertionError(f"after {history} on {clock.today()}: {err}") from err
