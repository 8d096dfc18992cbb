"""Allocation HTTP API (versioned under /v1): budgets, their revisions and explanations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

import msgspec
import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, FastAPI, Response

from contracts.vocabulary import PRACTITIONER_ROLES, STAFF_ROLES, Role
from servicekit.app import request_runtime, service_app
from servicekit.auth import CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    Pending,
    convert_valid_rows,
)
from servicekit.caller import asks_for_another_person, person_listed
from servicekit.pagination import Cursor, Limit, Page, next_page
from servicekit.reads import ReadQuery, read_only
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.allocation import consumer, handlers, policy_api
from services.allocation.db import (
    AllocationUnitOfWork,
    _revision,
    budget_revisions,
    budgets,
    metadata,
)
from services.allocation.domain import (
    Budget,
    BudgetInputs,
    BudgetNotFound,
    BudgetStatus,
    summary_in_words,
)
from services.allocation.schemas import (
    BUDGET_CURSOR,
    AgreeRequest,
    BudgetConversionRow,
    BudgetOut,
    BudgetSummary,
    CalculationOut,
    CalculationRequest,
    ExplanationOut,
    PersonIdQuery,
    RevisionRequest,
    budget_json,
    budget_out,
    budget_summary,
    budgets_after,
    funding_streams,
    shown_to,
)
from services.allocation.settings import Settings

router = APIRouter(prefix="/v1", tags=["allocation"])

Runtime = Annotated[ServiceRuntime[AllocationUnitOfWork], Depends(request_runtime)]

REVISING_ROLES = (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL)


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
        other_funding=tuple(funding_streams(body.other_funding)),
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
    if asks_for_another_person(actor, person_id):
        return Page[BudgetSummary](items=[], next_cursor=None)
    found = await handlers.list_budgets(
        uow=runtime.uow(),
        council=actor.council,
        person_id=person_listed(actor, person_id),
        status=status.value if status else None,
        issued_only=actor.is_citizen,
        after=budgets_after(cursor),
        limit=limit + 1,
    )
    page, next_cursor = next_page(
        found, limit, lambda last: BUDGET_CURSOR.encode((last.created_at, last.budget_id))
    )
    return Page[BudgetSummary](
        items=[budget_summary(actor, b) for b in page], next_cursor=next_cursor
    )


def _revisions_with_their_budget(*revision_columns: Any) -> ReadQuery:
    """A budget's revisions, in order, each row with the budget's columns beside the
    revision's: the budget and every revision in one round trip, compiled once."""
    return ReadQuery(
        sa.select(
            *revision_columns,
            budgets.c.council.label("budget_council"),
            budgets.c.person_id.label("budget_person_id"),
            budgets.c.version.label("budget_version"),
            budgets.c.created_at.label("budget_created_at"),
            budgets.c.updated_at.label("budget_updated_at"),
        )
        .join(budgets, budgets.c.budget_id == budget_revisions.c.budget_id)
        .where(budget_revisions.c.budget_id == sa.bindparam("budget_id"))
        .order_by(budget_revisions.c.number)
    )


BUDGET_WITH_REVISIONS = _revisions_with_their_budget(budget_revisions)


# GET budget's rows: each revision with its inputs and explanation as the JSON text stored
# (schemas.budget_json encodes them again without building models), the two figures of the
# calculation it shows, and the budget's columns.
BUDGET_AS_STORED = _revisions_with_their_budget(
    *(
        budget_revisions.c[name]
        for name in (
            "number",
            "state",
            "stage",
            "reason",
            "assessment_id",
            "points",
            "weekly_pence",
            "annual_pence",
            "ceiling_exception",
            "ceiling_exception_reason",
            "policy_version",
            "created_by",
            "created_at",
            "agreed_by",
            "agreed_by_role",
            "agreed_at",
            "panel_sitting",
            "plan_id",
            "plan_version",
        )
    ),
    sa.type_coerce(budget_revisions.c.inputs, sa.Text).label("inputs_json"),
    sa.type_coerce(budget_revisions.c.explanation, sa.Text).label("explanation_json"),
    budget_revisions.c.calculation["scale"].as_string().label("scale"),
    budget_revisions.c.calculation["ceiling_weekly_pence"]
    .as_integer()
    .label("ceiling_weekly_pence"),
)


