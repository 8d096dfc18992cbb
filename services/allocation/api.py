"""Allocation HTTP API (versioned under /v1): budgets, their revisions and explanations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.events import BudgetStage, ExplanationLine, OtherFunding, OtherFundingSource, Scale
from contracts.vocabulary import PRACTITIONER_ROLES, STAFF_ROLES, ClientGroup, Role
from rules.authority import Sitting
from servicekit.app import RequestPence, create_service_app, runtime_from
from servicekit.auth import Actor, CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    ConversionRef,
    Pending,
    Row,
    convert_rows,
    merge_refused,
    validated_rows,
)
from servicekit.pagination import Cursor, Limit, Page
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.allocation import consumer, handlers, policy_api
from services.allocation.db import AllocationUnitOfWork, metadata
from services.allocation.domain import (
    Budget,
    BudgetInputs,
    BudgetNotFound,
    BudgetStatus,
    Calculation,
    FundingStream,
    Revision,
    RevisionState,
    summary_in_words,
)
from services.allocation.schemas import BUDGET_CURSOR, budgets_after
from services.allocation.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"

router = APIRouter(prefix="/v1", tags=["allocation"])

Runtime = Annotated[ServiceRuntime[AllocationUnitOfWork], Depends(runtime_from)]

DomainKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LevelNumber = Annotated[int, Field(strict=True, ge=0, le=99)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Version = Annotated[int, Field(strict=True, ge=1)]
PersonIdQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="One person.")
]
REVISING_ROLES = (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL)


# --- requests -------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundingIn(_Request):
    """Other funding the person gets, deducted from the budget at the policy's rate."""

    source: OtherFundingSource
    weekly_pence: RequestPence


class CalculationRequest(_Request):
    """The RAS inputs; the council (and so the policy) comes from the caller's token."""

    client_group: ClientGroup
    domain_levels: dict[DomainKey, LevelNumber] = Field(min_length=1, max_length=30)
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: RequestPence = 0
    other_funding: list[FundingIn] = Field(default_factory=list, max_length=10)
    additional_weekly_pence: RequestPence = 0


class AgreeRequest(_Request):
    expected_version: Version | None = None
    ceiling_exception_reason: Reason | None = None
    panel_sitting: Sitting | None = Field(
        None,
        description="Where the council's panel sits separately above a weekly amount "
        "(Council B: above £300 a week), the sitting that took the decision; above that "
        "amount only the separate sitting's counts. Left out: the sitting the amount goes "
        "to is recorded.",
    )


class RevisionRequest(_Request):
    reason: Reason
    additional_weekly_pence: RequestPence | None = Field(
        None, description="Support the points do not capture, e.g. 2-to-1 (seed 003 ch.2 §iii)."
    )
    carer_support_weekly_pence: RequestPence | None = Field(
        None, description="The carer's agreed support now; 0 restores the money if they stop."
    )
    other_funding: list[FundingIn] | None = Field(None, max_length=10)
    expected_version: Version | None = None


# --- responses ------------------------------------------------------------------------------


class DomainScoreOut(BaseModel):
    key: str
    name: str
    level: int
    points: int


class DeductionOut(BaseModel):
    source: str
    label: str
    agreed_weekly_pence: int
    deducted_weekly_pence: int


class CalculationOut(BaseModel):
    policy_version: str
    client_group: ClientGroup
    domain_scores: list[DomainScoreOut]
    points: int
    max_points: int
    price_per_point_weekly_pence: int
    standard_weekly_pence: int
    scale: Scale
    scale_basis_points: int
    scaled_weekly_pence: int
    additional_weekly_pence: int
    deductions: list[DeductionOut]
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    explanation: list[ExplanationLine]

    @classmethod
    def of(cls, calc: Calculation) -> CalculationOut:
        return cls.model_validate(calc.model_dump())


class InputsOut(BaseModel):
    client_group: ClientGroup
    domain_levels: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: int
    other_funding: list[OtherFunding]
    additional_weekly_pence: int
    additional_reason: str | None


