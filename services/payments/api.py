"""Payments HTTP API (versioned under /v1): deployment, agreement, schedules, releases,
monitoring returns, unspent-funds checks, managed-account statements and the conversion of
existing clients; the finance system's routes are in finance_api.py, the wire models and
their mappers in schemas.py.

Thin routes: authorise from the bearer token, validate the body, call a handler, shape the
answer. Another council's record answers 404; a person or representative sees only their
own person_id; a role that may not act answers 403 (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI

from contracts.policy import Policy
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.app import service_app
from servicekit.auth import CurrentActor, require_role
from servicekit.bulk import (
    ConversionIn,
    ConversionOut,
    convert_valid_rows,
)
from servicekit.caller import Caller
from servicekit.pagination import Cursor, Limit, Page
from servicekit.runtime import ServiceRuntime
from servicekit.subject_access import subject_access_router
from services.payments import cards_api, consumer, finance_api, handlers, schemas, statement_api
from services.payments.db import PaymentsUnitOfWork, metadata
from services.payments.domain import Deployment
from services.payments.lifecycle import Status
from services.payments.routing import (
    ARRANGERS,
    HOLDERS,
    OFFSET_CURSOR,
    RELEASERS,
    RETURN_SUBMITTERS,
    SEQ_CURSOR,
    VIEWERS,
    PersonIdQuery,
    Runtime,
    uow_of,
)
from services.payments.settings import Settings

router = APIRouter(prefix="/v1", tags=["payments"])


def _policy(runtime: ServiceRuntime[Any], dep: Deployment) -> Policy:
    """The policy the deployment was set up under, which its answers are judged by."""
    return handlers.deployment_policy(runtime.policies, dep)


def _deployment_out(dep: Deployment, runtime: ServiceRuntime[Any]) -> schemas.DeploymentOut:
    return schemas.deployment_out(dep, _policy(runtime, dep))


# --- deployments ---------------------------------------------------------------------------


@router.get(
    "/deployments",
    response_model=Page[schemas.DeploymentSummaryOut],
    summary="List the council's deployments (a person: their own)",
)
async def list_deployments(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: PersonIdQuery = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[schemas.DeploymentSummaryOut]:
    require_role(actor, *VIEWERS)
    rows = await handlers.list_deployments(
        uow=uow_of(runtime),
        actor=actor,
        person_id=person_id,
        status=status,
        after_seq=SEQ_CURSOR.after(cursor),
        limit=limit,
    )
    return Page[schemas.DeploymentSummaryOut](
        items=[schemas.deployment_summary_out(dep) for _, dep in rows],
        next_cursor=SEQ_CURSOR.at(rows[-1][0]) if len(rows) == limit else None,
    )


@router.get(
    "/deployments/{deployment_id}", response_model=schemas.DeploymentOut, summary="One deployment"
)
async def get_deployment(
    deployment_id: UUID, actor: CurrentActor, runtime: Runtime
) -> schemas.DeploymentOut:
    require_role(actor, *VIEWERS)
    dep = await handlers.get_deployment(
        uow=uow_of(runtime), actor=actor, deployment_id=deployment_id
    )
    return _deployment_out(dep, runtime)


@router.put(
    "/deployments/{deployment_id}/arrangement",
    response_model=schemas.DeploymentOut,
    summary="Choose (or switch) how the budget is held and paid",
)
async def put_arrangement(
    deployment_id: UUID, body: schemas.ArrangementIn, actor: CurrentActor, runtime: Runtime
) -> schemas.DeploymentOut:
    require_role(actor, *ARRANGERS)
    dep = await handlers.arrange_deployment(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        parts=schemas.part_requests(body.parts),
        frequency=body.frequency,
        first_due_on=body.first_due_on,
        assessed_max_weekly_contribution_pence=body.assessed_max_weekly_contribution_pence,
        expected_version=body.expected_version,
        arrears_reason=body.arrears_reason,
    )
    return _deployment_out(dep, runtime)


@router.post(
    "/deployments/{deployment_id}/agreement",
    response_model=schemas.DeploymentOut,
    summary="Record the signed agreement and schedule the payments",
)
async def post_agreement(
    deployment_id: UUID, body: schemas.AgreementIn, actor: CurrentActor, runtime: Runtime
) -> schemas.DeploymentOut:
    require_role(actor, *ARRANGERS)
    dep = await handlers.sign_agreement(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        signed_on=body.signed_on,
        expected_version=body.expected_version,
        arrears_reason=body.arrears_reason,
    )
    return _deployment_out(dep, runtime)


@router.get(
    "/deployments/{deployment_id}/schedule",
    response_model=Page[schemas.InstalmentOut],
    summary="The deployment's instalments in due order",
)
async def get_schedule(
    deployment_id: UUID,
    actor: CurrentActor,
    runtime: Runtime,
    limit: Limit = 200,
    cursor: Cursor = None,
) -> Page[schemas.InstalmentOut]:
    require_role(actor, *VIEWERS)
    dep = await handlers.get_deployment(
        uow=uow_of(runtime), actor=actor, deployment_id=deployment_id
    )
    start = OFFSET_CURSOR.after(cursor) or 0
    ordered = dep.ordered_instalments()
    page = ordered[start : start + limit]
    return Page[schemas.InstalmentOut](
        items=[schemas.instalment_out(i) for i in page],
        next_cursor=(OFFSET_CURSOR.at(start + limit) if start + limit < len(ordered) else None),
    )


@router.post(
    "/deployments/{deployment_id}/release",
    response_model=schemas.ReleaseResultOut,
    summary="Release this deployment's instalments due by as_of",
)
async def post_release(
    deployment_id: UUID, body: schemas.ReleaseIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ReleaseResultOut:
    require_role(actor, *RELEASERS)
    released = await handlers.release_for_deployment(
        uow=uow_of(runtime),
        actor=actor,
        deployment_id=deployment_id,
        as_of=body.as_of,
        expected_version=body.expected_version,
    )
    return schemas.release_result_out(body.as_of or clock.today(), released)


@router.post(
    "/payments/release-due",
    response_model=schemas.ReleaseResultOut,
    summary="Release every due instalment of the council's signed deployments",
)
async def post_release_due(
    body: schemas.ReleaseDueIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ReleaseResultOut:
    require_role(actor, *RELEASERS)
    released = await handlers.release_due(uow=uow_of(runtime), actor=actor, as_of=body.as_of)
    return schemas.release_result_out(body.as_of or clock.today(), released)


@router.post(
    "/deployments/{deployment_id}/suspend",
    response_model=schemas.DeploymentOut,
    summary="Hold the deployment's releases",
)
async def post_suspend(
    deployment_id: UUID, body: schemas.HoldIn, actor: CurrentActor, runtime: Runtime
) -> schemas.DeploymentOut:
    return await _hold(handlers.suspend_payments, deployment_id, body, actor, runtime)


@router.post(
    "/deployments/{deployment_id}/resume",
    response_model=schemas.DeploymentOut,
    summary="Lift the hold on the deployment's releases",
)
async def post_resume(
    deployment_id: UUID, body: schemas.HoldIn, actor: CurrentActor, runtime: Runtime
) -> schemas.DeploymentOut:
    return await _hold(handlers.resume_payments, deployment_id, body, actor, runtime)


async def _hold(
    change: Callable[..., Awaitable[Deployment]],
    deployment_id: UUID,
    body: schemas.HoldIn,
    actor: Caller,
    runtime: ServiceRuntime[Any],
) -> schemas.DeploymentOut:
    """Put on or lift a hold: the same people, the same reason and version check."""
    require_role(actor, *HOLDERS)
    dep = await change(
        uow=uow_of(runtime),
        actor=actor,
        deployment_id=deployment_id,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return _deployment_out(dep, runtime)


# --- monitoring ----------------------------------------------------------------------------


@router.post(
    "/deployments/{deployment_id}/returns",
    response_model=schemas.ReturnOut,
    status_code=201,
    summary="Record a monitoring return",
)
async def post_return(
    deployment_id: UUID, body: schemas.ReturnIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ReturnOut:
    require_role(actor, *RETURN_SUBMITTERS)
    dep, record = await handlers.submit_return(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        period_start=body.period_start,
        period_end=body.period_end,
        items=schemas.return_items(body.items),
        balance_pence=body.balance_pence,
        option=body.option,
        expected_version=body.expected_version,
    )
    return schemas.return_out(dep, record, _policy(runtime, dep))


@router.post(
    "/deployments/{deployment_id}/unspent-check",
    response_model=schemas.UnspentCheckOut,
    summary="Apply the council's unspent-funds rule to the balance",
)
async def post_unspent_check(
    deployment_id: UUID, body: schemas.UnspentCheckIn, actor: CurrentActor, runtime: Runtime
) -> schemas.UnspentCheckOut:
    require_role(actor, Role.FINANCE)
    dep, check = await handlers.check_unspent(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        deployment_id=deployment_id,
        as_of=body.as_of,
        balance_pence=body.balance_pence,
        action=body.action,
        expected_version=body.expected_version,
    )
    return schemas.unspent_check_out(dep, check)


@router.get(
    "/deployments/{deployment_id}/statement",
    response_model=schemas.StatementOut,
    summary="Managed accounts: paid in, spent and left",
)
async def get_statement(
    deployment_id: UUID, actor: CurrentActor, runtime: Runtime
) -> schemas.StatementOut:
    require_role(actor, *VIEWERS)
    dep, accounts = await handlers.get_statement(
        uow=uow_of(runtime), actor=actor, deployment_id=deployment_id
    )
    return schemas.statement_out(dep, accounts)


# --- bulk conversion ------------------------------------------------------------------------


@router.post(
    "/conversions/deployments",
    response_model=ConversionOut,
    summary="Convert existing clients: arrange each row's deployment and record the agreement",
    description=(
        "Each row (a schemas.DeploymentConversionRow: ref, person_id, plan_id, arrangement, "
        "signed_on, arrears_reason) goes through the same use cases as PUT "
        "/v1/deployments/{id}/arrangement and POST /v1/deployments/{id}/agreement, as the "
        "caller, so the same events follow (DeploymentSetUp, AgreementSigned, ArrearsApproved "
        "for a first payment dated back, PaymentScheduled). A row whose deployment has "
        "not been opened yet (PlanSignedOff not applied) is pending; rows commit together; "
        "a refused row is rejected with its reason and nothing of it is written; a ref "
        "converted before is already_done."
    ),
)
async def convert_deployments(
    body: ConversionIn, actor: CurrentActor, runtime: Runtime
) -> ConversionOut:
    require_role(actor, *ARRANGERS)

    async def arrange_and_sign(
        uow: PaymentsUnitOfWork, row: schemas.DeploymentConversionRow
    ) -> dict[str, Any]:
        arrangement = row.arrangement
        dep = await handlers.convert_deployment(
            uow=uow,
            policies=runtime.policies,
            actor=actor,
            person_id=row.person_id,
            plan_id=row.plan_id,
            parts=schemas.part_requests(arrangement.parts),
            frequency=arrangement.frequency,
            first_due_on=arrangement.first_due_on,
            assessed_max_weekly_contribution_pence=(
                arrangement.assessed_max_weekly_contribution_pence
            ),
            signed_on=row.signed_on,
            arrears_reason=row.arrears_reason or arrangement.arrears_reason,
        )
        return {
            "person_id": dep.person_id,
            "deployment_id": str(dep.deployment_id),
            "status": dep.status.value,
        }

    async def read_deployments(
        uow: PaymentsUnitOfWork, rows: Sequence[schemas.DeploymentConversionRow]
    ) -> None:
        people = [row.person_id for row in rows]
        await uow.deployments.prefetch_people(actor.council, people)
        await uow.statements.prefetch_people(actor.council, people)

    return await convert_valid_rows(
        runtime,
        scope=f"conversion deployments {actor.council}",
        raw_rows=body.rows,
        model=schemas.DeploymentConversionRow,
        apply=arrange_and_sign,
        prepare=read_deployments,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return service_app(
        settings or Settings(),
        metadata=metadata,
        unit_of_work=PaymentsUnitOfWork,
        consumers=consumer.register,
        title="PB Journey: payments",
        description="Deployment of the budget, payment schedules, releases, monitoring "
        "and finance export.",
        routers=[
            router,
            finance_api.router,
            cards_api.router,
            statement_api.router,
            subject_access_router("payments"),
        ],
        upload_paths=frozenset({finance_api.CONFIRMATIONS_PATH, cards_api.CARD_FILE_PATH}),
        personal_data_paths=statement_api.PERSONAL_DATA_PATHS,
    )
