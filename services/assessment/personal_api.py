"""Assessment's personal data routes (docs/privacy.md): correction, subject access, the
identities a statutory return needs, and erasure at the end of retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request

from servicekit import clock
from servicekit.app import runtime_from
from servicekit.auth import CurrentActor
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import ensure_may_see_subject_access, holdings
from services.assessment import handlers
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.schemas import (
    ErasureOut,
    IdentitiesIn,
    IdentitiesOut,
    IdentityOut,
    PersonalDataOut,
    PersonalDetailsIn,
    PersonalDetailsRecordOut,
    PersonIdPath,
    SubjectAccessOut,
)
from services.assessment.sealing import MasterKey

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
        return self.retention_today or clock.today()


def _privacy(request: Request) -> PrivacySettings:
    privacy: PrivacySettings = request.app.state.privacy
    return privacy


Privacy = Annotated[PrivacySettings, Depends(_privacy)]


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
        caller=actor,
        person_id=person_id,
        details=body.to_domain(),
    )
    return PersonalDetailsRecordOut.of(person_id, record)


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
        uow=runtime.uow(), keys=privacy.keys, caller=actor, person_id=person_id
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
        personal_details=PersonalDataOut.of(held),
        tables=tables or {},
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
        uow=runtime.uow(), keys=privacy.keys, caller=actor, person_ids=body.person_ids
    )
    log.info("identities_opened_for_return", people=len(found), actor=actor.as_record())
    return IdentitiesOut(items=[IdentityOut.of(person_id, details) for person_id, details in found])


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
        caller=actor,
        person_id=person_id,
        today=privacy.today(),
    )
    return ErasureOut.of(event)
