"""Reviews due within a number of weeks, recording a review's outcome, and recording a
change of circumstances that brings a review forward."""

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

REVIEW_KINDS = {
    "first": "First review of the plan",
    "annual": "Annual review of the plan",
    "unscheduled": "Extra review",
    "direct_payment": "Review of the direct payment",
}
WHAT_HAPPENED = {
    "carer_stopped": "a carer stopped",
    "hospital_admission": "a hospital admission",
    "surplus_found": "a surplus found on the payments",
    "other": "a change of circumstances",
}
CHANGES = [
    ("carer_stopped", "A carer stopped"),
    ("hospital_admission", "A hospital admission"),
    ("other", "Another change (say what)"),
]


def review_words(review: dict[str, Any]) -> str:
    """Which review, and for an extra one what brought it forward and when."""
    kind = REVIEW_KINDS.get(review["kind"], str(review["kind"]).replace("_", " ").capitalize())
    trigger = review.get("trigger")
    if trigger is None:
        return kind
    happened = review.get("happened_on")
    on = f" on {long_date(happened)}" if happened else ""
    return f"{kind}: {WHAT_HAPPENED.get(trigger, trigger.replace('_', ' '))}{on}"


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
    open_reviews = [
        {**r, "what": review_words(r)} for r in page["items"] if r["status"] != "completed"
    ]
    return render(
        request,
        "reviews.html",
        {
            "title": "Reviews due",
            "reviews": open_reviews,
            "weeks": weeks,
            "due_before": due_before,
            "outcomes": views.REVIEW_OUTCOMES,
            "changes": CHANGES,
        },
    )


@router.post("/reviews/changes")
async def record_change(request: Request, user: Staff, api: Api, form: Form) -> Response:
    """A change in a person's circumstances: an extra review of their signed-off plan."""
    person_id = field(form, "person_id")
    if not person_id:
        flash(request, "Give the person's id.")
        return back_to("/reviews")
    try:
        plans = await api.get(
            "planning",
            "/v1/plans",
            user.token,
            {"person_id": person_id, "status": "signed_off", "limit": 200},
        )
        signed = sorted(plans["items"], key=lambda p: p["created_at"])
        if not signed:
            flash(request, f"{person_id} has no signed-off plan to review.")
            return back_to("/reviews")
        body: dict[str, Any] = {
            "plan_id": signed[-1]["plan_id"],
            "change": field(form, "change"),
            "happened_on": field(form, "happened_on"),
        }
        if field(form, "details"):
            body["details"] = field(form, "details")
        review = await api.post("planning", "/v1/changes-of-circumstances", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/reviews")
    flash(
        request,
        f"Change recorded. An extra review of {person_id}'s plan is due by "
        f"{long_date(review['due_on'])}.",
        "success",
    )
    return back_to("/reviews")


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
