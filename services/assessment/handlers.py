"""Assessment's use cases: each opens the unit of work, loads, lets the domain decide, commits.

State and the events it causes are written in one transaction (the outbox); nothing is
published from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Envelope
from contracts.events import (
    EligibilityDetermined,
    FinancialAssessmentCompleted,
    PersonalDataErased,
    PersonalDetailsRecorded,
    PolicyAdopted,
)
from contracts.policy import Policy, PolicyBook, Questionnaire
from contracts.vocabulary import AgeBand, CompletedBy, Difficulty, EligibilityOutcome, Role
from rules import eligibility
from servicekit import clock
from servicekit.caller import Caller, asks_for_another_person, person_listed
from servicekit.csvfile import FileRefused, Rejection, read_rows
from servicekit.policies import adopted_policy, policy_for
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.domain import (
    Answers,
    AssessFinances,
    Assessment,
    AssessmentNotFound,
    ChargingInputRefused,
    FinancialPath,
    NoChargingFigures,
    NoEligibilityCriteria,
    NotAllowed,
    PolicyVersionUnavailable,
    QuestionnaireNotFound,
    StartAssessment,
    Status,
    ValidateAssessment,
    charging_changed,
    eligibility_event,
    ensure_may_start,
    ensure_practitioner,
    finances_document,
    finances_from_document,
    financial_assessment_event,
    start,
)
from services.assessment.imports import (
    MAX_PEOPLE_ROWS,
    PEOPLE_COLUMNS,
    PEOPLE_OPTIONAL,
    ConcurrentImport,
    PeopleFileRefused,
    PersonRow,
    duplicates,
    parse_person,
)
from services.assessment.personal import (
    FinancialRecord,
    NoPersonalDataHeld,
    PersonalDataAlreadyErased,
    PersonalDetails,
    PersonKey,
    PersonNotFound,
    SealedRecord,
    age_band_on,
    associated_data,
    check_nhs_number,
    ensure_retention_over,
    resolve_age_band,
)
from services.assessment.sealing import MasterKey, new_data_key, seal, unseal

log = structlog.get_logger(__name__)


def policy_in_force(*, policies: PolicyBook, caller: Caller, council: str) -> Policy:
    """The council's policy in force today; another council's answers not found."""
    if caller.council != council:
        raise QuestionnaireNotFound(council)
    return policy_for(policies, council)


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
    await uow.commit()


async def start_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    command: StartAssessment,
    personal_details: PersonalDetails | None = None,
    keys: MasterKey | None = None,
) -> Assessment:
    """Start a draft assessment under the caller's council policy in force.

    Personal details given here are sealed and recorded unless the same ones are on record
    already; the age band comes from the date of birth, given now or recorded before.
    """
    policy = policy_in_force(policies=policies, caller=caller, council=caller.council)
    ensure_may_start(caller, command.person_id)
    now = clock.now()
    async with uow:
        key: PersonKey | None = None
        on_record: PersonalDetails | None = None
        if personal_details is not None or command.age_band is None:
            key, on_record = await _details_on_record(
                uow, _need(keys), caller.council, command.person_id
            )
        details = personal_details.over(on_record) if personal_details else on_record
        command = replace(
            command,
            age_band=resolve_age_band(
                command.age_band, details.date_of_birth if details else None, now.date()
            ),
        )
        assessment = start(
            assessment_id=uuid.uuid4(), command=command, caller=caller, policy=policy, now=now
        )
        await uow.assessments.add(assessment)
        if details is not None and details != on_record:
            await _record_details(
                uow,
                _need(keys),
                caller=caller,
                person_id=command.person_id,
                details=details,
                key=key,
                correction=on_record is not None,
                assessment_id=assessment.assessment_id,
                age_band=command.age_band,
                now=now,
            )
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
        _answer(assessment, policies, caller, answers, expected_version)
        await _save(uow, assessment)
    return assessment


def _answer(
    assessment: Assessment,
    policies: PolicyBook,
    caller: Caller,
    answers: Answers,
    expected_version: int | None,
) -> None:
    assessment.answer(
        answers,
        questionnaire=_questionnaire(policies, assessment),
        caller=caller,
        now=clock.now(),
        expected_version=expected_version,
    )


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
        _submit(assessment, policies, caller, expected_version)
        await _save(uow, assessment)
    return assessment


def _submit(
    assessment: Assessment, policies: PolicyBook, caller: Caller, expected_version: int | None
) -> None:
    assessment.submit(
        questionnaire=_questionnaire(policies, assessment),
        caller=caller,
        now=clock.now(),
        expected_version=expected_version,
    )


async def validate_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    command: ValidateAssessment,
    expected_version: int | None,
) -> Assessment:
    """Validate a submitted assessment: confirm or adjust levels, record risk views.

    Only for eligible needs, or with a recorded reason to go ahead without an eligible
    determination (the domain asks rules.eligibility.validation_basis).
    """
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        _validate(assessment, policies, caller, command, expected_version)
        await _save(uow, assessment)
    return assessment


def _validate(
    assessment: Assessment,
    policies: PolicyBook,
    caller: Caller,
    command: ValidateAssessment,
    expected_version: int | None,
) -> None:
    now = clock.now()
    in_force = policy_for(policies, assessment.council, on=now.date()).eligibility
    assessment.validate(
        command,
        questionnaire=_questionnaire(policies, assessment),
        caller=caller,
        now=now,
        eligibility_in_force=eligibility.criteria_in_force(in_force, now.date()),
        expected_version=expected_version,
    )


async def convert_assessment(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    start: StartAssessment,
    personal_details: PersonalDetails | None,
    keys: MasterKey | None,
    answers: Answers,
    validation: ValidateAssessment,
) -> Assessment:
    """A converted client's assessment started, answered, submitted and validated: the four
    use cases' own steps, in their order, by the caller, so it records the same events under
    the same rules. The assessment they start is the one the later steps change, so it is
    written twice (added, then saved once) rather than loaded and saved again at each step
    (three loads of three statements each and three saves per converted client). In the
    conversion's batch a row refused at a later step leaves nothing, its start included."""
    assessment = await start_assessment(
        uow=uow,
        policies=policies,
        caller=caller,
        command=start,
        personal_details=personal_details,
        keys=keys,
    )
    async with uow:
        uow.track(assessment)  # as a load would: what the next steps record is collected
        _answer(assessment, policies, caller, answers, expected_version=None)
        _submit(assessment, policies, caller, expected_version=None)
        _validate(assessment, policies, caller, validation, expected_version=None)
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
            reasons, caller=caller, now=clock.now(), expected_version=expected_version
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
    if asks_for_another_person(caller, person_id):
        return []
    async with uow:
        return await uow.assessments.list(
            council=caller.council,
            person_id=person_listed(caller, person_id),
            status=status,
            limit=limit,
            after=after,
        )


