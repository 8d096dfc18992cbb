"""The Care Act steps end to end: an eligibility determination and a financial assessment
made over HTTP reach the audit through the event log, in the person's history and
timeline; a budget only for eligible needs (or an urgent one, with its reason); a policy
adopted with a higher Minimum Income Guarantee restating the charge from its date; and the
assessed charge reaching payments, which recalculates the contribution and issues the
personal budget statement the person challenges. The five services run as real processes,
on SQLite and the embedded log, and on PostgreSQL and Kafka (docs/charging.md)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from contracts.policy import Policy, load_policy, policy_document
from contracts.vocabulary import Role
from pbj.idp import mint_for
from pbj.journey import (
    ELIGIBLE_NEEDS,
    JourneyResult,
    Staff,
    demo_answers,
    load_policies,
    walk_journey,
)
from pbj.processes import Supervisor
from servicekit.testing import POLICIES_DIR
from tests.systems import supervised_system

T = TypeVar("T")

pytestmark = pytest.mark.e2e

system = supervised_system("careact", "careact")


def history_types(
    client: httpx.Client, audit: str, auditor: dict[str, str], person: str = "CA1"
) -> list[str]:
    return [item["type"] for item in history(client, audit, auditor, person)]


def history(
    client: httpx.Client, audit: str, auditor: dict[str, str], person: str
) -> list[dict[str, Any]]:
    r = client.get(f"{audit}/v1/people/{person}/history", headers=auditor)
    return list(r.json()["items"]) if r.status_code == 200 else []


def eventually(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


def test_eligibility_and_the_financial_assessment_reach_the_persons_audit_history(
    system: Supervisor,
) -> None:
    urls = system.urls()
    staff = Staff(system.data_dir, "lancashire")
    care_manager, finance, auditor = (
        staff(Role.CARE_MANAGER),
        staff(Role.FINANCE),
        staff(Role.AUDITOR),
    )
    with httpx.Client(timeout=30) as client:
        started = client.post(
            f"{urls['assessment']}/v1/assessments",
            headers=care_manager,
            json={
                "person_id": "CA1",
                "client_group": "older_people",
                "completed_by": "practitioner",
                "team": "North",
                "key_worker_id": "kw-1",
                "age_band": "75-84",
            },
        )
        assert started.status_code == 201, started.text
        url = f"{urls['assessment']}/v1/assessments/{started.json()['assessment_id']}"
        eligible = client.post(
            f"{url}/eligibility",
            headers=care_manager,
            json={
                "needs_from_impairment_or_illness": True,
                "outcomes": [
                    {"outcome": "maintaining_personal_hygiene", "difficulties": ["cannot"]},
                    {
                        "outcome": "using_the_home_safely",
                        "difficulties": ["endangers_health_or_safety"],
                    },
                ],
                "significant_impact_on_wellbeing": True,
            },
        )
        assert eligible.status_code == 201 and eligible.json()["eligible"], eligible.text
        body: dict[str, Any] = {
            "path": "full",
            "cost_of_support_weekly_pence": 46_500,
            "capital": [{"kind": "savings", "pence": 2_000_000}],  # £23 a week tariff income
            "income_weekly": [{"kind": "state_pension", "weekly_pence": 23_000}],
            "mig_circumstance": "single_pension_credit_age",
        }
        assessed = client.post(f"{url}/financial-assessment", headers=finance, json=body)
        assert assessed.status_code == 201, assessed.text
        assert assessed.json()["tariff_income_weekly_pence"] == 2_300

        wanted = {
            "pb.assessment.eligibility-determined.v1",
            "pb.assessment.financial-assessment-completed.v2",
        }
        deadline = time.monotonic() + 60
        while not wanted <= set(history_types(client, urls["audit"], auditor)):
            assert time.monotonic() < deadline, "the audit never received both events"
            time.sleep(0.5)
        timeline = client.get(f"{urls['audit']}/v1/people/CA1/timeline", headers=auditor)
    charge = assessed.json()["weekly_charge_pence"]
    summaries = [item["summary"] for item in timeline.json()["items"]]
    assert any("eligible" in line and "not eligible" not in line for line in summaries)
    assert any(f"£{charge // 100}.{charge % 100:02d} a week" in line for line in summaries)


def wait_for(what: str, attempt: Callable[[], T | None], timeout: float = 60) -> T:
    """Retry until the other service has applied the event (it arrives through the log)."""
    deadline = time.monotonic() + timeout
    while (found := attempt()) is None:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return found


def test_a_financial_assessment_sets_the_contribution_a_statement_and_its_challenge(
    system: Supervisor,
) -> None:
    """A person paid from today has their financial assessment: payments recalculates the
    contribution, issues the personal budget statement, the person challenges it, and the
    challenge is in the team manager's queue and in the person's audit timeline."""
    urls = system.urls()
    staff = Staff(system.data_dir, "lancashire")
    policy = load_policies(POLICIES_DIR).current("lancashire")
    journey = asyncio.run(_walk(urls, staff, policy))
    person = journey.person_id
    finance, auditor, team_manager = (
        staff(Role.FINANCE),
        staff(Role.AUDITOR),
        staff(Role.TEAM_MANAGER),
    )
    person_token = mint_for(
        system.data_dir, user_id=person, role=Role.PERSON, council="lancashire", person_id=person
    )
    as_person = {"Authorization": f"Bearer {person_token}"}
    statements_url = f"{urls['payments']}/v1/people/{person}/budget-statements"
    with httpx.Client(timeout=30) as client:
        first = client.get(statements_url, headers=as_person)
        assert first.status_code == 200, first.text
        [arranged] = first.json()["items"]
        assert arranged["person_pays_annual_pence"] == 0
        assessed = client.post(
            f"{urls['assessment']}/v1/assessments/{journey.assessment_id}/financial-assessment",
            headers=finance,
            json={
                "path": "light_touch",
                "light_touch_basis": "nominal_charge",
                "nominal_charge_weekly_pence": 1_000,
                "reason": "Pension and savings well known to the council",
                "cost_of_support_weekly_pence": arranged["total_weekly_pence"],
            },
        )
        assert assessed.status_code == 201, assessed.text

        def recalculated() -> dict[str, Any] | None:
            items = client.get(statements_url, headers=as_person).json()["items"]
            return items[0] if items[0]["person_pays_weekly_pence"] == 1_000 else None

        statement = wait_for("the statement after the financial assessment", recalculated)
        assert "You pay £10.00 a week" in statement["text"]
        deployment = client.get(
            f"{urls['payments']}/v1/deployments/{journey.deployment_id}", headers=finance
        ).json()
        assert deployment["contribution_annual_pence"] == 1_000 * 52

        challenged = client.post(
            f"{urls['payments']}/v1/budget-statements/{statement['statement_id']}/challenges",
            headers=as_person,
            json={"reason": "Nothing is left for the evening visits I need"},
        )
        assert challenged.status_code == 201, challenged.text
        queue = client.get(f"{urls['payments']}/v1/statement-challenges", headers=team_manager)
        assert challenged.json()["challenge_id"] in [
            c["challenge_id"] for c in queue.json()["items"]
        ]

        def in_timeline() -> list[str] | None:
            r = client.get(f"{urls['audit']}/v1/people/{person}/timeline", headers=auditor)
            lines = [item["summary"] for item in r.json()["items"]] if r.status_code == 200 else []
            return lines if any("Budget statement challenged" in s for s in lines) else None

        summaries = wait_for("the challenge in the audit timeline", in_timeline)
        assert any(s.startswith("Contribution recalculated") for s in summaries)
        assert any("Personal budget statement issued" in s and "£10.00" in s for s in summaries)

        # The team manager upholds it: planning books a review of the person's plan.
        upheld = client.post(
            f"{urls['payments']}/v1/statement-challenges/"
            f"{challenged.json()['challenge_id']}/answer",
            headers=team_manager,
            json={"outcome": "upheld", "response": "The evening visits were not costed"},
        )
        assert upheld.status_code == 200, upheld.text

        def review_booked() -> dict[str, Any] | None:
            r = client.get(
                f"{urls['planning']}/v1/reviews", params={"person_id": person}, headers=team_manager
            )
            return next(
                (
                    item
                    for item in r.json()["items"]
                    if item["kind"] == "unscheduled" and "evening visits" in (item["reason"] or "")
                ),
                None,
            )

        review = wait_for("planning books the review the upheld challenge asks for", review_booked)
    assert review["trigger"] == "other"
    assert review["plan_id"] == str(journey.plan_id)


async def _walk(urls: dict[str, str], staff: Staff, policy: Policy) -> JourneyResult:
    async with httpx.AsyncClient(timeout=30) as client:
        return await walk_journey(client, urls, staff, policy)


def test_a_budget_only_for_eligible_needs_and_an_uprating_restates_the_charge(
    system: Supervisor,
) -> None:
    urls = system.urls()
    staff = Staff(system.data_dir, "lancashire")
    care_manager, finance, auditor, operations = (
        staff(Role.CARE_MANAGER),
        staff(Role.FINANCE),
        staff(Role.AUDITOR),
        staff(Role.OPERATIONS),
    )
    lancashire = load_policy(POLICIES_DIR / "lancashire.yaml")
    with httpx.Client(timeout=30) as client:
        started = client.post(
            f"{urls['assessment']}/v1/assessments",
            headers=care_manager,
            json={
                "person_id": "CA2",
                "client_group": "older_people",
                "completed_by": "practitioner",
                "team": "North",
                "key_worker_id": "kw-1",
                "age_band": "75-84",
            },
        )
        assert started.status_code == 201, started.text
        url = f"{urls['assessment']}/v1/assessments/{started.json()['assessment_id']}"
        answers = {
            "domains": demo_answers(lancashire, 3),
            "significant_informal_support": False,
            "needs_24_7": False,
        }
        assert client.put(f"{url}/answers", headers=care_manager, json=answers).is_success
        assert client.post(f"{url}/submit", headers=care_manager, json={}).is_success

        # Needs found not eligible: no validation, so no budget.
        one_outcome = {**ELIGIBLE_NEEDS, "outcomes": ELIGIBLE_NEEDS["outcomes"][:1]}
        assert (
            client.post(f"{url}/eligibility", headers=care_manager, json=one_outcome).json()[
                "eligible"
            ]
            is False
        )
        refused = client.post(f"{url}/validate", headers=care_manager, json={})
        assert refused.status_code == 409 and refused.json()["error"] == "NeedsNotEligible"

        # An urgent need goes ahead, and says why.
        why = "Carer taken into hospital; support cannot wait for a reassessment"
        urgent = {"going_ahead_without_eligibility": {"reason": "urgent_need", "explanation": why}}
        validated = client.post(f"{url}/validate", headers=care_manager, json=urgent)
        assert validated.status_code == 200, validated.text
        budgets = f"{urls['allocation']}/v1/budgets"
        eventually(
            "the budget",
            lambda: client.get(budgets, params={"person_id": "CA2"}, headers=care_manager).json()[
                "items"
            ],
        )
        [seen] = eventually(
            "the validation in the audit",
            lambda: [
                item
                for item in history(client, urls["audit"], auditor, "CA2")
                if item["type"] == "pb.assessment.assessment-validated.v2"
            ],
        )
        assert seen["data"]["eligibility"]["basis"] == "urgent_need"
        assert seen["data"]["eligibility"]["explanation"] == why

        # The financial assessment, then a policy with a higher MIG from today.
        body: dict[str, Any] = {
            "path": "full",
            "cost_of_support_weekly_pence": 46_500,
            "capital": [{"kind": "savings", "pence": 2_000_000}],
            "income_weekly": [{"kind": "state_pension", "weekly_pence": 23_000}],
            "mig_circumstance": "single_pension_credit_age",
        }
        assessed = client.post(f"{url}/financial-assessment", headers=finance, json=body)
        assert assessed.status_code == 201, assessed.text
        today = datetime.now(UTC).date()
        document = copy.deepcopy(policy_document(lancashire))
        figure = document["charging"]["minimum_income_guarantee"]["single_pension_credit_age"]
        figure.update(pence=figure["pence"] + 2_000, applies_from=today.isoformat())
        document["version"] = "2090.1"
        adopted = client.post(
            f"{urls['allocation']}/v1/policies",
            headers=operations,
            json={"policy": document, "effective_from": today.isoformat()},
        )
        assert adopted.status_code == 201, adopted.text

        def restated() -> list[dict[str, Any]]:
            return [
                item["data"]
                for item in history(client, urls["audit"], auditor, "CA2")
                if item["type"] == "pb.assessment.financial-assessment-completed.v2"
                and item["data"].get("uprating_of")
            ]

        [uprated] = eventually("the uprated charge in the audit", restated)
    original = assessed.json()
    assert uprated["uprating_of"] == original["financial_assessment_id"]
    assert uprated["weekly_charge_pence"] == original["weekly_charge_pence"] - 2_000
    assert uprated["applies_from"] == today.isoformat()
    assert uprated["policy_version"] == "lancashire/2090.1"
