"""The projections digest is what it says it is, on SQLite and PostgreSQL: sha256 over one
line per row, table by table in primary-key order, each line the sorted-key JSON of the
row's columns (times as UTC ISO strings with microseconds, dates as ISO dates).

The digest reads SQLite's stored times as text rather than as datetimes; this holds it to
the definition, computed here the plain way from the rows as SQLAlchemy reads them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from servicekit.testing import Tokens, runtime_of
from services.audit.db import DIGEST_TABLES
from services.audit.tests.test_api import digest, log_ready, publish, sql
from services.audit.tests.test_council_keys import digest_of
from tests.test_audit_replay_batches import (  # noqa: F401 (fixtures)
    admin_url,
    applied,
    client,
    database_url,
    interleaved_journeys,
)


def _as_the_line_says(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


async def _digest_by_definition(app: FastAPI, council: str) -> str:
    hasher = hashlib.sha256()
    async with runtime_of(app).database.sessions() as session:
        for table in DIGEST_TABLES:
            hasher.update(f"table {table.name}\n".encode())
            rows = await session.execute(
                sa.select(table)
                .where(table.c.council == council)
                .order_by(*table.primary_key.columns)
            )
            for row in rows.mappings():
                line = {name: _as_the_line_says(row[name]) for name in sorted(row.keys())}
                hasher.update(
                    json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                )
    return hasher.hexdigest()


async def test_the_digest_is_one_sorted_json_line_per_row_on_both_engines(
    client: tuple[FastAPI, httpx.AsyncClient],  # noqa: F811
    tokens: Tokens,
) -> None:
    app, http = client
    await log_ready(app, http)
    events = interleaved_journeys()
    await publish(app, events)
    await applied(http, tokens, len(events))
    # Every kind of value a line holds: a null, a boolean either way, a date, a time.
    await sql(app, "UPDATE audit_people SET community_based = NULL WHERE person_id = 'p-1'")
    await sql(app, "UPDATE audit_people SET community_based = false WHERE person_id = 'p-2'")
    stored = await digest(http, tokens)
    people = await sql(app, "SELECT last_review_completed_on, community_based FROM audit_people")
    assert {row[1] for row in people} >= {None, True, False}
    assert any(row[0] is not None for row in people)
    council = "lancashire"
    assert (await digest_of(http, tokens, council))["digest"] == stored["digest"]
    assert stored["digest"] == await _digest_by_definition(app, council)
