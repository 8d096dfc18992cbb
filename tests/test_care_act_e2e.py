"""The Care Act steps end to end: an eligibility determination and a financial assessment
made over HTTP reach the audit through the event log, in the person's history and
timeline; the assessed charge reaches payments, which recalculates the contribution and
issues the personal budget statement the person challenges. The five services run as real
processes, on SQLite and the embedded log, and on PostgreSQL and Kafka (docs/charging.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from contracts.policy import Policy
from contracts.vocabulary import Role
from pbj.idp import mint_for
from pbj.journey import JourneyResult, Staff, load_policies, walk_journey
from pbj.processes import Supervisor
from servicekit.testing import POLICIES_DIR
from tests.systems import supervised_system

T = TypeVar("T")

pytestmark = pytest.mark.e2e

system = supervised_system("careact", "careact")


def history_types(client: httpx.Client, audit: str, auditor: dict[str, str]) -> list[str]:
    r = client.get(f"{audit}/v1/people/CA1/history", headers=auditor)
    return [item["type"] for item in r.json()["items"]] if r.status_code == 200 else []


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
