"""Support plans: write one against the agreed budget, submit it, sign it off."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import views
from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, back_to, field, flash, render
from services.portal.formatting import BadAmount, money

router = APIRouter()


@router.get("/people/{person_id}/plan/new", response_class=HTMLResponse)
async def new_plan(request: Request, person_id: str, user: Staff, api: Api) -> Response:
    case = await views.load_case(api, user, person_id)
    return render(
        request,
        "plan_new.html",
        {
            "title": f"Write a support plan for {person_id}",
            "person_id": person_id,
            "case": case,
            "provider_kinds": views.PROVIDER_KINDS,
            "frequencies": views.LINE_FREQUENCIES,
            "line_numbers": range(1, views.PLAN_FORM_LINES + 1),
        },
    )


@router.post("/people/{person_id}/plans")
async def create_plan(
    request: Request, person_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(person_id)}"
    try:
        body = views.plan_body(form, person_id)
    except BadAmount as err:
        flash(request, str(err))
        return back_to(f"{here}/plan/new")
    try:
        plan = await api.post("planning", "/v1/plans", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(f"{here}/plan/new")
    flash(
        request,
        f"Plan saved: {money(plan['costing']['weekly_pence'])} a week. "
        "Submit it for sign-off when it is ready.",
        "success",
    )
    return back_to(here)


@router.post("/plans/{plan_id}/{action}")
async def plan_action(
    request: Request, plan_id: str, action: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(field(form, 'person_id'))}"
    done = {"submit": "Plan submitted for sign-off.", "sign-off": "Plan signed off."}
    if action not in done:
        return back_to(here)
    body = {}
    if action == "sign-off" and field(form, "panel_sitting"):
        body["panel_sitting"] = field(form, "panel_sitting")
    try:
        await api.post("planning", f"/v1/plans/{plan_id}/{action}", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(field(form, "back") or here)
    flash(request, done[action], "success")
    return back_to(field(form, "back") or here)
