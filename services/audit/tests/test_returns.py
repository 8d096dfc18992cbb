"""Statutory returns from the audit history: the CLD extract for a quarter (produced from
events delivered to the running audit service, then checked by the validator against the
layout's rules), and NI130 / the Lancashire measure as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from contracts import events as ev
from contracts.envelope import Envelope
from servicekit.testing import Tokens, deliver, running
from services.audit.api import create_app
from services.audit.returns import (
    CLD_FIELDS,
    CODE_LISTS,
    Quarter,
    TimedEvent,
    cld_rows,
    validate_cld,
)
from services.audit.settings import Settings
from services.audit.tests.journey import POLICY, Journey, at, envelope

Q3 = "2026-Q3"


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


def financially_assessed(
    journey: Journey,
    when: datetime,
    *,
    capital_pence: int,
    tariff_weekly_pence: int,
    outcome: ev.FinancialAssessmentOutcome = ev.FinancialAssessmentOutcome.ASSESSED,
) -> Envelope:
    """A financial assessment of savings alone; figures as the charging rules set them."""
    charged = outcome in (
        ev.FinancialAssessmentOutcome.ASSESSED,
        ev.FinancialAssessmentOutcome.FULL_COST_PAYER,
    )
    return envelope(
        ev.FinancialAssessmentCompleted(
            person_id=journey.person_id,
            council=journey.council,
            financial_assessment_id=uuid.uuid4(),
            assessment_id=journey.assessment_id,
            outcome=outcome,
            assessed_on=when.date(),
            cost_of_support_weekly_pence=24_000,
            capital=[ev.AssessedAmount(kind="savings", pence=capital_pence, counted=True)],
            capital_counted_pence=capital_pence,
            tariff_income_weekly_pence=tariff_weekly_pence,
            income_weekly=[],
            income_counted_weekly_pence=0,
            mig_circumstance="single_25_to_pension_credit_age",
            minimum_income_guarantee_weekly_pence=10_365,
            housing_costs_weekly_pence=0,
            disability_related_expenditure=[],
            disability_related_expenditure_weekly_pence=0,
            weekly_charge_pence=tariff_weekly_pence if charged else None,
            lines=[],
            figures_to_confirm=[],
            assessed_by="finance:fo-1",
            policy_version=POLICY,
        ),
        when,
    )


async def journeys(app: FastAPI) -> dict[str, Journey]:
    """Three people: one through the whole journey in Q3 2026, financially assessed with
    £20,000 of savings (£23 a week tariff income); one assessed in Q3 but not yet
    validated; one given an indicative budget in Q1 and no further (outside Q3)."""
    people = {
        "in_q3": Journey("cld-1"),
        "assessing": Journey("cld-2"),
        "earlier": Journey("cld-3"),
    }
    for item in people["in_q3"].full(start="2026-07-06"):
        await deliver(app, item)
    await deliver(
        app,
        financially_assessed(
            people["in_q3"], at("2026-07-20"), capital_pence=2_000_000, tariff_weekly_pence=2_300
        ),
    )
    await deliver(app, people["assessing"].started(at("2026-09-29")))
    for item in people["earlier"].full(start="2026-01-05")[:3]:
        await deliver(app, item)
    return people


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_the_cld_extract_for_a_quarter_validates_against_the_layout(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    people = await journeys(app)
    r = await client.get(
        "/v1/returns/cld.csv", params={"quarter": Q3}, headers=tokens.headers("auditor")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-cld-violations"] == "0"
    assert r.text.splitlines()[0].split(",") == list(CLD_FIELDS)
    rows = parse(r.text)
    assert validate_cld(rows, Quarter.parse(Q3)) == []

    events = {
        (row["LA_Person_Unique_Identifier"], row["Event_Type"], row["Assessment_Type"])
        for row in rows
    }
    assert events == {
        ("cld-1", "Assessment", "Long Term Assessment"),
        ("cld-1", "Assessment", "Financial Assessment"),
        ("cld-1", "Service", ""),
        ("cld-1", "Review", ""),
        ("cld-2", "Assessment", "Long Term Assessment"),
    }
    [service] = [row for row in rows if row["Event_Type"] == "Service"]
    assert service["LA_Code"] == "888" and service["LA_Name"] == "Lancashire County Council"
    assert service["Delivery_Mechanism"] == "Direct Payment"
    assert service["Service_Type"] == "Long term support: Community"
    # £20,000 lies between the capital limits: the guidance's jointly funded client.
    assert service["Client_Funding_Status"] == "Joint Client and Social Care Funded"
    [financial] = [row for row in rows if row["Assessment_Type"] == "Financial Assessment"]
    assert (financial["Event_Start_Date"], financial["Event_End_Date"]) == (
        "2026-07-20",
        "2026-07-20",
    )
    assert financial["Client_Funding_Status"] == "Joint Client and Social Care Funded"
    [review] = [row for row in rows if row["Event_Type"] == "Review"]
    assert review["Event_Outcome"] == "Continuation of support or services"
    assert service["Event_Reference"] == str(people["in_q3"].schedule_id)
    # Journey.scheduled: £960.00 a year paid four-weekly is £18.46 a week (960/52, half up).
    assert (service["Unit_Cost"], service["Cost_Frequency_Unit_Type"]) == ("18.46", "Weekly")
    [open_assessment] = [row for row in rows if row["LA_Person_Unique_Identifier"] == "cld-2"]
    assert open_assessment["Event_End_Date"] == "" and open_assessment["Event_Outcome"] == ""
    assert open_assessment["Client_Funding_Status"] == "Unknown - Individual Level"
    assert all(row["Primary_Support_Reason"] == "Learning Disability Support" for row in rows)
    assert all(row["NHS_Number"] == row["Last_Name"] == "" for row in rows)

    report = await client.get(
        "/v1/returns/cld", params={"quarter": Q3}, headers=tokens.headers("auditor")
    )
    body = report.json()
    assert body["valid"] is True and body["rows"] == 5
    assert body["specification"].endswith("Release 2")
    assert any(note.startswith("Client_Funding_Status: ") for note in body["to_confirm"])
    assert body["events_by_type"] == {"Assessment": 3, "Service": 1, "Review": 1}


def test_the_validator_names_each_broken_rule() -> None:
    quarter = Quarter.parse(Q3)
    good = dict.fromkeys(CLD_FIELDS, "")
    good.update(
        LA_Code="888",
        Reporting_Period_Start_Date="2026-07-01",
        Reporting_Period_End_Date="2026-09-30",
        LA_Person_Unique_Identifier="p-1",
        Client_Type="Service User",
        Event_Type="Review",
        Event_Reference="r-1",
        Event_Start_Date="2026-08-01",
        Event_End_Date="2026-08-01",
        Event_Outcome="Continuation of support or services",
        Client_Funding_Status="Fully Social Care Funded",
    )
    assert validate_cld([good], quarter) == []
    broken = {
        **good,
        "LA_Code": "88",
        "Client_Type": "",
        "Event_Start_Date": "01/08/2026",
        "Event_Outcome": "Sorted",
        "Unit_Cost": "12.5",
    }
    rules = {(v.field, v.rule.split(" ")[0]) for v in validate_cld([broken, good, good], quarter)}
    assert ("LA_Code", "three") in rules
    assert ("Client_Type", "mandatory") in rules
    assert ("Event_Start_Date", "a") in rules  # a date as YYYY-MM-DD
    assert ("Event_Outcome", "'Sorted'") in rules
    assert ("Unit_Cost", "pounds") in rules
    assert ("Event_Reference", "one") in rules  # the same review twice
    late = {**good, "Event_Start_Date": "2026-10-02", "Event_End_Date": "2026-10-01"}
    assert {v.field for v in validate_cld([late], quarter)} == {
        "Event_Start_Date",
        "Event_End_Date",
    }


def test_a_quarter_is_a_calendar_quarter() -> None:
    q = Quarter.parse("2026-Q3")
    assert (q.start, q.end) == (date(2026, 7, 1), date(2026, 9, 30))
    assert Quarter.parse("2026-Q4").end == date(2026, 12, 31)


async def test_a_bad_quarter_or_an_unknown_la_code_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    auditor = tokens.headers("auditor")
    r = await client.get("/v1/returns/cld", params={"quarter": "2026-Q5"}, headers=auditor)
    assert r.status_code == 422 and "2026-Q3" in r.text
    r = await client.get(
        "/v1/returns/cld", params={"quarter": Q3}, headers=tokens.headers("auditor", "council_a")
    )
    assert r.status_code == 422 and "la_code" in r.text
    r = await client.get(
        "/v1/returns/cld",
        params={"quarter": Q3, "la_code": "999"},
        headers=tokens.headers("auditor", "council_a"),
    )
    assert r.status_code == 200 and r.json()["rows"] == 0
    r = await client.get(
        "/v1/returns/cld", params={"quarter": Q3}, headers=tokens.headers("care_manager")
    )
    assert r.status_code == 403


async def test_ni130_and_the_lancashire_measure_as_csv(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await journeys(app)
    r = await client.get(
        "/v1/returns/kpis.csv",
        params={"as_of": "2026-09-30", "by": "team"},
        headers=tokens.headers("auditor"),
    )
    assert r.status_code == 200, r.text
    rows = parse(r.text)
    totals = {row["measure"]: row for row in rows if row["group_by"] == "council"}
    # All three are community-based and assessed. NI130 counts the two with a budget;
    # Lancashire only cld-1, whose plan was paid and reviewed within the year (seed 003 ch.1).
    assert [totals["ni130"][k] for k in ("numerator", "denominator", "percentage")] == [
        "2",
        "3",
        "66.67",
    ]
    assert [totals["lancashire"][k] for k in ("numerator", "denominator")] == ["1", "3"]
    assert {row["group_by"] for row in rows} == {"council", "team"}


def test_the_checker_refuses_release_1_values_and_codes_off_the_lists() -> None:
    quarter = Quarter.parse(Q3)
    service = dict.fromkeys(CLD_FIELDS, "")
    service.update(
        LA_Code="888",
        Reporting_Period_Start_Date="2026-07-01",
        Reporting_Period_End_Date="2026-09-30",
        LA_Person_Unique_Identifier="p-1",
        Client_Type="Service User",
        Client_Funding_Status="Joint Client and Social Care Funded",
        Event_Type="Service",
        Event_Reference="s-1",
        Event_Start_Date="2026-08-01",
        Service_Type="Long term support: Community",
        Delivery_Mechanism="CASSR Managed Personal Budget",
    )
    assert validate_cld([service], quarter) == []

    def broken(**values: str) -> set[tuple[str, str]]:
        return {(v.field, v.rule) for v in validate_cld([{**service, **values}], quarter)}

    # Release 1's wording is no longer on Release 2's lists.
    assert ("Service_Type", "'Long Term Support: Community' is not in the code list") in broken(
        Service_Type="Long Term Support: Community"
    )
    assert (
        "Event_Outcome",
        "'No change in package' is not in the code list",
    ) in broken(Event_Type="Review", Event_Outcome="No change in package")
    assert ("Delivery_Mechanism", "'Managed account' is not in the code list") in broken(
        Delivery_Mechanism="Managed account"
    )
    assert ("Client_Funding_Status", "'Self funded' is not in the code list") in broken(
        Client_Funding_Status="Self funded"
    )
    assert {field for field, _ in broken(Client_Funding_Status="")} == {"Client_Funding_Status"}
    assert {
        field
        for field, _ in broken(
            Service_Type="Long term support: Prison", Delivery_Mechanism="Direct Payment"
        )
    } == {"Delivery_Mechanism"}

    financial = {
        **service,
        "Event_Type": "Assessment",
        "Service_Type": "",
        "Delivery_Mechanism": "",
        "Assessment_Type": "Financial Assessment",
        "Event_End_Date": "2026-08-01",
    }
    assert validate_cld([financial], quarter) == []
    found = validate_cld(
        [{**financial, "Event_End_Date": "", "Event_Outcome": "NFA: Other"}], quarter
    )
    assert {v.field for v in found} == {"Event_End_Date", "Event_Outcome"}
    assert {v.field for v in validate_cld([{**financial, "Assessment_Type": ""}], quarter)} == {
        "Assessment_Type"
    }


def test_every_code_list_says_where_it_was_read() -> None:
    for name, code_list in CODE_LISTS.items():
        assert code_list.values and code_list.source, name
        assert name in CLD_FIELDS


def history(journey: Journey, *items: Envelope) -> tuple[str, list[TimedEvent]]:
    return journey.person_id, [TimedEvent(item.event, item.time) for item in items]


def test_the_funding_status_is_the_latest_financial_assessments() -> None:
    """The charging regulations' limits (£14,250 and £23,250) through the CLD guidance:
    below the lower limit fully funded, between them jointly, at or above the upper the
    full-cost client arranged under s.18(3)."""
    person = Journey("fa-1")
    q3 = Quarter.parse(Q3)
    first = financially_assessed(
        person, at("2026-07-10"), capital_pence=1_425_000, tariff_weekly_pence=0
    )
    second = financially_assessed(
        person,
        at("2026-08-10"),
        capital_pence=2_325_000,
        tariff_weekly_pence=3_600,
        outcome=ev.FinancialAssessmentOutcome.FULL_COST_PAYER,
    )
    deferred = financially_assessed(
        person,
        at("2026-09-10"),
        capital_pence=0,
        tariff_weekly_pence=0,
        outcome=ev.FinancialAssessmentOutcome.DEFERRED,
    )
    after_q3 = financially_assessed(
        person, at("2026-10-05"), capital_pence=1_500_000, tariff_weekly_pence=300
    )
    rows = cld_rows(
        la_code="888",
        la_name="Lancashire County Council",
        quarter=q3,
        people=[
            history(
                person,
                person.started(at("2026-07-01")),
                person.validated(at("2026-07-03")),
                first,
                second,
                deferred,
                after_q3,
            )
        ],
    )
    assert validate_cld(rows, q3) == []
    financial = [row for row in rows if row["Assessment_Type"] == "Financial Assessment"]
    # One row each for the two carried out in the quarter; the deferred one is not done yet.
    assert [(row["Event_Start_Date"], row["Client_Funding_Status"]) for row in financial] == [
        ("2026-07-10", "Fully Social Care Funded"),
        ("2026-08-10", "18(3) (full cost client)"),
    ]
    # The person's status is the latest carried out by the quarter's end: the deferred one
    # changes nothing and the October one is later.
    [care] = [row for row in rows if row["Assessment_Type"] == "Long Term Assessment"]
    assert care["Client_Funding_Status"] == "18(3) (full cost client)"
    assert care["Eligible_Needs_Identified"] == "Yes"
    assert care["Event_Outcome"] == "Progress to support planning or services"
