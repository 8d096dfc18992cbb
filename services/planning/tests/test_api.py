"""The planning service in-process: HTTP with real tokens, events in through deliver()."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import (
    AssessmentValidated,
    BudgetIssued,
    BudgetStage,
    DeploymentOption,
    DeploymentPart,
    DeploymentSetUp,
    PlanReturned,
    PlanSignedOff,
    PlanSubmitted,
    ReviewCompleted,
    ReviewDue,
    ReviewScheduled,
    Risk,
    Scale,
)
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from rules.reviews import add_months
from servicekit import clock
from servicekit.testing import Tokens, deliver, outbox_events_of, running, runtime_of
from services.planning.api import create_app
from services.planning.settings import Settings

SIGN_OFF_DAY = "2010-05-03"


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: Tokens

    def as_(self, role: str, council: str = "lancashire", **extra: Any) -> dict[str, str]:
        return self.tokens.headers(role, council, **extra)


@pytest.fixture
async def service(data_dir: Path, policies_dir: Path, tokens: Tokens) -> AsyncIterator[Service]:
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        yield Service(app, client, tokens)


def validated(
    person_id: str,
    council: str = "lancashire",
    levels: dict[str, int] | None = None,
    risks: list[Risk] | None = None,
    assessment_id: uuid.UUID | None = None,
    client_group: ClientGroup = ClientGroup.LEARNING_DISABILITY,
) -> AssessmentValidated:
    return AssessmentValidated(
        person_id=person_id,
        council=council,
        assessment_id=assessment_id or uuid.uuid4(),
        client_group=client_group,
        completed_by=CompletedBy.SUPPORTED,
        team="East Lancashire",
        key_worker_id="kw-1",
        age_band=AgeBand.AGE_18_64,
        community_based=True,
        domain_levels=levels or {"staying_safe": 2, "personal_care": 3},
        adjustments=[],
        significant_informal_support=False,
        needs_24_7=False,
        carer_support_weekly_pence=0,
        other_funding=[],
        outcomes=["Live in my own flat"],
        risks=risks or [],
        validated_by="care_manager:cm-1",
        policy_version=f"{council}/2009.1",
    )


def issued(
    assessment: AssessmentValidated,
    weekly_pence: int,
    *,
    revision: int = 1,
    budget_id: uuid.UUID | None = None,
    stage: BudgetStage = BudgetStage.INDICATIVE,
) -> BudgetIssued:
    return BudgetIssued(
        person_id=assessment.person_id,
        council=assessment.council,
        budget_id=budget_id or uuid.uuid4(),
        assessment_id=assessment.assessment_id,
        client_group=assessment.client_group,
        stage=stage,
        revision=revision,
        points=40,
        scale=Scale.STANDARD,
        weekly_pence=weekly_pence,
        annual_pence=weekly_pence * 52,
        ceiling_weekly_pence=None,
        ceiling_exception=False,
        explanation=[],
        agreed_by="team_manager:tm-1",
        agreed_by_role=Role.TEAM_MANAGER,
        policy_version=assessment.policy_version,
    )


async def budget_for(
    svc: Service,
    person_id: str,
    weekly_pence: int,
    council: str = "lancashire",
    levels: dict[str, int] | None = None,
    risks: list[Risk] | None = None,
    client_group: ClientGroup = ClientGroup.LEARNING_DISABILITY,
) -> BudgetIssued:
    assessment = validated(person_id, council, levels, risks, client_group=client_group)
    await deliver(svc.app, assessment)
    budget = issued(assessment, weekly_pence)
    await deliver(svc.app, budget)
    return budget


def a_line(amount_pence: float | None = 20_000, **rest: Any) -> dict[str, Any]:
    return {
        "description": "Personal assistant, mornings and evenings",
        "provider_kind": "personal_assistant",
        "frequency": "weekly",
        "amount_pence": amount_pence,
        "domains": ["personal_care"],
        "outcomes": ["Live in my own flat"],
        **rest,
    }


def plan_body(budget: BudgetIssued, *lines: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {
        "person_id": budget.person_id,
        "budget_id": str(budget.budget_id),
        "outcomes": ["Live in my own flat"],
        "lines": list(lines) or [a_line()],
        "contingency_weekly_pence": 0,
        "risk_mitigations": [],
        **rest,
    }


async def create(svc: Service, body: dict[str, Any], council: str = "lancashire") -> dict[str, Any]:
    r = await svc.client.post("/v1/plans", json=body, headers=svc.as_("care_manager", council))
    assert r.status_code == 201, r.text
    plan: dict[str, Any] = r.json()
    return plan


async def submitted(svc: Service, body: dict[str, Any], council: str = "lancashire") -> str:
    plan = await create(svc, body, council)
    r = await svc.client.post(
        f"/v1/plans/{plan['plan_id']}/submit", json={}, headers=svc.as_("care_manager", council)
    )
    assert r.status_code == 200, r.text
    plan_id: str = plan["plan_id"]
    return plan_id


async def sign_off(
    svc: Service, plan_id: str, role: str, council: str = "lancashire", on: str = SIGN_OFF_DAY
) -> httpx.Response:
    return await svc.client.post(
        f"/v1/plans/{plan_id}/sign-off", json={"on": on}, headers=svc.as_(role, council)
    )


async def plans_of(svc: Service, council: str = "lancashire") -> list[dict[str, Any]]:
    r = await svc.client.get("/v1/plans", headers=svc.as_("team_manager", council))
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# --- writing and costing a plan -----------------------------------------------------------


async def test_a_draft_plan_is_costed_and_checked(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    assert plan["status"] == "draft" and plan["version"] == 1
    assert plan["costing"]["weekly_pence"] == 20_000
    assert plan["costing"]["annual_pence"] == 20_000 * 52
    assert plan["checks_passed"] is True
    assert [c["check"] for c in plan["checks"]] == [
        "budget_issued",
        "within_budget",
        "high_domains_addressed",
        "flagged_risks_mitigated",
    ]
    assert plan["history"][0]["actor"] == "care_manager:care_manager-1"


async def test_the_10_percent_fee_is_added_to_a_line_the_provider_holds(service: Service) -> None:
    # seed 003 ch.3 Castle: "Castle charges each person a 10% management fee"
    budget = await budget_for(service, "p-1", 40_000)
    isf = a_line(
        30_000,
        provider_kind="provider",
        provider_name="Castle Supported Living",
        provider_holds_funds=True,
    )
    plan = await create(service, plan_body(budget, isf))
    assert plan["costing"]["weekly_pence"] == 33_000
    assert plan["costing"]["fee_lines"][0]["amount_pence"] == 3_000
    assert plan["lines"][0]["fee_amount_pence"] == 3_000


async def test_a_sleep_in_shared_by_four_tenants_costs_this_tenant_a_quarter(
    service: Service,
) -> None:
    # seed 003 ch.4: tenants share a sleep-in; no more than 4 tenants share a house
    budget = await budget_for(service, "p-1", 40_000)
    sleep_in = a_line(
        None,
        description="Sleep-in background support",
        provider_kind="provider",
        shared={"total_amount_pence": 70_000, "people": 4},
    )
    plan = await create(service, plan_body(budget, sleep_in))
    assert plan["lines"][0]["amount_pence"] == 17_500
    assert plan["lines"][0]["shared"]["this_persons_amount_pence"] == 17_500
    assert plan["costing"]["weekly_pence"] == 17_500


async def test_a_plan_for_a_budget_not_issued_to_the_person_is_refused(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    body = plan_body(budget, person_id="p-2")
    r = await service.client.post("/v1/plans", json=body, headers=service.as_("care_manager"))
    assert r.status_code == 422 and "budget_id" in r.text
    assert r.json()["error"] == "BudgetNotKnown"
    assert await plans_of(service) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [a_line(-1)]}, "amount_pence"),
        ({"lines": [a_line(1250.5)]}, "amount_pence"),
        ({"lines": [a_line(domains=["flying"])]}, "domains"),
        ({"lines": [a_line(None)]}, "amount_pence"),
        ({"lines": [a_line(frequency="hourly")]}, "frequency"),
        ({"lines": [a_line(description="x" * 501)]}, "description"),
        ({"lines": []}, "lines"),
        ({"lines": [a_line()] * 101}, "lines"),
        ({"contingency_weekly_pence": -5}, "contingency_weekly_pence"),
        ({"hours_per_week": 12}, "hours_per_week"),
        ({"risk_mitigations": [{"risk_id": "r-9", "mitigation": "x"}]}, "risk_id"),
        ({"request_for_more": {"weekly_pence": 0, "reason": "x"}}, "weekly_pence"),
        (
            {"lines": [a_line(None, shared={"total_amount_pence": 100, "people": 1})]},
            "people",
        ),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    service: Service, change: dict[str, Any], field: str
) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    r = await service.client.post(
        "/v1/plans", json={**plan_body(budget), **change}, headers=service.as_("care_manager")
    )
    assert r.status_code == 422 and field in r.text
    assert await plans_of(service) == []


# --- who may do what ----------------------------------------------------------------------


async def test_no_token_is_401(service: Service) -> None:
    assert (await service.client.get("/v1/plans")).status_code == 401
    assert (await service.client.post("/v1/plans", json={})).status_code == 401


async def test_finance_may_not_write_a_plan(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    r = await service.client.post(
        "/v1/plans", json=plan_body(budget), headers=service.as_("finance")
    )
    assert r.status_code == 403
    assert await plans_of(service) == []


async def test_another_councils_plan_is_not_found(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await service.client.get(
        f"/v1/plans/{plan['plan_id']}", headers=service.as_("care_manager", "council_a")
    )
    assert r.status_code == 404
    r = await service.client.post(
        f"/v1/plans/{plan['plan_id']}/submit",
        json={},
        headers=service.as_("care_manager", "council_a"),
    )
    assert r.status_code == 404


async def test_a_person_sees_their_own_plan_and_no_one_elses(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    own = service.as_("person", person_id="p-1")
    r = await service.client.post("/v1/plans", json=plan_body(budget), headers=own)
    assert r.status_code == 201
    plan_id = r.json()["plan_id"]
    assert (await service.client.get(f"/v1/plans/{plan_id}", headers=own)).status_code == 200
    other = service.as_("person", person_id="p-2")
    assert (await service.client.get(f"/v1/plans/{plan_id}", headers=other)).status_code == 404
    listed = await service.client.get("/v1/plans", headers=other)
    assert listed.json()["items"] == []


async def test_a_person_cannot_sign_off_their_own_plan(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan_id = await submitted(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan_id}/sign-off",
        json={},
        headers=service.as_("person", person_id="p-1"),
    )
    assert r.status_code == 403


# --- submit, return, sign-off -------------------------------------------------------------


async def test_submitting_a_failing_plan_lists_every_failure(service: Service) -> None:
    # seed 003 ch.2 §ii: Staying Safe scored high must be addressed by spend
    seizures = Risk(risk_id="r-1", description="Falls after night seizures", flagged=True)
    budget = await budget_for(service, "p-1", 10_000, levels={"staying_safe": 5}, risks=[seizures])
    plan = await create(service, plan_body(budget, a_line(20_000)))
    r = await service.client.post(
        f"/v1/plans/{plan['plan_id']}/submit", json={}, headers=service.as_("care_manager")
    )
    assert r.status_code == 422
    assert {f["check"] for f in r.json()["failures"]} == {
        "within_budget",
        "high_domains_addressed",
        "flagged_risks_mitigated",
    }
    assert await outbox_events_of(service.app, PlanSubmitted) == []


async def test_a_high_domain_unaddressed_blocks_sign_off_until_a_line_serves_it(
    service: Service,
) -> None:
    budget = await budget_for(service, "p-1", 30_000, levels={"staying_safe": 5})
    plan = await create(service, plan_body(budget))
    assert plan["checks_passed"] is False
    night = a_line(8_000, description="Someone around at night", domains=["staying_safe"])
    r = await service.client.put(
        f"/v1/plans/{plan['plan_id']}",
        json={**plan_body(budget, a_line(), night), "expected_version": 1},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 200 and r.json()["checks_passed"] is True
    assert r.json()["version"] == 2


async def test_a_flagged_risk_blocks_until_referred_to_the_risk_panel(service: Service) -> None:
    # seed 003 ch.5 §4 and seed 004 Council B: the risk enablement panel
    seizures = Risk(risk_id="r-1", description="Falls after night seizures", flagged=True)
    budget = await budget_for(service, "p-1", 30_000, risks=[seizures])
    plan = await create(service, plan_body(budget))
    checks = await service.client.get(
        f"/v1/plans/{plan['plan_id']}/checks", headers=service.as_("care_manager")
    )
    assert checks.json()["passed"] is False
    referred = {"risk_id": "r-1", "referred_to_risk_panel": True}
    r = await service.client.put(
        f"/v1/plans/{plan['plan_id']}",
        json={**plan_body(budget, risk_mitigations=[referred])},
        headers=service.as_("care_manager"),
    )
    assert r.json()["checks_passed"] is True


async def test_over_budget_needs_a_request_for_more(service: Service) -> None:
    # seed 003 ch.2 §iii: 2:1 support not captured by points -> funding above the budget
    budget = await budget_for(service, "p-1", 25_000)
    over = plan_body(budget, a_line(30_000))
    plan = await create(service, over)
    assert {c["check"]: c["passed"] for c in plan["checks"]}["within_budget"] is False
    more = {"weekly_pence": 5_000, "reason": "2:1 support for moving and handling"}
    plan_id = await submitted(service, {**over, "request_for_more": more})
    r = await sign_off(service, plan_id, "team_manager")
    assert r.status_code == 200, r.text
    [signed] = await outbox_events_of(service.app, PlanSignedOff)
    assert signed.request_for_more is True and signed.weekly_pence == 30_000


async def test_sign_off_emits_the_plan_and_schedules_the_first_review(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan_id = await submitted(service, plan_body(budget, contingency_weekly_pence=1_731))
    r = await sign_off(service, plan_id, "team_manager")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "signed_off"
    [signed] = await outbox_events_of(service.app, PlanSignedOff)
    assert signed.signed_off_by == "team_manager:team_manager-1"
    assert signed.weekly_pence == 21_731 and signed.contingency_weekly_pence == 1_731
    assert signed.assessment_id == budget.assessment_id
    assert signed.policy_version == "lancashire/2009.1"
    # seed 004 §6.7: the six-week review (lancashire policy: 42 days)
    assert signed.first_review_on == date(2010, 6, 14)
    [scheduled] = await outbox_events_of(service.app, ReviewScheduled)
    assert (scheduled.kind, scheduled.due_on) == ("first", date(2010, 6, 14))
    assert scheduled.type == "pb.planning.review-scheduled.v3"
    assert scheduled.scheduled_by == "team_manager:team_manager-1"  # who signed it off


async def test_council_e_first_review_is_after_eight_weeks(service: Service) -> None:
    # seed 004 Council E: "reviews, after three months and then annually"; the Care and
    # Support Statutory Guidance (para. 13.32): 6-8 weeks, so 56 days
    budget = await budget_for(service, "p-1", 25_000, council="council_e")
    plan_id = await submitted(service, plan_body(budget), "council_e")
    assert (await sign_off(service, plan_id, "team_manager", "council_e")).status_code == 200
    [signed] = await outbox_events_of(service.app, PlanSignedOff)
    assert signed.first_review_on == date(2010, 6, 28)


@pytest.mark.parametrize(
    ("weekly_pence", "role", "status", "needed"),
    [
        # seed 004 Council A: care manager up to £250 a week, team manager up to £415
        (25_000, "care_manager", 200, None),
        (25_001, "care_manager", 403, "team_manager"),
        (41_500, "team_manager", 200, None),
        (41_501, "team_manager", 403, "panel"),
        (41_501, "panel", 200, None),
    ],
)
async def test_council_a_sign_off_limits(
    service: Service, weekly_pence: int, role: str, status: int, needed: str | None
) -> None:
    budget = await budget_for(service, "p-1", 50_000, council="council_a")
    plan_id = await submitted(service, plan_body(budget, a_line(weekly_pence)), "council_a")
    r = await sign_off(service, plan_id, role, "council_a")
    assert r.status_code == status, r.text
    if needed is not None:
        assert r.json()["error"] == "AboveApprovalLimit" and needed in r.json()["detail"]
        assert await outbox_events_of(service.app, PlanSignedOff) == []
    else:
        assert len(await outbox_events_of(service.app, PlanSignedOff)) == 1


async def test_in_council_b_only_the_panel_signs_off(service: Service) -> None:
    # seed 004 Council B: "all support plans ... have to be approved by a panel"
    budget = await budget_for(service, "p-1", 50_000, council="council_b")
    plan_id = await submitted(service, plan_body(budget, a_line(5_000)), "council_b")
    for role in ("care_manager", "team_manager"):
        r = await sign_off(service, plan_id, role, "council_b")
        assert r.status_code == 403 and "panel" in r.json()["detail"]
    assert (await sign_off(service, plan_id, "panel", "council_b")).status_code == 200


async def test_in_council_b_a_plan_above_300_a_week_is_signed_off_at_the_separate_sitting(
    service: Service,
) -> None:
    # Seed 004 App.1 Council B: the panel meets "twice for budgets greater than £300 per
    # week and once for budgets less than this".
    budget = await budget_for(service, "p-1", 50_000, council="council_b")
    plan_id = await submitted(service, plan_body(budget, a_line(30_001)), "council_b")
    queue = await service.client.get("/v1/approvals", headers=service.as_("panel", "council_b"))
    assert [(p["plan_id"], p["panel_sitting"]) for p in queue.json()["items"]] == [
        (plan_id, "separate")
    ]
    at_ordinary = await service.client.post(
        f"/v1/plans/{plan_id}/sign-off",
        json={"on": SIGN_OFF_DAY, "panel_sitting": "ordinary"},
        headers=service.as_("panel", "council_b"),
    )
    assert at_ordinary.status_code == 403
    assert at_ordinary.json()["error"] == "NeedsSeparatePanel"
    assert await outbox_events_of(service.app, PlanSignedOff) == []
    r = await sign_off(service, plan_id, "panel", "council_b")
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["detail"]["panel_sitting"] == "separate"


async def test_in_council_c_every_mental_health_plan_goes_to_the_panel(service: Service) -> None:
    # seed 004 Council C: "All mental health requests go to a panel"; team managers take
    # lower levels of funding for the other groups.
    older = await budget_for(
        service, "p-1", 50_000, council="council_c", client_group=ClientGroup.OLDER_PEOPLE
    )
    mental = await budget_for(
        service, "p-2", 50_000, council="council_c", client_group=ClientGroup.MENTAL_HEALTH
    )
    older_plan = await submitted(service, plan_body(older, a_line(5_000)), "council_c")
    mental_plan = await submitted(service, plan_body(mental, a_line(5_000)), "council_c")

    queue = await service.client.get(
        "/v1/approvals", headers=service.as_("team_manager", "council_c")
    )
    assert [p["plan_id"] for p in queue.json()["items"]] == [older_plan]
    assert [(p["plan_id"], p["role_needed"]) for p in queue.json()["refer_up"]] == [
        (mental_plan, "panel")
    ]
    refused = await sign_off(service, mental_plan, "team_manager", "council_c")
    assert refused.status_code == 403 and refused.json()["error"] == "PanelOnly"
    assert "mental health" in refused.json()["detail"]
    assert await outbox_events_of(service.app, PlanSignedOff) == []
    assert (await sign_off(service, older_plan, "team_manager", "council_c")).status_code == 200
    assert (await sign_off(service, mental_plan, "panel", "council_c")).status_code == 200


async def test_a_sign_off_dated_after_today_is_refused_and_the_plan_stays_submitted(
    service: Service,
) -> None:
    """A decision is dated the day it was taken: a sign-off dated ahead would be judged under
    a policy not yet in force."""
    budget = await budget_for(service, "p-1", 25_000)
    plan_id = await submitted(service, plan_body(budget))
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    r = await sign_off(service, plan_id, "team_manager", on=tomorrow)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["error"] == "InvalidInput" and "YYYY-MM-DD" in r.text
    assert [e["field"] for e in problem["errors"]] == ["body.on"]
    assert (
        await service.client.get(f"/v1/plans/{plan_id}", headers=service.as_("team_manager"))
    ).json()["status"] == "submitted"


async def test_only_a_submitted_plan_can_be_signed_off(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await sign_off(service, plan["plan_id"], "panel")
    assert r.status_code == 409


async def test_a_returned_plan_is_amended_and_resubmitted(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan_id = await submitted(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan_id}/return",
        json={"reasons": ["Say who helps at weekends"]},
        headers=service.as_("team_manager"),
    )
    assert r.status_code == 200 and r.json()["status"] == "returned"
    [returned] = await outbox_events_of(service.app, PlanReturned)
    assert returned.returned_by == "team_manager:team_manager-1"
    weekend = a_line(3_000, description="Weekend help from a neighbour", provider_kind="informal")
    r = await service.client.put(
        f"/v1/plans/{plan_id}",
        json=plan_body(budget, a_line(), weekend),
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 200 and r.json()["status"] == "draft"
    r = await service.client.post(
        f"/v1/plans/{plan_id}/submit", json={}, headers=service.as_("care_manager")
    )
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert [h["action"] for h in r.json()["history"]] == [
        "created",
        "submitted",
        "returned",
        "amended",
        "submitted",
    ]


async def test_a_person_may_not_return_a_plan(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan_id = await submitted(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan_id}/return",
        json={"reasons": ["no"]},
        headers=service.as_("person", person_id="p-1"),
    )
    assert r.status_code == 403


async def test_a_stale_expected_version_is_409_and_changes_nothing(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan['plan_id']}/submit",
        json={"expected_version": 7},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 409 and r.json()["error"] == "StaleVersion"
    r = await service.client.get(f"/v1/plans/{plan['plan_id']}", headers=service.as_("panel"))
    assert r.json()["status"] == "draft" and r.json()["version"] == 1


async def test_a_retried_create_with_the_same_idempotency_key_is_replayed(
    service: Service,
) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    headers = service.as_("care_manager", **{"Idempotency-Key": "create-1"})
    first = await service.client.post("/v1/plans", json=plan_body(budget), headers=headers)
    again = await service.client.post("/v1/plans", json=plan_body(budget), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["plan_id"] == first.json()["plan_id"]
    assert len(await plans_of(service)) == 1


# --- lists --------------------------------------------------------------------------------


async def test_plans_are_listed_a_page_at_a_time(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    for _ in range(3):
        await create(service, plan_body(budget))
    headers = service.as_("care_manager")
    first = (await service.client.get("/v1/plans?limit=2", headers=headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await service.client.get(
            f"/v1/plans?limit=2&cursor={first['next_cursor']}", headers=headers
        )
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = {p["plan_id"] for p in first["items"] + second["items"]}
    assert len(ids) == 3


async def test_approvals_split_plans_the_caller_may_sign_off_from_those_to_refer_up(
    service: Service,
) -> None:
    # seed 004 Council A limits: £250 care manager, £415 team manager, above that a panel
    for person, weekly in (("p-1", 20_000), ("p-2", 30_000), ("p-3", 50_000)):
        budget = await budget_for(service, person, 60_000, council="council_a")
        await submitted(service, plan_body(budget, a_line(weekly)), "council_a")
    r = await service.client.get("/v1/approvals", headers=service.as_("care_manager", "council_a"))
    assert r.status_code == 200
    page = r.json()
    assert [p["weekly_pence"] for p in page["items"]] == [20_000]
    assert [(p["weekly_pence"], p["role_needed"]) for p in page["refer_up"]] == [
        (30_000, "team_manager"),
        (50_000, "panel"),
    ]
    finance = await service.client.get("/v1/approvals", headers=service.as_("finance"))
    assert finance.status_code == 403


# --- events in ----------------------------------------------------------------------------


async def test_a_redelivered_budget_issued_changes_nothing(service: Service) -> None:
    assessment = validated("p-1")
    await deliver(service.app, assessment)
    budget = issued(assessment, 25_000)
    envelope = Envelope(event=budget)
    await deliver(service.app, envelope)
    [planning] = [c for c in runtime_of(service.app).consumers if c.name == "planning"]
    applied = planning.applied
    await deliver(service.app, envelope)
    assert planning.applied == applied
    plan = await create(service, plan_body(budget))
    assert plan["budget"]["weekly_pence"] == 25_000


async def test_a_redelivered_assessment_does_not_undo_a_later_validation(
    service: Service,
) -> None:
    first = validated("p-1", levels={"staying_safe": 5})
    first_envelope = Envelope(event=first)
    await deliver(service.app, first_envelope)
    revalidated = first.model_copy(update={"domain_levels": {"staying_safe": 2}})
    await deliver(service.app, revalidated)
    await deliver(service.app, first_envelope)  # the log hands the old one back again
    budget = issued(first, 25_000)
    await deliver(service.app, budget)
    plan = await create(service, plan_body(budget))
    assert plan["checks_passed"] is True


async def test_the_latest_budget_revision_wins_even_when_an_older_one_arrives_late(
    service: Service,
) -> None:
    assessment = validated("p-1")
    await deliver(service.app, assessment)
    budget_id = uuid.uuid4()
    await deliver(
        service.app,
        issued(assessment, 30_000, revision=2, budget_id=budget_id, stage=BudgetStage.FINAL),
    )
    older = issued(assessment, 20_000, revision=1, budget_id=budget_id)
    await deliver(service.app, older)
    plan = await create(service, plan_body(older))
    assert plan["budget"] == {
        "budget_id": str(budget_id),
        "stage": "final",
        "revision": 2,
        "weekly_pence": 30_000,
        "annual_pence": 30_000 * 52,
    }


# --- reviews ------------------------------------------------------------------------------


async def signed_off(service: Service, council: str = "lancashire") -> str:
    budget = await budget_for(service, "p-1", 25_000, council=council)
    plan_id = await submitted(service, plan_body(budget), council)
    assert (await sign_off(service, plan_id, "team_manager", council)).status_code == 200
    return plan_id


async def test_run_due_announces_each_review_once(service: Service) -> None:
    await signed_off(service)
    clock = service.as_("operations")
    early = await service.client.post(
        "/v1/reviews/run-due", json={"as_of": "2010-06-13"}, headers=clock
    )
    assert early.json()["items"] == []
    due = await service.client.post(
        "/v1/reviews/run-due", json={"as_of": "2010-06-14"}, headers=clock
    )
    assert [r["due_on"] for r in due.json()["items"]] == ["2010-06-14"]
    assert due.json()["items"][0]["announced_by"] == "operations:operations-1"
    again = await service.client.post(
        "/v1/reviews/run-due", json={"as_of": "2010-06-20"}, headers=clock
    )
    assert again.json()["items"] == []
    assert len(await outbox_events_of(service.app, ReviewDue)) == 1
    listed = await service.client.get(
        "/v1/reviews?status=due&person_id=p-1", headers=service.as_("care_manager")
    )
    assert [r["status"] for r in listed.json()["items"]] == ["due"]


async def test_only_the_clock_roles_run_due_reviews(service: Service) -> None:
    r = await service.client.post(
        "/v1/reviews/run-due", json={"as_of": "2010-06-14"}, headers=service.as_("care_manager")
    )
    assert r.status_code == 403


async def test_completing_a_review_schedules_the_next_annual_review(service: Service) -> None:
    await signed_off(service)
    [first] = (await service.client.get("/v1/reviews", headers=service.as_("care_manager"))).json()[
        "items"
    ]
    r = await service.client.post(
        f"/v1/reviews/{first['review_id']}/complete",
        json={"outcome": "no_change", "completed_on": "2010-06-15", "notes": "All well"},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_review"]["kind"] == "annual"
    # seed 004 Councils D, E: then annually (policy: every 12 months)
    assert r.json()["next_review"]["due_on"] == "2011-06-15"
    [completed] = await outbox_events_of(service.app, ReviewCompleted)
    assert completed.completed_by == "care_manager:care_manager-1"
    scheduled = await outbox_events_of(service.app, ReviewScheduled)
    kinds = [(e.kind, e.due_on) for e in scheduled]
    assert kinds == [("first", date(2010, 6, 14)), ("annual", date(2011, 6, 15))]
    assert scheduled[-1].scheduled_by == "care_manager:care_manager-1"  # who completed it
    again = await service.client.post(
        f"/v1/reviews/{first['review_id']}/complete",
        json={"outcome": "no_change", "completed_on": "2010-06-16"},
        headers=service.as_("care_manager"),
    )
    assert again.status_code == 409


async def test_a_review_that_revises_the_plan_reopens_it_for_sign_off_again(
    service: Service,
) -> None:
    plan_id = await signed_off(service)
    [first] = (await service.client.get("/v1/reviews", headers=service.as_("care_manager"))).json()[
        "items"
    ]
    r = await service.client.post(
        f"/v1/reviews/{first['review_id']}/complete",
        json={"outcome": "revise_plan", "completed_on": "2010-06-15"},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 200
    plan = (await service.client.get(f"/v1/plans/{plan_id}", headers=service.as_("panel"))).json()
    assert (plan["status"], plan["plan_version"]) == ("draft", 2)
    r = await service.client.post(
        f"/v1/plans/{plan_id}/submit", json={}, headers=service.as_("care_manager")
    )
    assert r.status_code == 200
    assert (await sign_off(service, plan_id, "team_manager", on="2010-06-16")).status_code == 200
    versions = [e.plan_version for e in await outbox_events_of(service.app, PlanSignedOff)]
    assert versions == [1, 2]


async def test_an_unscheduled_review_is_scheduled_on_request(service: Service) -> None:
    # seed 003 step 7: "events in people's lives can dictate unscheduled reviews"
    plan_id = await signed_off(service)
    r = await service.client.post(
        "/v1/reviews",
        json={"plan_id": plan_id, "due_on": "2010-05-20", "reason": "Carer taken ill"},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 201 and r.json()["kind"] == "unscheduled"
    scheduled = await outbox_events_of(service.app, ReviewScheduled)
    assert scheduled[-1].kind == "unscheduled" and scheduled[-1].reason == "Carer taken ill"
    assert scheduled[-1].scheduled_by == "care_manager:care_manager-1"


async def test_a_review_of_a_plan_never_signed_off_is_refused(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await service.client.post(
        "/v1/reviews",
        json={"plan_id": plan["plan_id"], "due_on": "2010-05-20", "reason": "Check"},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 409
    assert await outbox_events_of(service.app, ReviewScheduled) == []


async def test_the_api_describes_itself(service: Service) -> None:
    r = await service.client.get("/openapi.json")
    assert r.status_code == 200
    assert "/v1/plans/{plan_id}/sign-off" in r.json()["paths"]


async def test_a_fractional_expected_version_is_refused(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan['plan_id']}/submit",
        json={"expected_version": 1.5},
        headers=service.as_("care_manager"),
    )
    assert r.status_code == 422 and "expected_version" in r.text


async def test_submit_without_a_body_uses_no_version_check(service: Service) -> None:
    budget = await budget_for(service, "p-1", 25_000)
    plan = await create(service, plan_body(budget))
    r = await service.client.post(
        f"/v1/plans/{plan['plan_id']}/submit", headers=service.as_("care_manager")
    )
    assert r.status_code == 200 and r.json()["status"] == "submitted"


# --- bulk conversion ----------------------------------------------------------------------


async def test_a_conversion_row_naming_another_councils_budget_is_pending_like_an_unknown_one(
    service: Service,
) -> None:
    """Another council's budget answers as one not yet arrived: a different answer would
    tell the caller that the other council holds it."""
    theirs = await budget_for(service, "p-1", 25_000, council="council_a")
    unknown = issued(validated("p-2"), 25_000)
    rows = [
        {"ref": "conv-theirs", "plan": plan_body(theirs), "sign_off_on": SIGN_OFF_DAY},
        {"ref": "conv-unknown", "plan": plan_body(unknown), "sign_off_on": SIGN_OFF_DAY},
    ]
    r = await service.client.post(
        "/v1/conversions/plans", json={"rows": rows}, headers=service.as_("team_manager")
    )
    assert r.status_code == 200, r.text
    theirs_row, unknown_row = r.json()["rows"]
    assert theirs_row["outcome"] == unknown_row["outcome"] == "pending"
    assert theirs_row["detail"] == unknown_row["detail"]
    assert await plans_of(service) == []
    assert await plans_of(service, "council_a") == []


# --- changes of circumstances and direct payments -------------------------------------------


async def change(service: Service, role: str = "care_manager", **body: Any) -> httpx.Response:
    return await service.client.post(
        "/v1/changes-of-circumstances", json=body, headers=service.as_(role)
    )


async def test_a_hospital_admission_books_an_unscheduled_review_by_the_policys_days(
    service: Service,
) -> None:
    # seed 003 step 7: "events in people's lives can dictate unscheduled reviews"
    plan_id = await signed_off(service)
    happened = clock.today() - timedelta(days=3)
    r = await change(
        service, plan_id=plan_id, change="hospital_admission", happened_on=happened.isoformat()
    )
    assert r.status_code == 201, r.text
    review = r.json()
    assert (review["kind"], review["trigger"]) == ("unscheduled", "hospital_admission")
    # Lancashire's reviews.unscheduled.within_days: 14 days after a hospital admission
    assert review["due_on"] == (happened + timedelta(days=14)).isoformat()
    assert review["policy_version"] == "lancashire/2009.1"
    [scheduled] = [e for e in await outbox_events_of(service.app, ReviewScheduled) if e.trigger]
    assert (scheduled.happened_on, scheduled.scheduled_by) == (
        happened,
        "care_manager:care_manager-1",
    )


async def test_another_change_must_say_what_changed(service: Service) -> None:
    plan_id = await signed_off(service)
    today = clock.today().isoformat()
    r = await change(service, plan_id=plan_id, change="other", happened_on=today)
    assert r.status_code == 422 and "say what changed" in r.json()["detail"]
    r = await change(
        service, plan_id=plan_id, change="other", happened_on=today, details="Moved house"
    )
    assert r.status_code == 201 and r.json()["reason"].endswith(": Moved house")


@pytest.mark.parametrize(
    "happened_on",
    [
        "tomorrow",  # ahead: it has not happened yet
        "2001-01-01",  # older than a year: a reassessment's, not a change to record now
        "yesterday",  # not a date
    ],
)
async def test_a_change_is_dated_within_the_year_up_to_today(
    service: Service, happened_on: str
) -> None:
    if happened_on == "tomorrow":
        happened_on = (clock.today() + timedelta(days=1)).isoformat()
    plan_id = await signed_off(service)
    r = await change(service, plan_id=plan_id, change="carer_stopped", happened_on=happened_on)
    assert r.status_code == 422
    assert "YYYY-MM-DD" in r.text


async def test_a_surplus_is_not_a_change_a_case_worker_records(service: Service) -> None:
    plan_id = await signed_off(service)
    today = clock.today().isoformat()
    r = await change(service, plan_id=plan_id, change="surplus_found", happened_on=today)
    assert r.status_code == 422


async def test_finance_may_not_record_a_change_of_circumstances(service: Service) -> None:
    plan_id = await signed_off(service)
    today = clock.today().isoformat()
    r = await change(service, "finance", plan_id=plan_id, change="carer_stopped", happened_on=today)
    assert r.status_code == 403


async def test_a_direct_payment_set_up_in_payments_books_its_review_in_planning(
    service: Service,
) -> None:
    plan_id = await signed_off(service)
    setup = DeploymentSetUp(
        person_id="p-1",
        council="lancashire",
        deployment_id=uuid.uuid4(),
        plan_id=uuid.UUID(plan_id),
        parts=[DeploymentPart(option=DeploymentOption.DIRECT_PAYMENT, annual_pence=1_040_000)],
        gross_annual_pence=1_040_000,
        contribution_annual_pence=0,
        net_annual_pence=1_040_000,
        audit_tier="light_touch",
        policy_version="lancashire/2009.1",
    )
    envelope = Envelope(event=setup)
    await deliver(service.app, envelope)
    await deliver(service.app, envelope)  # redelivered: applied once
    listed = await service.client.get(
        "/v1/reviews?person_id=p-1", headers=service.as_("care_manager")
    )
    direct = [r for r in listed.json()["items"] if r["kind"] == "direct_payment"]
    # Reg. 7(1)(a): within the first 6 months of the direct payment
    assert [r["due_on"] for r in direct] == [add_months(envelope.time.date(), 6).isoformat()]
    assert direct[0]["deployment_id"] == str(setup.deployment_id)
