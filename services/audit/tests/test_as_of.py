"""A person's budget as the record held it at an instant, and as in force on a date.

`known_at` (or its older name `as_of`) reads what had been recorded by an instant, to the
microsecond the events carry; `in_force_on` keeps the facts that had taken effect by a date
(an agreement's signing date, an instalment's due date; the day it was recorded for a fact
whose event carries no date, such as a budget).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Envelope
from servicekit.testing import Tokens, deliver, running
from services.audit.api import create_app
from services.audit.settings import Settings
from services.audit.tests.journey import Journey, at

AUDITOR = ("auditor", "lancashire")


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def budget(
    client: httpx.AsyncClient, tokens: Tokens, raw_query: str = "", **params: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/people/p-1/budget{raw_query}", params=params, headers=tokens.headers(*AUDITOR)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def recorded(envelope: Envelope, when: datetime, **business: Any) -> Envelope:
    """The event recorded at `when`, its business dates as given."""
    return replace(envelope, time=when, event=envelope.event.model_copy(update=business))


def weekly(body: dict[str, Any]) -> int:
    current: int = body["current_budget"]["weekly_pence"]
    return current


async def test_as_of_an_instant_between_two_revisions_made_the_same_day(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    journey = Journey("p-1")
    morning = datetime(2025, 6, 2, 9, 15, tzinfo=UTC)
    afternoon = datetime(2025, 6, 2, 14, 30, 0, 250_000, tzinfo=UTC)
    for event in [
        journey.started(at("2025-05-19")),
        journey.validated(at("2025-05-26")),
        journey.budget(morning, weekly_pence=25_000),
        journey.budget(afternoon, revision=2, weekly_pence=41_500, reason="2:1 support needed"),
    ]:
        await deliver(app, event)

    noon = await budget(client, tokens, known_at="2025-06-02T12:00:00Z")
    assert weekly(noon) == 25_000 and [b["revision"] for b in noon["budgets"]] == [1]
    assert noon["known_at"] == "2025-06-02T12:00:00Z" and noon["as_of"] == "2025-06-02"
    just_before = await budget(client, tokens, known_at="2025-06-02T14:30:00.249999Z")
    assert weekly(just_before) == 25_000
    at_the_instant = await budget(client, tokens, known_at="2025-06-02T14:30:00.250000Z")
    assert weekly(at_the_instant) == 41_500
    # The same instant in another offset; `+` left unencoded in the query arrives as a space.
    in_paris = await budget(client, tokens, "?as_of=2025-06-02T16:30:00.25+02:00")
    assert weekly(in_paris) == 41_500
    # A bare date still means the end of that UTC day.
    assert weekly(await budget(client, tokens, as_of="2025-06-02")) == 41_500
    assert (await budget(client, tokens, as_of="2025-06-01"))["budgets"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?known_at=2025-06-02T12:00:00", "known_at"),  # no offset: which 12:00?
        ("?known_at=2025-06-02T25:00:00Z", "known_at"),
        ("?as_of=02/06/2025", "as_of"),
        ("?as_of=2025-06-02&known_at=2025-06-02T12:00:00Z", "known_at"),
        ("?in_force_on=2025-06-02T12:00:00Z", "in_force_on"),
        ("?in_force_on=01/02/2026", "in_force_on"),
        ("?known_at=0001-01-01T00:00:00%2B05:00", "known_at"),
    ],
)
async def test_a_malformed_instant_or_date_is_422_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, query: str, field: str
) -> None:
    await deliver(app, Journey("p-1").started(at("2025-05-19")))
    response = await client.get(f"/v1/people/p-1/budget{query}", headers=tokens.headers(*AUDITOR))
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    if field != "known_at" or "as_of" not in query:
        assert "YYYY-MM-DD" in response.json()["detail"]


async def test_what_we_knew_on_1_march_about_the_budget_in_force_on_1_february(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    journey = Journey("p-1")
    for event in [
        journey.started(at("2025-12-01")),
        journey.validated(at("2025-12-08")),
        journey.budget(at("2026-01-05"), weekly_pence=25_000),
        journey.signed_off(at("2026-01-12")),
        journey.deployed(at("2026-01-19")),
        # Signed on 19 January; the signed copy was recorded on 2 February.
        recorded(
            journey.agreement(at("2026-01-19")), at("2026-02-02"), signed_on=date(2026, 1, 19)
        ),
        journey.scheduled(at("2026-01-26")),
        journey.paid(at("2026-01-26"), number=1),
        # Revised on 20 February: a budget's event carries no date, so it counts from then.
        journey.budget(at("2026-02-20"), revision=2, weekly_pence=41_500, reason="2:1 support"),
        # Due on 1 February, released late on 10 March.
        recorded(
            journey.paid(at("2026-03-10"), number=2, amount_pence=92_000),
            at("2026-03-10"),
            due_on=date(2026, 2, 1),
        ),
    ]:
        await deliver(app, event)

    then = await budget(client, tokens, in_force_on="2026-02-01", known_at="2026-03-01T00:00:00Z")
    assert then["in_force_on"] == "2026-02-01" and then["known_at"] == "2026-03-01T00:00:00Z"
    assert weekly(then) == 25_000 and [b["revision"] for b in then["budgets"]] == [1]
    assert then["deployment"]["agreement_signed_on"] == "2026-01-19"
    assert (then["payments"]["count"], then["payments"]["total_pence"]) == (1, 96_000)

    now = await budget(client, tokens, in_force_on="2026-02-01")
    assert weekly(now) == 25_000  # revision 2 took effect later
    assert [p["due_on"] for p in now["payments"]["items"]] == ["2026-01-26", "2026-02-01"]
    assert now["payments"]["total_pence"] == 96_000 + 92_000

    # Known on 1 March, whatever its effect date: revision 2 is the current budget.
    known = await budget(client, tokens, known_at="2026-03-01T00:00:00Z")
    assert weekly(known) == 41_500 and known["payments"]["count"] == 1
    # Recorded only on 2 February: on 1 February nobody knew the agreement was signed.
    before = await budget(client, tokens, in_force_on="2026-02-01", as_of="2026-02-01")
    assert before["deployment"]["agreement_signed_on"] is None
