"""Tamper findings over HTTP: list them, and acknowledge one with a reason.

- `GET /v1/tamper-findings`: auditor, operations; the caller's council only.
- `POST /v1/tamper-findings/{finding_id}/acknowledge {"reason": ...}`: auditor only, of the
  finding's council (another council's finding is 404, as if it did not exist); records
  TamperAcknowledged. A finding is acknowledged once (409 after that).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from contracts.events import ChainSubject, TamperDifference, Text
from contracts.vocabulary import Role
from servicekit.app import runtime_from
from servicekit.auth import CurrentActor, require_role
from servicekit.pagination import Cursor, CursorCodec, Limit, Page, next_page
from services.audit import tamper

FINDING_READERS = (Role.AUDITOR, Role.OPERATIONS)

FINDING_CURSOR = CursorCodec[tuple[datetime, str]](("at", datetime), ("id", str))
"""Findings are listed in (detected_at, finding_id) order."""

router = APIRouter(prefix="/v1", tags=["audit"])


class TamperFindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    finding_id: str
    council: str
    chain: str = Field(description="Whose chain: a person's id, policy:<council> or tamper:….")
    first_bad_seq: int = Field(description="The position of the first bad event as stored.")
    first_bad_event_id: str | None = Field(description="The event stored there, if any.")
    difference: TamperDifference
    reason: str
    quarantined_events: int = Field(description="Stored rows kept as evidence (not served).")
    replay_id: str
    detected_by: str
    detected_at: datetime
    acknowledged: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement: str | None = Field(description="Why the auditor closed it.")

    @classmethod
    def of(cls, finding: tamper.Finding) -> TamperFindingOut:
        return cls.model_validate(
            {**finding.__dict__, "acknowledged": not finding.open}, from_attributes=False
        )


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(description="Why the finding may be closed; it is recorded.")


@router.get(
    "/tamper-findings",
    response_model=Page[TamperFindingOut],
    summary="Chains a replay found altered, rebuilt from the log, and whether acknowledged",
)
async def list_tamper_findings(
    request: Request,
    actor: CurrentActor,
    acknowledged: Annotated[
        bool | None, Query(description="false: the open ones only; true: the closed ones.")
    ] = None,
    chain: Annotated[ChainSubject | None, Query(description="One chain's findings.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TamperFindingOut]:
    require_role(actor, *FINDING_READERS)
    found = await tamper.list_findings(
        uow=runtime_from(request).uow(),
        council=actor.council,
        acknowledged=acknowledged,
        chain=chain,
        after=FINDING_CURSOR.decode(cursor),
        limit=limit + 1,
    )
    page, next_cursor = next_page(
        found, limit, lambda last: FINDING_CURSOR.encode((last.detected_at, last.finding_id))
    )
    return Page[TamperFindingOut](
        items=[TamperFindingOut.of(f) for f in page], next_cursor=next_cursor
    )


@router.post(
    "/tamper-findings/{finding_id}/acknowledge",
    response_model=TamperFindingOut,
    summary="An auditor closes a tamper finding with a reason (TamperAcknowledged)",
)
async def acknowledge_tamper_finding(
    finding_id: Annotated[UUID, PathParam()],
    body: AcknowledgeRequest,
    request: Request,
    actor: CurrentActor,
) -> TamperFindingOut:
    require_role(actor, Role.AUDITOR)
    finding = await tamper.acknowledge(
        uow=runtime_from(request).uow(),
        council=actor.council,
        finding_id=str(finding_id),
        reason=body.reason,
        by=actor.as_record(),
    )
    return TamperFindingOut.of(finding)
