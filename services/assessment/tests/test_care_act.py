"""The Care Act routes over HTTP: the eligibility determination and the financial
assessment, each recorded as an event the audit keeps in the person's history.

Figures are the regulations' own (docs/charging.md): capital limits £14,250 and £23,250,
tariff income £1 a week for every £250 or part of £250 between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.events import EligibilityDetermined, FinancialAssessmentCompleted
from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import (
    POLICIES_DIR,
    Tokens,
    deliver,
    outbox_events,
    outbox_events_of,
    running,
    runtime_of,
)
from services.audit.api import create_app as create_audit_app
from services.audit.settings import Settings as AuditSettings

TODAY = datetime(2025, 6, 2, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with clock.using(SettableClock(TODAY)):
        yield


async def an_assessment(
    client: httpx.AsyncClient, headers: dict[str, str], person_id: str = "P123"
) -> str:
    body = {
        "person_id": person_id,
        "client_group": "older_people",
        "completed_by": "practitioner",
        "team": "Preston OP team",
        "key_worker_id": "kw-7",
        "age_band": "75-84",
    }
    r = await client.post("/v1/assessments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["assessment_id"])


def full(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "path": "full",
        "cost_of_support_weekly_pence": 30_000,
        "capital": [{"kind": "savings", "pence": 2_000_000}],
        "income_weekly": [{"kind": "state_pension", "weekly_pence": 23_000}],
        "mig_circumstance": "single_pension_credit_age",
    }
    body.update(changes)
    return body


def mig(circumstance: str = "single_pension_credit_age") -> int:
    policy = PolicyBook.from_directory(POLICIES_DIR).current("lancashire", TODAY.date())
    assert policy.charging is not None
    return policy.charging.minimum_income_guarantee[circumstance].pence


# --- eligibility -----------------------------------------------------------------------------


async def test_two_outcomes_and_a_significant_impact_are_recorded_as_eligible(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/eligibility",
        json={
            "needs_from_impairment_or_illness": True,
            "outcomes": [
                {
                    "outcome": "managing_and_maintaining_nutrition",
                    "difficulties": ["only_with_assistance"],
                },
                {
                    "outcome": "maintaining_personal_hygiene",
                    "difficulties": ["significant_pain_distress_or_anxiety"],
                },
            ],
            "significant_impact_on_wellbeing": True,
        },
        headers=care_manager,
    )
    assert r.status_code == 201, r.text
    assert r.json()["eligible"] is True
    [event] = await outbox_events_of(app, EligibilityDetermined)
    assert event.eligible and event.person_id == "P123" and event.outcomes_needed == 2
    assert event.determined_by == "care_manager:cm-1"
    assert event.policy_version == "lancashire/2009.1"


async def test_one_outcome_is_recorded_as_not_eligible_with_the_reason(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/eligibility",
        json={
            "needs_from_impairment_or_illness": True,
            "outcomes": [{"outcome": "managing_toilet_needs", "difficulties": ["cannot"]}],
            "significant_impact_on_wellbeing": True,
        },
        headers=care_manager,
    )
    assert r.status_code == 201, r.text
    assert r.json()["eligible"] is False
    assert any("at least 2" in reason for reason in r.json()["reasons"])


async def test_an_outcome_named_twice_is_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    twice = {"outcome": "managing_toilet_needs", "difficulties": ["cannot"]}
    r = await client.post(
        f"/v1/assessments/{assessment_id}/eligibility",
        json={
            "needs_from_impairment_or_illness": True,
            "outcomes": [twice, twice],
            "significant_impact_on_wellbeing": True,
        },
        headers=care_manager,
    )
    assert r.status_code == 422 and r.json()["error"] == "OutcomeNamedTwice"


async def test_finance_may_not_determine_eligibility(
    client: httpx.AsyncClient, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/eligibility",
        json={"needs_from_impairment_or_illness": True, "significant_impact_on_wellbeing": True},
        headers=finance,
    )
    assert r.status_code == 403


async def test_before_the_care_act_there_are_no_eligibility_criteria_to_apply(
    client: httpx.AsyncClient, care_manager: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    with clock.using(SettableClock(datetime(2014, 6, 2, tzinfo=UTC))):
        r = await client.post(
            f"/v1/assessments/{assessment_id}/eligibility",
            json={
                "needs_from_impairment_or_illness": True,
                "significant_impact_on_wellbeing": True,
            },
            headers=care_manager,
        )
    assert r.status_code == 409 and r.json()["error"] == "NoEligibilityCriteria"


# --- the financial assessment ----------------------------------------------------------------


async def test_twenty_thousand_pounds_of_savings_add_23_pounds_a_week(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment", json=full(), headers=finance
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["outcome"] == "assessed"
    assert out["tariff_income_weekly_pence"] == 2_300
    assert out["weekly_charge_pence"] == 23_000 + 2_300 - mig()
    [event] = await outbox_events_of(app, FinancialAssessmentCompleted)
    assert event.weekly_charge_pence == out["weekly_charge_pence"]
    assert event.assessed_by == "finance:fo-1"
    assert event.figures_to_confirm  # the MIG still to be checked against the 2025 rates
    # What the guarantee counted, so the what-if can recalculate it under other figures.
    assert (event.mig_children, event.mig_premiums) == (0, [])


@pytest.mark.parametrize(("capital", "tariff"), [(1_425_000, 0), (1_425_001, 100)])
async def test_at_the_lower_limit_no_tariff_and_a_penny_over_a_pound_a_week(
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    finance: dict[str, str],
    capital: int,
    tariff: int,
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json=full(capital=[{"kind": "savings", "pence": capital}]),
        headers=finance,
    )
    assert r.status_code == 201, r.text
    assert r.json()["tariff_income_weekly_pence"] == tariff


async def test_capital_at_the_upper_limit_pays_the_full_cost_though_the_home_is_disregarded(
    client: httpx.AsyncClient, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json=full(
            capital=[
                {"kind": "savings", "pence": 2_325_000},
                {"kind": "main_home", "pence": 25_000_000},
            ]
        ),
        headers=finance,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["outcome"] == "full_cost_payer"
    assert out["capital_counted_pence"] == 2_325_000
    assert out["weekly_charge_pence"] == 30_000


async def test_income_below_the_minimum_income_guarantee_is_charged_nothing(
    client: httpx.AsyncClient, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json=full(
            capital=[],
            income_weekly=[
                {"kind": "state_pension", "weekly_pence": 10_000},
                {"kind": "earnings", "weekly_pence": 50_000},
            ],
        ),
        headers=finance,
    )
    assert r.status_code == 201, r.text
    assert r.json()["income_counted_weekly_pence"] == 10_000  # earnings are disregarded
    assert r.json()["weekly_charge_pence"] == 0


async def test_a_deferred_assessment_is_recorded_with_its_reason_and_no_charge(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    url = f"/v1/assessments/{assessment_id}/financial-assessment"
    without = await client.post(url, json={"path": "deferred"}, headers=finance)
    assert without.status_code == 422 and without.json()["error"] == "FinancialReasonRequired"
    r = await client.post(
        url,
        json={"path": "deferred", "reason": "Waiting for the pension statement"},
        headers=finance,
    )
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "deferred" and r.json()["weekly_charge_pence"] is None
    [event] = await outbox_events_of(app, FinancialAssessmentCompleted)
    assert event.reason == "Waiting for the pension statement"


async def test_a_light_touch_assessment_on_benefits_charges_nothing(
    client: httpx.AsyncClient, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json={
            "path": "light_touch",
            "cost_of_support_weekly_pence": 30_000,
            "light_touch_basis": "benefits_show_no_contribution",
            "reason": "Receives only Pension Credit guarantee credit",
        },
        headers=finance,
    )
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "light_touch" and r.json()["weekly_charge_pence"] == 0


async def test_an_income_the_policy_does_not_name_is_refused_and_nothing_recorded(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json=full(income_weekly=[{"kind": "lottery_win", "weekly_pence": 100}]),
        headers=finance,
    )
    assert r.status_code == 422 and r.json()["error"] == "UnknownIncomeKind"
    assert "lottery_win" in r.json()["detail"]
    assert await outbox_events_of(app, FinancialAssessmentCompleted) == []


async def test_another_councils_assessment_is_not_found(
    client: httpx.AsyncClient, care_manager: dict[str, str], tokens: Tokens
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    other = tokens.headers(Role.FINANCE, "council_a", user_id="fo-9")
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment", json=full(), headers=other
    )
    assert r.status_code == 404


async def test_a_person_may_not_record_their_own_financial_assessment(
    client: httpx.AsyncClient, care_manager: dict[str, str], tokens: Tokens
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    person = tokens.headers(Role.PERSON, "lancashire", user_id="u-p123", person_id="P123")
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment", json=full(), headers=person
    )
    assert r.status_code == 403


# --- the audit keeps both in the person's history ----------------------------------------------


async def test_the_audit_keeps_both_in_the_persons_history(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
    tokens: Tokens,
    data_dir: Path,
    policies_dir: Path,
) -> None:
    assessment_id = await an_assessment(client, care_manager)
    await client.post(
        f"/v1/assessments/{assessment_id}/eligibility",
        json={"needs_from_impairment_or_illness": True, "significant_impact_on_wellbeing": True},
        headers=care_manager,
    )
    await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment", json=full(), headers=finance
    )
    audit = create_audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(audit) as audit_client:
        for envelope in await outbox_events(app):
            await deliver(audit, envelope)
        auditor = tokens.headers(Role.AUDITOR, "lancashire")
        r = await audit_client.get("/v1/people/P123/history", headers=auditor)
        timeline = await audit_client.get("/v1/people/P123/timeline", headers=auditor)
    assert r.status_code == 200, r.text
    types = [item["type"] for item in r.json()["items"]]
    assert "pb.assessment.eligibility-determined.v1" in types
    assert "pb.assessment.financial-assessment-completed.v2" in types
    summaries = [item["summary"] for item in timeline.json()["items"]]
    charge = 23_000 + 2_300 - mig()
    assert any("not eligible" in line for line in summaries)  # no outcomes were named
    assert any(
        line.startswith("Financial assessment (assessed)") and f"£{charge // 100}." in line
        for line in summaries
    ), summaries


async def test_a_financial_assessment_is_never_kept_for_an_idempotent_replay(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str], finance: dict[str, str]
) -> None:
    """Its answer holds the person's finances: a retry with the key runs the route (and its
    rights check) again, and nothing of the answer is stored for a replay."""
    assessment_id = await an_assessment(client, care_manager)
    url = f"/v1/assessments/{assessment_id}/financial-assessment"
    keyed = {**finance, "Idempotency-Key": "k-finances"}
    first = await client.post(url, json=full(), headers=keyed)
    assert first.status_code == 201, first.text
    again = await client.post(url, json=full(), headers=keyed)
    assert "Idempotent-Replayed" not in again.headers
    runtime = runtime_of(app)
    async with runtime.database.sessions() as session:
        kept = (await session.execute(runtime.idempotency.select())).all()
    assert all(b"tariff_income_weekly_pence" not in bytes(row.body or b"") for row in kept)
