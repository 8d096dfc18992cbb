"""Assessment's wire models: what the API takes and answers, and how assessments map to them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from contracts.events import (
    EligibilityBasis,
    OtherFundingSource,
    PersonalDataErased,
    PersonId,
    ShortText,
    Text,
    ValidationBasis,
)
from contracts.money import Pence
from contracts.policy import Policy
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy
from rules.eligibility import MIN_EXPLANATION_CHARS, GoingAhead
from servicekit.app import RequestPence
from servicekit.bulk import ConversionRef
from servicekit.csvfile import ImportReportOut
from servicekit.pagination import CursorCodec
from services.assessment.domain import (
    Answers,
    Assessment,
    FundingLine,
    LevelChange,
    PersonsRisk,
    PractitionersRisk,
    RaisedBy,
    StartAssessment,
    Status,
    ValidateAssessment,
)
from services.assessment.handlers import PeopleImportReport, PersonalDataHeld
from services.assessment.personal import DATE_OF_BIRTH, PersonalDetails, SealedRecord

MAX_DOMAINS = 50
UK_POSTCODE = r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$"
MAX_ITEMS = 50


DomainKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LevelNumber = Annotated[int, Field(strict=True)]
Version = Annotated[int, Field(strict=True, ge=1)]
CouncilSlug = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
PersonIdPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


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


class GoingAheadReason(StrEnum):
    """The closed list of reasons to validate without an eligible determination."""

    URGENT_NEED = ValidationBasis.URGENT_NEED.value
    CONVERTED_FROM_LEGACY_SYSTEM = ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM.value
    DETERMINATION_PENDING_REVIEW = ValidationBasis.DETERMINATION_PENDING_REVIEW.value


class GoingAheadIn(_Request):
    reason: GoingAheadReason = Field(
        description="urgent_need: Care Act 2014 s.19(3), needs met before or without a "
        "determination; converted_from_legacy_system: a person already supported, brought "
        "over from the previous system; determination_pending_review: support goes ahead "
        "while a determination is reviewed."
    )
    explanation: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description=f"Why, in words (at least {MIN_EXPLANATION_CHARS} characters)."
    )


class ValidateRequest(_Request):
    adjustments: list[AdjustmentIn] = Field(default_factory=list, max_length=MAX_DOMAINS)
    risks: list[PractitionersRiskIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    carer_support_weekly_pence: RequestPence | None = None
    other_funding: list[FundingIn] | None = Field(None, max_length=20)
    significant_informal_support: StrictBool | None = None
    needs_24_7: StrictBool | None = None
    going_ahead_without_eligibility: GoingAheadIn | None = Field(
        None,
        description="Needed only when the latest eligibility determination did not find the "
        "needs eligible, or none was recorded: a budget is calculated only for eligible "
        "needs, or for a reason recorded here.",
    )
    expected_version: Version | None = None


class ReturnRequest(_Request):
    reasons: list[Text] = Field(min_length=1, max_length=20)
    expected_version: Version | None = None


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

    @classmethod
    def of(cls, policy: Policy) -> QuestionnaireOut:
        return cls(
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
    eligibility: EligibilityBasis | None = Field(
        description="What the validation rested on: an eligible determination or a recorded "
        "reason; none on one validated before this was required."
    )


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


class DeterminationOut(BaseModel):
    """The latest eligibility determination: what the gate before validation reads."""

    determination_id: UUID
    eligible: bool
    determined_on: date


class AssessmentOut(AssessmentSummary):
    age_band: AgeBand
    community_based: bool
    created_by: str
    answers: AnswersOut
    risks: list[RiskOut]
    validation: ValidationOut | None
    eligibility: DeterminationOut | None = Field(
        description="The latest eligibility determination; validation needs it to have found "
        "the needs eligible, or a reason to go ahead without (docs/charging.md)."
    )
    return_reasons: list[str]
    history: list[HistoryOut]


def funding_out(lines: tuple[FundingLine, ...]) -> list[FundingOut]:
    return [FundingOut(source=f.source, weekly_pence=f.weekly_pence) for f in lines]


def summary_fields(a: Assessment) -> dict[str, Any]:
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


def assessment_out(a: Assessment) -> AssessmentOut:
    v = a.validation
    return AssessmentOut(
        **summary_fields(a),
        age_band=a.age_band,
        community_based=a.community_based,
        created_by=a.created_by,
        answers=AnswersOut(
            domains=dict(a.answers.domains),
            significant_informal_support=a.answers.significant_informal_support,
            needs_24_7=a.answers.needs_24_7,
            carer_support_weekly_pence=a.answers.carer_support_weekly_pence,
            other_funding=funding_out(a.answers.other_funding),
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
        eligibility=(
            DeterminationOut(
                determination_id=a.eligibility.determination_id,
                eligible=a.eligibility.eligible,
                determined_on=a.eligibility.determined_on,
            )
            if a.eligibility
            else None
        ),
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
                other_funding=funding_out(v.other_funding),
                validated_by=v.validated_by,
                validated_at=v.validated_at,
                eligibility=v.eligibility,
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


def funding_in(lines: list[FundingIn]) -> tuple[FundingLine, ...]:
    return tuple(FundingLine(f.source, f.weekly_pence) for f in lines)


def start_command(body: StartAssessmentRequest) -> StartAssessment:
    return StartAssessment(
        person_id=body.person_id,
        client_group=body.client_group,
        completed_by=body.completed_by,
        team=body.team,
        key_worker_id=body.key_worker_id,
        age_band=body.age_band,
        community_based=body.community_based,
    )


def answers_in(body: AnswersRequest) -> Answers:
    return Answers(
        domains=dict(body.domains),
        significant_informal_support=body.significant_informal_support,
        needs_24_7=body.needs_24_7,
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=funding_in(body.other_funding),
        outcomes=tuple(body.outcomes),
        risks=tuple(PersonsRisk(r.risk_id, r.description, r.persons_view) for r in body.risks),
    )


def validation_in(body: ValidateRequest) -> ValidateAssessment:
    return ValidateAssessment(
        adjustments=tuple(LevelChange(a.domain, a.level, a.reason) for a in body.adjustments),
        risks=tuple(
            PractitionersRisk(r.risk_id, r.practitioners_view, r.flagged, r.description)
            for r in body.risks
        ),
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=(None if body.other_funding is None else funding_in(body.other_funding)),
        significant_informal_support=body.significant_informal_support,
        needs_24_7=body.needs_24_7,
        going_ahead=(
            GoingAhead(ValidationBasis(g.reason.value), g.explanation)
            if (g := body.going_ahead_without_eligibility)
            else None
        ),
    )


ASSESSMENT_CURSOR = CursorCodec[tuple[datetime, UUID]](("created_at", datetime), ("id", UUID))


class PersonalDetailsRecordOut(BaseModel):
    """A record of personal details, without the details: this answer may be stored."""

    person_id: str
    changed: bool = Field(description="False when the details were already on record.")
    details_id: UUID | None = None
    fields: list[str] = Field(default_factory=list)
    correction: bool = False
    recorded_at: datetime | None = None

    @classmethod
    def of(cls, person_id: str, record: SealedRecord | None) -> PersonalDetailsRecordOut:
        if record is None:
            return cls(person_id=person_id, changed=False)
        return cls(
            person_id=person_id,
            changed=True,
            details_id=UUID(record.details_id),
            fields=list(record.fields),
            correction=record.correction,
            recorded_at=record.recorded_at,
        )


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

    @classmethod
    def of(cls, held: PersonalDataHeld) -> PersonalDataOut:
        return cls(
            status=held.status,
            current=details_out(held.records[-1][1]) if held.records else None,
            versions=[
                DetailsVersionOut(
                    details_id=record.details_id,
                    recorded_at=record.recorded_at,
                    recorded_by=record.recorded_by,
                    correction=record.correction,
                    details=details_out(details),
                )
                for record, details in held.records
            ],
            erased_on=held.erased_at.date() if held.erased_at else None,
            erased_by=held.erased_by,
        )


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

    @classmethod
    def of(cls, event: PersonalDataErased) -> ErasureOut:
        return cls(
            person_id=event.person_id,
            key_id=event.key_id,
            erased_on=event.erased_on,
            erased_by=event.erased_by,
            last_contact_on=event.last_contact_on,
            retention_years=event.retention_years,
            retention_checked_on=event.retention_checked_on,
            policy_version=event.policy_version,
        )


def details_out(details: PersonalDetails) -> PersonalDetailsOut:
    return PersonalDetailsOut(**asdict(details))


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

    @classmethod
    def of(cls, person_id: str, details: PersonalDetails) -> IdentityOut:
        return cls(
            person_id=person_id,
            nhs_number=details.nhs_number,
            date_of_birth=details.date_of_birth,
            postcode=details.postcode,
        )


class IdentitiesOut(BaseModel):
    items: list[IdentityOut] = Field(
        description="Those of the people asked for whose details are held, in the order "
        "asked; people of another council, never recorded, or erased are left out."
    )


class ImportedPersonOut(BaseModel):
    legacy_client_id: str
    person_id: str


class PeopleImportOut(ImportReportOut):
    imported: list[ImportedPersonOut] = Field(description="The people this import created.")
    already_imported: int = Field(description="Rows whose legacy id was imported before.")

    @classmethod
    def of(cls, report: PeopleImportReport) -> PeopleImportOut:
        return cls(
            accepted=report.accepted,
            lines=report.lines,
            rejected=report.rejected,
            imported=[
                ImportedPersonOut(legacy_client_id=legacy, person_id=person)
                for legacy, person in report.imported
            ],
            already_imported=report.already_imported,
        )


class AssessmentConversionRow(_Request):
    """One existing client from the legacy system: the same three steps as a new person."""

    ref: ConversionRef
    start: StartAssessmentRequest
    answers: AnswersRequest
    validation: ValidateRequest
