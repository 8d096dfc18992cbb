"""Σ released never exceeds what is due, after any sequence of calls: a model-based walk.

One person's weekly direct payment, driven through the real API by a seeded random walk of
the calls that move money or time: the days passing, releases (council-wide, one
deployment, retried with the same idempotency key, dated in the future or the past),
suspensions and holds, clawbacks, switches (dated back with a reason, or forward),
revised plans handed over (dated back with a reason, or forward), a signed-off plan
delivered again, and completed financial assessments (assessed, light touch, full cost,
refused, deferred; any weekly charge, dated today or earlier; delivered again) that
recalculate the person's contribution. Every first payment falls on the same weekday, so
each week has one due date whichever schedule it belongs to. After every step the
reference model says:

- no payment is released before its due date, nor dated after today;
- no week is paid twice, across all of the person's deployments;
- a released payment is never rewritten nor removed: its amount, due date and release
  date stay as they were after any later call;
- no more is released than the signed agreements add up to, each at the highest net
  annual it was ever agreed at (a charge lowers the council's part from the day it
  applies; money released under the earlier figure stays released);
- the person's contribution never makes the council's part negative;
- the latest budget statement's figures add up (total = person pays + council pays) and
  are the live deployment's; a new statement appears only when one of them changes;
- no call answers 5xx.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI

from contracts import events as ev
from contracts.envelope import Envelope
from servicekit import clock
from servicekit.testing import Tokens, deliver
from services.payments.tests import test_api
from services.payments.tests.test_api import SIGNED_ON, START, signed_plan, today_is
from services.payments.tests.test_statements import financial_assessment

tokens = test_api.tokens
app = test_api.app
client = test_api.client
service_clock = test_api.service_clock

PERSON = "p-model"
STEPS = 32
Outcome = ev.FinancialAssessmentOutcome
# Mostly a charge the council still pays part of, so that money keeps moving after it.
OUTCOMES = [*[Outcome.ASSESSED] * 4, *list(Outcome)]


class Walk:
    """The person's deployments as the API shows them, and the calls that change them."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.app, self.client, self.tokens = app, client, tokens
        self.plan_id: UUID = uuid4()
        self.plan_version = 0
        self.annual = 520_000
        self.keys = 0
        self.last_release: tuple[str, dict[str, Any], str] | None = None
        self.last_plan: Envelope | None = None
        self.last_assessment: Envelope | None = None
        self.charged = False
        self.released_seen: dict[str, tuple[int, str, str]] = {}
        self.highest_net: dict[str, int] = {}
        self.statements_seen: list[dict[str, Any]] = []

    async def call(
        self, method: str, path: str, role: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = self.tokens.headers(role, **({"Idempotency-Key": key} if key else {}))
        r = await self.client.request(method, path, json=body, headers=headers)
        assert r.status_code < 500, f"{method} {path} {body}: {r.status_code} {r.text}"
        return r

    async def deployments(self) -> list[dict[str, Any]]:
        r = await self.call("GET", f"/v1/deployments?person_id={PERSON}&limit=200", "finance")
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def live(self) -> dict[str, Any] | None:
        active = [d for d in await self.deployments() if d["status"] != "superseded"]
        return active[-1] if active else None

    async def instalments(self, deployment_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = f"?limit=200&cursor={cursor}" if cursor else "?limit=200"
            r = await self.call(
                "GET", f"/v1/deployments/{deployment_id}/schedule{query}", "finance"
            )
            found += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return found

    def next_week_from(self, day: date) -> date:
        """The first payment day (START plus whole weeks) on or after `day`."""
        weeks = max(0, -(-(day - START).days // 7))
        return START + timedelta(weeks=weeks)

    async def revised_plan(self, first_due_on: date, reason: str | None) -> None:
        """A revised plan is signed off today; it is arranged and its agreement signed."""
        self.plan_version += 1
        self.annual = random.choice([520_000, 780_000, 1_040_000])
        today = clock.today()
        self.last_plan = await deliver(
            self.app,
            signed_plan(
                person_id=PERSON,
                plan_id=self.plan_id,
                plan_version=self.plan_version,
                annual_pence=self.annual,
                first_review_on=today,
            ),
        )
        [new] = [
            d
            for d in await self.deployments()
            if d["plan_version"] == self.plan_version and d["status"] == "awaiting_arrangement"
        ]
        arrangement = {
            "parts": [{"option": "direct_payment"}],
            "frequency": "weekly",
            "first_due_on": first_due_on.isoformat(),
            # without a figure the charge in force is taken, once there is one
            "assessed_max_weekly_contribution_pence": (
                random.choice([0, None]) if self.charged else 0
            ),
        }
        path = f"/v1/deployments/{new['deployment_id']}"
        await self.call("PUT", f"{path}/arrangement", "care_manager", arrangement)
        body = {"arrears_reason": reason} if reason else {}
        await self.call("POST", f"{path}/agreement", "team_manager", body)

    async def step(self, rng: random.Random) -> str:
        today = clock.today()
        live = await self.live()
        path = f"/v1/deployments/{live['deployment_id']}" if live else None
        action = rng.choice(
            [
                "days pass",
                "days pass",
                "days pass",
                "days pass",
                "release due",
                "release due",
                "release due",
                "release due",
                "release one",
                "retry release",
                "release in the future",
                "suspend",
                "resume",
                "hold",
                "clawback",
                "switch",
                "switch dated back",
                "revised plan",
                "revised plan dated back",
                "plan redelivered",
                "financial assessment",
                "financial assessment",
                "financial assessment redelivered",
            ]
        )
        if action == "days pass":
            today_is(today + timedelta(days=rng.randint(1, 13)))
        elif action in ("release due", "release one", "release in the future"):
            as_of = {
                "release due": today - timedelta(days=rng.choice([0, 0, 3, 10])),
                "release one": today,
                "release in the future": today + timedelta(days=rng.randint(1, 400)),
            }[action]
            target = "/v1/payments/release-due"
            if action == "release one" and path:
                target = f"{path}/release"
            self.keys += 1
            self.last_release = (target, {"as_of": as_of.isoformat()}, f"k-{self.keys}")
            r = await self.call("POST", target, "finance", *self.last_release[1:])
            if as_of > today:
                assert r.json()["error"] == "ReleaseDateInFuture"
        elif action == "retry release" and self.last_release:
            await self.call("POST", self.last_release[0], "finance", *self.last_release[1:])
        elif action in ("suspend", "resume") and path:
            await self.call("POST", f"{path}/{action}", "finance", {"reason": "model"})
        elif action in ("hold", "clawback") and path:
            body = {"as_of": today.isoformat(), "balance_pence": rng.randint(0, 50_000)}
            if action == "hold":
                body["action"] = "hold"
            await self.call("POST", f"{path}/unspent-check", "finance", body)
        elif action in ("switch", "switch dated back") and path:
            back = action == "switch dated back"
            first = self.next_week_from(today) - timedelta(weeks=rng.randint(1, 3) if back else 0)
            body = {
                "parts": [{"option": "direct_payment"}],
                "frequency": "weekly",
                "first_due_on": first.isoformat(),
            }
            if back:
                body["arrears_reason"] = "switch agreed weeks ago"
            await self.call("PUT", f"{path}/arrangement", "team_manager", body)
        elif action == "plan redelivered" and self.last_plan:
            await deliver(self.app, self.last_plan)
        elif action == "financial assessment":
            outcome = rng.choice(OUTCOMES)
            self.charged = self.charged or outcome is not ev.FinancialAssessmentOutcome.DEFERRED
            self.last_assessment = await deliver(
                self.app,
                financial_assessment(
                    outcome,
                    # from nothing to above the whole budget's weekly cost
                    weekly_charge_pence=rng.choice([0, 1, 2_500, 4_321, 9_999, 30_000]),
                    assessed_on=today - timedelta(days=rng.choice([0, 0, 6, 20, 60])),
                    person_id=PERSON,
                ),
            )
        elif action == "financial assessment redelivered" and self.last_assessment:
            await deliver(self.app, self.last_assessment)
        elif action in ("revised plan", "revised plan dated back"):
            back = action == "revised plan dated back"
            first = self.next_week_from(today) - timedelta(weeks=rng.randint(1, 3) if back else 0)
            await self.revised_plan(first, "plan agreed weeks ago" if back else None)
        return action

    async def check(self) -> None:
        today = clock.today()
        released: list[dict[str, Any]] = []
        agreed = 0
        live = None
        for dep in await self.deployments():
            full = (
                await self.call("GET", f"/v1/deployments/{dep['deployment_id']}", "finance")
            ).json()
            self.check_contribution(full)
            if full["status"] != "superseded":
                live = full
            if full["agreement"] is not None:
                dep_id = full["deployment_id"]
                net = max(self.highest_net.get(dep_id, 0), full["net_annual_pence"])
                self.highest_net[dep_id] = net
                agreed += net + full["one_off_pence"]
            released += [
                i for i in await self.instalments(dep["deployment_id"]) if i["status"] == "released"
            ]
        self.check_released_never_rewritten(released)
        await self.check_statements(live)
        for payment in released:
            due_on = date.fromisoformat(payment["due_on"])
            released_on = date.fromisoformat(payment["released_on"])
            assert due_on <= released_on <= today, payment
        weeks = [p["due_on"] for p in released]
        assert len(weeks) == len(set(weeks)), "a week was paid twice"
        assert sum(p["amount_pence"] for p in released) <= agreed

    def check_released_never_rewritten(self, released: list[dict[str, Any]]) -> None:
        now = {
            p["instalment_id"]: (p["amount_pence"], p["due_on"], p["released_on"]) for p in released
        }
        for instalment_id, was in self.released_seen.items():
            assert now.get(instalment_id) == was, f"released {instalment_id} {was} is now " + str(
                now.get(instalment_id, "gone")
            )
        self.released_seen = now

    def check_contribution(self, dep: dict[str, Any]) -> None:
        contribution = dep["contribution_annual_pence"]
        if contribution is None:
            return
        assert 0 <= contribution <= dep["gross_annual_pence"], dep
        assert dep["net_annual_pence"] == dep["gross_annual_pence"] - contribution, dep

    async def check_statements(self, live: dict[str, Any] | None) -> None:
        r = await self.call("GET", f"/v1/people/{PERSON}/budget-statements", "finance")
        statements: list[dict[str, Any]] = r.json()["items"] if r.status_code == 200 else []
        oldest_first = [as_issued(s) for s in reversed(statements)]
        assert oldest_first[: len(self.statements_seen)] == self.statements_seen, (
            "a statement was rewritten or removed"
        )
        self.statements_seen = oldest_first
        for earlier, later in pairwise(oldest_first):
            assert figures(earlier) != figures(later), f"a statement changed nothing: {later}"
        if not statements:
            return
        latest = statements[0]
        total, person, council = figures(latest)
        assert total == person + council and council >= 0, latest
        assert (
            latest["total_weekly_pence"]
            == latest["person_pays_weekly_pence"] + latest["council_pays_weekly_pence"]
        ), latest
        if live is not None and live["contribution_annual_pence"] is not None:
            assert (total, person) == (
                live["gross_annual_pence"],
                live["contribution_annual_pence"],
            ), f"the statement in force is not the budget's: {latest} / {live}"


def as_issued(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement as it was issued: whether it is in force and its challenges move on."""
    return {k: v for k, v in statement.items() if k not in ("in_force", "challenges")}


def figures(statement: dict[str, Any]) -> tuple[int, int, int]:
    return (
        statement["total_annual_pence"],
        statement["person_pays_annual_pence"],
        statement["council_pays_annual_pence"],
    )


@pytest.mark.parametrize("seed", range(4))
async def test_released_never_exceeds_what_is_due_after_any_sequence_of_calls(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, seed: int
) -> None:
    rng = random.Random(seed)
    random.seed(seed)
    walk = Walk(app, client, tokens)
    today_is(SIGNED_ON)
    await walk.revised_plan(START, None)  # the first plan: paid weekly from START
    history = []
    for _ in range(STEPS):
        history.append(await walk.step(rng))
        try:
            await walk.check()
        except AssertionError as err:
            raise AssertionError(f"after {history} on {clock.today()}: {err}") from err
