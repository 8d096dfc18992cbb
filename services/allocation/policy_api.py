"""Council policy routes on allocation (/v1/policies): adopt, list, revise budgets, what-if.

Allocation owns the RAS, so it records adoptions (PolicyAdopted, carrying the whole
document) and revises budgets under the policy in force. The what-if reads the event log
the service is attached to with a throwaway consumer group, exactly as `pbj whatif run`
does, and writes nothing.
"""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.policy import Policy
from contracts.vocabulary import STAFF_ROLES, Role
from servicekit import clock
from servicekit.app import runtime_from
from servicekit.auth import CurrentActor, require_role
from servicekit.dates import RecordDate
from servicekit.policies import AdoptedRow, parse_policy, policy_for
from servicekit.runtime import ServiceRuntime
from services.allocation import handlers
from services.allocation.db import AllocationUnitOfWork, adopted_policies
from services.allocation.schemas import BUDGET_CURSOR, budgets_after
from whatif.cohort import read_cohort
from whatif.compare import Comparison
from whatif.errors import WhatIfError
from whatif.html import render_html
from whatif.report import RunInfo, summary, write_csv_to
from whatif.runner import compare_on_log

router = APIRouter(prefix="/v1", tags=["policies"])

Runtime = Annotated[ServiceRuntime[AllocationUnitOfWork], Depends(runtime_from)]

ADOPTING_ROLES = (Role.OPERATIONS,)
WHATIF_ROLES = (Role.AUDITOR, Role.OPERATIONS)
MAX_REVISION_BATCH = 500


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdoptionRequest(_Request):
    policy: dict[str, Any] = Field(
        description="The policy document, in the format of policies/<council>.yaml (as JSON)."
    )
    effective_from: RecordDate = Field(
        description="YYYY-MM-DD, today or later and at most five years ahead: new "
        "computations from this date use it."
    )


class RevisionBatchRequest(_Request):
    expected_policy_version: str | None = Field(
        None,
        max_length=100,
        description="Refuse (409) unless this council/version is the policy in force today.",
    )
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the last batch.")
    limit: int = Field(200, ge=1, le=MAX_REVISION_BATCH, description="Budgets per batch.")


class WhatIfRequest(_Request):
    policy: dict[str, Any] = Field(
        description="The proposed policy document, in the format of policies/<council>.yaml."
    )


class WhatIfFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


class PolicyOut(BaseModel):
    council: str
    version: str
    policy_version: str
    name: str
    effective_from: date
    source: str = Field(description="'file' (policies/) or 'adopted' (PolicyAdopted).")
    in_force: bool = Field(description="The version new computations use today.")
    adopted_by: str | None = None
    adopted_at: datetime | None = None
    content_sha256: str | None = None


class PolicyList(BaseModel):
    items: list[PolicyOut]


class RevisionBatchOut(BaseModel):
    policy_version: str
    checked: int = Field(description="Budgets looked at in this batch.")
    issued: int = Field(description="Revised and issued at once (BudgetIssued).")
    awaiting_agreement: int = Field(
        description="Revised but waiting for agreement: never agreed yet, or now above a "
        "ceiling (an exception approver must agree)."
    )
    already_on_policy: int
    needs_reassessment: int = Field(
        description="Left as they are: the policy's questionnaire cannot score their answers."
    )
    total_budgets: int = Field(description="The council's budgets, for a progress bar.")
    next_cursor: str | None


def _out(policy: Policy, in_force: Policy, row: AdoptedRow | None) -> PolicyOut:
    return PolicyOut(
        council=policy.council,
        version=policy.version,
        policy_version=policy.policy_version,
        name=policy.name,
        effective_from=policy.effective_from,
        source="file" if row is None else "adopted",
        in_force=policy.policy_version == in_force.policy_version,
        adopted_by=row.adopted_by if row else None,
        adopted_at=row.adopted_at if row else None,
        content_sha256=row.content_sha256 if row else None,
    )


@router.post(
    "/policies",
    status_code=201,
    response_model=PolicyOut,
    summary="Adopt a policy version for the caller's council from a date (PolicyAdopted)",
    responses={200: {"model": PolicyOut, "description": "The same adoption again: nothing new"}},
)
async def adopt_policy(
    body: AdoptionRequest, actor: CurrentActor, runtime: Runtime
) -> PolicyOut | JSONResponse:
    require_role(actor, *ADOPTING_ROLES)
    adoption = await handlers.adopt_policy(
        uow=runtime.uow(),
        table=adopted_policies,
        policies=runtime.policies,
        document=body.policy,
        effective_from=body.effective_from,
        by=actor,
    )
    runtime.learn_policy(adoption.row.policy)
    in_force = policy_for(runtime.policies, actor.council)
    out = _out(adoption.row.policy, in_force, adoption.row)
    if adoption.created:
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=200)


