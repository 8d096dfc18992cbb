"""Events applied a batch at a time, and plans converted as a set, leave exactly what one at
a time leaves: the same rows in every table and the same events, in the same order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import DeploymentOption, DeploymentPart, DeploymentSetUp, Event
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import Tokens, deliver, deliver_all, outbox_events, running, runtime_of
from services.planning.api import create_app
from services.planning.domain import KnownBudget, Plan, PlanContent
from services.planning.schemas import PlanIn, plan_content
from services.planning.settings import Settings
from services.planning.tests.test_api import (
    SIGN_OFF_DAY,
    Service,
    a_line,
    budget_for,
    issued,
    plan_body,
    sign_off,
    validated,
)

AT = datetime(2010, 5, 4, 9, 30, tzinfo=UTC)
DIRECT = DeploymentOption.DIRECT_PAYMENT
MANAGED = DeploymentOption.COUNCIL_MANAGED

TABLES = ("assessments", "budgets", "deployments", "plans", "plan_history", "reviews")


@pytest.fixture
def at_a_fixed_time() -> Any:
    with clock.using(SettableClock(AT)):
        yield


@pytest.fixture
async def two_services(
    data_dir: Path, policies_dir: Path, at_a_fixed_time: None
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    apps = []
    for name in ("one-by-one", "batched"):
        (data_dir / name).mkdir()
        Tokens(data_dir / name)  # the service reads the signing key at start
        apps.append(create_app(Settings(data_dir=data_dir / name, policies_dir=policies_dir)))
    async with running(apps[0]), running(apps[1]):
        yield apps[0], apps[1]


def only_in_batches(app: FastAPI) -> None:
    """From now on the app's consumers may not fall back to one event at a time, so what
    they leave is the batch handlers' own work."""

    async def one_at_a_time(*args: Any) -> None:
        raise AssertionError("the batch fell back to one event at a time")

    for consumer in runtime_of(app).consumers:
        consumer._handle_decoded = one_at_a_time  # type: ignore[method-assign]


async def _state(app: FastAPI) -> dict[str, list[dict[str, Any]]]:
    """Every row of planning's own tables, in a stable order."""
    runtime = runtime_of(app)
    state: dict[str, list[dict[str, Any]]] = {}
    async with runtime.database.sessions() as session:
        for name in TABLES:
            rows = (await session.execute(sa.text(f"SELECT * FROM {name}"))).mappings().all()
            state[name] = sorted((dict(row) for row in rows), key=repr)
    return state


def _told(envelopes: list[Envelope]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.event.model_dump(mode="json")) for e in envelopes]


async def test_validated_assessments_and_issued_budgets_in_a_batch_leave_what_one_at_a_time_leaves(
    two_services: tuple[FastAPI, FastAPI],
) -> None:
    one_by_one, batched = two_services
    known = validated("p-known")
    known_budget = issued(known, 20_000)
    before: list[Event] = [known, known_budget]
    revalidated = validated(
        "p-known", levels={"staying_safe": 4}, assessment_id=known.assessment_id
    )
    new = validated("p-new")
    twice = validated("p-twice")
    twice_again = validated(
        "p-twice", levels={"personal_care": 4}, assessment_id=twice.assessment_id
    )
    new_budget = issued(new, 30_000)
    poll: list[Event] = [
        revalidated,
        new,
        twice,
        twice_again,
        # A later revision of a known budget, then an older one arriving late (ignored).
        issued(known, 25_000, revision=3, budget_id=known_budget.budget_id),
        issued(known, 22_000, revision=2, budget_id=known_budget.budget_id),
        new_budget,
        issued(new, 31_000, revision=2, budget_id=new_budget.budget_id),
        issued(twice_again, 18_000),
    ]
    for app in (one_by_one, batched):
        for event in before:
            await deliver(app, Envelope(event=event))
    envelopes: list[Event | Envelope] = [Envelope(event=event) for event in poll]
    for envelope in envelopes:
        await deliver(one_by_one, envelope)
    only_in_batches(batched)
    await deliver_all(batched, envelopes)

    assert await _state(batched) == await _state(one_by_one)
    assert _told(await outbox_events(batched)) == _told(await outbox_events(one_by_one))
    assert sorted(row["revision"] for row in (await _state(batched))["budgets"]) == [1, 2, 3]


