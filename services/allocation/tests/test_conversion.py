"""Converting clients' budgets: POST /v1/conversions/budget-agreements agrees each row's
calculated budget as POST /v1/budgets/{id}/agree does, reading the batch's budgets at once.

Seed 004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1: Council A's care
manager agrees up to £250 a week.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from contracts.events import BudgetIssued
from servicekit.testing import Tokens, deliver, outbox_events_of
from services.allocation.tests.test_api import (
    TWENTY_FIVE_POINTS,
    a_penny_more,
    agree,
    budget_of,
    validated,
)


def issued_content(event: BudgetIssued) -> dict[str, Any]:
    """What a BudgetIssued says about the money and who agreed it, not whose it is."""
    return event.model_dump(
        mode="json", exclude={"person_id", "budget_id", "assessment_id", "agreed_by"}
    )


async def test_a_batch_agrees_each_budget_as_the_agree_route_does_and_refuses_only_its_own_rows(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for person_id in ("A-1", "A-2", "A-3", "A-ROUTE"):
        await deliver(app, validated(person_id, "council_a", domain_levels=TWENTY_FIVE_POINTS))
    await deliver(app, validated("B-1", "council_b", domain_levels=TWENTY_FIVE_POINTS))
    await a_penny_more(client, tokens, "A-2", "council_a")  # £250.01: above the limit
    by_route = await budget_of(client, tokens, "A-ROUTE", "council_a")
    assert (
        await agree(client, tokens, by_route["budget_id"], "care_manager", "council_a")
    ).is_success

    rows = [
        {"ref": "r-1", "person_id": "A-1"},
        {"ref": "r-2", "person_id": "A-2"},  # £250.01 a week: above a care manager's limit
        {"ref": "r-3", "person_id": "A-3"},
        {"ref": "r-4", "person_id": "A-UNKNOWN"},
        {"ref": "r-5", "person_id": "B-1"},  # another council's person: as if unknown
    ]
    r = await client.post(
        "/v1/conversions/budget-agreements",
        json={"rows": rows},
        headers=tokens.headers("care_manager", "council_a", user_id="care_manager-7"),
    )

    assert r.status_code == 200, r.text
    outcome = {row["ref"]: row for row in r.json()["rows"]}
    assert {ref: row["outcome"] for ref, row in outcome.items()} == {
        "r-1": "done",
        "r-2": "rejected",
        "r-3": "done",
        "r-4": "pending",
        "r-5": "pending",
    }
    assert outcome["r-2"]["status"] == 403 and "£250.00" in outcome["r-2"]["detail"]
    assert outcome["r-4"]["detail"] == outcome["r-5"]["detail"]
    issued = await outbox_events_of(app, BudgetIssued)
    [routed] = [e for e in issued if e.person_id == "A-ROUTE"]
    converted = [e for e in issued if e.person_id != "A-ROUTE"]
    assert [e.person_id for e in converted] == ["A-1", "A-3"]
    assert all(issued_content(e) == issued_content(routed) for e in converted)
    for person_id, status in (("A-1", "agreed"), ("A-2", "awaiting_agreement"), ("A-3", "agreed")):
        assert (await budget_of(client, tokens, person_id, "council_a"))["status"] == status
    assert (await budget_of(client, tokens, "B-1", "council_b"))["status"] == "awaiting_agreement"

    again = await client.post(
        "/v1/conversions/budget-agreements",
        json={"rows": rows[:1]},
        headers=tokens.headers("care_manager", "council_a", user_id="care_manager-7"),
    )
    assert again.json()["rows"][0]["outcome"] == "already_done"
    assert len(await outbox_events_of(app, BudgetIssued)) == len(issued)