# --- personal data (docs/privacy.md) --------------------------------------------------------


def _need(keys: MasterKey | None) -> MasterKey:
    if keys is None:
        raise RuntimeError("personal details need the master key: pass keys=settings.master_key()")
    return keys


def _data_key(keys: MasterKey, key: PersonKey) -> bytes:
    assert key.wrapped_key is not None
    return keys.unwrap(key.wrapped_key, associated_data(key.council, key.person_id, key.key_id))


def _open_record(data_key: bytes, record: SealedRecord) -> PersonalDetails:
    return PersonalDetails.from_document(
        unseal(
            data_key,
            record.sealed_details,
            associated_data(record.council, record.person_id, record.details_id),
        )
    )


async def _details_on_record(
    uow: AssessmentUnitOfWork, keys: MasterKey, council: str, person_id: str
) -> tuple[PersonKey | None, PersonalDetails | None]:
    """The person's key and their latest details, opened; (key, None) when none or erased."""
    key = await uow.people.key(council, person_id)
    if key is None or key.wrapped_key is None:
        return key, None
    records = await uow.people.records(council, person_id)
    if not records:
        return key, None
    return key, _open_record(_data_key(keys, key), records[-1])


async def _record_details(
    uow: AssessmentUnitOfWork,
    keys: MasterKey,
    *,
    caller: Caller,
    person_id: str,
    details: PersonalDetails,
    key: PersonKey | None,
    correction: bool,
    assessment_id: UUID | None,
    age_band: AgeBand | None,
    now: datetime,
) -> SealedRecord:
    """Seal the details under the person's data key (made now if they have none) and emit."""
    council = caller.council
    if key is not None and key.erased_at is not None:
        raise PersonalDataAlreadyErased(key.erased_at.date())
    if details.nhs_number is not None:
        check_nhs_number(details.nhs_number)
    if details.date_of_birth is not None:
        age_band = age_band_on(details.date_of_birth, now.date())
    if key is None:
        data_key = new_data_key()
        key_id = str(uuid.uuid4())
        key = PersonKey(
            council=council,
            person_id=person_id,
            key_id=key_id,
            wrapped_key=keys.wrap(data_key, associated_data(council, person_id, key_id)),
            created_at=now,
        )
        await uow.people.add_key(key)
    else:
        data_key = _data_key(keys, key)
    details_id = str(uuid.uuid4())
    record = SealedRecord(
        details_id=details_id,
        council=council,
        person_id=person_id,
        key_id=key.key_id,
        sealed_details=seal(
            data_key, details.as_document(), associated_data(council, person_id, details_id)
        ),
        fields=tuple(details.given),
        correction=correction,
        recorded_at=now,
        recorded_by=caller.record,
    )
    await uow.people.add_record(record)
    uow.emit(
        PersonalDetailsRecorded(
            person_id=person_id,
            council=council,
            details_id=UUID(details_id),
            assessment_id=assessment_id,
            key_id=UUID(key.key_id),
            sealed_details=record.sealed_details,
            fields=list(record.fields),
            correction=correction,
            age_band=age_band,
            recorded_by=caller.record,
        )
    )
    return record


