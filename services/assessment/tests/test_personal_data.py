"""Personal details over HTTP, in-process: sealed on arrival, opened only for subject
access, erased by destroying the person's data key once the retention period is over."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events import (
    AssessmentStarted,
    BudgetIssued,
    BudgetStage,
    PersonalDataErased,
    PersonalDetailsRecorded,
    Scale,
)
from contracts.vocabulary import ClientGroup, Role
from servicekit.testing import Tokens, deliver, outbox_events, outbox_events_of, runtime_of
from services.assessment.db import person_keys

# A made-up person; 9434765919 is the NHS's own example of a valid NHS number.
DETAILS = {
    "name": "Edith Marjorie Quayle",
    "date_of_birth": "1941-07-19",
    "nhs_number": "9434765919",
    "address": "14 Ribblesdale Terrace, Clitheroe",
    "postcode": "BB7 2QX",
    "phone": "01200 555 0199",
    "email": "edith.quayle@example.org",
}
PLAINTEXT = [
    "Edith Marjorie Quayle",
    "Quayle",
    "1941-07-19",
    "9434765919",
    "BB7 2QX",
    "Ribblesdale",
]


@pytest.fixture
def operations(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(Role.OPERATIONS, "lancashire", user_id="ig-1")


def start_body(person_id: str = "P500", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_id": person_id,
        "client_group": "older_people",
        "completed_by": "supported",
        "team": "Ribble Valley OP team",
        "key_worker_id": "kw-3",
        "personal_details": DETAILS,
    }
    body.update(changes)
    return body


def raw_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under the data directory (databases, WAL files, the log)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def expected_band(born: date, today: date) -> str:
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return "85+" if age >= 85 else "75-84" if age >= 75 else "65-74"


def pretend_today(app: FastAPI, today: date) -> None:
    app.state.privacy = dataclasses.replace(app.state.privacy, retention_today=today)


async def test_details_are_sealed_and_the_age_band_comes_from_the_date_of_birth(
    app: FastAPI, client: httpx.AsyncClient, care_manager: dict[str, str], data_dir: Path
):
    r = await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    assert r.status_code == 201, r.text
    today = datetime.now(UTC).date()
    assert r.json()["age_band"] == expected_band(date(1941, 7, 19), today)
    assert not any(text in r.text for text in PLAINTEXT)
    [recorded] = await outbox_events_of(app, PersonalDetailsRecorded)
    assert recorded.age_band == r.json()["age_band"]
    assert recorded.correction is False
    assert set(recorded.fields) == set(DETAILS)
    [started] = await outbox_events_of(app, AssessmentStarted)
    assert started.age_band.value == r.json()["age_band"]
    stored = raw_bytes(data_dir)
    for text in PLAINTEXT:
        assert text.encode() not in stored, f"{text!r} found in the clear on disk"


async def test_an_age_band_that_contradicts_the_date_of_birth_is_refused_and_nothing_written(
    app: FastAPI, client: httpx.AsyncClient, care_manager: dict[str, str]
):
    r = await client.post(
        "/v1/assessments", json=start_body(age_band="18-64"), headers=care_manager
    )
    assert r.status_code == 422 and "age_band" in r.json()["detail"]
    assert await outbox_events(app) == []
    async with runtime_of(app).database.sessions() as session:
        assert (await session.execute(sa.select(person_keys))).first() is None


async def test_without_a_date_of_birth_or_an_age_band_the_start_is_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str]
):
    body = start_body(personal_details={"name": "Ann Example"})
    r = await client.post("/v1/assessments", json=body, headers=care_manager)
    assert r.status_code == 422 and "age_band" in r.json()["detail"]


async def test_a_child_and_a_bad_nhs_number_are_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str]
):
    child = {
        **DETAILS,
        "date_of_birth": (datetime.now(UTC).date() - timedelta(days=3650)).isoformat(),
    }
    r = await client.post(
        "/v1/assessments", json=start_body(personal_details=child), headers=care_manager
    )
    assert r.status_code == 422 and "18 and over" in r.json()["detail"]
    bad_check_digit = {**DETAILS, "nhs_number": "9434765918"}
    r = await client.post(
        "/v1/assessments", json=start_body(personal_details=bad_check_digit), headers=care_manager
    )
    assert r.status_code == 422 and "nhs_number" in r.json()["detail"]


async def test_a_later_assessment_takes_the_age_band_from_the_date_of_birth_on_record(
    app: FastAPI, client: httpx.AsyncClient, care_manager: dict[str, str]
):
    first = await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    second_body = start_body()
    del second_body["personal_details"]
    second = await client.post("/v1/assessments", json=second_body, headers=care_manager)
    assert second.status_code == 201, second.text
    assert second.json()["age_band"] == first.json()["age_band"]
    again = await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    assert again.status_code == 201
    # The same details again are already on record: no second sealed copy.
    assert len(await outbox_events_of(app, PersonalDetailsRecorded)) == 1


async def test_the_person_sees_their_details_and_operations_answer_subject_access(
    client: httpx.AsyncClient,
    tokens: Tokens,
    care_manager: dict[str, str],
    operations: dict[str, str],
):
    await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    person = tokens.headers(Role.PERSON, "lancashire", user_id="u-500", person_id="P500")
    for headers in (person, operations):
        r = await client.get("/v1/people/P500/subject-access", headers=headers)
        assert r.status_code == 200, r.text
        held = r.json()
        assert held["personal_details"]["status"] == "held"
        assert held["personal_details"]["current"]["name"] == DETAILS["name"]
        assert held["personal_details"]["current"]["date_of_birth"] == DETAILS["date_of_birth"]
        assert [a["person_id"] for a in held["tables"]["assessments"]] == ["P500"]
        assert "person_keys" not in held["tables"]
    r = await client.get("/v1/people/P500/subject-access", headers=care_manager)
    assert r.status_code == 403
    someone_else = tokens.headers(Role.PERSON, "lancashire", user_id="u-9", person_id="P9")
    assert (
        await client.get("/v1/people/P500/subject-access", headers=someone_else)
    ).status_code == 404
    other_council = tokens.headers(Role.OPERATIONS, "council_a", user_id="ig-a")
    assert (
        await client.get("/v1/people/P500/subject-access", headers=other_council)
    ).status_code == 404


async def test_a_correction_is_sealed_again_and_both_versions_are_kept(
    app: FastAPI,
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    operations: dict[str, str],
):
    await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    moved = {**DETAILS, "address": "2 Castle View, Clitheroe", "postcode": "BB7 1AA"}
    r = await client.put("/v1/people/P500/personal-details", json=moved, headers=care_manager)
    assert r.status_code == 200 and r.json()["changed"] and r.json()["correction"]
    assert "Castle View" not in r.text
    same = await client.put("/v1/people/P500/personal-details", json=moved, headers=care_manager)
    assert same.json()["changed"] is False
    events = await outbox_events_of(app, PersonalDetailsRecorded)
    assert [e.correction for e in events] == [False, True]
    held = (await client.get("/v1/people/P500/subject-access", headers=operations)).json()
    assert held["personal_details"]["current"]["postcode"] == "BB7 1AA"
    assert len(held["personal_details"]["versions"]) == 2
    unknown = await client.put("/v1/people/P404/personal-details", json=moved, headers=care_manager)
    assert unknown.status_code == 404
    finance = await client.put(
        "/v1/people/P500/personal-details",
        json=moved,
        headers=Tokens(Path(app.state.runtime.settings.data_dir)).headers(Role.FINANCE),
    )
    assert finance.status_code == 403


async def test_erasure_waits_for_the_retention_period_then_destroys_the_key(
    app: FastAPI,
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    operations: dict[str, str],
    data_dir: Path,
):
    await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    async with runtime_of(app).database.sessions() as session:
        wrapped = (await session.execute(sa.select(person_keys.c.wrapped_key))).scalar_one()
    assert wrapped in raw_bytes(data_dir)

    early = await client.post("/v1/people/P500/erasure", headers=operations)
    assert early.status_code == 409
    today = datetime.now(UTC).date()
    ends = today.replace(year=today.year + 8) if (today.month, today.day) != (2, 29) else None
    if ends is not None:
        assert f"until {ends.isoformat()}" in early.json()["detail"]
    assert (await client.post("/v1/people/P500/erasure", headers=care_manager)).status_code == 403
    never_assessed = await client.post("/v1/people/P999/erasure", headers=operations)
    assert never_assessed.status_code == 404
    other_council = Tokens(data_dir).headers(Role.OPERATIONS, "council_a", user_id="ig-2")
    assert (await client.post("/v1/people/P500/erasure", headers=other_council)).status_code == 404

    pretend_today(app, today + timedelta(days=8 * 366))
    r = await client.post("/v1/people/P500/erasure", headers=operations)
    assert r.status_code == 200, r.text
    assert r.json()["retention_years"] == 8 and r.json()["erased_by"] == "operations:ig-1"
    [erased] = await outbox_events_of(app, PersonalDataErased)
    assert erased.last_contact_on == today

    held = (await client.get("/v1/people/P500/subject-access", headers=operations)).json()
    assert held["personal_details"]["status"] == "erased"
    assert held["personal_details"]["current"] is None
    assert held["personal_details"]["erased_by"] == "operations:ig-1"
    assert wrapped not in raw_bytes(data_dir), "the wrapped data key survived on disk"
    again = await client.post("/v1/people/P500/erasure", headers=operations)
    assert again.status_code == 409 and "erased on" in again.json()["detail"]
    r = await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    assert r.status_code == 409 and "erased" in r.json()["detail"]


async def test_an_event_from_another_service_is_a_contact_that_restarts_retention(
    app: FastAPI,
    client: httpx.AsyncClient,
    care_manager: dict[str, str],
    operations: dict[str, str],
):
    await client.post("/v1/assessments", json=start_body(), headers=care_manager)
    today = datetime.now(UTC).date()
    later = datetime.now(UTC) + timedelta(days=400)
    budget = BudgetIssued(
        person_id="P500",
        council="lancashire",
        budget_id=uuid4(),
        assessment_id=uuid4(),
        client_group=ClientGroup.OLDER_PEOPLE,
        stage=BudgetStage.FINAL,
        revision=1,
        points=40,
        scale=Scale.STANDARD,
        weekly_pence=40_000,
        annual_pence=2_080_000,
        ceiling_weekly_pence=None,
        ceiling_exception=False,
        explanation=[],
        agreed_by="tm-1",
        agreed_by_role=Role.TEAM_MANAGER,
        policy_version="lancashire/2009.1",
    )
    await deliver(app, Envelope(event=budget, time=later))
    pretend_today(app, today + timedelta(days=8 * 366))
    r = await client.post("/v1/people/P500/erasure", headers=operations)
    assert r.status_code == 409 and later.date().isoformat() in r.json()["detail"]


async def test_erasing_someone_with_no_personal_details_is_refused(
    client: httpx.AsyncClient, care_manager: dict[str, str], operations: dict[str, str]
):
    body = start_body(age_band="75-84")
    del body["personal_details"]
    assert (
        await client.post("/v1/assessments", json=body, headers=care_manager)
    ).status_code == 201
    r = await client.post("/v1/people/P500/erasure", headers=operations)
    assert r.status_code == 409 and "no personal details" in r.json()["detail"]