class RevisionOut(BaseModel):
    revision: int
    state: RevisionState
    stage: BudgetStage | None
    reason: str
    assessment_id: UUID
    client_group: ClientGroup
    points: int
    scale: Scale
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    ceiling_exception: bool
    ceiling_exception_reason: str | None
    policy_version: str
    explanation: list[ExplanationLine]
    inputs: InputsOut
    created_by: str
    created_at: datetime
    agreed_by: str | None
    agreed_by_role: Role | None
    agreed_at: datetime | None
    panel_sitting: Sitting | None = Field(
        description="The panel sitting that agreed it, where the council's panel sits "
        "separately above a weekly amount."
    )
    plan_id: UUID | None
    plan_version: int | None

    @classmethod
    def of(cls, rev: Revision) -> RevisionOut:
        return cls(
            revision=rev.number,
            state=rev.state,
            stage=rev.stage,
            reason=rev.reason,
            assessment_id=rev.assessment_id,
            client_group=rev.inputs.client_group,
            points=rev.points,
            scale=rev.scale,
            weekly_pence=rev.weekly_pence,
            annual_pence=rev.annual_pence,
            ceiling_weekly_pence=rev.ceiling_weekly_pence,
            above_ceiling=rev.above_ceiling,
            ceiling_exception=rev.ceiling_exception,
            ceiling_exception_reason=rev.ceiling_exception_reason,
            policy_version=rev.policy_version,
            explanation=list(rev.explanation),
            inputs=InputsOut.model_validate(rev.inputs.model_dump()),
            created_by=rev.created_by,
            created_at=rev.created_at,
            agreed_by=rev.agreed_by,
            agreed_by_role=rev.agreed_by_role,
            agreed_at=rev.agreed_at,
            panel_sitting=rev.panel_sitting,
            plan_id=rev.plan_id,
            plan_version=rev.plan_version,
        )


class BudgetOut(BaseModel):
    budget_id: UUID
    person_id: str
    council: str
    status: BudgetStatus
    version: int
    created_at: datetime
    updated_at: datetime | None
    current_revision: RevisionOut
    revisions: list[RevisionOut] = Field(description="Every revision, oldest first.")


class BudgetSummary(BaseModel):
    budget_id: UUID
    person_id: str
    status: BudgetStatus
    version: int
    revision: int
    stage: BudgetStage | None
    client_group: ClientGroup
    points: int
    weekly_pence: int
    annual_pence: int
    policy_version: str
    updated_at: datetime | None


class ExplanationOut(BaseModel):
    budget_id: UUID
    revision: int
    state: RevisionState
    stage: BudgetStage | None
    weekly_pence: int
    annual_pence: int
    policy_version: str
    lines: list[ExplanationLine]
    summary: str


# --- who sees what --------------------------------------------------------------------------


def _visible(actor: Actor, budget: Budget) -> tuple[BudgetStatus, list[Revision]]:
    """Staff of the council see every revision; a person only what they have been told.

    Agreement in principle comes before the person is told (seed 003 ch.2 §iv), so a
    revision still awaiting agreement (or superseded unagreed) is not shown to them.
    """
    if actor.council != budget.council:
        raise BudgetNotFound(budget.budget_id)
    if not actor.is_citizen:
        return budget.status, list(budget.revisions)
    if actor.person_id != budget.person_id:
        raise BudgetNotFound(budget.budget_id)
    issued = budget.issued_revisions
    if not issued:
        raise BudgetNotFound(budget.budget_id)
    return BudgetStatus(issued[-1].state.value), issued


def _budget_out(actor: Actor, budget: Budget) -> BudgetOut:
    budget_status, revisions = _visible(actor, budget)
    shown = [RevisionOut.of(rev) for rev in revisions]
    return BudgetOut(
        budget_id=budget.budget_id,
        person_id=budget.person_id,
        council=budget.council,
        status=budget_status,
        version=budget.version,
        created_at=budget.created_at,
        updated_at=budget.updated_at,
        current_revision=shown[-1],
        revisions=shown,
    )