def _ensure_may_correct(caller: Caller, person_id: str) -> None:
    if caller.is_citizen:
        if caller.person_id != person_id:
            raise PersonNotFound(person_id)
        return
    if not caller.is_practitioner:
        raise NotAllowed(
            f"a {caller.role.value} may not change personal details; the person, their "
            "representative or a practitioner can"
        )


async def correct_personal_details(
    *,
    uow: AssessmentUnitOfWork,
    keys: MasterKey,
    caller: Caller,
    person_id: str,
    details: PersonalDetails,
) -> SealedRecord | None:
    """Replace the person's details with these (a new sealed record); None if unchanged."""
    _ensure_may_correct(caller, person_id)
    now = clock.now()
    async with uow:
        known = await uow.assessments.list(
            council=caller.council, person_id=person_id, status=None, limit=1, after=None
        )
        if not known:
            raise PersonNotFound(person_id)
        key, on_record = await _details_on_record(uow, keys, caller.council, person_id)
        if on_record == details:
            return None
        record = await _record_details(
            uow,
            keys,
            caller=caller,
            person_id=person_id,
            details=details,
            key=key,
            correction=on_record is not None,
            assessment_id=None,
            age_band=None,
            now=now,
        )
        await uow.commit()
    return record


@dataclass(frozen=True)
class PersonalDataHeld:
    """The personal details part of a subject access answer, opened."""

    status: str  # "held", "erased" or "none"
    records: list[tuple[SealedRecord, PersonalDetails]]
    erased_at: datetime | None = None
    erased_by: str | None = None


def ensure_may_see_subject_access(caller: Caller, person_id: str) -> None:
    """The person or their representative, or operations, who answer such requests."""
    if caller.is_citizen:
        if caller.person_id != person_id:
            raise PersonNotFound(person_id)
        return
    if caller.role is not Role.OPERATIONS:
        raise NotAllowed(
            f"a {caller.role.value} may not read a subject access export; the person, their "
            "representative or operations can"
        )


async def personal_data_held(
    *, uow: AssessmentUnitOfWork, keys: MasterKey, caller: Caller, person_id: str
) -> PersonalDataHeld:
    """Every version of the person's details, opened, or the fact of their erasure."""
    async with uow:
        key = await uow.people.key(caller.council, person_id)
        if key is None:
            return PersonalDataHeld(status="none", records=[])
        if key.wrapped_key is None:
            return PersonalDataHeld(
                status="erased", records=[], erased_at=key.erased_at, erased_by=key.erased_by
            )
        data_key = _data_key(keys, key)
        records = await uow.people.records(caller.council, person_id)
        return PersonalDataHeld(
            status="held", records=[(r, _open_record(data_key, r)) for r in records]
        )


