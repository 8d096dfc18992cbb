"""Importing people from a CareFirst-style extract, over HTTP in-process: all or nothing,
every refused row with its line, column and reason, re-import harmless, and personal
details only ever stored or published sealed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from contracts.events import AssessmentStarted, PersonalDetailsRecorded
from contracts.vocabulary import AgeBand, ClientGroup, Role
from servicekit.csvfile import CsvRow
from servicekit.testing import Tokens, outbox_events_of, runtime_of
from services.assessment.imports import age_band, nhs_number_is_valid, parse_person

HEADER = (
    "legacy_client_id,forename,surname,date_of_birth,nhs_number,postcode,"
    "client_group,team,key_worker,community_based\r\n"
)
# NHS numbers with valid check digits (the modulus 11 rule); names and postcodes invented.
GOOD = (
    HEADER + "CF100234,Edith,Wolstenholme,12/03/1938,943 476 5919,PR1 8XJ,older_people,"
    "Preston OP,KW17,Y\r\n"
    + "CF100235,Darren,Pilkington,1990-07-01,4010232137,bb2 1lx,LD,Blackburn LD,KW3,\r\n"
    + 'CF100236,"O\'Neill, Mary",Ashworth,1961-11-30,,LA1 1HX,mental_health,Lancaster MH,KW9,N\r\n'
)
PERSONAL = (b"Wolstenholme", b"Pilkington", b"Ashworth", b"9434765919", b"PR1 8XJ", b"1938-03-12")


async def upload(
    client: httpx.AsyncClient, tokens: Tokens, text: str, role: Role = Role.OPERATIONS
) -> httpx.Response:
    return await client.post(
        "/v1/imports/people",
        content=text.encode(),
        headers=tokens.headers(role, "lancashire", **{"Content-Type": "text/csv"}),
    )


async def test_an_extract_starts_an_assessment_per_person_with_details_only_sealed(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, data_dir: Path
) -> None:
    r = await upload(client, tokens, GOOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] and body["lines"] == 3 and body["rejected"] == []
    legacy_to_person = {i["legacy_client_id"]: i["person_id"] for i in body["imported"]}
    assert set(legacy_to_person) == {"CF100234", "CF100235", "CF100236"}

    started = await outbox_events_of(app, AssessmentStarted)
    by_person = {e.person_id: e for e in started}
    edith = by_person[legacy_to_person["CF100234"]]
    assert (edith.client_group, edith.age_band, edith.team) == (
        ClientGroup.OLDER_PEOPLE,
        AgeBand.AGE_85_PLUS,
        "Preston OP",
    )
    assert by_person[legacy_to_person["CF100235"]].client_group is ClientGroup.LEARNING_DISABILITY
    assert by_person[legacy_to_person["CF100236"]].community_based is False
    assert all(not p.startswith("CF") for p in by_person)  # the person id is not the legacy id

    await runtime_of(app).relay.drain()
    assert files_holding(data_dir, PERSONAL) == []

    # Sealed, not dropped: subject access opens them for the person's council.
    edith_id = legacy_to_person["CF100234"]
    held = await client.get(
        f"/v1/people/{edith_id}/subject-access",
        headers=tokens.headers(Role.OPERATIONS, "lancashire"),
    )
    assert held.status_code == 200, held.text
    details = held.json()["personal_details"]["current"]
    assert (details["name"], details["date_of_birth"], details["nhs_number"]) == (
        "Edith Wolstenholme",
        "1938-03-12",
        "9434765919",
    )
    assert len(await outbox_events_of(app, PersonalDetailsRecorded)) == 3


def files_holding(directory: Path, needles: tuple[bytes, ...]) -> list[str]:
    """Every file under a directory (databases, event log, logs) holding any of the needles."""
    return [
        path.name
        for path in directory.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    ]


async def test_the_same_extract_imported_again_creates_nobody_new(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = (await upload(client, tokens, GOOD)).json()
    extended = GOOD + "CF100240,Alan,Entwistle,1950-01-15,,FY1 1AA,PD,Blackpool PD,KW2,Y\r\n"
    second = await upload(client, tokens, extended)
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["already_imported"] == 3
    assert [i["legacy_client_id"] for i in body["imported"]] == ["CF100240"]
    third = (await upload(client, tokens, extended)).json()
    assert third["imported"] == [] and third["already_imported"] == 4
    assert len(await outbox_events_of(app, AssessmentStarted)) == 4
    assert len(first["imported"]) == 3


async def test_every_bad_row_is_reported_and_nobody_is_imported(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    bad = (
        GOOD
        + "CF200001,Ann,,31/02/1950,1234567890,NOWHERE,astronauts,North,KW1,maybe\r\n"
        + "CF100234,Edith,Wolstenholme,12/03/1938,,PR1 8XJ,older_people,Preston OP,KW17,Y\r\n"
        + "CF200002,Tom,Young,2015-05-05,,PR2 2AA,older_people,,KW1,\r\n"
        + "CF200003,Too,Few,1950-01-01\r\n"
    )
    r = await upload(client, tokens, bad)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["accepted"] is False and body["imported"] == []
    assert "nobody was imported" in body["detail"]
    faults = {(x["line"], x["column"]) for x in body["rejected"]}
    assert {
        (5, "surname"),
        (5, "date_of_birth"),
        (5, "nhs_number"),
        (5, "postcode"),
        (5, "client_group"),
        (5, "community_based"),
        (6, "legacy_client_id"),
        (7, "date_of_birth"),
        (7, "team"),
        (8, None),
    } == faults
    [dup] = [x for x in body["rejected"] if x["line"] == 6]
    assert "line 2" in dup["reason"]
    [child] = [x for x in body["rejected"] if (x["line"], x["column"]) == (7, "date_of_birth")]
    assert "under 18" in child["reason"]
    assert await outbox_events_of(app, AssessmentStarted) == []


async def test_a_file_that_is_not_the_extract_layout_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await upload(client, tokens, "client,name\r\n1,Edith\r\n")
    assert r.status_code == 422 and "legacy_client_id" in r.json()["detail"]
    r = await client.post(
        "/v1/imports/people",
        content=b"\xff\xfe not utf-8",
        headers=tokens.headers(Role.OPERATIONS, **{"Content-Type": "text/csv"}),
    )
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]


@pytest.mark.parametrize("role", [Role.CARE_MANAGER, Role.FINANCE, Role.AUDITOR, Role.TEAM_MANAGER])
async def test_only_operations_imports_people(
    client: httpx.AsyncClient, tokens: Tokens, role: Role
) -> None:
    assert (await upload(client, tokens, GOOD, role=role)).status_code == 403


def test_a_client_group_the_council_does_not_offer_is_refused() -> None:
    row = CsvRow(
        line=2,
        values={
            "legacy_client_id": "X1",
            "forename": "A",
            "surname": "B",
            "date_of_birth": "1950-01-01",
            "nhs_number": "",
            "postcode": "PR1 8XJ",
            "client_group": "carers",
            "team": "T",
            "key_worker": "K",
            "community_based": "",
        },
        fields=10,
        columns=10,
    )
    faults = parse_person(
        row, today=date(2026, 11, 23), client_groups=frozenset({ClientGroup.OLDER_PEOPLE})
    )
    assert isinstance(faults, list) and faults[0].column == "client_group"


def test_nhs_numbers_are_checked_with_the_modulus_11_rule() -> None:
    assert nhs_number_is_valid("9434765919")
    assert not nhs_number_is_valid("9434765918")
    assert not nhs_number_is_valid("943476591")


def test_the_age_band_comes_from_the_date_of_birth() -> None:
    assert [age_band(a) for a in (18, 64, 65, 75, 85)] == [
        AgeBand.AGE_18_64,
        AgeBand.AGE_18_64,
        AgeBand.AGE_65_74,
        AgeBand.AGE_75_84,
        AgeBand.AGE_85_PLUS,
    ]
