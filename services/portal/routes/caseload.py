"""The caseload: people by stage, filtered by team, key worker and stage (audit's projection)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import views
from services.portal.deps import Api, Staff, render

router = APIRouter()


@router.get("/caseload", response_class=HTMLResponse)
async def caseload(
    request: Request,
    user: Staff,
    api: Api,
    team: str = "",
    key_worker_id: str = "",
    stage: str = "",
    cursor: str = "",
) -> Response:
    page = await api.get(
        "audit",
        "/v1/caseload",
        user.token,
        {
            "team": team,
            "key_worker_id": key_worker_id,
            "stage": stage,
            "cursor": cursor,
            "limit": 50,
        },
    )
    return render(
        request,
        "caseload.html",
        {
            "title": "Caseload",
            "people": page["items"],
            "next_cursor": page["next_cursor"],
            "filters": {"team": team, "key_worker_id": key_worker_id, "stage": stage},
            "stages": views.STAGES,
        },
    )
