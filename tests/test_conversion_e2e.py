"""Bulk conversion end to end: legacy clients through the four conversion routes and the log.

The five services run as real processes (embedded log + SQLite, and Kafka + PostgreSQL);
`pbj.convert.convert_clients` drives them as `pbj convert FILE` does. Each converted
person must end with the same events as a person walked through one call at a time, a
budget from the same RAS, bad rows refused with their reason and nothing of them written,
and a second run of the same file must change nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from pbj.convert import convert_clients, sample_clients
from pbj.journey import Staff
from pbj.processes import Supervisor
from servicekit.testing import POLICIES_DIR
from services.allocation.domain import BudgetInputs, calculate_budget
from tests.systems import supervised_system

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)
POLICY = BOOK.current("lancashire")

# What a person converted up to payment set-up has in their audit history: the events of
# the ordinary journey up to the scheduled payments (no payment is released yet).
EXPECTED_EVENTS = {
    "assessment-started",
    "assessment-submitted",
    "assessment-validated",
    "budget-issued",
    "plan-submitted",
    "plan-signed-off",
    "review-scheduled",
    "deployment-set-up",
    "agreement-signed",
    "payment-scheduled",
}


system = supervised_system("conversion", "cnv", ready_timeout=180)


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _history_types(
    client: httpx.AsyncClient, system: Supervisor, staff: Staff, person_id: str
) -> set[str]:
    """The person's audit history once audit has caught up with their scheduled payments."""
    url = f"{system.urls()['audit']}/v1/people/{person_id}/history"
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        items = (await _get(client, url, staff(Role.AUDITOR), limit=200))["items"]
        types = {item["type"].split(".")[2] for item in items}
        if types >= EXPECTED_EVENTS or asyncio.get_running_loop().time() > deadline:
            return types
        await asyncio.sleep(0.5)


async def test_clients_convert_to_payment_set_up_with_the_events_of_a_normal_journey(
    system: Supervisor,
) -> None:
    prefix = f"C{uuid.uuid4().hex[:6].upper()}"
    rows = sample_clients(POLICY, 12, prefix=prefix)
    rows[4]["answers"]["domains"] = {"nonsense": 7}  # refused by the questionnaire
    rows[7]["client_group"] = "martians"  # refused by validation
    bad = {rows[4]["person_id"], rows[7]["person_id"]}
    staff = Staff(system.data_dir, "lancashire")
    urls = system.urls()
    async with httpx.AsyncClient(timeout=60) as client:
        report = await convert_clients(client, urls, staff, POLICY, rows, batch=5)
        assert report.converted == 10
        assert set(report.failures) == {rows[4]["ref"], rows[7]["ref"]}
        assert "nonsense" in report.failures[rows[4]["ref"]]
        assert "client_group" in report.failures[rows[7]["ref"]]
        care_manager = staff(Role.CARE_MANAGER)

        for row in rows:
            person = row["person_id"]
            assessments = await _get(
                client, f"{urls['assessment']}/v1/assessments", care_manager, person_id=person
            )
            if person in bad:  # nothing of a refused row is written
                assert assessments["items"] == []
                continue
            assert len(assessments["items"]) == 1
            budgets = (
                await _get(
                    client, f"{urls['allocation']}/v1/budgets", care_manager, person_id=person
                )
            )["items"]
            assert len(budgets) == 1
            budget = await _get(
                client,
                f"{urls['allocation']}/v1/budgets/{budgets[0]['budget_id']}",
                care_manager,
            )
            answers = row["answers"]
            expected = calculate_budget(
                BudgetInputs(
                    client_group=row["client_group"],
                    domain_levels=answers["domains"],
                    significant_informal_support=answers["significant_informal_support"],
                    needs_24_7=answers["needs_24_7"],
                ),
                POLICY,
            )
            assert budget["current_revision"]["weekly_pence"] == expected.weekly_pence
            deployments = (
                await _get(
                    client, f"{urls['payments']}/v1/deployments", care_manager, person_id=person
                )
            )["items"]
            assert len(deployments) == 1
            assert deployments[0]["status"] == "active"
            types = await _history_types(client, system, staff, person)
            assert types >= EXPECTED_EVENTS, f"{person}: {EXPECTED_EVENTS - types} missing"

        # The same file again: every row comes back as done before, nothing new is written.
        first_history = await _get(
            client,
            f"{urls['audit']}/v1/people/{rows[0]['person_id']}/history",
            staff(Role.AUDITOR),
            limit=200,
        )
        again = await convert_clients(client, urls, staff, POLICY, rows, batch=5)
        assert again.converted == 10
        assert set(again.failures) == set(report.failures)
        await asyncio.sleep(2)
        assert (
            await _get(
                client,
                f"{urls['audit']}/v1/people/{rows[0]['person_id']}/history",
                staff(Role.AUDITOR),
                limit=200,
            )
        )["items"] == first_history["items"]
        assessments = await _get(
            client,
            f"{urls['assessment']}/v1/assessments",
            care_manager,
            person_id=rows[0]["person_id"],
        )
        assert len(assessments["items"]) == 1


