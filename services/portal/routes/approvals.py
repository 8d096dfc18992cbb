"""Approvals: plans and budgets within the user's limit, what to refer up and to whom, and
the challenges to personal budget statements a team manager (or the panel) answers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rules.authority import Act
from services.portal import permissions
from services.portal.clients import ServiceError
from services.portal.deps import (
    Api,
    Form,
    Staff,
    back_to,
    field,
    flash,
    optional,
    policy_for,
    render,
)

router = APIRouter()


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, user: Staff, api: Api) -> Response:
    plans, budgets, challenges = await asyncio.gather(
        optional(api.get("planning", "/v1/approvals", user.token)),
        optional(
            api.get(
                "allocation",
                "/v1/budgets",
                user.token,
                {"status": "awaiting_agreement", "limit": 200},
            )
        ),
        optional(api.get("payments", "/v1/statement-challenges", user.token, {"limit": 200})),
    )
    policy = policy_for(request, user.council)
    waiting = (budgets or {}).get("items", [])
    return render(
        request,
        "approvals.html",
        {
            "title": "Approvals",
            "plans": plans,
            "plan_sittings": {
                p["plan_id"]: permissions.sitting_to_name(
                    policy, user, Act.SIGN_OFF, int(p["weekly_pence"])
                )
                for p in (plans or {}).get("items", [])
            },
            "budgets_mine": [
                permissions.who_agrees(policy, b)
                for b in waiting
                if permissions.can_agree(policy, user, b)
            ],
            "budgets_up": [
                permissions.who_agrees(policy, b)
                for b in waiting
                if not permissions.can_agree(policy, user, b)
            ],
            "limits": permissions.limits(policy, user.role),
            "sitting_above": permissions.separate_sitting_above(policy),
            "challenges": None if challenges is None else challenges.get("items", []),
        },
    )


@router.post("/statement-challenges/{challenge_id}/answer")
async def answer_challenge(
    request: Request, challenge_id: str, user: Staff, api: Api, form: Form
) -> Response:
    try:
        await api.post(
            "payments",
            f"/v1/statement-challenges/{challenge_id}/answer",
            user.token,
            {"outcome": field(form, "outcome"), "response": field(form, "response")},
        )
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/approvals#challenges")
    flash(request, "Your answer is recorded and the person will see it.", "success")
    return back_to("/approvals#challenges")
