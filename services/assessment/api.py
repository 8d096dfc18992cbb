"""Assessment HTTP API (versioned under /v1): thin routes over the handlers."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from contracts.events import ValidationBasis
from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, Role
from rules.eligibility import GoingAhead
from servicekit.app import runtime_from, service_app
from servicekit.auth import CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    convert_valid_rows,
)
from servicekit.csvfile import CSV_REQUEST_BODY, csv_body
from servicekit.pagination import Cursor, Limit, Page, next_page
from servicekit.problems import problem
from servicekit.runtime import ServiceRuntime
from services.assessment import consumer, financial, handlers
from services.assessment.db import AssessmentUnitOfWork, metadata
from services.assessment.domain import Status
from services.assessment.personal_api import IDENTITIES_PATH, Privacy, PrivacySettings
from services.assessment.personal_api import router as personal_data_router
from services.assessment.schemas import (
    ASSESSMENT_CURSOR,
    AnswersRequest,
    AssessmentConversionRow,
    AssessmentOut,
    AssessmentSummary,
    CouncilSlug,
    PeopleImportOut,
    QuestionnaireOut,
    ReturnRequest,
    StartAssessmentRequest,
    ValidateRequest,
    VersionRequest,
    answers_in,
    assessment_out,
    start_command,
    summary_fields,
    validation_in,
)
from services.assessment.settings import Settings

# Checked before any record is read, so a refusal for the role says nothing about the id.
ASSESSMENT_WRITERS = (*sorted(CITIZEN_ROLES), *sorted(PRACTITIONER_ROLES))
VALIDATORS = tuple(sorted(PRACTITIONER_ROLES))

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["assessment"])

Runtime = Annotated[ServiceRuntime[AssessmentUnitOfWork], Depends(runtime_from)]


# --- routes -------------------------------------------------------------------------------


@router.get(
    "/questionnaires/{council}",
    response_model=QuestionnaireOut,
    summary="The council's questionnaire in force: domains, levels, points",
)
async def get_questionnaire(
    council: CouncilSlug, actor: CurrentActor, runtime: Runtime
) -> QuestionnaireOut:
    policy = handlers.policy_in_force(policies=runtime.policies, caller=actor, council=council)
    return QuestionnaireOut.of(policy)


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
        caller=actor,
        command=start_command(body),
        personal_details=body.personal_details.to_domain() if body.personal_details else None,
        keys=privacy.keys,
    )
    return assessment_out(assessment)


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
        caller=actor,
        assessment_id=assessment_id,
        answers=answers_in(body),
        expected_version=body.expected_version,
    )
    return assessment_out(assessment)


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
        caller=actor,
        assessment_id=assessment_id,
        expected_version=body.expected_version if body else None,
    )
    return assessment_out(assessment)


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
        caller=actor,
        assessment_id=assessment_id,
        command=validation_in(body),
        expected_version=body.expected_version,
    )
    return assessment_out(assessment)


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
        caller=actor,
        assessment_id=assessment_id,
        reasons=body.reasons,
        expected_version=body.expected_version,
    )
    return assessment_out(assessment)


@router.get(
    "/assessments/{assessment_id}",
    response_model=AssessmentOut,
    summary="One assessment: answers, validation, both views of each risk, history",
)
async def get_assessment(
    assessment_id: UUID, actor: CurrentActor, runtime: Runtime
) -> AssessmentOut:
    assessment = await handlers.get_assessment(
        uow=runtime.uow(), caller=actor, assessment_id=assessment_id
    )
    return assessment_out(assessment)


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
        caller=actor,
        person_id=person_id,
        status=status,
        limit=limit + 1,
        after=ASSESSMENT_CURSOR.decode(cursor),
    )
    page, next_cursor = next_page(
        items, limit, lambda last: ASSESSMENT_CURSOR.encode((last.created_at, last.assessment_id))
    )
    return Page[AssessmentSummary](
        items=[AssessmentSummary(**summary_fields(a)) for a in page], next_cursor=next_cursor
    )


# --- import from a legacy system ------------------------------------------------------------

IMPORT_PEOPLE_PATH = "/v1/imports/people"


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
        caller=actor,
        content=await csv_body(request),
        keys=privacy.keys,
    )
    out = PeopleImportOut.of(report)
    if not report.accepted:
        return problem(
            422,
            "PeopleRowsRefused",
            f"{len(report.rejected)} problem(s) in the file; nobody was imported",
            extensions=out.model_dump(mode="json"),
        )
    return out


# --- bulk conversion ------------------------------------------------------------------------


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
    caller = actor

    async def assess_and_validate(
        uow: AssessmentUnitOfWork, row: AssessmentConversionRow
    ) -> dict[str, Any]:
        validated = await handlers.convert_assessment(
            uow=uow,
            policies=runtime.policies,
            caller=caller,
            start=start_command(row.start),
            personal_details=(
                row.start.personal_details.to_domain() if row.start.personal_details else None
            ),
            keys=privacy.keys,
            answers=answers_in(row.answers),
            validation=replace(
                validation_in(row.validation),
                going_ahead=GoingAhead(
                    ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM,
                    f"Already supported; converted from the council's previous system "
                    f"(conversion row {row.ref})",
                ),
            ),
        )
        return {
            "person_id": validated.person_id,
            "assessment_id": str(validated.assessment_id),
            "status": validated.status.value,
        }

    return await convert_valid_rows(
        runtime,
        scope=f"conversion assessments {actor.council}",
        raw_rows=body.rows,
        model=AssessmentConversionRow,
        apply=assess_and_validate,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = service_app(
        settings,
        metadata=metadata,
        unit_of_work=AssessmentUnitOfWork,
        consumers=consumer.register,
        title="PB Journey: assessment",
        description=(
            "Self-assessment questionnaires, practitioner validation and return for changes; "
            "the person's sealed personal details, subject access and erasure."
        ),
        routers=[router, personal_data_router, financial.router],
        upload_paths=frozenset({IMPORT_PEOPLE_PATH}),
        personal_data_paths=frozenset({IDENTITIES_PATH, financial.FINANCIAL_ASSESSMENT_PATH}),
    )
    app.state.privacy = PrivacySettings(
        keys=settings.master_key(), retention_today=settings.retention_today
    )
    return app