def _summary(actor: Actor, budget: Budget) -> BudgetSummary:
    budget_status, revisions = _visible(actor, budget)
    rev = revisions[-1]
    return BudgetSummary(
        budget_id=budget.budget_id,
        person_id=budget.person_id,
        status=budget_status,
        version=budget.version,
        revision=rev.number,
        stage=rev.stage,
        client_group=rev.inputs.client_group,
        points=rev.points,
        weekly_pence=rev.weekly_pence,
        annual_pence=rev.annual_pence,
        policy_version=rev.policy_version,
        updated_at=budget.updated_at,
    )


# --- routes ---------------------------------------------------------------------------------


@router.post("/calculations", summary="Preview the RAS for some inputs; nothing is stored")
async def calculate(
    body: CalculationRequest, actor: CurrentActor, runtime: Runtime
) -> CalculationOut:
    require_role(actor, *STAFF_ROLES)
    inputs = BudgetInputs(
        client_group=body.client_group,
        domain_levels=dict(body.domain_levels),
        significant_informal_support=body.significant_informal_support,
        needs_24_7=body.needs_24_7,
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=tuple(_streams(body.other_funding)),
        additional_weekly_pence=body.additional_weekly_pence,
    )
    calc = handlers.preview_calculation(
        inputs=inputs, council=actor.council, policies=runtime.policies
    )
    return CalculationOut.of(calc)


@router.get("/budgets", summary="A page of the council's budgets (a person: only their own)")
async def list_budgets(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: PersonIdQuery = None,
    status: BudgetStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BudgetSummary]:
    if actor.is_citizen:
        if person_id is not None and person_id != actor.person_id:
            return Page[BudgetSummary](items=[], next_cursor=None)
        person_id = actor.person_id
    found = await handlers.list_budgets(
        uow=runtime.uow(),
        council=actor.council,
        person_id=person_id,
        status=status.value if status else None,
        issued_only=actor.is_citizen,
        after=budgets_after(cursor),
        limit=limit + 1,
    )
    page, more = found[:limit], len(found) > limit
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = BUDGET_CURSOR.encode((last.created_at, last.budget_id))
    return Page[BudgetSummary](items=[_summary(actor, b) for b in page], next_cursor=next_cursor)


@router.get("/budgets/{budget_id}", summary="A budget with every revision")
async def get_budget(budget_id: UUID, actor: CurrentActor, runtime: Runtime) -> BudgetOut:
    budget = await handlers.get_budget(uow=runtime.uow(), budget_id=budget_id)
    return _budget_out(actor, budget)


@router.get("/budgets/{budget_id}/explanation", summary="How the budget was worked out")
async def explain_budget(budget_id: UUID, actor: CurrentActor, runtime: Runtime) -> ExplanationOut:
    budget = await handlers.get_budget(uow=runtime.uow(), budget_id=budget_id)
    _, revisions = _visible(actor, budget)
    rev = revisions[-1]
    return ExplanationOut(
        budget_id=budget.budget_id,
        revision=rev.number,
        state=rev.state,
        stage=rev.stage,
        weekly_pence=rev.weekly_pence,
        annual_pence=rev.annual_pence,
        policy_version=rev.policy_version,
        lines=list(rev.explanation),
        summary=summary_in_words(budget, rev),
    )


@router.post("/budgets/{budget_id}/agree", summary="Agree the budget in principle and issue it")
async def agree_budget(
    budget_id: UUID,
    actor: CurrentActor,
    runtime: Runtime,
    body: Annotated[AgreeRequest | None, Body()] = None,
) -> BudgetOut:
    require_role(actor, *PRACTITIONER_ROLES)
    body = body or AgreeRequest()
    budget = await handlers.agree_budget(
        uow=runtime.uow(),
        policies=runtime.policies,
        budget_id=budget_id,
        by=actor.as_caller(),
        ceiling_exception_reason=body.ceiling_exception_reason,
        expected_version=body.expected_version,
        panel_sitting=body.panel_sitting,
    )
    return _budget_out(actor, budget)


