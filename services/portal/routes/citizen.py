"""The person's own page (or their representative's): budget, plan, payments, next review."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import cards, views
from services.portal.deps import Api, User, back_to, render

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
        },
    )
