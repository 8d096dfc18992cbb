"""Performance: NI130 and Lancashire's measure by month and team, against the target."""

from __future__ import annotations

import asyncio
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import views
from services.portal.chart import Series, line_chart
from services.portal.deps import Api, Staff, render, settings_of, today

router = APIRouter()

PERFORMANCE_MONTHS = 6


@router.get("/performance", response_class=HTMLResponse)
async def performance(request: Request, user: Staff, api: Api) -> Response:
    days = views.month_ends(today(), PERFORMANCE_MONTHS)
    ni130, lancashire = await asyncio.gather(
        asyncio.gather(
            *(
                api.get("audit", "/v1/kpis/ni130", user.token, {"by": "team", "as_of": d})
                for d in days
            )
        ),
        asyncio.gather(
            *(
                api.get("audit", "/v1/kpis/lancashire", user.token, {"by": "team", "as_of": d})
                for d in days
            )
        ),
    )
    target = settings_of(request).target_for(user.council)
    measures = [
        views.measure("NI130: people with a personal budget", "ni130", days, ni130, target),
        views.measure(
            "Lancashire: budget known, plan paid, reviewed in a year",
            "lancashire",
            days,
            lancashire,
            target,
        ),
    ]
    charts = {
        m["key"]: line_chart(
            [
                *(Series(team, pts, step=False) for team, pts in m["series"].items()),
                Series(
                    f"Target ({target:g}%)",
                    [
                        (date.fromisoformat(days[0]), target),
                        (date.fromisoformat(days[-1]), target),
                    ],
                ),
            ],
            chart_id=f"chart-{m['key']}",
            title=m["title"],
            description=f"Percentage of community-based people by team, month by month, "
            f"against the council's target of {target:g}%. The table below has the figures.",
            value_label=lambda v: f"{v:g}%",
            y_max=100,
        )
        for m in measures
    }
    return render(
        request,
        "performance.html",
        {
            "title": "Performance",
            "measures": measures,
            "charts": charts,
            "target": target,
            "days": days,
        },
    )