@router.get(
    "/policies",
    response_model=PolicyList,
    summary="The caller's council's policy versions: from files and adopted, with dates",
)
async def list_policies(actor: CurrentActor, runtime: Runtime) -> PolicyList:
    require_role(actor, *STAFF_ROLES)
    rows = {
        row.policy.version: row
        for row in await handlers.adopted_policies(uow=runtime.uow(), table=adopted_policies)
        if row.policy.council == actor.council
    }
    versions = runtime.policies.versions(actor.council)
    if not versions:
        return PolicyList(items=[])
    in_force = runtime.policies.current(actor.council, clock.today())
    return PolicyList(items=[_out(p, in_force, rows.get(p.version)) for p in versions])


@router.post(
    "/policies/revisions",
    response_model=RevisionBatchOut,
    summary="Revise one batch of the council's budgets under the policy in force today",
)
async def revise_budgets(
    body: RevisionBatchRequest, actor: CurrentActor, runtime: Runtime
) -> RevisionBatchOut:
    require_role(actor, *ADOPTING_ROLES)
    batch = await handlers.revise_budgets_for_policy(
        uow=runtime.uow(),
        policies=runtime.policies,
        by=actor,
        expected_policy_version=body.expected_policy_version,
        after=budgets_after(body.cursor),
        limit=body.limit,
    )
    next_cursor = None
    if batch.next_after is not None:
        created_at, budget_id = batch.next_after
        next_cursor = BUDGET_CURSOR.encode((created_at, UUID(budget_id)))
    return RevisionBatchOut(
        policy_version=batch.policy.policy_version,
        checked=batch.checked,
        issued=batch.issued,
        awaiting_agreement=batch.awaiting_agreement,
        already_on_policy=batch.already_on_policy,
        needs_reassessment=batch.needs_reassessment,
        total_budgets=batch.total,
        next_cursor=next_cursor,
    )


_WHATIF_RUNNING = asyncio.Lock()


def _compare_in_thread(
    log_url: str, current: Policy, proposed: Policy
) -> tuple[Comparison, RunInfo]:
    """Read the log and compare on a thread of its own, so the service keeps answering."""

    async def work() -> tuple[Comparison, RunInfo]:
        cohort = await read_cohort(log_url, council=current.council, show_progress=False)
        return await compare_on_log(current, proposed, cohort, log_url=log_url)

    return asyncio.run(work())


@router.post(
    "/policies/whatif",
    summary="Compare everyone's budget under the policy in force and a proposed policy; read-only",
    responses={
        200: {
            "description": "The what-if summary (JSON, money in pence), or with ?format= the "
            "per-person CSV or the HTML report",
            "content": {"text/csv": {}, "text/html": {}},
        }
    },
)
async def whatif(
    body: WhatIfRequest,
    actor: CurrentActor,
    runtime: Runtime,
    format: Annotated[WhatIfFormat, Query(description="json, csv or html.")] = WhatIfFormat.JSON,
) -> Response:
    require_role(actor, *WHATIF_ROLES)
    proposed = parse_policy(body.policy)
    if proposed.council != actor.council:  # another council's: not found, as its records are
        raise HTTPException(
            404,
            f"policy.council: this proposal is for {proposed.council!r}; you may run "
            f"what-ifs for {actor.council!r} only",
        )
    current = policy_for(runtime.policies, actor.council)
    if _WHATIF_RUNNING.locked():
        raise HTTPException(409, "a what-if is already running on this service; try again soon")
    async with _WHATIF_RUNNING:
        try:
            comparison, info = await asyncio.to_thread(
                _compare_in_thread, runtime.settings.log_url, current, proposed
            )
        except WhatIfError as err:
            raise HTTPException(409, str(err)) from err
    if format is WhatIfFormat.HTML:
        return HTMLResponse(render_html(comparison, info))
    if format is WhatIfFormat.CSV:
        out = io.StringIO()
        write_csv_to(comparison, out)
        name = f"whatif-{proposed.council}-{proposed.version}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(summary(comparison, info))