def _without_ids(value: Any) -> Any:
    """What differs between two people's records: ids, the person, times."""
    if isinstance(value, dict):
        return {
            key: _without_ids(item)
            for key, item in value.items()
            if not key.endswith(("_id", "_at")) and key != "actor"
        }
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


async def _signed_off_plan(
    app: FastAPI, person_id: str, plan_id: UUID, content: PlanContent
) -> None:
    """A plan in planning's store, under a known id and with the content given."""
    budget = KnownBudget(
        budget_id=uuid5(plan_id, "budget"),
        assessment_id=uuid5(plan_id, "assessment"),
        person_id=person_id,
        council="lancashire",
        stage="final",
        revision=1,
        weekly_pence=20_000,
        annual_pence=1_040_000,
        policy_version="lancashire/2009.1",
    )
    plan = Plan.draft(
        person_id=person_id,
        council="lancashire",
        budget=budget,
        content=content,
        fee_basis_points=0,
        by="care_manager:cm-1",
        at=AT,
        plan_id=plan_id,
    )
    uow = runtime_of(app).uow()
    async with uow:
        await uow.plans.add(plan)
        await uow.commit()


def plan_body_for(person_id: str, budget_id: UUID) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "budget_id": str(budget_id),
        "outcomes": ["Live in my own flat"],
        "lines": [a_line()],
        "contingency_weekly_pence": 0,
        "risk_mitigations": [],
    }


def set_up(person_id: str, plan_id: UUID, n: int, *options: DeploymentOption) -> DeploymentSetUp:
    return DeploymentSetUp(
        person_id=person_id,
        council="lancashire",
        deployment_id=uuid5(plan_id, f"deployment {n}"),
        plan_id=plan_id,
        parts=[DeploymentPart(option=option, annual_pence=520_000) for option in options],
        gross_annual_pence=1_040_000,
        contribution_annual_pence=0,
        net_annual_pence=1_040_000,
        audit_tier="light_touch",
        policy_version="lancashire/2009.1",
    )


async def test_deployments_set_up_in_a_batch_book_the_reviews_one_at_a_time_books(
    two_services: tuple[FastAPI, FastAPI],
) -> None:
    one_by_one, batched = two_services
    known, new, managed = uuid4(), uuid4(), uuid4()
    people = [("p-known", known), ("p-new", new), ("p-managed", managed)]
    contents = {
        plan_id: plan_content(
            PlanIn.model_validate(plan_body_for(person_id, uuid5(plan_id, "budget")))
        )
        for person_id, plan_id in people
    }
    for app in two_services:
        for person_id, plan_id in people:
            await _signed_off_plan(app, person_id, plan_id, contents[plan_id])
        # p-known's direct payment already has its first review booked.
        await deliver(app, Envelope(event=set_up("p-known", known, 0, DIRECT)))
    poll: list[Event] = [
        set_up("p-known", known, 1, DIRECT),  # a review is open: none booked
        set_up("p-new", new, 1, DIRECT),  # books the first review...
        set_up("p-new", new, 2, DIRECT, MANAGED),  # ...which this one then finds open
        set_up("p-managed", managed, 1, MANAGED),  # no direct payment: no review
        set_up("p-stranger", uuid4(), 1, DIRECT),  # a plan planning did not write
        set_up("p-managed", managed, 1, DIRECT),  # the same deployment switched in place
    ]
    envelopes: list[Event | Envelope] = [Envelope(event=event) for event in poll]
    for envelope in envelopes:
        await deliver(one_by_one, envelope)
    only_in_batches(batched)
    await deliver_all(batched, envelopes)

    alone, together = await _state(one_by_one), await _state(batched)
    assert _without_review_ids(together) == _without_review_ids(alone)
    assert _told_without_ids(await outbox_events(batched)) == _told_without_ids(
        await outbox_events(one_by_one)
    )
    booked = [r for r in together["reviews"] if r["kind"] == "direct_payment"]
    assert sorted(r["person_id"] for r in booked) == ["p-known", "p-managed", "p-new"]


