"""Statutory returns from the audit history: the CLD extract for a quarter (produced from
events delivered to the running audit service, then checked by the validator against the
layout's rules), and NI130 / the Lancashire measure as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from servicekit.testing import Tokens, deliver, running
from services.audit.api import create_app
from services.audit.returns import CLD_FIELDS, Quarter, validate_cld
from services.audit.settings import Settings
from services.audit.tests.journey import Journey, at

Q3 = "2026-Q3"


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def journeys(app: FastAPI) -> dict[str, Journey]:
    """Three people: one through the whole journey in Q3 2026, one assessed in Q3 but not
    yet validated, one given an indicative budget in Q1 and no further (outside Q3)."""
    people = {
        "in_q3": Journey("cld-1"),
        "assessing": Journey("cld-2"),
        "earlier": Journey("cld-3"),
    }
    for envelope in people["in_q3"].full(start="2026-07-06"):
        await deliver(app, envelope)
    await deliver(app, people["assessing"].started(at("2026-09-29")))
    for envelope in people["earlier"].full(start="2026-01-05")[:3]:
        await deliver(app, envelope)
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

    events = {(row["LA_Person_Unique_Identifier"], row["Event_Type"]) for row in rows}
    assert events == {
        ("cld-1", "Assessment"),
        ("cld-1", "Service"),
        ("cld-1", "Review"),
        ("cld-2", "Assessment"),
    }
    [service] = [row for row in rows if row["Event_Type"] == "Service"]
    assert service["LA_Code"] == "888" and service["LA_Name"] == "Lancashire County Council"
    assert service["Delivery_Mechanism"] == "Direct Payment"
    assert service["Service_Type"] == "Long Term Support: Community"
    assert service["Event_Reference"] == str(people["in_q3"].schedule_id)
    # Journey.scheduled: £960.00 a year paid four-weekly is £18.46 a week (960/52, half up).
    assert (service["Unit_Cost"], service["Cost_Frequency_Unit_Type"]) == ("18.46", "Weekly")
    [open_assessment] = [row for row in rows if row["LA_Person_Unique_Identifier"] == "cld-2"]
    assert open_assessment["Event_End_Date"] == "" and open_assessment["Event_Outcome"] == ""
    assert all(row["Primary_Support_Reason"] == "Learning Disability Support" for row in rows)
    assert all(row["NHS_Number"] == row["Last_Name"] == "" for row in rows)

    report = await client.get(
        "/v1/returns/cld", params={"quarter": Q3}, headers=tokens.headers("auditor")
    )
    body = report.json()
    assert body["valid"] is True and body["rows"] == 4
    assert body["specification"].endswith("Release 1")
    assert body["events_by_type"] == {"Assessment": 2, "Service": 1, "Review": 1}


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
        Event_Outcome="No change in package",
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
