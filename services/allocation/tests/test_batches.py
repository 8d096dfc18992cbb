"""Validated assessments and signed-off plans applied in a batch leave exactly the budgets
one at a time leaves.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1: the domain
levels below are Lancashire's.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import AssessmentValidated, BudgetIssued, BudgetStage, Event
from contracts.registry import DEAD_LETTER_TOPIC
from servicekit.testing import (
    Tokens,
    deliver,
    deliver_all,
    outbox_events_of,
    runtime_of,
)
from services.allocation.tests.test_api import (
    HIGHEST,
    LOWEST,
    THIRTEEN_POINTS,
    TWENTY_FIVE_POINTS,
    agree,
    budget_of,
    signed_off,
    validated,
)


def _as_told(budget: dict[str, Any]) -> dict[str, Any]:
    """A budget without what differs between two people (ids, times, who)."""
    keep = ("status", "version")
    revision_keep = (
        "revision",
        "state",
        "reason",
        "points",
        "weekly_pence",
        "annual_pence",
        "policy_version",
        "explanation",
    )
    return {
        **{k: budget[k] for k in keep},
        "revisions": [{k: r[k] for k in revision_keep} for r in budget["revisions"]],
    }


def _journeys(prefix: str) -> tuple[list[Event], list[Event | Envelope]]:
    """What each person has before (one at a time) and the poll that follows."""
    again = validated(f"{prefix}-same", domain_levels=TWENTY_FIVE_POINTS)
    before: list[Event] = [
        validated(f"{prefix}-known", domain_levels=LOWEST),
        again,
    ]
    poll: list[Event | Envelope] = [
        validated(f"{prefix}-new", domain_levels=HIGHEST),
        validated(f"{prefix}-twice", domain_levels=LOWEST),
        validated(f"{prefix}-known", domain_levels=HIGHEST, informal=True),
        # The same assessment re-emitted (a new event id): nothing to revise.
        again.model_copy(),
        validated(f"{prefix}-twice", domain_levels=THIRTEEN_POINTS, carer=5_000),
    ]
    return before, poll


async def test_a_batch_of_assessments_leaves_the_budgets_one_at_a_time_leaves(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    one_by_one, one_by_one_poll = _journeys("S")
    batched, batched_poll = _journeys("B")
    for event in [*one_by_one, *batched]:
        await deliver(app, event)
    known = await budget_of(client, tokens, "B-known")
    assert (await agree(client, tokens, known["budget_id"])).status_code == 200
    known = await budget_of(client, tokens, "S-known")
    assert (await agree(client, tokens, known["budget_id"])).status_code == 200

    for item in one_by_one_poll:
        await deliver(app, item)
    await deliver_all(app, batched_poll)

    for person in ("known", "same", "new", "twice"):
        alone = await budget_of(client, tokens, f"S-{person}")
        together = await budget_of(client, tokens, f"B-{person}")
        assert _as_told(together) == _as_told(alone), person
    twice = await budget_of(client, tokens, "B-twice")
    assert [r["state"] for r in twice["revisions"]] == ["superseded", "awaiting_agreement"]
    assert twice["version"] == 2


async def test_a_redelivered_batch_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    poll = [Envelope(event=validated(f"P-{n}")) for n in range(3)]
    await deliver_all(app, list(poll))
    await deliver_all(app, list(poll))
    for n in range(3):
        budget = await budget_of(client, tokens, f"P-{n}")
        assert budget["version"] == 1 and len(budget["revisions"]) == 1


async def test_an_unscorable_assessment_is_dead_lettered_and_the_rest_of_its_batch_applies(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    runtime = runtime_of(app)
    good = validated("P-good")
    bad: AssessmentValidated = validated(
        "P-bad", domain_levels={**HIGHEST, "staying_safe": 9}, assessment_id=uuid.uuid4()
    )
    await deliver_all(app, [validated("P-first"), bad, good])
    assert (await budget_of(client, tokens, "P-first"))["version"] == 1
    assert (await budget_of(client, tokens, "P-good"))["version"] == 1
    listed = await client.get(
        "/v1/budgets", params={"person_id": "P-bad"}, headers=tokens.headers("care_manager")
    )
    assert listed.json()["items"] == []
    reader = runtime.event_log.consumer("test-reader", [DEAD_LETTER_TOPIC])
    records = await reader.poll(timeout_ms=1000)
    await reader.close()
    assert len(records) == 1
    assert b"UnknownLevel" in records[0].value


async def _agreed_budget(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, person_id: str
) -> str:
    await deliver(app, validated(person_id))
    budget = await budget_of(client, tokens, person_id)
    assert (await agree(client, tokens, budget["budget_id"])).status_code == 200
    return str(budget["budget_id"])


PLAN_IDS = (uuid.uuid4(), uuid.uuid4())  # both sides' plans, so their explanations match


def _plans(budgets: dict[str, str], prefix: str) -> list[Event | Envelope]:
    """A poll of signed-off plans: one plan redelivered as a new envelope of the same fact,
    and a plan signed off twice (a second version) for one budget."""
    first_plan_id, plan_id = PLAN_IDS
    first = signed_off(budgets["once"], f"{prefix}-once", plan_id=first_plan_id)
    return [
        first,
        first.model_copy(),
        signed_off(budgets["twice"], f"{prefix}-twice", plan_id=plan_id),
        signed_off(
            budgets["twice"],
            f"{prefix}-twice",
            plan_id=plan_id,
            plan_version=2,
            weekly_pence=60_000,
            annual_pence=3_120_000,
        ),
    ]


async def test_a_batch_of_signed_off_plans_leaves_the_budgets_and_events_one_at_a_time_leaves(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    alone = {p: await _agreed_budget(app, client, tokens, f"S-{p}") for p in ("once", "twice")}
    together = {p: await _agreed_budget(app, client, tokens, f"B-{p}") for p in ("once", "twice")}

    for item in _plans(alone, "S"):
        await deliver(app, item)
    await deliver_all(app, _plans(together, "B"))

    for person in ("once", "twice"):
        one_by_one = await budget_of(client, tokens, f"S-{person}")
        batched = await budget_of(client, tokens, f"B-{person}")
        assert _as_told(batched) == _as_told(one_by_one), person
        assert batched["status"] == "final"
    issued = await outbox_events_of(app, BudgetIssued)

    def final_issues(prefix: str) -> list[tuple[str, int, int]]:
        return [
            (e.person_id.removeprefix(prefix), e.revision, e.weekly_pence)
            for e in issued
            if e.person_id.startswith(prefix) and e.stage is BudgetStage.FINAL
        ]

    assert (
        final_issues("B-")
        == final_issues("S-")
        == [
            ("once", 2, 68_000),
            ("twice", 2, 68_000),
            ("twice", 3, 60_000),
        ]
    )


async def test_a_plan_for_an_unknown_budget_is_dead_lettered_and_the_rest_of_its_batch_applies(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    runtime = runtime_of(app)
    budget_id = await _agreed_budget(app, client, tokens, "P-1")
    await deliver_all(app, [signed_off(str(uuid.uuid4()), "P-unknown"), signed_off(budget_id)])

    assert (await budget_of(client, tokens, "P-1"))["status"] == "final"
    reader = runtime.event_log.consumer("test-reader", [DEAD_LETTER_TOPIC])
    records = await reader.poll(timeout_ms=1000)
    await reader.close()
    assert len(records) == 1
    assert b"BudgetNotFound" in records[0].value
