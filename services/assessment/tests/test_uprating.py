"""The April uprating: a council adopts a policy version with new charging figures from a
date, and every person's latest full financial assessment is recalculated under them from
that date, as a new FinancialAssessmentCompleted; the earlier one stays as it was.

Figures: Lancashire's (policies/lancashire.yaml), the 2023 to 2024 Minimum Income Guarantee
for a single person of pension credit age, raised by £20 a week in the adopted version.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.events import FinancialAssessmentCompleted, PolicyAdopted
from contracts.policy import load_policy, policy_document
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.policies import adopted_policy, adoption_event
from servicekit.testing import (
    POLICIES_DIR,
    Tokens,
    deliver,
    outbox_events,
    outbox_events_of,
    running,
)
from services.assessment.api import create_app
from services.assessment.settings import Settings
from services.assessment.tests.test_care_act import an_assessment, full, mig
from services.audit.api import create_app as create_audit_app
from services.audit.settings import Settings as AuditSettings

TODAY = datetime(2025, 6, 2, 10, tzinfo=UTC)
APRIL = date(2026, 4, 6)
RAISE = 2_000  # £20 a week more Minimum Income Guarantee


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with clock.using(SettableClock(TODAY)):
        yield


def uprated_policy(*, version: str = "2026.1", raise_by: int = RAISE) -> PolicyAdopted:
    """Lancashire's policy from 6 April 2026, its MIG for pension credit age raised."""
    document: dict[str, Any] = copy.deepcopy(
        policy_document(load_policy(POLICIES_DIR / "lancashire.yaml"))
    )
    if raise_by:
        figure = document["charging"]["minimum_income_guarantee"]["single_pension_credit_age"]
        figure["pence"] += raise_by
        figure["applies_from"] = APRIL.isoformat()
        figure["source"] = "Council decision of 1 March 2026 (uprating)"
    document["version"] = version
    return adoption_event(adopted_policy(document, APRIL), adopted_by="team_manager:tm-1")


async def assessed(
    client: httpx.AsyncClient, care_manager: dict[str, str], finance: dict[str, str], person: str
) -> dict[str, Any]:
    assessment_id = await an_assessment(client, care_manager, person_id=person)
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment", json=full(), headers=finance
    )
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_a_higher_mig_restates_each_persons_charge_lower_from_its_date(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
) -> None:
    first = await assessed(client, care_manager, finance, "P1")
    second = await assessed(client, care_manager, finance, "P2")
    charge = 23_000 + 2_300 - mig()  # state pension + tariff on £20,000 - MIG
    assert first["weekly_charge_pence"] == charge and first["applies_from"] == "2025-06-02"

    await deliver(app, uprated_policy())

    events = await outbox_events_of(app, FinancialAssessmentCompleted)
    before, after = events[:2], events[2:]
    assert [e.model_dump(mode="json") for e in before] == [
        {**first, "council": "lancashire"},
        {**second, "council": "lancashire"},
    ]  # the earlier assessments are unchanged
    assert [(e.person_id, e.uprating_of) for e in after] == [
        ("P1", before[0].financial_assessment_id),
        ("P2", before[1].financial_assessment_id),
    ]
    for uprated in after:
        assert uprated.weekly_charge_pence == charge - RAISE
        assert uprated.applies_from == APRIL and uprated.assessed_on == APRIL
        assert uprated.policy_version == "lancashire/2026.1"
        assert uprated.minimum_income_guarantee_weekly_pence == mig() + RAISE
        assert uprated.capital == before[0].capital and uprated.income_weekly
        labels = {line.label: line for line in uprated.lines}
        mig_line = labels["Less the Minimum Income Guarantee you keep"]
        assert mig_line.weekly_pence == -(mig() + RAISE)
        assert mig_line.source == "Council decision of 1 March 2026 (uprating)"
        assert labels["Your weekly charge"].weekly_pence == charge - RAISE


async def test_a_policy_with_the_same_charging_figures_restates_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
) -> None:
    await assessed(client, care_manager, finance, "P1")
    await deliver(app, uprated_policy(raise_by=0, version="2026.0"))
    assert len(await outbox_events_of(app, FinancialAssessmentCompleted)) == 1