# Who compiles statutory returns: the roles that may download the CLD extract from audit.
RETURN_COMPILERS = frozenset({Role.AUDITOR, Role.OPERATIONS, Role.TEAM_MANAGER})


async def identities_for_return(
    *, uow: AssessmentUnitOfWork, keys: MasterKey, caller: Caller, person_ids: list[str]
) -> list[tuple[str, PersonalDetails]]:
    """The latest details of those of these people the caller's council holds, opened.

    For the identifying fields of a statutory return (the CLD's NHS number, date of
    birth and postcode): audit, which builds the return from events, never holds them.
    People with nothing on record, of another council, or erased are left out.
    """
    if caller.role not in RETURN_COMPILERS:
        raise NotAllowed(
            f"a {caller.role.value} may not open people's details for a return; an auditor, "
            "operations or a team manager can"
        )
    found: list[tuple[str, PersonalDetails]] = []
    async with uow:
        for person_id in dict.fromkeys(person_ids):
            _, details = await _details_on_record(uow, keys, caller.council, person_id)
            if details is not None:
                found.append((person_id, details))
    return found


async def erase_personal_data(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    person_id: str,
    today: date,
) -> PersonalDataErased:
    """Destroy the person's data key once the council's retention period has ended."""
    if caller.role is not Role.OPERATIONS:
        raise NotAllowed(f"a {caller.role.value} may not erase personal data; operations can")
    now = clock.now()
    async with uow:
        key = await uow.people.key(caller.council, person_id)
        if key is None:
            # Another council's person, or one this council never assessed, is not found
            # (as everywhere else); a person of ours without details has nothing to erase.
            known = await uow.assessments.list(
                council=caller.council, person_id=person_id, status=None, limit=1, after=None
            )
            if not known:
                raise PersonNotFound(person_id)
            raise NoPersonalDataHeld(person_id)
        if key.erased_at is not None:
            raise PersonalDataAlreadyErased(key.erased_at.date())
        last_contact = (await uow.people.last_contact(caller.council, person_id)) or key.created_at
        policy = policy_in_force(policies=policies, caller=caller, council=caller.council)
        ensure_retention_over(
            last_contact=last_contact.date(),
            years=policy.retention_years,
            today=today,
            policy_version=policy.policy_version,
        )
        await uow.people.erase(caller.council, person_id, at=now, by=caller.record)
        event = PersonalDataErased(
            person_id=person_id,
            council=caller.council,
            key_id=UUID(key.key_id),
            erased_on=now.date(),
            erased_by=caller.record,
            last_contact_on=last_contact.date(),
            retention_years=policy.retention_years,
            retention_checked_on=today,
            policy_version=policy.policy_version,
        )
        uow.emit(event)
        await uow.commit()
    await uow.people.scrub_freed_space()
    return event


async def record_contact(
    *, uow: AssessmentUnitOfWork, council: str, person_id: str, at: datetime
) -> None:
    """An event about the person from any service: the retention period starts again."""
    await uow.people.touch(council, person_id, at)


async def record_contacts(*, uow: AssessmentUnitOfWork, events: Sequence[Envelope]) -> None:
    """record_contact for many events at once: each person's latest time among them,
    written with one statement per kind of change (the state one at a time would leave)."""
    latest: dict[str, dict[str, datetime]] = {}
    for envelope in events:
        people = latest.setdefault(envelope.event.council, {})
        person_id = envelope.event.person_id
        if person_id not in people or people[person_id] < envelope.time:
            people[person_id] = envelope.time
    for council, people in latest.items():
        await uow.people.touch_all(council, people)


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
    """The one place the extract's personal columns leave the import: to be sealed.

    They are validated by imports.parse_person, then sealed under the person's own key as
    any personal details given at the start of an assessment (docs/privacy.md); nothing
    else keeps, logs or sends them.
    """
    legacy = row.personal
    return PersonalDetails(
        name=f"{legacy.forename} {legacy.surname}",
        date_of_birth=legacy.date_of_birth,
        nhs_number=legacy.nhs_number,
        postcode=legacy.postcode,
    )


