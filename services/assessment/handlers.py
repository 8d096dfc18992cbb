"""Assessment's use cases: each opens the unit of work, loads, lets the domain decide, commits.

State and the events it causes are written in one transaction (the outbox); nothing is
published from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from contracts.policy import Policy, PolicyBook, Questionnaire
from contracts.vocabulary import CompletedBy, Role
from servicekit.csvfile import FileRefused, Rejection, read_rows
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
from services.assessment.imports import (
    MAX_PEOPLE_ROWS,
    PEOPLE_COLUMNS,
    PEOPLE_OPTIONAL,
    ConcurrentImport,
    PeopleFileRefused,
    PersonalDetails,
    PersonRow,
    duplicates,
    parse_person,
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


# --- import from a legacy system ------------------------------------------------------------


@dataclass(frozen=True)
class PeopleImportReport:
    """What an imported extract did: nobody was imported when `rejected` is not empty."""

    lines: int
    imported: list[tuple[str, str]]
    """(legacy client id, new person id) for each person this import created."""
    already_imported: int
    rejected: list[Rejection]

    @property
    def accepted(self) -> bool:
        return not self.rejected


def personal_details_from_row(row: PersonRow) -> PersonalDetails:
    """The one place the extract's personal columns leave the import.

    They are validated (imports.parse_person) and handed here to the start of the
    assessment; until assessments keep sealed personal details they are deliberately
    dropped after this point: not stored, not logged, not on any event.
    """
    return row.personal


def _start_command(row: PersonRow, person_id: str) -> StartAssessment:
    personal_details_from_row(row)  # validated; not kept until they can be sealed
    return StartAssessment(
        person_id=person_id,
        client_group=row.client_group,
        completed_by=CompletedBy.PRACTITIONER,
        team=row.team,
        key_worker_id=row.key_worker_id,
        age_band=row.age_band,
        community_based=row.community_based,
    )


def new_person_id() -> str:
    """An opaque id that says nothing about the person (never derived from the legacy id)."""
    return f"p-{uuid.uuid4().hex[:20]}"


async def import_people(
    *, uow: AssessmentUnitOfWork, policies: PolicyBook, caller: Caller, content: bytes
) -> PeopleImportReport:
    """Start an assessment for every new person in a legacy extract, all or nothing.

    Every row is checked first; one refused row and nobody is imported. Rows whose legacy
    client id was imported before create nothing. The rest are started in one transaction,
    each with its legacy id -> person id mapping, so a failure part-way leaves nothing.
    """
    policy = policy_in_force(policies=policies, caller=caller, council=caller.council)
    try:
        rows = list(read_rows(content, required=PEOPLE_COLUMNS, optional=PEOPLE_OPTIONAL))
    except FileRefused as err:
        raise PeopleFileRefused(str(err)) from err
    if len(rows) > MAX_PEOPLE_ROWS:
        raise PeopleFileRefused(
            f"the file has {len(rows)} rows; split it into files of at most {MAX_PEOPLE_ROWS}"
        )
    today = _now().date()
    rejected: list[Rejection] = []
    people: list[PersonRow] = []
    for row in rows:
        parsed = parse_person(row, today=today, client_groups=frozenset(policy.client_groups))
        if isinstance(parsed, list):
            rejected += parsed
        else:
            people.append(parsed)
    rejected += duplicates(people)
    if rejected:
        rejected.sort(key=lambda r: r.line)
        return PeopleImportReport(len(rows), [], 0, rejected)
    imported: list[tuple[str, str]] = []
    async with uow:
        known = await uow.legacy_people.known(caller.council, [p.legacy_client_id for p in people])
        now = _now()
        for person in people:
            if person.legacy_client_id in known:
                continue
            person_id = new_person_id()
            # Started on the key worker's behalf: the domain lets practitioners start one.
            on_behalf = Caller(
                record=f"{caller.record} (import for key worker {person.key_worker_id})"[:200],
                role=Role.CARE_MANAGER,
                council=caller.council,
            )
            assessment = start(
                assessment_id=uuid.uuid4(),
                command=_start_command(person, person_id),
                caller=on_behalf,
                policy=policy,
                now=now,
            )
            await uow.assessments.add(assessment)
            await uow.legacy_people.add(
                council=caller.council,
                legacy_client_id=person.legacy_client_id,
                person_id=person_id,
                assessment_id=assessment.assessment_id,
                imported_by=caller.record,
            )
            uow.emit_all(assessment.pop_events())
            imported.append((person.legacy_client_id, person_id))
        try:
            await uow.commit()
        except IntegrityError as err:  # the same extract imported twice at once
            raise ConcurrentImport() from err
    return PeopleImportReport(len(rows), imported, len(people) - len(imported), [])
