"""`pbj convert` keeps the stages together: at most `lead` clients between the first
stage and the last, so a slow last stage is not left to work alone at the end.

The services are stood in for by an httpx transport that answers each conversion route
as the real ones do (rows done, or pending until their input has arrived), with the last
stage slow to accept rows: what is under test is the client's own scheduling.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx

from contracts.policy import PolicyBook
from pbj.convert import convert_clients, sample_clients
from servicekit.testing import POLICIES_DIR

POLICY = PolicyBook.from_directory(POLICIES_DIR).current("lancashire")
URLS = {name: f"http://{name}" for name in ("assessment", "allocation", "planning", "payments")}
PENDING_ANSWERS_AT_PAYMENTS = 3  # each row comes back pending this often before it is done


class SlowPayments:
    """The four routes; payments answers each row pending a few times first."""

    def __init__(self) -> None:
        self.between: set[str] = set()  # assessed, payments not yet set up
        self.most_between = 0
        self.asked_payments: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = request.url.path.rsplit("/", 1)[-1]
        rows = json.loads(request.content)["rows"]
        answers = [self.answer(route, row["ref"]) for row in rows]
        self.most_between = max(self.most_between, len(self.between))
        return httpx.Response(200, json={"rows": answers})

    def answer(self, route: str, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if route == "assessments":
            self.between.add(ref)
        elif route == "budget-agreements":
            result = {"budget_id": f"b-{ref}", "weekly_pence": 30_000}
        elif route == "plans":
            result = {"plan_id": f"p-{ref}"}
        else:
            self.asked_payments[ref] += 1
            if self.asked_payments[ref] <= PENDING_ANSWERS_AT_PAYMENTS:
                return {"ref": ref, "outcome": "pending", "status": 409, "detail": "not yet"}
            self.between.discard(ref)
        return {"ref": ref, "outcome": "done", "status": 200, "result": result}


async def convert_with(routes: SlowPayments, *, people: int, lead: int | None) -> int:
    rows = sample_clients(POLICY, people, prefix="LEAD")
    async with httpx.AsyncClient(transport=httpx.MockTransport(routes)) as client:
        report = await convert_clients(
            client, URLS, lambda role: {}, POLICY, rows, batch=10, lead=lead
        )
    return report.converted


async def test_no_more_than_the_lead_are_between_the_first_stage_and_the_last() -> None:
    routes = SlowPayments()
    assert await convert_with(routes, people=200, lead=30) == 200
    assert 0 < routes.most_between <= 30


async def test_without_a_lead_the_first_stage_runs_ahead() -> None:
    routes = SlowPayments()
    assert await convert_with(routes, people=200, lead=10_000) == 200
    assert routes.most_between > 100  # what the lead above prevents