def _start_command(row: PersonRow, person_id: str) -> StartAssessment:
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
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    content: bytes,
    keys: MasterKey,
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
    today = clock.today()
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
        now = clock.now()
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
            await _record_details(
                uow,
                keys,
                caller=on_behalf,
                person_id=person_id,
                details=personal_details_from_row(person),
                key=None,
                correction=False,
                assessment_id=assessment.assessment_id,
                age_band=person.age_band,
                now=now,
            )
            await uow.legacy_people.add(
                council=caller.council,
                legacy_client_id=person.legacy_client_id,
                person_id=person_id,
                assessment_id=assessment.assessment_id,
                imported_by=caller.record,
            )
            imported.append((person.legacy_client_id, person_id))
        try:
            await uow.commit()
        except IntegrityError as err:  # the same extract imported twice at once
            raise ConcurrentImport() from err
    return PeopleImportReport(len(rows), imported, len(people) - len(imported), [])


# --- Care Act eligibility and the financial assessment (docs/charging.md) --------------------


async def determine_eligibility(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    needs_from_impairment_or_illness: bool,
    outcomes: Mapping[EligibilityOutcome, Sequence[Difficulty]],
    significant_impact_on_wellbeing: bool,
) -> EligibilityDetermined:
    """Record whether the person's needs meet the eligibility criteria, as the rules decide."""
    ensure_practitioner(caller, "determine eligibility")
    on = clock.today()
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        policy = policy_for(policies, assessment.council, on=on)
        if policy.eligibility is None:
            raise NoEligibilityCriteria(policy, on)
        try:
            decision = eligibility.determine(
                needs_from_impairment_or_illness=needs_from_impairment_or_illness,
                outcomes=outcomes,
                significant_impact_on_wellbeing=significant_impact_on_wellbeing,
                rules=policy.eligibility,
                on=on,
            )
        except eligibility.CriteriaNotInForce as err:
            raise NoEligibilityCriteria(policy, on) from err
        event = eligibility_event(
            assessment=assessment,
            determination_id=uuid.uuid4(),
            decision=decision,
            needs_from_impairment_or_illness=needs_from_impairment_or_illness,
            significant_impact_on_wellbeing=significant_impact_on_wellbeing,
            caller=caller,
            on=on,
            policy=policy,
        )
        await uow.assessments.add_determination(
            assessment.assessment_id,
            eligibility.DeterminationOnRecord(event.determination_id, event.eligible, on),
            clock.now(),
        )
        uow.emit(event)
        await uow.commit()
    return event


async def assess_finances(
    *,
    uow: AssessmentUnitOfWork,
    policies: PolicyBook,
    caller: Caller,
    assessment_id: UUID,
    command: AssessFinances,
    keys: MasterKey | None = None,
) -> FinancialAssessmentCompleted:
    """Record a financial assessment under the council's charging figures in force today.

    A full one's inputs are kept sealed under the person's data key, so an uprating can
    recalculate it under a newly adopted policy's figures.
    """
    on = clock.today()
    async with uow:
        assessment = await _load(uow, assessment_id, caller)
        policy = policy_for(policies, assessment.council, on=on)
        if policy.charging is None:
            raise NoChargingFigures(policy)
        event = financial_assessment_event(
            assessment=assessment,
            financial_assessment_id=uuid.uuid4(),
            command=command,
            figures=policy.charging,
            caller=caller,
            on=on,
            policy=policy,
        )
        document = finances_document(command) if command.path is FinancialPath.FULL else None
        await _keep_financial_record(uow, _need(keys), event, document)
        uow.emit(event)
        if document is not None:
            await _restate_under_adopted_versions(
                uow, _need(keys), policies, assessment, document, event, policy
            )
        await uow.commit()
    return event


async def _restate_under_adopted_versions(
    uow: AssessmentUnitOfWork,
    keys: MasterKey,
    policies: PolicyBook,
    assessment: Assessment,
    document: dict[str, Any],
    event: FinancialAssessmentCompleted,
    used: Policy,
) -> None:
    """An uprating adopted already but not yet in force (April's, adopted in March) restates
    an assessment made meanwhile from its date, as it did those made before its adoption."""
    for later in policies.versions(assessment.council):
        if later.effective_from <= event.assessed_on or not charging_changed(used, later):
            continue
        restated = _uprating_event(
            assessment, document, later, later.effective_from, event.financial_assessment_id
        )
        if restated is None:
            return
        await _keep_financial_record(uow, keys, restated, document)
        uow.emit(restated)
        event, used = restated, later


