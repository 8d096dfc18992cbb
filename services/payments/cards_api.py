"""Payments HTTP API for prepaid card accounts: import the card provider's file, read an
account, send a recoup notice, record the person's response, recoup (docs/api.md)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts.vocabulary import Role
from servicekit.auth import CurrentActor, require_role
from servicekit.csvfile import CSV_REQUEST_BODY, csv_body
from servicekit.pagination import Cursor, Limit, Page
from servicekit.problems import problem
from services.payments import cards_handlers, schemas
from services.payments.routing import (
    RETURN_SUBMITTERS,
    SEQ_CURSOR,
    VIEWERS,
    PersonIdQuery,
    Runtime,
    uow_of,
)

router = APIRouter(prefix="/v1", tags=["card accounts"])

CARD_IMPORTERS = (Role.FINANCE,)
RECOUPERS = (Role.FINANCE,)
RESPONDERS = RETURN_SUBMITTERS
"""The person or their representative from the citizen view, or a case worker or finance
recording what the person said by letter or on the phone."""

CARD_FILE_PATH = "/v1/card-accounts/transactions"


@router.post(
    "/card-accounts/transactions",
    response_model=schemas.CardImportReportOut,
    summary="Import the card provider's transactions and balances file (docs/integrations.md)",
    openapi_extra=CSV_REQUEST_BODY,
    responses={
        422: {
            "model": schemas.CardImportReportOut,
            "description": "Some rows refused: nothing done",
        }
    },
)
async def post_card_file(
    request: Request, actor: CurrentActor, runtime: Runtime
) -> schemas.CardImportReportOut | JSONResponse:
    require_role(actor, *CARD_IMPORTERS)
    report = await cards_handlers.import_card_file(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        content=await csv_body(request),
    )
    out = schemas.card_import_report_out(report)
    if not report.accepted:
        return problem(
            422,
            "CardRowsRefused",
            f"{len(report.rejected)} row(s) refused; nothing was recorded",
            extensions=out.model_dump(mode="json"),
        )
    return out


@router.get(
    "/card-accounts",
    response_model=Page[schemas.CardAccountOut],
    summary="Card accounts, oldest first (a person: their own)",
)
async def list_card_accounts(
    actor: CurrentActor,
    runtime: Runtime,
    person_id: PersonIdQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[schemas.CardAccountOut]:
    require_role(actor, *VIEWERS)
    rows = await cards_handlers.list_card_accounts(
        uow=uow_of(runtime),
        actor=actor,
        person_id=person_id,
        after_seq=SEQ_CURSOR.after(cursor),
        limit=limit,
    )
    return Page[schemas.CardAccountOut](
        items=[schemas.card_account_out(account) for _, account in rows],
        next_cursor=SEQ_CURSOR.at(rows[-1][0]) if len(rows) == limit else None,
    )


@router.get(
    "/card-accounts/{account_id}",
    response_model=schemas.CardAccountOut,
    summary="A card account: balance, spending by category, surpluses, notices, recoups",
)
async def get_card_account(
    account_id: UUID, actor: CurrentActor, runtime: Runtime
) -> schemas.CardAccountOut:
    require_role(actor, *VIEWERS)
    account = await cards_handlers.get_card_account(
        uow=uow_of(runtime), actor=actor, account_id=account_id
    )
    return schemas.card_account_out(account)


@router.post(
    "/card-accounts/{account_id}/recoup-notices",
    response_model=schemas.CardAccountOut,
    status_code=201,
    summary="Send the written notice before recouping the surplus flagged",
)
async def post_recoup_notice(
    account_id: UUID, body: schemas.RecoupNoticeIn, actor: CurrentActor, runtime: Runtime
) -> schemas.CardAccountOut:
    require_role(actor, *RECOUPERS)
    account, _ = await cards_handlers.send_recoup_notice(
        uow=uow_of(runtime),
        policies=runtime.policies,
        actor=actor,
        account_id=account_id,
        amount_pence=body.amount_pence,
        reason=body.reason,
    )
    return schemas.card_account_out(account)


@router.post(
    "/card-accounts/{account_id}/recoup-notices/{notice_id}/responses",
    response_model=schemas.CardAccountOut,
    status_code=201,
    summary="Record the person's response to a recoup notice",
)
async def post_recoup_response(
    account_id: UUID,
    notice_id: UUID,
    body: schemas.RecoupResponseIn,
    actor: CurrentActor,
    runtime: Runtime,
) -> schemas.CardAccountOut:
    require_role(actor, *RESPONDERS)
    account, _ = await cards_handlers.record_recoup_response(
        uow=uow_of(runtime),
        actor=actor,
        account_id=account_id,
        notice_id=notice_id,
        response=body.response,
        comments=body.comments,
    )
    return schemas.card_account_out(account)


@router.post(
    "/card-accounts/{account_id}/recoups",
    response_model=schemas.CardAccountOut,
    status_code=201,
    summary="Recoup under a notice whose period to respond is over",
)
async def post_recoup(
    account_id: UUID, body: schemas.RecoupIn, actor: CurrentActor, runtime: Runtime
) -> schemas.CardAccountOut:
    require_role(actor, *RECOUPERS)
    account, _ = await cards_handlers.recoup_card_funds(
        uow=uow_of(runtime),
        actor=actor,
        account_id=account_id,
        notice_id=body.notice_id,
        amount_pence=body.amount_pence,
        today=getattr(runtime.settings, "recoup_today", None),
    )
    return schemas.card_account_out(account)
