"""Payments HTTP API for the council's finance system: export batches of released
payments, import its confirmation file (paid / failed per payment), list the outcomes,
and the feed of released payments for finance systems that pull (docs/api.md)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from contracts.vocabulary import Role
from servicekit.auth import CurrentActor, require_role
from servicekit.csvfile import CSV_REQUEST_BODY, csv_body
from servicekit.pagination import Cursor, Limit, Page
from servicekit.problems import problem
from services.payments import handlers, schemas
from services.payments.reconciliation import Outcome
from services.payments.routing import (
    CONFIRMERS,
    EXPORT_READERS,
    FEED_POSITION,
    FEED_READERS,
    OUTCOME_READERS,
    SEQ_CURSOR,
    PersonIdQuery,
    Runtime,
    uow_of,
)

router = APIRouter(prefix="/v1", tags=["payments"])

# --- finance export ------------------------------------------------------------------------


@router.post(
    "/exports/payments",
    response_model=schemas.ExportBatchOut,
    status_code=201,
    summary="Batch every released payment up to a date not yet exported",
)
async def post_export(
    body: schemas.ExportIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ExportBatchOut:
    require_role(actor, Role.FINANCE)
    batch = await handlers.create_export_batch(uow=uow_of(runtime), actor=actor, up_to=body.up_to)
    return schemas.batch_out(batch)


@router.get(
    "/exports/payments",
    response_model=Page[schemas.ExportBatchOut],
    summary="The council's export batches, oldest first",
)
async def list_exports(
    actor: CurrentActor, runtime: Runtime, limit: Limit = 50, cursor: Cursor = None
) -> Page[schemas.ExportBatchOut]:
    require_role(actor, *EXPORT_READERS)
    rows = await handlers.list_export_batches(
        uow=uow_of(runtime), actor=actor, after_seq=SEQ_CURSOR.after(cursor), limit=limit
    )
    return Page[schemas.ExportBatchOut](
        items=[schemas.batch_out(batch) for _, batch in rows],
        next_cursor=SEQ_CURSOR.at(rows[-1][0]) if len(rows) == limit else None,
    )


@router.get(
    "/exports/payments/{batch_id}.csv",
    response_class=Response,
    summary="The batch as CSV (byte-identical every time); see EXPORT.md",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_export_csv(batch_id: UUID, actor: CurrentActor, runtime: Runtime) -> Response:
    require_role(actor, *EXPORT_READERS)
    batch, text = await handlers.export_batch_csv(
        uow=uow_of(runtime), actor=actor, batch_id=batch_id
    )
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payments-{batch.batch_id}.csv"'},
    )


# --- reconciliation and the feed -------------------------------------------------------------

CONFIRMATIONS_PATH = "/v1/payments/confirmations"


@router.post(
    "/payments/confirmations",
    response_model=schemas.ConfirmationReportOut,
    summary="Import the finance system's confirmation file (paid / failed per payment)",
    openapi_extra=CSV_REQUEST_BODY,
    responses={
        422: {
            "model": schemas.ConfirmationReportOut,
            "description": "Some lines refused: nothing done",
        }
    },
)
async def post_confirmations(
    request: Request, actor: CurrentActor, runtime: Runtime
) -> schemas.ConfirmationReportOut | JSONResponse:
    require_role(actor, *CONFIRMERS)
    report = await handlers.import_confirmations(
        uow=uow_of(runtime), actor=actor, content=await csv_body(request)
    )
    out = schemas.confirmation_report_out(report)
    if not report.accepted:
        return problem(
            422,
            "ConfirmationLinesRefused",
            f"{len(report.rejected)} line(s) refused; nothing was recorded",
            extensions=out.model_dump(mode="json"),
        )
    return out


@router.get(
    "/payments",
    response_model=Page[schemas.PaymentOutcomeOut],
    summary="Payments finance reported failed (or paid), oldest report first",
)
async def list_payments(
    actor: CurrentActor,
    runtime: Runtime,
    status: Annotated[Outcome, Query(description="failed or paid")],
    person_id: PersonIdQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[schemas.PaymentOutcomeOut]:
    require_role(actor, *OUTCOME_READERS)
    views = await handlers.list_payments_by_outcome(
        uow=uow_of(runtime),
        actor=actor,
        outcome=status,
        person_id=person_id,
        after_seq=SEQ_CURSOR.after(cursor),
        limit=limit,
    )
    return Page[schemas.PaymentOutcomeOut](
        items=[schemas.payment_outcome_out(v, status) for v in views],
        next_cursor=SEQ_CURSOR.at(views[-1].seq) if len(views) == limit else None,
    )


@router.get(
    "/payments/feed",
    response_model=schemas.FeedPageOut,
    summary="Released payments in release order, for finance systems that pull",
)
async def get_payment_feed(
    actor: CurrentActor,
    runtime: Runtime,
    after: Annotated[
        str | None,
        Query(max_length=500, description="next_after of the last page; absent: from the start"),
    ] = None,
    limit: Limit = 100,
) -> schemas.FeedPageOut:
    require_role(actor, *FEED_READERS)
    after_position = FEED_POSITION.after(after) or 0
    rows = await handlers.payment_feed(
        uow=uow_of(runtime), actor=actor, after_seq=after_position, limit=limit
    )
    return schemas.FeedPageOut(
        items=[schemas.feed_item_out(row, FEED_POSITION.at(row.seq)) for row in rows],
        next_after=FEED_POSITION.at(rows[-1].seq if rows else after_position),
    )