def _uprating_event(
    assessment: Assessment,
    document: dict[str, Any],
    policy: Policy,
    on: date,
    restating: UUID,
) -> FinancialAssessmentCompleted | None:
    """The assessment again under a policy's charging figures, from `on`; None (and a log
    line) when its inputs do not fit them, so nobody is charged on a guess."""
    if policy.charging is None:
        return None
    try:
        return financial_assessment_event(
            assessment=assessment,
            financial_assessment_id=uuid.uuid4(),
            command=finances_from_document(document),
            figures=policy.charging,
            caller=Caller(record=UPRATING, role=Role.FINANCE, council=policy.council),
            on=on,
            policy=policy,
            uprating_of=restating,
        )
    except ChargingInputRefused as err:  # e.g. the circumstance has no MIG any more
        log.warning(
            "uprating_refused",
            council=policy.council,
            financial_assessment_id=str(restating),
            error=str(err),
        )
        return None


async def _keep_financial_record(
    uow: AssessmentUnitOfWork,
    keys: MasterKey,
    event: FinancialAssessmentCompleted,
    document: dict[str, Any] | None,
) -> None:
    """Keep the assessment for a later uprating, its inputs sealed under the person's key.

    A person whose data was erased keeps no inputs: there is nothing to recalculate from.
    """
    council, person_id = event.council, event.person_id
    key_id: str | None = None
    sealed: str | None = None
    record_id = str(event.financial_assessment_id)
    if document is not None:
        key = await uow.people.key(council, person_id)
        if key is None:  # no personal details were given: the person's key starts here
            key_id = str(uuid.uuid4())
            key = PersonKey(
                council=council,
                person_id=person_id,
                key_id=key_id,
                wrapped_key=keys.wrap(new_data_key(), associated_data(council, person_id, key_id)),
                created_at=clock.now(),
            )
            await uow.people.add_key(key)
        if key.wrapped_key is not None:
            key_id = key.key_id
            sealed = seal(
                _data_key(keys, key), document, associated_data(council, person_id, record_id)
            )
    await uow.finances.add(
        FinancialRecord(
            financial_assessment_id=event.financial_assessment_id,
            council=council,
            person_id=person_id,
            assessment_id=event.assessment_id,
            policy_version=event.policy_version,
            applies_from=event.applies_from or event.assessed_on,
            key_id=key_id,
            sealed_inputs=sealed,
            recorded_at=clock.now(),
        )
    )


UPRATING = "system (uprating)"
"""Who an uprating is recorded as assessed by: no person, the adopted policy's figures."""


async def uprate_charges(
    *, uow: AssessmentUnitOfWork, keys: MasterKey, policies: PolicyBook, adopted: PolicyAdopted
) -> list[FinancialAssessmentCompleted]:
    """Recalculate each person's latest full financial assessment under an adopted policy's
    charging figures, from its effective date (or the assessment's own, if later).

    Each restated charge is a new FinancialAssessmentCompleted naming the one it restates
    (`uprating_of`); the earlier one stays as it was. People whose latest assessment
    already used these figures, or was not a full one, or whose data was erased, are left.
    Runs in the consumer's unit of work, which commits it with the inbox row.
    """
    policy = adopted_policy(adopted.policy, adopted.effective_from)
    if policy.charging is None:
        return []
    uprated: list[FinancialAssessmentCompleted] = []
    for record in await uow.finances.latest_per_person(policy.council):
        if record.sealed_inputs is None or record.key_id is None:
            continue
        if not charging_changed(_known(policies, record.policy_version), policy):
            continue
        key = await uow.people.key(record.council, record.person_id)
        assessment = await uow.assessments.get(record.assessment_id)
        if key is None or key.wrapped_key is None or assessment is None:
            continue
        document = unseal(
            _data_key(keys, key),
            record.sealed_inputs,
            associated_data(record.council, record.person_id, str(record.financial_assessment_id)),
        )
        on = max(policy.effective_from, record.applies_from)
        event = _uprating_event(assessment, document, policy, on, record.financial_assessment_id)
        if event is None:
            continue
        await _keep_financial_record(uow, keys, event, document)
        uow.emit(event)
        uprated.append(event)
    return uprated


def _known(policies: PolicyBook, policy_version: str) -> Policy | None:
    try:
        return policies.version(policy_version)
    except KeyError:
        return None
