"""Approvals: plans and budgets within the user's limit, and what to refer up and to whom."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rules.authority import Act
from services.portal import permissions
from services.portal.deps import Api, Staff, optional, policy_for, render

router = APIRouter()


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, user: Staff, api: Api) -> Response:
    plans, budgets = await asyncio.gather(
        optional(api.get("planning", "/v1/approvals", user.token)),
        optional(
            api.get(
                "allocation",
                "/v1/budgets",
                user.token,
                {"status": "awaiting_agreement", "limit": 200},
            )
        ),
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
        },
    )
