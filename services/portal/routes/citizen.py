"""The person's own page (or their representative's): budget, plan, payments, next review,
and their personal budget statement, which they may download or challenge."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import cards, statements, views
from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, User, back_to, field, flash, render

router = APIRouter()


@router.get("/me", response_class=HTMLResponse)
async def my_budget(request: Request, user: User, api: Api) -> Response:
    if not user.is_citizen or user.person_id is None:
        return back_to("/caseload")
    case = await views.load_case(api, user, user.person_id)
    return render(
        request,
        "me.html",
        {
            "title": "Your personal budget",
            "case": case,
            "chart": views.budget_chart(case),
            "chart_rows": views.chart_table(case),
            "next_review": views.next_review(case),
            "card_accounts": await cards.accounts_of(api, user, user.person_id),
            "statements": await statements.statements_of(api, user, user.person_id),
            "statement_files": "/me/statements",
        },
    )


@router.get("/me/statements/{statement_id}.txt")
async def my_statement_file(statement_id: str, user: User, api: Api) -> Response:
    if not user.is_citizen or user.person_id is None:
        return back_to("/caseload")
    found = statements.find(await statements.statements_of(api, user, user.person_id), statement_id)
    if found is None:
        return back_to("/me")
    return statements.statement_file(user.person_id, found)


@router.post("/me/statements/{statement_id}/challenge")
async def challenge_statement(
    request: Request, statement_id: str, user: User, api: Api, form: Form
) -> Response:
    if not user.is_citizen:
        return back_to("/caseload")
    try:
        await api.post(
            "payments",
            f"/v1/budget-statements/{statement_id}/challenges",
            user.token,
            {"reason": field(form, "reason")},
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/me#statement")
    flash(
        request,
        "Your challenge has been sent. A team manager will look at it and write to you.",
        "success",
    )
    return back_to("/me#statement")
