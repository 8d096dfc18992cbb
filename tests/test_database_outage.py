"""While a service's PostgreSQL is down, its API answers 503 with Retry-After, not 500,
writes nothing, and answers normally again once the database is back.

The outage is real: a PostgreSQL cluster of the test's own is SIGKILLed, as a crash of
the database host would, and started again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from servicekit.testing import Tokens, named_public_key, running
from services.assessment.api import create_app
from services.assessment.settings import Settings
from services.assessment.tests.test_api import start_body
from testkit.chaos.processes import PrivatePostgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres(postgres_admin_url: str, tmp_path: Path) -> Iterator[PrivatePostgres]:
    """`postgres_admin_url` only makes sure PostgreSQL is installed; the cluster is ours."""
    cluster = PrivatePostgres(tmp_path / "postgres")
    cluster.create()
    try:
        yield cluster
    finally:
        cluster.stop(remove=True)


@pytest.fixture
async def client(
    postgres: PrivatePostgres, data_dir: Path, policies_dir: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    public_key = named_public_key(data_dir)
    app = create_app(
        Settings(
            data_dir=data_dir,
            policies_dir=policies_dir,
            database_url=postgres.url("pbj_assessment"),
            jwt_public_key_file=public_key,
        )
    )
    async with running(app) as http:
        yield app, http


async def test_a_database_outage_answers_503_and_the_service_recovers(
    client: tuple[FastAPI, httpx.AsyncClient], postgres: PrivatePostgres, tokens: Tokens
) -> None:
    _, http = client
    staff = tokens.headers("care_manager", "lancashire", user_id="cm-1")
    listed = await http.get("/v1/assessments", headers=staff)
    assert listed.status_code == 200, listed.text

    postgres.sigkill()
    for _ in range(2):  # the pooled connection found dead, then a new one refused
        read = await http.get("/v1/assessments", headers=staff)
        write = await http.post("/v1/assessments", json=start_body(), headers=staff)
        retried = await http.post(
            "/v1/assessments",
            json=start_body(),
            headers={**staff, "Idempotency-Key": "outage-1"},
        )
        for response in (read, write, retried):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"] == "DatabaseUnavailable"

    postgres.start()
    assert (await http.get("/v1/assessments", headers=staff)).json()["items"] == []
    started = await http.post(
        "/v1/assessments", json=start_body(), headers={**staff, "Idempotency-Key": "outage-1"}
    )
    assert started.status_code == 201, started.text
    listed = await http.get("/v1/assessments", headers=staff)
    assert [a["person_id"] for a in listed.json()["items"]] == [start_body()["person_id"]]