async def read_budget(runtime: ServiceRuntime[AllocationUnitOfWork], budget_id: UUID) -> Budget:
    """One budget with all its revisions, read without a unit of work (the caller checks
    who may see it)."""
    async with read_only(runtime) as connection:
        rows = await BUDGET_WITH_REVISIONS.all(connection, budget_id=str(budget_id))
    if not rows:
        raise BudgetNotFound(budget_id)
    first = rows[0]
    return Budget(
        budget_id=budget_id,
        council=first.budget_council,
        person_id=first.budget_person_id,
        created_at=first.budget_created_at,
        revisions=[_revision(row) for row in rows],
        version=first.budget_version,
        updated_at=first.budget_updated_at,
    )


@router.get(
    "/budgets/{budget_id}", response_model=BudgetOut, summary="A budget with every revision"
)
async def get_budget(
    budget_id: UUID, actor: CurrentActor, runtime: Runtime
) -> Response | BudgetOut:
    async with read_only(runtime) as connection:
        rows = await BUDGET_AS_STORED.all(connection, budget_id=str(budget_id))
    if not rows:
        raise BudgetNotFound(budget_id)
    try:
        answer = budget_json(actor, budget_id, rows)
    except msgspec.ValidationError:  # stored in a shape only the models know
        return budget_out(actor, await read_budget(runtime, budget_id))
    return Response(answer, media_type="application/json")


@router.get("/budgets/{budget_id}/explanation", summary="How the budget was worked out")
async def explain_budget(budget_id: UUID, actor: CurrentActor, runtime: Runtime) -> ExplanationOut:
    budget = await read_budget(runtime, budget_id)
    _, revisions = shown_to(actor, budget)
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
        by=actor,
        ceiling_exception_reason=body.ceiling_exception_reason,
        expected_version=body.expected_version,
        panel_sitting=body.panel_sitting,
    )
    return budget_out(actor, budget)


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
        by=actor,
        reason=body.reason,
        additional_weekly_pence=body.additional_weekly_pence,
        carer_support_weekly_pence=body.carer_support_weekly_pence,
        other_funding=None if body.other_funding is None else funding_streams(body.other_funding),
        expected_version=body.expected_version,
    )
    return budget_out(actor, budget)


# --- bulk conversion ------------------------------------------------------------------------


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

    calculated: dict[str, Budget] = {}

    async def read_budgets(uow: AllocationUnitOfWork, rows: Sequence[BudgetConversionRow]) -> None:
        # The batch's budgets with two queries, not two for each row and two more for the
        # use case to load each again.
        calculated.clear()
        calculated.update(
            await uow.budgets.for_people(actor.council, [row.person_id for row in rows])
        )

    async def agree(uow: AllocationUnitOfWork, row: BudgetConversionRow) -> dict[str, Any]:
        found = calculated.get(row.person_id)
        if found is None:
            raise Pending("this person's budget has not been calculated yet")
        budget = await handlers.agree_loaded_budget(
            uow=uow,
            policies=runtime.policies,
            budget=found,
            by=actor,
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

    return await convert_valid_rows(
        runtime,
        scope=f"conversion budget-agreements {actor.council}",
        raw_rows=body.rows,
        model=BudgetConversionRow,
        apply=agree,
        prepare=read_budgets,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return service_app(
        settings or Settings(),
        metadata=metadata,
        unit_of_work=AllocationUnitOfWork,
        consumers=consumer.register,
        title="PB Journey: allocation",
        description="The resource allocation system: indicative and final budgets, "
        "with explanations.",
        routers=[router, policy_api.router, subject_access_router("allocation")],
    )
