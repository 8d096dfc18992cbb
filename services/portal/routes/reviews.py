"""Reviews due within a number of weeks, and recording a review's outcome."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import views
from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, back_to, field, flash, render, today
from services.portal.formatting import long_date

router = APIRouter()


@router.get("/reviews", response_class=HTMLResponse)
async def reviews(request: Request, user: Staff, api: Api, weeks: int = 8) -> Response:
    weeks = max(1, min(weeks, 104))
    due_before = today() + timedelta(weeks=weeks)
    page = await api.get(
        "planning",
        "/v1/reviews",
        user.token,
        {"due_before": due_before.isoformat(), "limit": 200},
    )
    open_reviews = [r for r in page["items"] if r["status"] != "completed"]
    return render(
        request,
        "reviews.html",
        {
            "title": "Reviews due",
            "reviews": open_reviews,
            "weeks": weeks,
            "due_before": due_before,
            "outcomes": views.REVIEW_OUTCOMES,
        },
    )


@router.post("/reviews/{review_id}/complete")
async def complete_review(
    request: Request, review_id: str, user: Staff, api: Api, form: Form
) -> Response:
    body: dict[str, Any] = {
        "outcome": field(form, "outcome"),
        "notes": field(form, "notes"),
    }
    if field(form, "completed_on"):
        body["completed_on"] = field(form, "completed_on")
    try:
        done = await api.post("planning", f"/v1/reviews/{review_id}/complete", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/reviews")
    flash(
        request,
        f"Review recorded. The next is due by {long_date(done['next_review']['due_on'])}.",
        "success",
    )
    return back_to("/reviews")
