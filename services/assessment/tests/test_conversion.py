"""Converting a client from the council's previous system: one use case doing what the four
one-at-a-time use cases do (start, answer, submit, validate), on the assessment it starts.

A conversion loads and saves the assessment once rather than at every step; these tests hold
it to the same events, the same stored assessment and the same refusals as the four steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.events import ValidationBasis
from contracts.policy import PolicyBook
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import POLICIES_DIR, outbox_events
from services.assessment.domain import (
    Answers,
    Assessment,
    DomainsUnanswered,
    GoingAhead,
    ValidateAssessment,
)
from services.assessment.handlers import (
    answer_assessment,
    convert_assessment,
    start_assessment,
    submit_assessment,
    validate_assessment,
)
from services.assessment.tests.fakes import FakeAssessmentUnitOfWork
from services.assessment.tests.test_api import answers_body, start_body
from services.assessment.tests.test_domain import CARE_MANAGER, answers, command

POLICIES = PolicyBook.from_directory(POLICIES_DIR)
CONVERTED = ValidateAssessment(
    going_ahead=GoingAhead(ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM, "converted (row 1)")
)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    with clock.using(SettableClock(datetime(2025, 6, 2, 10, tzinfo=UTC))):
        yield


async def four_steps(uow: FakeAssessmentUnitOfWork) -> Assessment:
    started = await start_assessment(
        uow=uow, policies=POLICIES, caller=CARE_MANAGER, command=command()
    )
    steps: dict[str, Any] = {"uow": uow, "policies": POLICIES, "caller": CARE_MANAGER}
    the_one = {**steps, "assessment_id": started.assessment_id, "expected_version": None}
    await answer_assessment(**the_one, answers=answers())
    await submit_assessment(**the_one)
    return await validate_assessment(**the_one, command=CONVERTED)


async def converted(uow: FakeAssessmentUnitOfWork, given: Answers | None = None) -> Assessment:
    return await convert_assessment(
        uow=uow,
        policies=POLICIES,
        caller=CARE_MANAGER,
        start=command(),
        personal_details=None,
        keys=None,
        answers=given or answers(),
        validation=CONVERTED,
    )


def without_ids(value: Any, assessment_id: Any) -> Any:
    """`value` with the assessment's own id (a fresh uuid4 on each side) taken out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.asdict(value)
    else:
        fields = value.model_dump(mode="json")
    return {k: v for k, v in fields.items() if v not in (assessment_id, str(assessment_id))}


async def test_a_conversion_records_the_events_and_the_assessment_the_four_steps_record() -> None:
    one_at_a_time, at_once = FakeAssessmentUnitOfWork(), FakeAssessmentUnitOfWork()
    stepped = await four_steps(one_at_a_time)
    done = await converted(at_once)

    assert [without_ids(e.event, done.assessment_id) for e in at_once.outbox] == [
        without_ids(e.event, stepped.assessment_id) for e in one_at_a_time.outbox
    ]
    assert at_once.event_types == one_at_a_time.event_types
    assert at_once.event_types[0] == "AssessmentStarted"
    assert at_once.event_types[-1] == "AssessmentValidated"
    assert without_ids(done, done.assessment_id) == without_ids(stepped, stepped.assessment_id)
    assert await at_once.assessments.get(done.assessment_id) == done  # saved as it ended


async def test_a_conversion_refused_at_a_later_step_is_refused_as_that_step_refuses_it() -> None:
    uow = FakeAssessmentUnitOfWork()
    with pytest.raises(DomainsUnanswered):
        async with uow.batch():  # as the conversion route runs its rows
            await converted(uow, answers(domains={}))
    assert uow.event_types == []  # not even AssessmentStarted: the row is all or nothing


async def test_a_row_refused_at_submission_writes_nothing_and_the_next_row_converts(
    client: httpx.AsyncClient, app: FastAPI, care_manager: dict[str, str]
) -> None:
    refused = {
        "ref": "conv-unanswered",
        "start": start_body(person_id="P-UNANSWERED"),
        "answers": answers_body(domains={}),
        "validation": {},
    }
    accepted = {
        "ref": "conv-answered",
        "start": start_body(person_id="P-ANSWERED"),
        "answers": answers_body(),
        "validation": {},
    }
    r = await client.post(
        "/v1/conversions/assessments", json={"rows": [refused, accepted]}, headers=care_manager
    )

    assert r.status_code == 200, r.text
    outcomes = {row["ref"]: row for row in r.json()["rows"]}
    assert outcomes["conv-unanswered"]["outcome"] == "rejected", outcomes
    assert outcomes["conv-answered"]["outcome"] == "done", outcomes
    listed = await client.get("/v1/assessments", headers=care_manager)
    assert {a["person_id"] for a in listed.json()["items"]} == {"P-ANSWERED"}
    recorded = [type(e.event).__name__ for e in await outbox_events(app)]
    one_at_a_time = FakeAssessmentUnitOfWork()
    await four_steps(one_at_a_time)
    assert recorded == one_at_a_time.event_types  # the refused row's AssessmentStarted too: none
    assert {e.event.person_id for e in await outbox_events(app)} == {"P-ANSWERED"}
