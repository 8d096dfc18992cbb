"""Finance: release what is due, payment export batches, the finance system's confirmation
file, and failed payments with their reason."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import cards, finance
from services.portal.clients import ServiceError, Services
from services.portal.deps import (
    Api,
    Form,
    Staff,
    back_to,
    download,
    field,
    flash,
    optional,
    render,
    uploaded,
)
from services.portal.formatting import money
from services.portal.identity import SignedIn

router = APIRouter()


async def finance_context(request: Request, user: SignedIn, api: Services) -> dict[str, Any]:
    batches, failed = await asyncio.gather(
        optional(api.get("payments", "/v1/exports/payments", user.token)),
        optional(
            api.get("payments", "/v1/payments", user.token, {"status": "failed", "limit": 200})
        ),
    )
    available, expected = await finance.features(request.app, api)
    return {
        "title": "Finance",
        "batches": (batches or {}).get("items", []),
        "may_read": batches is not None,
        "failed": None if failed is None else failed.get("items", []),
        "may_confirm": user.role in finance.CONFIRMATION_ROLES,
        "may_import_cards": user.role in cards.CARD_FILE_ROLES,
        "available": available,
        "expected": expected,
    }


@router.get("/finance", response_class=HTMLResponse)
async def finance_page(request: Request, user: Staff, api: Api) -> Response:
    return render(request, "finance.html", await finance_context(request, user, api))


@router.post("/finance/confirmations")
async def import_confirmations(request: Request, user: Staff, api: Api, form: Form) -> Response:
    content = await uploaded(request, form)
    if content is None:
        return back_to("/finance#confirmations")
    try:
        report = await api.upload_csv("payments", "/v1/payments/confirmations", user.token, content)
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/finance#confirmations")
    if not report.accepted:
        # Shown at once rather than after a redirect: every refused line may not fit
        # in the session cookie that carries messages across a redirect.
        context = await finance_context(request, user, api)
        return render(request, "finance.html", {**context, "report": report}, status_code=422)
    flash(
        request,
        f"Confirmation file imported: {report.lines} line(s); "
        f"{report.count('recorded_paid')} paid, {report.count('recorded_failed')} failed, "
        f"{report.count('unchanged')} already recorded.",
        "success",
    )
    return back_to("/finance")


@router.post("/finance/card-file")
async def import_card_file(request: Request, user: Staff, api: Api, form: Form) -> Response:
    content = await uploaded(request, form)
    if content is None:
        return back_to("/finance#card-file")
    try:
        report = await api.upload_csv(
            "payments", "/v1/card-accounts/transactions", user.token, content
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/finance#card-file")
    if not report.accepted:
        context = await finance_context(request, user, api)
        return render(request, "finance.html", {**context, "card_report": report}, status_code=422)
    flash(
        request,
        f"Card file imported: {report.lines} row(s); {report.count('transactions')} new "
        f"transaction(s), {report.count('balances')} balance(s), "
        f"{report.count('unchanged')} already recorded, "
        f"{report.count('surpluses_flagged')} surplus(es) flagged.",
        "success",
    )
    return back_to("/finance")


@router.post("/finance/exports")
async def create_export(request: Request, user: Staff, api: Api, form: Form) -> Response:
    try:
        batch = await api.post(
            "payments", "/v1/exports/payments", user.token, {"up_to": field(form, "up_to")}
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/finance")
    flash(
        request,
        f"Export batch made: {batch['rows']} payment(s), {money(batch['control_total_pence'])}.",
        "success",
    )
    return back_to("/finance")


@router.post("/finance/release-due")
async def release_due(request: Request, user: Staff, api: Api, form: Form) -> Response:
    try:
        result = await api.post(
            "payments", "/v1/payments/release-due", user.token, {"as_of": field(form, "as_of")}
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/finance")
    flash(
        request,
        f"Released {result['count']} payment(s), {money(result['total_pence'])} in all.",
        "success",
    )
    return back_to("/finance")


@router.get("/finance/exports/{batch_id}.csv")
async def export_csv(batch_id: str, user: Staff, api: Api) -> Response:
    upstream = await api.request(
        "payments", "GET", f"/v1/exports/payments/{batch_id}.csv", user.token
    )
    return download(upstream.content, f"payments-{batch_id}.csv")
