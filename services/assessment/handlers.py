"""Assessment's use cases: each opens the unit of work, loads, lets the domain decide, commits.

State and the events it causes are written in one transaction (the outbox); nothing is
published from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from contracts.policy import Policy, PolicyBook, Questionnaire
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.domain import (
    Answers,
    Assessment,
    AssessmentNotFound,
    Caller,
    NoPolicyForCouncil,
    PolicyVersionUnavailable,
    StartAssessment,
    Status,
    ValidateAssessment,
    start,
)


def _now() -> datetime:
    return datetime.now(UTC)


def policy_in_force(*, policies: PolicyBook, caller: Caller, council: str) -> Policy:
    """The council's policy in force today; another council's answers not found."""
    if caller.council != council:
        raise NoPolicyForCouncil(council)
    try:
        return policies.current(council, on=_now().date())
    except KeyError as err:
        raise NoPolicyForCouncil(council) from err


def _questionnaire(policies: PolicyBook, assessment: Assessment) -> Questionnaire:
    try:
        return policies.version(assessment.policy_version).questionnaire
    except KeyError as err:
        raise PolicyVersionUnavailable(assessment.policy_version) from err


async def _load(uow: AssessmentUnitOfWork, assessment_id: UUID, caller: Caller) -> Assessment:
    assessment = await uow.assessments.get(assessment_id)
    if assessment is None:
        raise AssessmentNotFound(assessment_id)
    assessment.ensure_visible_to(caller)
    return assessment


async def _save(uow: AssessmentUnitOfWork, assessment: Assessment) -> None:
    await uow.assessments.save(assessment)
    uow.emit_all(assessment.pop_events())
    await uow.commit()


async def start_assessment(
    *, uow: AssessmentUnitOfWork, policies: PolicyBook, caller: Caller, command: StartAssessment
) -> Assessment:
    """Start a draft assessment under the caller's council policy in force."""
    policy = policy_in_force(policies=policies, caller=caller, council=caller.council)
    async with uow:
        assessment = start(
            assessment_id=uuid.uuid4(), command=command, caller=caller, policy=policy, now=_now()
        )
        await uow.assessments.add(assessment)
        uow.emit_all(assessment.pop_events())
        await uow.commit()
    return assessment


async def answer_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    answers: Answers,
    expected_version: int | None,
) -> Assessment:
    """Replace the answers of a draft or returned assessment."""
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        assessment.answer(
            answers,
            questionnaire=_questionnaire(policies, assessment),
            caller=caller,
            now=_now(),
            expected_version=expected_version,
        )
        await _save(uow, assessment)
    return assessment


async def submit_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    expected_version: int | None,
) -> Assessment:
    """Submit a fully answered assessment for validation."""
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        assessment.submit(
            questionnaire=_questionnaire(policies, assessment),
            caller=caller,
            now=_now(),
            expected_version=expected_version,
        )
        await _save(uow, assessment)
    return assessment


async def validate_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    command: ValidateAssessment,
    expected_version: int | None,
) -> Assessment:
    """Validate a submitted assessment: confirm or adjust levels, record risk views."""
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        assessment.validate(
            command,
            questionnaire=_questionnaire(policies, assessment),
            caller=caller,
            now=_now(),
            expected_version=expected_version,
        )
        await _save(uow, assessment)
    return assessment


async def return_assessment(
    *,
    uow: AssessmentUnitOfWork,
    caller: Caller,
    assessment_id: UUID,
    reasons: Sequence[str],
    expected_version: int | None,
) -> Assessment:
    """Return a submitted assessment to the person with reasons."""
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        assessment.return_for_changes(
            reasons, caller=caller, now=_now(), expected_version=expected_version
        )
        await _save(uow, assessment)
    return assessment


async def get_assessment(
    *, uow: AssessmentUnitOfWork, caller: Caller, assessment_id: UUID
) -> Assessment:
    """One assessment the caller may see."""
    async with uow:
        return await _load(uow, assessment_id, caller)


async def list_assessments(
    *,
    uow: AssessmentUnitOfWork,
    caller: Caller,
    person_id: str | None,
    status: Status | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Assessment]:
    """The caller's council's assessments, newest first (a person sees only their own)."""
    if caller.is_citizen:
        if person_id is not None and person_id != caller.person_id:
            return []
        person_id = caller.person_id
    async with uow:
        return await uow.assessments.list(
            council=caller.council, person_id=person_id, status=status, limit=limit, after=after
        )
