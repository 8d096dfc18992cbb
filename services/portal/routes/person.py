"""A person's page: their whole journey, and agreeing their budget in principle."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import cards, permissions, statements, views
from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, back_to, field, flash, policy_for, render

router = APIRouter()


@router.get("/people/{person_id}", response_class=HTMLResponse)
async def person_page(request: Request, person_id: str, user: Staff, api: Api) -> Response:
    case = await views.load_case(api, user, person_id)
    policy = policy_for(request, user.council)
    return render(
        request,
        "person.html",
        {
            "title": f"Person {person_id}",
            "person_id": person_id,
            "case": case,
            "chart": views.budget_chart(case),
            "chart_rows": views.chart_table(case),
            "may_agree": permissions.may_agree(policy, user, case),
            "sign_off_role": permissions.sign_off_role(policy, case),
            "sitting_above": permissions.separate_sitting_above(policy),
            "budget_sitting": permissions.agreement_sitting(policy, user, case),
            "plan_sitting": permissions.sign_off_sitting(policy, user, case),
            "options": views.DEPLOYMENT_OPTIONS,
            "payment_frequencies": views.PAYMENT_FREQUENCIES,
            "card_accounts": await cards.accounts_of(api, user, person_id),
            "recoup_roles": {r.value for r in cards.RECOUP_ROLES},
            "response_roles": {r.value for r in cards.RESPONSE_ROLES},
            "statements": await statements.statements_of(api, user, person_id),
            "statement_files": f"/people/{quote(person_id)}/statements",
        },
    )


@router.get("/people/{person_id}/statements/{statement_id}.txt")
async def statement_file(person_id: str, statement_id: str, user: Staff, api: Api) -> Response:
    found = statements.find(await statements.statements_of(api, user, person_id), statement_id)
    if found is None:
        return back_to(f"/people/{quote(person_id)}")
    return statements.statement_file(person_id, found)


@router.post("/budgets/{budget_id}/agree")
async def agree_budget(
    request: Request, budget_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/people/{quote(field(form, 'person_id'))}"
    body: dict[str, Any] = {}
    if field(form, "ceiling_exception_reason"):
        body["ceiling_exception_reason"] = field(form, "ceiling_exception_reason")
    if field(form, "panel_sitting"):
        body["panel_sitting"] = field(form, "panel_sitting")
    try:
        await api.post("allocation", f"/v1/budgets/{budget_id}/agree", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Budget agreed and issued to the person.", "success")
    return back_to(here)
