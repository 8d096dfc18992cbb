"""The app factory every service shares (servicekit/app.py): the request body limit, the
last guard against values the database cannot hold, the documented error answers, and
idempotency keys on long paths. Each rule here was found by tests/test_api_fuzz.py or
asked for by architecture.md §8 (a clear error, never a 500, never a half-write)."""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI

from servicekit.app import (
    MAX_BODY_BYTES,
    SCOPE_LENGTH,
    _fits,
    create_service_app,
    migrations_beside,
    runtime_from,
)
from servicekit.runtime import ServiceRuntime
from servicekit.testing import Tokens, running, runtime_of
from services.payments.api import create_app
from services.payments.db import PaymentsUnitOfWork, metadata
from services.payments.settings import Settings

SERVICES = ("assessment", "allocation", "planning", "payments", "audit")
NOW = datetime(2010, 4, 5, tzinfo=UTC)
Runtime = Annotated[ServiceRuntime[Any], Depends(runtime_from)]


@pytest.fixture
async def client(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def finance(tokens: Tokens, **extra: str) -> dict[str, str]:
    return tokens.headers("finance", "lancashire", **{"Content-Type": "application/json", **extra})


async def stored_keys(client: httpx.AsyncClient) -> list[Any]:
    runtime = runtime_of(client.app)  # type: ignore[attr-defined]
    async with runtime.database.sessions() as session:
        return list((await session.execute(runtime.idempotency.select())).all())


# --- the body limit ------------------------------------------------------------------------


async def test_a_body_over_one_mib_is_refused_with_413_and_nothing_is_written(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = b'{"up_to": "2010-04-12"' + b" " * MAX_BODY_BYTES + b"}"
    headers = finance(tokens, **{"Idempotency-Key": "k-1", "X-Correlation-Id": "c-1"})
    r = await client.post("/v1/exports/payments", content=body, headers=headers)
    assert r.status_code == 413
    assert r.json()["error"] == "RequestTooLarge" and "1048576 bytes" in r.json()["detail"]
    assert r.headers["X-Correlation-Id"] == "c-1"
    assert await stored_keys(client) == []  # refused before the idempotency check read it


async def test_a_chunked_body_over_one_mib_is_refused_with_413_too(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: it must be counted
        yield b'{"up_to": "2010-04-12"'
        for _ in range(17):
            yield b" " * 65_536

    r = await client.post("/v1/exports/payments", content=chunks(), headers=finance(tokens))
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and r.json()["error"] == "RequestTooLarge"


async def test_a_body_of_exactly_one_mib_is_read(client: httpx.AsyncClient, tokens: Tokens) -> None:
    start = b'{"up_to": "2010-04-12"'
    body = start + b" " * (MAX_BODY_BYTES - len(start) - 1) + b"}"
    assert len(body) == MAX_BODY_BYTES
    r = await client.post("/v1/exports/payments", content=body, headers=finance(tokens))
    assert r.status_code == 409 and r.json()["error"] == "NothingToExport"  # the route ran


# --- the last guard: values the database or the calendar cannot hold -----------------------


@pytest.fixture
async def guarded(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> AsyncIterator[httpx.AsyncClient]:
    """A service app whose routes overflow on purpose, the first after writing to the outbox."""
    router = APIRouter(prefix="/v1")

    @router.post("/overflow-the-database")
    async def overflow_the_database(runtime: Runtime) -> None:
        async with runtime.uow() as uow:
            await uow.session.execute(
                runtime.outbox.insert().values(
                    event_id="e-1", topic="pb.payments", key="p-1", value=b"{}", created_at=NOW
                )
            )
            await uow.session.execute(sa.select(sa.bindparam("too_big", 2**63)))
            await uow.commit()

    @router.post("/collide")
    async def collide(runtime: Runtime) -> None:
        # What two concurrent writers of one row amount to: the second insert of a key.
        async with runtime.uow() as uow:
            for _ in range(2):
                await uow.session.execute(
                    runtime.outbox.insert().values(
                        event_id="e-2", topic="pb.payments", key="p-1", value=b"{}", created_at=NOW
                    )
                )
            await uow.commit()

    @router.post("/defect")
    async def defect() -> None:
        raise RuntimeError("a bug, with /srv/secret/path in its message")

    @router.get("/when")
    async def when(at: datetime, on: date) -> None:
        pass

    @router.post("/overflow-the-calendar")
    async def overflow_the_calendar() -> None:
        date.max + timedelta(days=1)

    runtime: ServiceRuntime[Any] = ServiceRuntime(
        settings=Settings(data_dir=data_dir, policies_dir=policies_dir),
        metadata=metadata,
        migrations_dir=migrations_beside(PaymentsUnitOfWork),
        unit_of_work=PaymentsUnitOfWork,
    )
    app = create_service_app(runtime=runtime, title="t", description="t", routers=[router])
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize("path", ["/v1/overflow-the-database", "/v1/overflow-the-calendar"])
async def test_a_value_out_of_range_is_a_422_not_a_500_and_nothing_is_written(
    guarded: httpx.AsyncClient, path: str
) -> None:
    r = await guarded.post(path)
    assert r.status_code == 422 and r.json()["error"] == "ValueOutOfRange"
    runtime = runtime_of(guarded.app)  # type: ignore[attr-defined]
    async with runtime.database.sessions() as session:
        assert (await session.execute(runtime.outbox.select())).all() == []


async def test_a_write_that_collides_with_another_is_a_409_conflict_and_nothing_is_written(
    guarded: httpx.AsyncClient,
) -> None:
    r = await guarded.post("/v1/collide")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "urn:pb-journey:problem:Conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "another request changed this at the same moment; try again",
        "error": "Conflict",
    }
    runtime = runtime_of(guarded.app)  # type: ignore[attr-defined]
    async with runtime.database.sessions() as session:
        assert (await session.execute(runtime.outbox.select())).all() == []


async def test_a_defect_is_a_500_problem_that_shows_nothing_of_the_fault(
    guarded: httpx.AsyncClient,
) -> None:
    app = guarded.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.post("/v1/defect")
        assert r.status_code == 500 and r.json()["error"] == "InternalError"
        assert r.headers["content-type"] == "application/problem+json"
        assert "secret" not in r.text and "RuntimeError" not in r.text
        unknown = await client.get("/v1/no-such-thing")
        assert unknown.status_code == 404 and unknown.json()["error"] == "NotFound"


# --- what a refusal says -------------------------------------------------------------------


async def test_bad_input_names_each_field_and_what_it_expects_without_echoing_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.post(
        "/v1/payments/release-due", json={"as_of": "<b>1st April</b>"}, headers=finance(tokens)
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["error"] == "InvalidInput" and problem["title"] == "Unprocessable Entity"
    assert problem["errors"] == [
        {"field": "body.as_of", "message": "expected a date like 2026-04-01 (YYYY-MM-DD)"}
    ]
    assert "YYYY-MM-DD" in problem["detail"] and "1st April" not in r.text


async def test_a_pattern_is_explained_in_words_not_as_the_regular_expression(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.get(
        "/v1/people/not%20an%20id!/subject-access", headers=tokens.headers("operations")
    )
    assert r.status_code == 422
    (field,) = r.json()["errors"]
    assert field["field"] == "path.person_id"
    assert "letters, digits, '-' or '_', 1–64 characters" in field["message"]
    assert "A-Za-z" not in r.text and "not an id" not in r.text


async def test_a_date_and_time_is_asked_for_as_rfc_3339_and_a_date_as_yyyy_mm_dd(
    guarded: httpx.AsyncClient,
) -> None:
    r = await guarded.get("/v1/when", params={"at": "9.30 on Tuesday", "on": "Tuesday"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "query.at",
            "message": "expected a date and time like 2026-04-01T09:30:00Z (RFC 3339)",
        },
        {"field": "query.on", "message": "expected a date like 2026-04-01 (YYYY-MM-DD)"},
    ]


async def test_a_bad_cursor_and_a_missing_token_are_named_for_their_rule(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await client.get("/v1/deployments?cursor=bm90IGEgY3Vyc29y", headers=finance(tokens))
    assert r.status_code == 422 and r.json()["error"] == "InvalidCursor"
    r = await client.get("/v1/deployments")
    assert r.status_code == 401 and r.json()["error"] == "Unauthenticated"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    person = tokens.headers("person", person_id="p-1")
    r = await client.post("/v1/exports/payments", json={"up_to": "2010-04-12"}, headers=person)
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"


# --- the error answers are documented ------------------------------------------------------


def _openapi(name: str, data_dir: Path, policies_dir: Path) -> dict[str, Any]:
    api = importlib.import_module(f"services.{name}.api")
    settings = importlib.import_module(f"services.{name}.settings")
    app: FastAPI = api.create_app(settings.Settings(data_dir=data_dir, policies_dir=policies_dir))
    document: dict[str, Any] = json.loads(json.dumps(app.openapi()))
    return document


@pytest.mark.parametrize("name", SERVICES)
def test_every_error_answer_a_route_gives_is_documented(
    name: str, data_dir: Path, policies_dir: Path
) -> None:
    # Found by the fuzz test: a rule's 422 did not match the only 422 documented, FastAPI's
    # list of field errors. Now every refusal is one problem document.
    document = _openapi(name, data_dir, policies_dir)
    error = {"$ref": "#/components/schemas/Error"}
    problem = document["components"]["schemas"]["Error"]
    assert problem["required"] == ["type", "title", "status", "detail", "error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/v1/"):
                continue
            answers = operation["responses"]
            label = f"{method.upper()} {path}"
            for code in ("401", "403", "404", "422"):
                content = answers[code]["content"]
                assert content["application/problem+json"]["schema"] == error, label
                assert "HTTPValidationError" not in json.dumps(content), label
            if "requestBody" in operation:
                assert "413" in answers and "400" in answers, label


# --- idempotency keys ----------------------------------------------------------------------


def test_a_long_idempotency_scope_is_cut_to_its_column_and_stays_distinct() -> None:
    short = "POST /v1/exports/payments lancashire:finance-1"
    assert _fits(short, SCOPE_LENGTH) == short
    long_a, long_b = "POST /v1/" + "a" * 300, "POST /v1/" + "a" * 299 + "b"
    assert len(_fits(long_a, SCOPE_LENGTH)) <= SCOPE_LENGTH
    assert _fits(long_a, SCOPE_LENGTH) != _fits(long_b, SCOPE_LENGTH)


async def test_a_long_path_with_an_idempotency_key_is_answered_not_500(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # On PostgreSQL the scope (method, path, caller) overflowed its VARCHAR(200).
    path = f"/v1/deployments/{'x' * 400}/agreement"
    headers = finance(tokens, **{"Idempotency-Key": "k-2"})
    r = await client.post(path, json={"signed_on": "2010-04-02"}, headers=headers)
    assert r.status_code == 422  # not a UUID: a clear error, and no key kept
    assert await stored_keys(client) == []


# --- an idempotent replay never gets round a rights check (docs/api.md) ----------------------


@pytest.fixture
async def assessment(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> AsyncIterator[httpx.AsyncClient]:
    from services.assessment.api import create_app as create_assessment
    from services.assessment.settings import Settings as AssessmentSettings

    app = create_assessment(AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def start_for(person_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "client_group": "older_people",
        "completed_by": "supported",
        "team": "North",
        "key_worker_id": "kw-1",
        **extra,
    }


async def test_a_finance_answer_is_not_replayed_to_a_care_manager_with_the_same_user_id(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = {"as_of": "2010-04-12"}
    key = {"Idempotency-Key": "k-release"}
    first = await client.post(
        "/v1/payments/release-due", json=body, headers=finance(tokens, user_id="u-1", **key)
    )
    assert first.is_success, first.text
    again = await client.post(
        "/v1/payments/release-due", json=body, headers=finance(tokens, user_id="u-1", **key)
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()

    care_manager = tokens.headers("care_manager", user_id="u-1", **key)
    replayed = await client.post("/v1/payments/release-due", json=body, headers=care_manager)
    assert replayed.status_code == 403 and replayed.json()["error"] == "Forbidden"
    assert "Idempotent-Replayed" not in replayed.headers


async def test_a_person_replaying_another_persons_key_gets_a_refusal_not_their_record(
    assessment: httpx.AsyncClient, tokens: Tokens
) -> None:
    # One login (sub) acting for two people, as a representative's account might.
    key = {"Idempotency-Key": "k-start"}
    for_p1 = tokens.headers("representative", user_id="rep-1", person_id="p-1", **key)
    start = start_for("p-1", age_band="85+")
    started = await assessment.post("/v1/assessments", json=start, headers=for_p1)
    assert started.status_code == 201, started.text

    for_p2 = tokens.headers("representative", user_id="rep-1", person_id="p-2", **key)
    refused = await assessment.post("/v1/assessments", json=start, headers=for_p2)
    assert refused.status_code in (403, 404), refused.text
    assert "Idempotent-Replayed" not in refused.headers
    assert started.json()["assessment_id"] not in refused.text


async def test_identities_are_never_kept_for_a_replay_and_a_retry_is_checked_again(
    assessment: httpx.AsyncClient, tokens: Tokens
) -> None:
    details = {"name": "Ada Example", "date_of_birth": "1950-01-02", "nhs_number": "9434765919"}
    start = start_for("p-1", personal_details=details)
    r = await assessment.post("/v1/assessments", json=start, headers=tokens.headers("care_manager"))
    assert r.status_code == 201, r.text

    key = {"Idempotency-Key": "k-cld"}
    asked = {"person_ids": ["p-1"]}
    for _ in range(2):
        operations = tokens.headers("operations", user_id="ops-1", **key)
        r = await assessment.post("/v1/people/identities", json=asked, headers=operations)
        assert r.status_code == 200 and r.json()["items"][0]["nhs_number"] == "9434765919"
        assert "Idempotent-Replayed" not in r.headers  # run again, not replayed
        kept = b"".join(bytes(row.body) for row in await stored_keys(assessment))
        assert b"9434765919" not in kept and b"1950-01-02" not in kept

    care_manager = tokens.headers("care_manager", user_id="ops-1", **key)
    r = await assessment.post("/v1/people/identities", json=asked, headers=care_manager)
    assert r.status_code == 403 and "9434765919" not in r.text


async def test_a_key_reused_with_another_body_is_refused_by_name(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    key = {"Idempotency-Key": "k-reuse"}
    first = await client.post(
        "/v1/payments/release-due", json={"as_of": "2010-04-12"}, headers=finance(tokens, **key)
    )
    assert first.is_success
    other = await client.post(
        "/v1/payments/release-due", json={"as_of": "2010-04-19"}, headers=finance(tokens, **key)
    )
    assert other.status_code == 422 and other.json()["error"] == "IdempotencyKeyReused"