async def test_each_conversion_step_needs_a_role_allowed_to_take_it(system: Supervisor) -> None:
    prefix = f"R{uuid.uuid4().hex[:6].upper()}"
    (row,) = sample_clients(POLICY, 1, prefix=prefix)
    staff = Staff(system.data_dir, "lancashire")
    urls = system.urls()
    assessment_row = {
        "ref": row["ref"],
        "start": {
            k: row[k]
            for k in (
                "person_id",
                "client_group",
                "completed_by",
                "team",
                "key_worker_id",
                "age_band",
                "community_based",
            )
        },
        "answers": row["answers"],
        "validation": row["validation"],
    }
    async with httpx.AsyncClient(timeout=60) as client:
        # Finance may not assess: the whole request is refused, nothing is written.
        refused = await client.post(
            f"{urls['assessment']}/v1/conversions/assessments",
            json={"rows": [assessment_row]},
            headers=staff(Role.FINANCE),
        )
        assert refused.status_code == 403
        done = await client.post(
            f"{urls['assessment']}/v1/conversions/assessments",
            json={"rows": [assessment_row]},
            headers=staff(Role.CARE_MANAGER),
        )
        assert done.json()["rows"][0]["outcome"] == "done", done.text

        async def agree(role: Role) -> dict[str, Any]:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                response = await client.post(
                    f"{urls['allocation']}/v1/conversions/budget-agreements",
                    json={"rows": [{"ref": row["ref"], "person_id": row["person_id"]}]},
                    headers=staff(role),
                )
                assert response.status_code == 200, response.text
                outcome: dict[str, Any] = response.json()["rows"][0]
                if outcome["outcome"] != "pending":
                    return outcome
                assert asyncio.get_running_loop().time() < deadline, "budget never calculated"
                await asyncio.sleep(0.3)

        # Lancashire lets team managers and the panel agree budgets, not care managers.
        by_care_manager = await agree(Role.CARE_MANAGER)
        assert by_care_manager["outcome"] == "rejected"
        assert by_care_manager["status"] == 403
        by_team_manager = await agree(Role.TEAM_MANAGER)
        assert by_team_manager["outcome"] == "done", by_team_manager


async def test_a_legacy_plan_keeps_its_sign_off_date_and_a_plan_without_one_the_runs_day(
    system: Supervisor,
) -> None:
    """A file dates its agreements; the plans they fund must not be signed off after them.
    A legacy plan's own sign-off date is kept; without one, every plan of the run is signed
    off on the day the run began, however long it runs (a run past midnight once signed
    off half its plans a day after their agreements, and payments refused those)."""
    prefix = f"D{uuid.uuid4().hex[:6].upper()}"
    today = datetime.now(UTC).date()
    signed_off, signed = today - timedelta(days=40), today - timedelta(days=30)
    kept, dated_before_its_plan, of_the_run = sample_clients(POLICY, 3, prefix=prefix)
    kept["plan"]["signed_off_on"] = signed_off.isoformat()
    kept["payment"]["signed_on"] = signed.isoformat()
    dated_before_its_plan["payment"]["signed_on"] = signed.isoformat()
    staff = Staff(system.data_dir, "lancashire")
    urls = system.urls()
    async with httpx.AsyncClient(timeout=60) as client:
        report = await convert_clients(
            client, urls, staff, POLICY, [kept, dated_before_its_plan, of_the_run], batch=5
        )
        assert report.converted == 2
        assert list(report.failures) == [dated_before_its_plan["ref"]]
        assert "before the plan was signed off" in report.failures[dated_before_its_plan["ref"]]
        care_manager = staff(Role.CARE_MANAGER)
        for row, on in ((kept, signed_off), (of_the_run, today)):
            plans = await _get(
                client, f"{urls['planning']}/v1/plans", care_manager, person_id=row["person_id"]
            )
            plan_id = plans["items"][0]["plan_id"]
            plan = await _get(client, f"{urls['planning']}/v1/plans/{plan_id}", care_manager)
            assert plan["signed_off"]["on"] == on.isoformat()
