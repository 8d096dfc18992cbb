"""GET /v1/budgets/{id} answers from the stored revisions without rebuilding the domain's
models, and its answer is the one the models give, byte for byte, to everyone who asks."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from contracts.events import OtherFunding, OtherFundingSource
from contracts.vocabulary import ClientGroup
from servicekit.testing import Tokens, deliver, runtime_of
from services.allocation import api
from services.allocation.db import budget_revisions
from services.allocation.tests.test_api import (
    HIGHEST,
    LOWEST,
    THIRTEEN_POINTS,
    agree,
    budget_of,
    signed_off,
    validated,
)

# What JSON escapes or leaves alone in the text a request may carry: quotes, backslashes,
# tabs and line breaks, accents, a pound sign, an emoji, the line and paragraph separators.
AWKWARD = 'crisis "cover" \\ a\tb\r\nc é £ 😀 \u2028\u2029\ufeff end'
# Every control character, which the API refuses but JSON must still carry if stored.
CONTROL = "".join(map(chr, [*range(32), 127]))


def _through_the_models(_actor: Any, _budget_id: Any, _rows: Any) -> bytes:
    raise msgspec.ValidationError("answer through the models, as before")


async def _both_answers(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    stored = await client.get(url, headers=headers)
    with monkeypatch.context() as patched:
        patched.setattr(api, "budget_json", _through_the_models)
        models = await client.get(url, headers=headers)
    return stored, models


async def _revise(client: httpx.AsyncClient, tokens: Tokens, budget_id: str, **body: Any) -> None:
    r = await client.post(
        f"/v1/budgets/{budget_id}/revisions", json=body, headers=tokens.headers("care_manager")
    )
    assert r.status_code == 201, r.text


async def _budgets_of_every_kind(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> dict[str, tuple[str, str]]:
    """name -> (budget id, council): several revisions in every state, funding netted off,
    a ceiling exception, the panel's separate sitting, a final budget, one never agreed."""
    funding = [
        OtherFunding(source=OtherFundingSource.SUPPORTING_PEOPLE, weekly_pence=2_500),
        OtherFunding(source=OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=4_000),
    ]
    await deliver(app, validated("P-1", carer=15_000, funding=funding))
    await deliver(app, validated("P-2", domain_levels=LOWEST))
    await deliver(
        app,
        validated(
            "B-1", "council_b", domain_levels=THIRTEEN_POINTS, group=ClientGroup.MENTAL_HEALTH
        ),
    )
    await deliver(app, validated("B-2", "council_b", domain_levels={**LOWEST, "staying_safe": 5}))

    revised = (await budget_of(client, tokens, "P-1"))["budget_id"]
    assert (await agree(client, tokens, revised)).status_code == 200
    await _revise(client, tokens, revised, reason=AWKWARD, additional_weekly_pence=1_234)
    await _revise(client, tokens, revised, reason="carer stopped", carer_support_weekly_pence=0)
    assert (await agree(client, tokens, revised)).status_code == 200
    await deliver(app, signed_off(revised, "P-1"))
    await _revise(client, tokens, revised, reason="review: more help at night")

    exception = (await budget_of(client, tokens, "B-1", "council_b"))["budget_id"]
    r = await agree(
        client, tokens, exception, "panel", "council_b", ceiling_exception_reason=AWKWARD
    )
    assert r.status_code == 200, r.text
    separate = (await budget_of(client, tokens, "B-2", "council_b"))["budget_id"]
    assert (await agree(client, tokens, separate, "panel", "council_b")).status_code == 200
    unagreed = (await budget_of(client, tokens, "P-2"))["budget_id"]
    return {
        "revised, final, then revised again": (revised, "lancashire"),
        "ceiling exception": (exception, "council_b"),
        "separate panel sitting": (separate, "council_b"),
        "never agreed": (unagreed, "lancashire"),
    }


def _people_asking(tokens: Tokens, council: str) -> dict[str, dict[str, str]]:
    person = "P-1" if council == "lancashire" else "B-1"
    return {
        "care manager": tokens.headers("care_manager", council),
        "panel": tokens.headers("panel", council),
        "the person": tokens.headers("person", council, person_id=person),
        "another person": tokens.headers("person", council, person_id="P-9"),
        "another council's care manager": tokens.headers("care_manager", "council_c"),
    }


async def test_every_budget_is_answered_as_the_models_answer_it_to_everyone(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets = await _budgets_of_every_kind(app, client, tokens)
    seen: set[int] = set()
    for name, (budget_id, council) in budgets.items():
        for who, headers in _people_asking(tokens, council).items():
            url = f"/v1/budgets/{budget_id}"
            stored, models = await _both_answers(client, monkeypatch, url, headers)
            assert (stored.status_code, stored.content) == (models.status_code, models.content), (
                f"{name}, asked by {who}"
            )
            assert stored.headers["content-type"] == models.headers["content-type"]
            seen.add(stored.status_code)
    assert seen == {200, 404}
    unknown = f"/v1/budgets/{uuid.uuid4()}"
    stored, models = await _both_answers(
        client, monkeypatch, unknown, tokens.headers("care_manager")
    )
    assert (stored.status_code, stored.content) == (models.status_code, models.content)


async def test_the_answer_shows_every_revision_and_what_was_stored_in_it(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    budgets = await _budgets_of_every_kind(app, client, tokens)
    budget_id, _ = budgets["revised, final, then revised again"]
    body = (
        await client.get(f"/v1/budgets/{budget_id}", headers=tokens.headers("care_manager"))
    ).json()
    assert [(r["revision"], r["state"]) for r in body["revisions"]] == [
        (1, "agreed"),
        (2, "superseded"),
        (3, "agreed"),
        (4, "final"),
        (5, "awaiting_agreement"),
    ]
    assert body["revisions"][1]["reason"] == AWKWARD
    assert body["revisions"][1]["inputs"]["additional_weekly_pence"] == 1_234
    assert [f["source"] for f in body["revisions"][0]["inputs"]["other_funding"]] == [
        "supporting_people",
        "independent_living_fund",
    ]
    mine = await client.get(
        f"/v1/budgets/{budget_id}", headers=tokens.headers("person", person_id="P-1")
    )
    assert (mine.json()["status"], [r["revision"] for r in mine.json()["revisions"]]) == (
        "final",
        [1, 3, 4],
    )


async def test_revisions_stored_without_fields_added_since_or_with_any_text_answer_the_same(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver(app, validated("P-1", domain_levels=HIGHEST))
    budget_id = (await budget_of(client, tokens, "P-1"))["budget_id"]
    row = budget_revisions.c
    async with runtime_of(app).database.engine.begin() as connection:
        inputs, explanation = (
            await connection.execute(sa.select(row.inputs, row.explanation))
        ).one()
        await connection.execute(
            budget_revisions.update().values(
                reason=CONTROL,
                inputs={k: v for k, v in inputs.items() if k != "additional_reason"},
                explanation=[
                    {k: v for k, v in line.items() if k != "detail"} for line in explanation
                ],
            )
        )
    url = f"/v1/budgets/{budget_id}"
    stored, models = await _both_answers(client, monkeypatch, url, tokens.headers("care_manager"))
    assert stored.status_code == 200
    assert stored.content == models.content
    current = stored.json()["current_revision"]
    assert (current["reason"], current["inputs"]["additional_reason"]) == (CONTROL, None)
