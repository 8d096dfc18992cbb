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

from servicekit.app import MAX_BODY_BYTES, SCOPE_LENGTH, _fits, create_service_app, runtime_from
from servicekit.runtime import ServiceRuntime
from servicekit.testing import Tokens, running, runtime_of
from services.payments.api import MIGRATIONS, create_app
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

    @router.post("/overflow-the-calendar")
    async def overflow_the_calendar() -> None:
        date.max + timedelta(days=1)

    runtime: ServiceRuntime[Any] = ServiceRuntime(
        settings=Settings(data_dir=data_dir, policies_dir=policies_dir),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
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
