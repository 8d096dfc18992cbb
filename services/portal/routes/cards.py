"""Card accounts: the written notice before a surplus is recouped, the person's response
(from their own page or recorded by a worker), and the recoup once the period is over."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, User, back_to, field, flash
from services.portal.formatting import BadAmount, money, pence_from_pounds, plain

router = APIRouter()


def _page_of(user_is_citizen: bool, person_id: str) -> str:
    return "/me#card" if user_is_citizen else f"/people/{quote(person_id)}#card-accounts"


@router.post("/card-accounts/{account_id}/notice")
async def give_notice(
    request: Request, account_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = _page_of(False, field(form, "person_id"))
    try:
        amount = pence_from_pounds(field(form, "amount"), "Amount to recoup")
    except BadAmount as err:
        flash(request, str(err))
        return back_to(here)
    body = {"amount_pence": amount, "reason": field(form, "reason")}
    try:
        account = await api.post(
            "payments", f"/v1/card-accounts/{account_id}/recoup-notices", user.token, body
        )
    except ServiceError as err:
        flash(request, plain(err.message))
        return back_to(here)
    notice = account["notices"][-1]
    flash(
        request,
        f"Notice sent: {money(notice['amount_pence'])}; the person may respond until "
        f"{plain(notice['respond_by'])}.",
        "success",
    )
    return back_to(here)


@router.post("/card-accounts/{account_id}/notices/{notice_id}/response")
async def respond(
    request: Request, account_id: str, notice_id: str, user: User, api: Api, form: Form
) -> Response:
    person_id = user.person_id if user.is_citizen else field(form, "person_id")
    here = _page_of(user.is_citizen, person_id or "")
    body: dict[str, Any] = {"response": field(form, "response")}
    if field(form, "comments"):
        body["comments"] = field(form, "comments")
    try:
        await api.post(
            "payments",
            f"/v1/card-accounts/{account_id}/recoup-notices/{notice_id}/responses",
            user.token,
            body,
        )
    except ServiceError as err:
        flash(request, plain(err.message))
        return back_to(here)
    flash(
        request,
        "Thank you: your answer is recorded." if user.is_citizen else "Response recorded.",
        "success",
    )
    return back_to(here)


@router.post("/card-accounts/{account_id}/recoup")
async def recoup(request: Request, account_id: str, user: Staff, api: Api, form: Form) -> Response:
    here = _page_of(False, field(form, "person_id"))
    try:
        amount = pence_from_pounds(field(form, "amount"), "Amount to recoup")
    except BadAmount as err:
        flash(request, str(err))
        return back_to(here)
    try:
        await api.post(
            "payments",
            f"/v1/card-accounts/{account_id}/recoups",
            user.token,
            {"amount_pence": amount, "notice_id": field(form, "notice_id")},
        )
    except ServiceError as err:
        flash(request, plain(err.message))
        return back_to(here)
    flash(request, f"{money(amount)} recouped from the card account.", "success")
    return back_to(here)