def _without_review_ids(state: dict[str, list[dict[str, Any]]]) -> Any:
    return {
        name: sorted(({k: v for k, v in row.items() if k != "review_id"} for row in rows), key=repr)
        for name, rows in state.items()
    }


def _told_without_ids(envelopes: list[Envelope]) -> list[tuple[str, Any]]:
    return [
        (e.type, {k: v for k, v in e.event.model_dump(mode="json").items() if k != "review_id"})
        for e in envelopes
    ]


def _event_as_told(envelope: Envelope) -> tuple[str, Any]:
    return envelope.type, _without_ids(envelope.event.model_dump(mode="json"))


async def test_plans_converted_as_a_set_are_those_written_submitted_and_signed_off_one_by_one(
    data_dir: Path, policies_dir: Path, tokens: Tokens, at_a_fixed_time: None
) -> None:
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        svc = Service(app, client, tokens)
        lines = [a_line()]
        alone = [await budget_for(svc, f"S-{n}", 40_000) for n in range(3)]
        together = [await budget_for(svc, f"B-{n}", 40_000) for n in range(3)]
        # A plan costing more than its budget, with no request for more: refused, and
        # nothing of it written.
        too_dear = await budget_for(svc, "B-dear", 40_000)
        before = len(await outbox_events(app))

        for budget in alone:
            # As the conversion's caller does each step.
            r = await client.post(
                "/v1/plans", json=plan_body(budget, *lines), headers=svc.as_("team_manager")
            )
            plan_id = r.json()["plan_id"]
            r = await client.post(
                f"/v1/plans/{plan_id}/submit", json={}, headers=svc.as_("team_manager")
            )
            assert r.status_code == 200, r.text
            r = await sign_off(svc, plan_id, "team_manager")
            assert r.status_code == 200, r.text
        one_by_one = (await outbox_events(app))[before:]

        rows = [
            {"ref": f"conv-{n}", "plan": plan_body(budget, *lines), "sign_off_on": SIGN_OFF_DAY}
            for n, budget in enumerate(together)
        ]
        rows.insert(
            1,
            {
                "ref": "conv-dear",
                "plan": plan_body(too_dear, a_line(380_000)),
                "sign_off_on": SIGN_OFF_DAY,
            },
        )
        r = await client.post(
            "/v1/conversions/plans", json={"rows": rows}, headers=svc.as_("team_manager")
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert [row["outcome"] for row in out["rows"]] == ["done", "rejected", "done", "done"]
        assert out["rows"][1]["status"] == 422
        converted = (await outbox_events(app))[before + len(one_by_one) :]

        assert [_event_as_told(e) for e in converted] == [_event_as_told(e) for e in one_by_one]
        assert [e.event.person_id for e in converted] == [  # type: ignore[attr-defined]
            b.person_id for b in together for _ in range(3)
        ]
        plans = (await client.get("/v1/plans?limit=100", headers=svc.as_("team_manager"))).json()[
            "items"
        ]
        by_person = {plan["person_id"]: plan for plan in plans}
        assert "B-dear" not in by_person
        for n in range(3):
            one = (
                await client.get(
                    f"/v1/plans/{by_person[f'S-{n}']['plan_id']}", headers=svc.as_("team_manager")
                )
            ).json()
            bulk = (
                await client.get(
                    f"/v1/plans/{by_person[f'B-{n}']['plan_id']}", headers=svc.as_("team_manager")
                )
            ).json()
            assert _without_ids(bulk) == _without_ids(one)
