"""Assessment HTTP API (versioned under /v1): thin routes over the handlers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from contracts.events import OtherFundingSource, PersonId, ShortText, Text
from contracts.money import Pence
from contracts.vocabulary import (
    CITIZEN_ROLES,
    PRACTITIONER_ROLES,
    AgeBand,
    ClientGroup,
    CompletedBy,
    Role,
)
from servicekit.app import RequestPence, create_service_app, runtime_from
from servicekit.auth import Actor, CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    ConversionRef,
    Row,
    convert_rows,
    merge_refused,
    validated_rows,
)
from servicekit.csvfile import CSV_REQUEST_BODY, ImportReportOut, csv_body
from servicekit.errors import InvalidCursor
from servicekit.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import ensure_may_see_subject_access, holdings
from services.assessment import consumer, financial, handlers
from services.assessment.db import AssessmentUnitOfWork, metadata
from services.assessment.domain import (
    Answers,
    Assessment,
    Caller,
    FundingLine,
    LevelChange,
    PersonsRisk,
    PractitionersRisk,
    RaisedBy,
    StartAssessment,
    Status,
    ValidateAssessment,
)
from services.assessment.personal import DATE_OF_BIRTH, PersonalDetails
from services.assessment.sealing import MasterKey
from services.assessment.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_DOMAINS = 50
UK_POSTCODE = r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$"
MAX_ITEMS = 50

# Checked before any record is read, so a refusal for the role says nothing about the id.
ASSESSMENT_WRITERS = (*sorted(CITIZEN_ROLES), *sorted(PRACTITIONER_ROLES))
VALIDATORS = tuple(sorted(PRACTITIONER_ROLES))

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["assessment"])

Runtime = Annotated[ServiceRuntime[AssessmentUnitOfWork], Depends(runtime_from)]
SEALED_TABLES = frozenset({"person_keys", "personal_details"})
"""Answered opened (personal_details) or not at all (a wrapped key is no one's business)."""


@dataclass(frozen=True)
class PrivacySettings:
    keys: MasterKey
    retention_today: date | None = None

    def today(self) -> date:
        return self.retention_today or datetime.now(UTC).date()


def _privacy(request: Request) -> PrivacySettings:
    privacy: PrivacySettings = request.app.state.privacy
    return privacy


Privacy = Annotated[PrivacySettings, Depends(_privacy)]
DomainKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LevelNumber = Annotated[int, Field(strict=True)]
Version = Annotated[int, Field(strict=True, ge=1)]
CouncilSlug = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
PersonIdPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


def _caller(actor: Actor) -> Caller:
    return Caller(
        record=actor.as_record(), role=actor.role, council=actor.council, person_id=actor.person_id
    )


# --- request bodies -----------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PersonalDetailsIn(_Request):
    """Who the person is. Sealed on arrival under their own data key: no event, column,
    topic or log line ever shows these in the clear (docs/privacy.md)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    date_of_birth: Annotated[date, DATE_OF_BIRTH] | None = Field(
        None,
        description="Gives the age band events carry; never leaves this service unsealed. "
        + DATE_OF_BIRTH.describe(),
    )
    nhs_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")] | None = Field(
        None, description="Ten digits, no spaces; the last is the modulus 11 check digit."
    )
    address: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    postcode: Annotated[str, StringConstraints(pattern=UK_POSTCODE)] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{6,20}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,189}$")] | None = None

    def to_domain(self) -> PersonalDetails:
        return PersonalDetails(
            name=self.name,
            date_of_birth=self.date_of_birth,
            nhs_number=self.nhs_number,
            address=self.address,
            postcode=self.postcode.upper() if self.postcode else None,
            phone=self.phone,
            email=self.email,
        )


class StartAssessmentRequest(_Request):
    person_id: PersonId
    client_group: ClientGroup
    completed_by: CompletedBy
    team: ShortText
    key_worker_id: ShortText
    age_band: AgeBand | None = Field(
        None,
        description="Required unless a date of birth is given now or was recorded before; "
        "then it is derived from it, and a band given as well must agree (422 if not).",
    )
    community_based: StrictBool = True
    personal_details: PersonalDetailsIn | None = Field(
        None,
        description="Optional: recorded sealed if not on record yet (or if they changed).",
    )


class FundingIn(_Request):
    source: OtherFundingSource
    weekly_pence: RequestPence


class PersonsRiskIn(_Request):
    risk_id: ShortText
    description: Text
    persons_view: Text | None = None


class AnswersRequest(_Request):
    domains: dict[DomainKey, LevelNumber] = Field(
        default_factory=dict,
        max_length=MAX_DOMAINS,
        description="Domain key -> the level the person chose; partial while drafting.",
    )
    significant_informal_support: StrictBool
    needs_24_7: StrictBool
    carer_support_weekly_pence: RequestPence = Field(
        0, description="Weekly value of the support the carer agrees to go on giving."
    )
    other_funding: list[FundingIn] = Field(default_factory=list, max_length=20)
    outcomes: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    risks: list[PersonsRiskIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    expected_version: Version | None = None


class VersionRequest(_Request):
    expected_version: Version | None = None


class AdjustmentIn(_Request):
    domain: DomainKey
    level: LevelNumber
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""


class PractitionersRiskIn(_Request):
    risk_id: ShortText
    practitioners_view: Text
    flagged: StrictBool
    description: Text | None = Field(
        None, description="Required for a risk the person did not record."
    )


class ValidateRequest(_Request):
    adjustments: list[AdjustmentIn] = Field(default_factory=list, max_length=MAX_DOMAINS)
    risks: list[PractitionersRiskIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    carer_support_weekly_pence: RequestPence | None = None
    other_funding: list[FundingIn] | None = Field(None, max_length=20)
    significant_informal_support: StrictBool | None = None
    needs_24_7: StrictBool | None = None
    expected_version: Version | None = None


class ReturnRequest(_Request):
    reasons: list[Text] = Field(min_length=1, max_length=20)
    expected_version: Version | None = None


# --- responses ----------------------------------------------------------------------------


class LevelOut(BaseModel):
    level: int
    statement: str
    points: int


class DomainOut(BaseModel):
    key: str
    name: str
    high_from_level: int
    levels: list[LevelOut]


class QuestionnaireOut(BaseModel):
    council: str
    name: str
    policy_version: str
    effective_from: date
    client_groups: list[ClientGroup]
    max_points: int
    domains: list[DomainOut]


class FundingOut(BaseModel):
    source: OtherFundingSource
    weekly_pence: Pence


class AnswersOut(BaseModel):
    domains: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: Pence
    other_funding: list[FundingOut]
    outcomes: list[str]


class RiskOut(BaseModel):
    risk_id: str
    description: str
    raised_by: RaisedBy
    persons_view: str | None
    practitioners_view: str | None
    flagged: bool


class AdjustmentOut(BaseModel):
    domain: str
    original_level: int
    validated_level: int
    reason: str


class ValidationOut(BaseModel):
    domain_levels: dict[str, int]
    adjustments: list[AdjustmentOut]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: Pence
    other_funding: list[FundingOut]
    validated_by: str
    validated_at: datetime


class HistoryOut(BaseModel):
    action: str
    status: Status
    at: datetime
    by: str
    reasons: list[str]


class AssessmentSummary(BaseModel):
    assessment_id: UUID
    council: str
    person_id: str
    status: Status
    version: int
    policy_version: str
    client_group: ClientGroup
    completed_by: CompletedBy
    team: str
    key_worker_id: str
    created_at: datetime
    updated_at: datetime


class AssessmentOut(AssessmentSummary):
    age_band: AgeBand
    community_based: bool
    created_by: str
    answers: AnswersOut
    risks: list[RiskOut]
    validation: ValidationOut | None
    return_reasons: list[str]
    history: list[HistoryOut]


def _funding_out(lines: tuple[FundingLine, ...]) -> list[FundingOut]:
    return [FundingOut(source=f.source, weekly_pence=f.weekly_pence) for f in lines]


def _summary_fields(a: Assessment) -> dict[str, Any]:
    return {
        "assessment_id": a.assessment_id,
        "council": a.council,
        "person_id": a.person_id,
        "status": a.status,
        "version": a.version,
        "policy_version": a.policy_version,
        "client_group": a.client_group,
        "completed_by": a.completed_by,
        "team": a.team,
        "key_worker_id": a.key_worker_id,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }


def _assessment_out(a: Assessment) -> AssessmentOut:
    v = a.validation
    return AssessmentOut(
        **_summary_fields(a),
        age_band=a.age_band,
        community_based=a.community_based,
        created_by=a.created_by,
        answers=AnswersOut(
            domains=dict(a.answers.domains),
            significant_informal_support=a.answers.significant_informal_support,
            needs_24_7=a.answers.needs_24_7,
            carer_support_weekly_pence=a.answers.carer_support_weekly_pence,
            other_funding=_funding_out(a.answers.other_funding),
            outcomes=list(a.answers.outcomes),
        ),
        risks=[
            RiskOut(
                risk_id=r.risk_id,
                description=r.description,
                raised_by=r.raised_by,
                persons_view=r.persons_view,
                practitioners_view=r.practitioners_view,
                flagged=r.flagged,
            )
            for r in a.risks
        ],
        validation=(
            ValidationOut(
                domain_levels=dict(v.domain_levels),
                adjustments=[
                    AdjustmentOut(
                        domain=x.domain,
                        original_level=x.original_level,
                        validated_level=x.validated_level,
                        reason=x.reason,
                    )
                    for x in v.adjustments
                ],
                significant_informal_support=v.significant_informal_support,
                needs_24_7=v.needs_24_7,
                carer_support_weekly_pence=v.carer_support_weekly_pence,
                other_funding=_funding_out(v.other_funding),
                validated_by=v.validated_by,
                validated_at=v.validated_at,
            )
            if v
            else None
        ),
        return_reasons=list(a.latest_return_reasons),
        history=[
            HistoryOut(
                action=h.action.value, status=h.status, at=h.at, by=h.by, reasons=list(h.reasons)
            )
            for h in a.history
        ],
    )


def _funding_in(lines: list[FundingIn]) -> tuple[FundingLine, ...]:
    return tuple(FundingLine(f.source, f.weekly_pence) for f in lines)


def _start_command(body: StartAssessmentRequest) -> StartAssessment:
    return StartAssessment(
        person_id=body.person_id,
        client_group=body.client_group,
        completed_by=body.completed_by,
        team=body.team,
        key_worker_id=body.key_worker_id,
        age_band=body.age_band,
        community_based=body.community_based,
    )


def _answers(body: AnswersRequest) -> Answers:
    return Answers(
        domains=dict(body.domains),
        significant_informal_support=body.significant_informal_support,
        needs_24_7=body.needs_24_7,
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=_funding_in(body.other_funding),
        outcomes=tuple(body.outcomes),
        risks=tuple(PersonsRisk(r.risk_id, r.description, r.persons_view) for r in body.risks),
    )


def _validation(body: ValidateRequest) -> ValidateAssessment:
    return ValidateAssessment(
        adjustments=tuple(LevelChange(a.domain, a.level, a.reason) for a in body.adjustments),
        risks=tuple(
            PractitionersRisk(r.risk_id, r.practitioners_view, r.flagged, r.description)
            for r in body.risks
        ),
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=(None if body.other_funding is None else _funding_in(body.other_funding)),
        significant_informal_support=body.significant_informal_support,
        needs_24_7=body.needs_24_7,
    )


def _cursor_position(cursor: str | None) -> tuple[datetime, UUID] | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position["created_at"]), UUID(position["id"])
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidCursor() from err


# --- routes -------------------------------------------------------------------------------


@router.get(
    "/questionnaires/{council}",
    response_model=QuestionnaireOut,
    summary="The council's questionnaire in force: domains, levels, points",
)
async def get_questionnaire(
    council: CouncilSlug, actor: CurrentActor, runtime: Runtime
) -> QuestionnaireOut:
    policy = handlers.policy_in_force(
        policies=runtime.policies, caller=_caller(actor), council=council
    )
    return QuestionnaireOut(
        council=policy.council,
        name=policy.name,
        policy_version=policy.policy_version,
        effective_from=policy.effective_from,
        client_groups=list(policy.client_groups),
        max_points=policy.questionnaire.max_points,
        domains=[
            DomainOut(
                key=d.key,
                name=d.name,
                high_from_level=d.high_from_level,
                levels=[
                    LevelOut(level=lvl.level, statement=lvl.statement, points=lvl.points)
                    for lvl in d.levels
                ],
            )
            for d in policy.questionnaire.domains
        ],
    )


@router.post(
    "/assessments",
    status_code=201,
    response_model=AssessmentOut,
    summary="Start a draft self-assessment",
)
async def start_assessment(
    body: StartAssessmentRequest, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> AssessmentOut:
    require_role(actor, *ASSESSMENT_WRITERS)
    assessment = await handlers.start_assessment(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        command=_start_command(body),
        personal_details=body.personal_details.to_domain() if body.personal_details else None,
        keys=privacy.keys,
    )
    return _assessment_out(assessment)


@router.put(
    "/assessments/{assessment_id}/answers",
    response_model=AssessmentOut,
    summary="Replace the answers of a draft or returned assessment",
)
async def put_answers(
    assessment_id: UUID, body: AnswersRequest, actor: CurrentActor, runtime: Runtime
) -> AssessmentOut:
    require_role(actor, *ASSESSMENT_WRITERS)
    assessment = await handlers.answer_assessment(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        assessment_id=assessment_id,
        answers=_answers(body),
        expected_version=body.expected_version,
    )
    return _assessment_out(assessment)


@router.post(
    "/assessments/{assessment_id}/submit",
    response_model=AssessmentOut,
    summary="Submit a fully answered assessment for validation",
)
async def submit_assessment(
    assessment_id: UUID,
    actor: CurrentActor,
    runtime: Runtime,
    body: Annotated[VersionRequest | None, Body()] = None,
) -> AssessmentOut:
    require_role(actor, *ASSESSMENT_WRITERS)
    assessment = await handlers.submit_assessment(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        assessment_id=assessment_id,
        expected_version=body.expected_version if body else None,
    )
    return _assessment_out(assessment)


@router.post(
    "/assessments/{assessment_id}/validate",
    response_model=AssessmentOut,
    summary="Validate a submitted assessment (practitioners)",
)
async def validate_assessment(
    assessment_id: UUID, body: ValidateRequest, actor: CurrentActor, runtime: Runtime
) -> AssessmentOut:
    require_role(actor, *VALIDATORS)
    assessment = await handlers.validate_assessment(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        assessment_id=assessment_id,
        command=_validation(body),
        expected_version=body.expected_version,
    )
    return _assessment_out(assessment)


@router.post(
    "/assessments/{assessment_id}/return",
    response_model=AssessmentOut,
    summary="Return a submitted assessment to the person for changes (practitioners)",
)
async def return_assessment(
    assessment_id: UUID, body: ReturnRequest, actor: CurrentActor, runtime: Runtime
) -> AssessmentOut:
    require_role(actor, *VALIDATORS)
    assessment = await handlers.return_assessment(
        uow=runtime.uow(),
        caller=_caller(actor),
        assessment_id=assessment_id,
        reasons=body.reasons,
        expected_version=body.expected_version,
    )
    return _assessment_out(assessment)


@router.get(
    "/assessments/{assessment_id}",
    response_model=AssessmentOut,
    summary="One assessment: answers, validation, both views of each risk, history",
)
async def get_assessment(
    assessment_id: UUID, actor: CurrentActor, runtime: Runtime
) -> AssessmentOut:
    assessment = await handlers.get_assessment(
        uow=runtime.uow(), caller=_caller(actor), assessment_id=assessment_id
    )
    return _assessment_out(assessment)


@router.get(
    "/assessments",
    response_model=Page[AssessmentSummary],
    summary="The council's assessments, newest first (a person sees only their own)",
)
async def list_assessments(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")] = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AssessmentSummary]:
    items = await handlers.list_assessments(
        uow=runtime.uow(),
        caller=_caller(actor),
        person_id=person_id,
        status=status,
        limit=limit + 1,
        after=_cursor_position(cursor),
    )
    page, more = items[:limit], len(items) > limit
    next_cursor = (
        encode_cursor(
            {"created_at": page[-1].created_at.isoformat(), "id": str(page[-1].assessment_id)}
        )
        if more
        else None
    )
    return Page[AssessmentSummary](
        items=[AssessmentSummary(**_summary_fields(a)) for a in page], next_cursor=next_cursor
    )


# --- personal data (docs/privacy.md) --------------------------------------------------------


class PersonalDetailsRecordOut(BaseModel):
    """A record of personal details, without the details: this answer may be stored."""

    person_id: str
    changed: bool = Field(description="False when the details were already on record.")
    details_id: UUID | None = None
    fields: list[str] = Field(default_factory=list)
    correction: bool = False
    recorded_at: datetime | None = None


class PersonalDetailsOut(BaseModel):
    name: str
    date_of_birth: date | None = None
    nhs_number: str | None = None
    address: str | None = None
    postcode: str | None = None
    phone: str | None = None
    email: str | None = None


class DetailsVersionOut(BaseModel):
    details_id: str
    recorded_at: datetime
    recorded_by: str
    correction: bool
    details: PersonalDetailsOut


class PersonalDataOut(BaseModel):
    status: Literal["held", "erased", "none"]
    current: PersonalDetailsOut | None = None
    versions: list[DetailsVersionOut] = Field(default_factory=list)
    erased_on: date | None = None
    erased_by: str | None = None


class SubjectAccessOut(BaseModel):
    service: str
    person_id: str
    council: str
    personal_details: PersonalDataOut
    tables: dict[str, list[dict[str, Any]]]


class ErasureOut(BaseModel):
    person_id: str
    key_id: UUID
    erased_on: date
    erased_by: str
    last_contact_on: date
    retention_years: int
    retention_checked_on: date
    policy_version: str


def _details_out(details: PersonalDetails) -> PersonalDetailsOut:
    return PersonalDetailsOut(**asdict(details))


@router.put(
    "/people/{person_id}/personal-details",
    response_model=PersonalDetailsRecordOut,
    summary="Correct a person's details: sealed and recorded again (the person or practitioners)",
)
async def correct_personal_details(
    person_id: PersonIdPath,
    body: PersonalDetailsIn,
    actor: CurrentActor,
    runtime: Runtime,
    privacy: Privacy,
) -> PersonalDetailsRecordOut:
    record = await handlers.correct_personal_details(
        uow=runtime.uow(),
        keys=privacy.keys,
        caller=_caller(actor),
        person_id=person_id,
        details=body.to_domain(),
    )
    if record is None:
        return PersonalDetailsRecordOut(person_id=person_id, changed=False)
    return PersonalDetailsRecordOut(
        person_id=person_id,
        changed=True,
        details_id=UUID(record.details_id),
        fields=list(record.fields),
        correction=record.correction,
        recorded_at=record.recorded_at,
    )


@router.get(
    "/people/{person_id}/subject-access",
    response_model=SubjectAccessOut,
    summary="Everything assessment holds on one person, personal details opened (subject access)",
)
async def subject_access(
    person_id: PersonIdPath, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> SubjectAccessOut:
    ensure_may_see_subject_access(actor, person_id)
    held = await handlers.personal_data_held(
        uow=runtime.uow(), keys=privacy.keys, caller=_caller(actor), person_id=person_id
    )
    async with runtime.database.sessions() as session:
        tables = await holdings(
            session,
            runtime.metadata,
            council=actor.council,
            person_id=person_id,
            leave_out=SEALED_TABLES,
        )
    if tables is None and held.status == "none":
        raise HTTPException(404, "not found")
    return SubjectAccessOut(
        service="assessment",
        person_id=person_id,
        council=actor.council,
        personal_details=PersonalDataOut(
            status=held.status,
            current=_details_out(held.records[-1][1]) if held.records else None,
            versions=[
                DetailsVersionOut(
                    details_id=record.details_id,
                    recorded_at=record.recorded_at,
                    recorded_by=record.recorded_by,
                    correction=record.correction,
                    details=_details_out(details),
                )
                for record, details in held.records
            ],
            erased_on=held.erased_at.date() if held.erased_at else None,
            erased_by=held.erased_by,
        ),
        tables=tables or {},
    )


MAX_IDENTITIES = 1000


class IdentitiesIn(BaseModel):
    person_ids: list[PersonId] = Field(
        min_length=1,
        max_length=MAX_IDENTITIES,
        description=f"Up to {MAX_IDENTITIES} people, as a return's rows name them.",
    )


class IdentityOut(BaseModel):
    person_id: str
    nhs_number: str | None
    date_of_birth: date | None
    postcode: str | None


class IdentitiesOut(BaseModel):
    items: list[IdentityOut] = Field(
        description="Those of the people asked for whose details are held, in the order "
        "asked; people of another council, never recorded, or erased are left out."
    )


IDENTITIES_PATH = "/v1/people/identities"


@router.post(
    IDENTITIES_PATH.removeprefix("/v1"),
    response_model=IdentitiesOut,
    summary="NHS number, date of birth and postcode of many people, for a statutory return",
)
async def identities(
    body: IdentitiesIn, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> IdentitiesOut:
    found = await handlers.identities_for_return(
        uow=runtime.uow(), keys=privacy.keys, caller=_caller(actor), person_ids=body.person_ids
    )
    log.info("identities_opened_for_return", people=len(found), actor=actor.as_record())
    return IdentitiesOut(
        items=[
            IdentityOut(
                person_id=person_id,
                nhs_number=details.nhs_number,
                date_of_birth=details.date_of_birth,
                postcode=details.postcode,
            )
            for person_id, details in found
        ]
    )


@router.post(
    "/people/{person_id}/erasure",
    response_model=ErasureOut,
    summary="Erase a person's personal data at the end of retention: destroy their data key "
    "(operations)",
)
async def erase_personal_data(
    person_id: PersonIdPath, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> ErasureOut:
    event = await handlers.erase_personal_data(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        person_id=person_id,
        today=privacy.today(),
    )
    return ErasureOut(
        person_id=event.person_id,
        key_id=event.key_id,
        erased_on=event.erased_on,
        erased_by=event.erased_by,
        last_contact_on=event.last_contact_on,
        retention_years=event.retention_years,
        retention_checked_on=event.retention_checked_on,
        policy_version=event.policy_version,
    )


# --- import from a legacy system ------------------------------------------------------------

IMPORT_PEOPLE_PATH = "/v1/imports/people"


class ImportedPersonOut(BaseModel):
    legacy_client_id: str
    person_id: str


class PeopleImportOut(ImportReportOut):
    imported: list[ImportedPersonOut] = Field(description="The people this import created.")
    already_imported: int = Field(description="Rows whose legacy id was imported before.")


@router.post(
    "/imports/people",
    response_model=PeopleImportOut,
    summary="Import people from a CareFirst-style client extract (CSV), all or nothing",
    openapi_extra=CSV_REQUEST_BODY,
    responses={
        422: {"model": PeopleImportOut, "description": "Some rows refused: nobody imported"}
    },
)
async def post_people_import(
    request: Request, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> PeopleImportOut | JSONResponse:
    require_role(actor, Role.OPERATIONS)
    report = await handlers.import_people(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=_caller(actor),
        content=await csv_body(request),
        keys=privacy.keys,
    )
    out = PeopleImportOut(
        accepted=report.accepted,
        lines=report.lines,
        rejected=report.rejected,
        imported=[
            ImportedPersonOut(legacy_client_id=legacy, person_id=person)
            for legacy, person in report.imported
        ],
        already_imported=report.already_imported,
    )
    if not report.accepted:
        return JSONResponse(
            {
                "detail": f"{len(report.rejected)} problem(s) in the file; nobody was imported",
                "error": "PeopleRowsRefused",
                **out.model_dump(mode="json"),
            },
            status_code=422,
        )
    return out


# --- bulk conversion ------------------------------------------------------------------------


class AssessmentConversionRow(_Request):
    """One existing client from the legacy system: the same three steps as a new person."""

    ref: ConversionRef
    start: StartAssessmentRequest
    answers: AnswersRequest
    validation: ValidateRequest


@router.post(
    "/conversions/assessments",
    response_model=ConversionOut,
    summary="Convert existing clients: start, answer, submit and validate each row's assessment",
    description=(
        "Each row (an AssessmentConversionRow: ref, start, answers, validation) goes "
        "through the same use cases as the one-at-a-time routes, as the caller, so each "
        "person gets the same events (AssessmentStarted, AssessmentSubmitted, "
        "AssessmentValidated) and the same rules (only a practitioner may validate). Rows "
        "commit together; a row refused by a rule is rejected with its reason and nothing "
        "of it is written; a ref converted before comes back as already_done."
    ),
)
async def convert_assessments(
    body: ConversionIn, actor: CurrentActor, runtime: Runtime, privacy: Privacy
) -> ConversionOut:
    require_role(actor, *sorted(PRACTITIONER_ROLES))
    caller = _caller(actor)
    rows: list[Row] = []
    valid, refused = validated_rows(body.rows, AssessmentConversionRow)
    for raw, row in valid:

        async def apply(
            uow: AssessmentUnitOfWork, row: AssessmentConversionRow = row
        ) -> dict[str, Any]:
            started = await handlers.start_assessment(
                uow=uow,
                policies=runtime.policies,
                caller=caller,
                command=_start_command(row.start),
                personal_details=(
                    row.start.personal_details.to_domain() if row.start.personal_details else None
                ),
                keys=privacy.keys,
            )
            await handlers.answer_assessment(
                uow=uow,
                policies=runtime.policies,
                caller=caller,
                assessment_id=started.assessment_id,
                answers=_answers(row.answers),
                expected_version=None,
            )
            await handlers.submit_assessment(
                uow=uow,
                policies=runtime.policies,
                caller=caller,
                assessment_id=started.assessment_id,
                expected_version=None,
            )
            validated = await handlers.validate_assessment(
                uow=uow,
                policies=runtime.policies,
                caller=caller,
                assessment_id=started.assessment_id,
                command=_validation(row.validation),
                expected_version=None,
            )
            return {
                "person_id": validated.person_id,
                "assessment_id": str(validated.assessment_id),
                "status": validated.status.value,
            }

        rows.append(Row(ref=row.ref, content=raw, apply=apply))
    out = await convert_rows(runtime, scope=f"conversion assessments {actor.council}", rows=rows)
    return merge_refused(out, refused)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=MIGRATIONS,
        unit_of_work=AssessmentUnitOfWork,
    )
    consumer.register(runtime)
    app = create_service_app(
        runtime=runtime,
        title="PB Journey: assessment",
        description=(
            "Self-assessment questionnaires, practitioner validation and return for changes; "
            "the person's sealed personal details, subject access and erasure."
        ),
        routers=[router, financial.router],
        upload_paths=frozenset({IMPORT_PEOPLE_PATH}),
        personal_data_paths=frozenset({IDENTITIES_PATH}),
    )
    app.state.privacy = PrivacySettings(
        keys=settings.master_key(), retention_today=settings.retention_today
    )
    return app
