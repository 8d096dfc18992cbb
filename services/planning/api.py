"""Planning HTTP API (versioned under /v1): support plans, sign-off, approvals and reviews.

Thin routes: authorise from the caller's role, turn the request into domain values, call a
handler, shape the answer. Money is integer pence; every list is paginated; every state
change records the caller. Conventions: docs/api.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, HTTPException, Query

from contracts.events import ReviewTrigger
from servicekit import clock
from servicekit.app import service_app
from servicekit.auth import CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    Pending,
    convert_valid_rows,
)
from servicekit.dates import RecordDate
from servicekit.pagination import Cursor, Limit, Page, next_page
from servicekit.subject_access import subject_access_router
from services.planning import consumer, handlers
from services.planning.db import PlanningUnitOfWork, metadata
from services.planning.domain import ChecksFailed, PlanStatus, ReviewStatus
from services.planning.routing import (
    PLAN_WRITERS,
    PRACTITIONERS,
    REVIEW_CLOCK,
    Runtime,
    checks_failed,
    uow_of,
)
from services.planning.schemas import (
    PLAN_CURSOR,
    REVIEW_CURSOR,
    ApprovalsPage,
    ChangeOfCircumstancesIn,
    ChecksOut,
    CompletedReviewOut,
    CompleteReviewIn,
    PlanConversionRow,
    PlanIn,
    PlanOut,
    PlanSummaryOut,
    PlanUpdateIn,
    ReturnIn,
    ReviewIn,
    ReviewOut,
    RunDueIn,
    RunDueOut,
    SignOffIn,
    VersionIn,
    approval_out,
    plan_checks_out,
    plan_content,
    plan_out,
    plan_summary,
    review_out,
)
from services.planning.settings import Settings

router = APIRouter(prefix="/v1", tags=["planning"])


# --- plans --------------------------------------------------------------------------------


@router.post("/plans", status_code=201, response_model=PlanOut, summary="Write a draft plan")
async def create_plan(body: PlanIn, actor: CurrentActor, runtime: Runtime) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    if actor.is_citizen and actor.person_id != body.person_id:
        raise HTTPException(404, "not found")
    view = await handlers.create_plan(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        person_id=body.person_id,
        budget_id=body.budget_id,
        content=plan_content(body),
    )
    return plan_out(view)


@router.put("/plans/{plan_id}", response_model=PlanOut, summary="Amend a draft or returned plan")
async def amend_plan(
    plan_id: UUID, body: PlanUpdateIn, actor: CurrentActor, runtime: Runtime
) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    view = await handlers.amend_plan(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        person_id=body.person_id,
        budget_id=body.budget_id,
        content=plan_content(body),
        expected_version=body.expected_version,
    )
    return plan_out(view)


@router.get("/plans/{plan_id}", response_model=PlanOut, summary="A plan, costed and checked")
async def get_plan(plan_id: UUID, actor: CurrentActor, runtime: Runtime) -> PlanOut:
    view = await handlers.get_plan(
        uow=uow_of(runtime), policies=runtime.policies, actor=actor, plan_id=plan_id
    )
    return plan_out(view)


@router.get("/plans/{plan_id}/checks", response_model=ChecksOut, summary="The sign-off checks")
async def get_plan_checks(plan_id: UUID, actor: CurrentActor, runtime: Runtime) -> ChecksOut:
    view = await handlers.get_plan(
        uow=uow_of(runtime), policies=runtime.policies, actor=actor, plan_id=plan_id
    )
    return plan_checks_out(view)


@router.get("/plans", response_model=Page[PlanSummaryOut], summary="The council's plans")
async def list_plans(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    status: PlanStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PlanSummaryOut]:
    found = await handlers.list_plans(
        uow=uow_of(runtime),
        actor=actor,
        person_id=person_id,
        status=status,
        after=PLAN_CURSOR.decode(cursor),
        limit=limit + 1,
    )
    page, next_cursor = next_page(
        found, limit, lambda last: PLAN_CURSOR.encode((last.created_at, last.plan_id))
    )
    return Page[PlanSummaryOut](
        items=[PlanSummaryOut(**plan_summary(p)) for p in page], next_cursor=next_cursor
    )


@router.post("/plans/{plan_id}/submit", response_model=PlanOut, summary="Submit for sign-off")
async def submit_plan(
    plan_id: UUID, actor: CurrentActor, runtime: Runtime, body: VersionIn | None = None
) -> PlanOut:
    require_role(actor, *PLAN_WRITERS)
    view = await handlers.submit_plan(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        expected_version=None if body is None else body.expected_version,
    )
    return plan_out(view)


@router.post("/plans/{plan_id}/sign-off", response_model=PlanOut, summary="Sign off a plan")
async def sign_off_plan(
    plan_id: UUID, actor: CurrentActor, runtime: Runtime, body: SignOffIn | None = None
) -> PlanOut:
    require_role(actor, *PRACTITIONERS)  # before the plan is read: a 403 says nothing of it
    body = body or SignOffIn()
    view, _ = await handlers.sign_off_plan(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        on=body.on or clock.today(),
        expected_version=body.expected_version,
        panel_sitting=body.panel_sitting,
    )
    return plan_out(view)


@router.post("/plans/{plan_id}/return", response_model=PlanOut, summary="Return with reasons")
async def return_plan(
    plan_id: UUID, body: ReturnIn, actor: CurrentActor, runtime: Runtime
) -> PlanOut:
    require_role(actor, *PRACTITIONERS)
    view = await handlers.return_plan(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=plan_id,
        reasons=list(body.reasons),
        expected_version=body.expected_version,
    )
    return plan_out(view)


@router.get("/approvals", response_model=ApprovalsPage, summary="Plans waiting for sign-off")
async def approvals(
    actor: CurrentActor, runtime: Runtime, limit: Limit = 50, cursor: Cursor = None
) -> ApprovalsPage:
    require_role(actor, *PRACTITIONERS)
    items, last_time, last_id = await handlers.approvals_queue(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        after=PLAN_CURSOR.decode(cursor),
        limit=limit,
    )
    next_cursor = None
    if last_time is not None and last_id is not None:
        next_cursor = PLAN_CURSOR.encode((last_time, last_id))
    return ApprovalsPage(
        items=[approval_out(i) for i in items if i.can_sign_off],
        refer_up=[approval_out(i) for i in items if not i.can_sign_off],
        next_cursor=next_cursor,
    )


# --- reviews ------------------------------------------------------------------------------


@router.get("/reviews", response_model=Page[ReviewOut], summary="Reviews by due date")
async def list_reviews(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    due_before: Annotated[
        RecordDate | None, Query(description="Due on or before this date.")
    ] = None,
    status: ReviewStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReviewOut]:
    found = await handlers.list_reviews(
        uow=uow_of(runtime),
        actor=actor,
        person_id=person_id,
        due_on_or_before=due_before,
        status=status,
        after=REVIEW_CURSOR.decode(cursor),
        limit=limit + 1,
    )
    page, next_cursor = next_page(
        found, limit, lambda last: REVIEW_CURSOR.encode((last.due_on, last.review_id))
    )
    return Page[ReviewOut](items=[review_out(r) for r in page], next_cursor=next_cursor)


@router.post("/reviews", status_code=201, response_model=ReviewOut, summary="Unscheduled review")
async def schedule_review(body: ReviewIn, actor: CurrentActor, runtime: Runtime) -> ReviewOut:
    require_role(actor, *PRACTITIONERS)
    review = await handlers.schedule_review(
        uow=uow_of(runtime),
        actor=actor,
        plan_id=body.plan_id,
        due_on=body.due_on,
        reason=body.reason,
    )
    return review_out(review)


@router.post(
    "/changes-of-circumstances",
    status_code=201,
    response_model=ReviewOut,
    summary="Record a change of circumstances: an unscheduled review, due by the policy",
    description=(
        "A carer stopped, a hospital admission, or another change (say what): books an "
        "unscheduled review of the signed-off plan, due the council's "
        "`reviews.unscheduled.within_days` for that change after the day it happened "
        "(ReviewScheduled, kind unscheduled, with the trigger and the day)."
    ),
)
async def record_change_of_circumstances(
    body: ChangeOfCircumstancesIn, actor: CurrentActor, runtime: Runtime
) -> ReviewOut:
    require_role(actor, *PRACTITIONERS)
    review = await handlers.record_change_of_circumstances(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        plan_id=body.plan_id,
        change=ReviewTrigger(body.change.value),
        happened_on=body.happened_on,
        details=body.details,
    )
    return review_out(review)


@router.post("/reviews/run-due", response_model=RunDueOut, summary="Announce reviews now due")
async def run_due_reviews(body: RunDueIn, actor: CurrentActor, runtime: Runtime) -> RunDueOut:
    require_role(actor, *REVIEW_CLOCK)
    announced, more = await handlers.run_due_reviews(
        uow=uow_of(runtime), actor=actor, as_of=body.as_of
    )
    return RunDueOut(items=[review_out(r) for r in announced], more_due=more)


@router.get("/reviews/{review_id}", response_model=ReviewOut, summary="One review")
async def get_review(review_id: UUID, actor: CurrentActor, runtime: Runtime) -> ReviewOut:
    review = await handlers.get_review(uow=uow_of(runtime), actor=actor, review_id=review_id)
    return review_out(review)


@router.post(
    "/reviews/{review_id}/complete",
    response_model=CompletedReviewOut,
    summary="Record a review's outcome and schedule the next",
)
async def complete_review(
    review_id: UUID, body: CompleteReviewIn, actor: CurrentActor, runtime: Runtime
) -> CompletedReviewOut:
    require_role(actor, *PRACTITIONERS)
    review, following = await handlers.complete_review(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        review_id=review_id,
        outcome=body.outcome,
        completed_on=body.completed_on or clock.today(),
        notes=body.notes,
        expected_version=body.expected_version,
    )
    return CompletedReviewOut(review=review_out(review), next_review=review_out(following))


# --- bulk conversion ------------------------------------------------------------------------


@router.post(
    "/conversions/plans",
    response_model=ConversionOut,
    summary="Convert existing clients: write, submit and sign off each row's support plan",
    description=(
        "Each row (a PlanConversionRow: ref, plan, sign_off_on) goes through the same use "
        "cases as POST /v1/plans, /submit and /sign-off, as the caller, so the same checks "
        "run and the same events follow (PlanSubmitted, PlanSignedOff, ReviewScheduled); "
        "the caller must be allowed to sign off each plan's cost under the council's "
        "policy. A row whose budget or validated assessment has not reached planning yet "
        "is pending; rows commit together; a refused row is rejected with its reason and "
        "nothing of it is written; a ref converted before is already_done."
    ),
)
async def convert_plans(body: ConversionIn, actor: CurrentActor, runtime: Runtime) -> ConversionOut:
    require_role(actor, *PRACTITIONERS)

    sign_offs = handlers.PlanSignOffs(policies=runtime.policies, actor=actor)

    async def read_budgets(uow: PlanningUnitOfWork, rows: Sequence[PlanConversionRow]) -> None:
        await sign_offs.prepare(uow, [row.plan.budget_id for row in rows])

    async def write_and_sign_off(uow: PlanningUnitOfWork, row: PlanConversionRow) -> dict[str, Any]:
        budget = sign_offs.budget(row.plan.budget_id)
        # Another council's budget is as if it did not exist: telling it apart from one
        # not yet arrived would say that the other council holds it.
        if budget is None or budget.council != actor.council:
            raise Pending("planning has not learnt of this budget yet")
        if sign_offs.assessment(budget.assessment_id) is None:
            raise Pending("the validated assessment behind the budget has not reached planning")
        plan, review = sign_offs.sign_off(
            uow,
            person_id=row.plan.person_id,
            budget_id=row.plan.budget_id,
            content=plan_content(row.plan),
            on=row.sign_off_on or clock.today(),
        )
        return {
            "person_id": plan.person_id,
            "plan_id": str(plan.plan_id),
            "budget_id": str(row.plan.budget_id),
            "weekly_pence": plan.costing.weekly_pence,
            "review_id": str(review.review_id),
        }

    return await convert_valid_rows(
        runtime,
        scope=f"conversion plans {actor.council}",
        raw_rows=body.rows,
        model=PlanConversionRow,
        apply=write_and_sign_off,
        prepare=read_budgets,
        finish=sign_offs.finish,
    )


# --- the app ------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    app = service_app(
        settings or Settings(),
        metadata=metadata,
        unit_of_work=PlanningUnitOfWork,
        consumers=consumer.register,
        title="PB Journey: planning",
        description="Support plans against an issued budget, sign-off by approval limit, "
        "and reviews.",
        routers=[router, subject_access_router("planning")],
    )
    app.add_exception_handler(ChecksFailed, checks_failed)
    return app