@router.post(
    "/budgets/{budget_id}/revisions",
    status_code=201,
    summary="Revise the budget from its stored inputs plus changes; awaits agreement",
)
async def revise_budget(
    budget_id: UUID, body: RevisionRequest, actor: CurrentActor, runtime: Runtime
) -> BudgetOut:
    require_role(actor, *REVISING_ROLES)
    budget = await handlers.revise_budget(
        uow=runtime.uow(),
        policies=runtime.policies,
        budget_id=budget_id,
        by=actor.as_caller(),
        reason=body.reason,
        additional_weekly_pence=body.additional_weekly_pence,
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=None if body.other_funding is None else _streams(body.other_funding),
        expected_version=body.expected_version,
    )
    return _budget_out(actor, budget)


def _streams(funding: list[FundingIn]) -> list[FundingStream]:
    return [FundingStream(source=f.source, weekly_pence=f.weekly_pence) for f in funding]


# --- bulk conversion ------------------------------------------------------------------------


class BudgetConversionRow(_Request):
    """One converted person whose indicative budget the caller agrees in principle."""

    ref: ConversionRef
    person_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    ceiling_exception_reason: Reason | None = Field(
        None,
        description=(
            "Used only if the calculated budget is above its ceiling (then required, and "
            "only a ceiling-exception role may agree it); ignored otherwise."
        ),
    )


@router.post(
    "/conversions/budget-agreements",
    response_model=ConversionOut,
    summary="Convert existing clients: agree each row's calculated budget in principle",
    description=(
        "Each row (a BudgetConversionRow: ref, person_id, ceiling_exception_reason) agrees "
        "the person's budget, calculated from their AssessmentValidated event by the same "
        "RAS, through the same use case as POST /v1/budgets/{id}/agree, as the caller: "
        "within the caller's agreement limit, above the ceiling only by a ceiling-exception "
        "role. Each issues BudgetIssued (indicative). A row whose budget has not been "
        "calculated yet is pending; rows commit together; a refused row is rejected with "
        "its reason and nothing of it is written; a ref converted before is already_done."
    ),
)
async def convert_budget_agreements(
    body: ConversionIn, actor: CurrentActor, runtime: Runtime
) -> ConversionOut:
    require_role(actor, *PRACTITIONER_ROLES)
    rows: list[Row] = []
    valid, refused = validated_rows(body.rows, BudgetConversionRow)
    for raw, row in valid:

        async def apply(
            uow: AllocationUnitOfWork, row: BudgetConversionRow = row
        ) -> dict[str, Any]:
            found = await uow.budgets.for_person(actor.council, row.person_id)
            if found is None:
                raise Pending("this person's budget has not been calculated yet")
            budget = await handlers.agree_budget(
                uow=uow,
                policies=runtime.policies,
                budget_id=found.budget_id,
                by=actor.as_caller(),
                ceiling_exception_reason=(
                    row.ceiling_exception_reason if found.current.above_ceiling else None
                ),
                expected_version=None,
            )
            return {
                "person_id": budget.person_id,
                "budget_id": str(budget.budget_id),
                "weekly_pence": budget.current.weekly_pence,
                "annual_pence": budget.current.annual_pence,
            }

        rows.append(Row(ref=row.ref, content=raw, apply=apply))
    out = await convert_rows(
        runtime, scope=f"conversion budget-agreements {actor.council}", rows=rows
    )
    return merge_refused(out, refused)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime: ServiceRuntime[Any] = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=MIGRATIONS,
        unit_of_work=AllocationUnitOfWork,
    )
    consumer.register(runtime)
    return create_service_app(
        runtime=runtime,
        title="PB Journey: allocation",
        description="The resource allocation system: indicative and final budgets, "
        "with explanations.",
        routers=[router, policy_api.router, subject_access_router("allocation")],
    )
