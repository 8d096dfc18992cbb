"""The Care Act steps end to end: an eligibility determination and a financial assessment
made over HTTP reach the audit through the event log, in the person's history and
timeline. The five services run as real processes, on SQLite and the embedded log, and on
PostgreSQL and Kafka (docs/charging.md)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from contracts.vocabulary import Role
from pbj.journey import Staff
from pbj.processes import Supervisor
from tests.systems import supervised_system

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