async def test_a_second_uprating_restates_the_first_and_only_the_latest_counts(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
) -> None:
    await assessed(client, care_manager, finance, "P1")
    await deliver(app, uprated_policy())
    await deliver(app, uprated_policy())  # the same adoption delivered again: nothing new
    await deliver(app, uprated_policy(version="2026.2", raise_by=RAISE + 500))
    original, uprated, again = await outbox_events_of(app, FinancialAssessmentCompleted)
    assert uprated.uprating_of == original.financial_assessment_id
    assert again.uprating_of == uprated.financial_assessment_id
    assert again.weekly_charge_pence == original.weekly_charge_pence - RAISE - 500


async def test_deferred_and_light_touch_assessments_are_not_recalculated(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
) -> None:
    assessment_id = await an_assessment(client, care_manager, person_id="P1")
    r = await client.post(
        f"/v1/assessments/{assessment_id}/financial-assessment",
        json={"path": "deferred", "reason": "Waiting for the bank statements"},
        headers=finance,
    )
    assert r.status_code == 201, r.text
    await deliver(app, uprated_policy())
    assert len(await outbox_events_of(app, FinancialAssessmentCompleted)) == 1


async def test_after_erasure_nothing_is_left_to_recalculate(
    data_dir: Path,
    policies_dir: Path,
    care_manager: dict[str, str],
    finance: dict[str, str],
    tokens: Tokens,
) -> None:
    # The erasure is checked as on a day past Lancashire's eight-year retention period.
    settings = Settings(
        data_dir=data_dir, policies_dir=policies_dir, retention_today=date(2035, 6, 3)
    )
    app = create_app(settings)
    async with running(app) as client:
        await assessed(client, care_manager, finance, "P1")
        operations = tokens.headers(Role.OPERATIONS, "lancashire", user_id="ops-1")
        r = await client.post("/v1/people/P1/erasure", headers=operations)
        assert r.status_code == 200, r.text
        await deliver(app, uprated_policy())
        assert len(await outbox_events_of(app, FinancialAssessmentCompleted)) == 1


async def test_an_assessment_made_after_the_uprating_is_adopted_is_restated_from_its_date(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
) -> None:
    # April's figures adopted early (today is June 2025): nobody to restate yet.
    await deliver(app, uprated_policy())
    assert await outbox_events_of(app, FinancialAssessmentCompleted) == []
    made = await assessed(client, care_manager, finance, "P1")
    assert made["weekly_charge_pence"] == 23_000 + 2_300 - mig()  # today's figures
    original, uprated = await outbox_events_of(app, FinancialAssessmentCompleted)
    assert str(original.financial_assessment_id) == made["financial_assessment_id"]
    assert uprated.uprating_of == original.financial_assessment_id
    assert (uprated.applies_from, uprated.policy_version) == (APRIL, "lancashire/2026.1")
    assert uprated.weekly_charge_pence == made["weekly_charge_pence"] - RAISE


async def test_the_audit_timeline_shows_the_uprated_charge_and_its_date(
    client: httpx.AsyncClient,
    app: FastAPI,
    care_manager: dict[str, str],
    finance: dict[str, str],
    tokens: Tokens,
    data_dir: Path,
    policies_dir: Path,
) -> None:
    first = await assessed(client, care_manager, finance, "P1")
    await deliver(app, uprated_policy())
    audit = create_audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(audit) as audit_client:
        for envelope in await outbox_events(app):
            await deliver(audit, envelope)
        auditor = tokens.headers(Role.AUDITOR, "lancashire")
        timeline = await audit_client.get("/v1/people/P1/timeline", headers=auditor)
    uprated = (first["weekly_charge_pence"] - RAISE) / 100
    summaries = [item["summary"] for item in timeline.json()["items"]]
    assert f"Charge uprated under lancashire/2026.1 from 2026-04-06: £{uprated:.2f} a week" in (
        summaries
    ), summaries
