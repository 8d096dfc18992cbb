"""A person's payments: how the budget is held and paid, the signed agreement, releases."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, back_to, field, flash
from services.portal.formatting import BadAmount, money, pence_from_pounds

router = APIRouter()


@router.post("/deployments/{deployment_id}/arrangement")
async def arrange(
    request: Request, deployment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(field(form, 'person_id'))}"
    given = field(form, "assessed_max_weekly_contribution")
    try:
        # Left blank, payments takes the charge of the person's latest financial assessment.
        contribution = pence_from_pounds(given, "Weekly contribution") if given else None
    except BadAmount as err:
        flash(request, str(err))
        return back_to(here)
    body = {
        "parts": [{"option": field(form, "option")}],
        "frequency": field(form, "frequency"),
        "first_due_on": field(form, "first_due_on"),
        "assessed_max_weekly_contribution_pence": contribution,
    }
    try:
        await api.put("payments", f"/v1/deployments/{deployment_id}/arrangement", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Payments arranged. Record the signed agreement next.", "success")
    return back_to(here)


@router.post("/deployments/{deployment_id}/agreement")
async def agreement(
    request: Request, deployment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(field(form, 'person_id'))}"
    body = {"signed_on": field(form, "signed_on")}
    if field(form, "arrears_reason"):
        body["arrears_reason"] = field(form, "arrears_reason")
    try:
        await api.post("payments", f"/v1/deployments/{deployment_id}/agreement", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Signed agreement recorded. Payments can now be released.", "success")
    return back_to(here)


@router.post("/deployments/{deployment_id}/release")
async def release(
    request: Request, deployment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(field(form, 'person_id'))}"
    try:
        result = await api.post(
            "payments",
            f"/v1/deployments/{deployment_id}/release",
            user.token,
            {"as_of": field(form, "as_of")},
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(
        request,
        f"Released {result['count']} payment(s), {money(result['total_pence'])} in all.",
        "success",
    )
    return back_to(here)
