"""Imports and returns: a client extract to import, the quarter's CLD return, KPI figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from contracts import cld
from services.portal import finance
from services.portal.clients import ServiceError
from services.portal.deps import (
    Api,
    Form,
    Staff,
    back_to,
    download,
    flash,
    render,
    today,
    uploaded,
)
from services.portal.identity import SignedIn

router = APIRouter()


def imports_context(user: SignedIn, quarter: str) -> dict[str, Any]:
    return {
        "title": "Imports and returns",
        "may_import": user.role in finance.PEOPLE_IMPORT_ROLES,
        "may_return": user.role in finance.CLD_ROLES,
        "quarters": finance.previous_quarters(today(), 8),
        "quarter": quarter,
    }


@router.get("/imports", response_class=HTMLResponse)
async def imports_page(request: Request, user: Staff, api: Api, quarter: str = "") -> Response:
    context = imports_context(user, quarter or finance.quarter_of(today()))
    if quarter and context["may_return"]:
        if not finance.QUARTER.match(quarter):
            flash(request, "Choose a quarter, like 2026-Q3.")
            return back_to("/imports")
        context["cld"] = await api.get("audit", "/v1/returns/cld", user.token, {"quarter": quarter})
    return render(request, "imports.html", context)


@router.post("/imports/people")
async def import_people(request: Request, user: Staff, api: Api, form: Form) -> Response:
    content = await uploaded(request, form)
    if content is None:
        return back_to("/imports#people")
    try:
        report = await api.upload_csv("assessment", "/v1/imports/people", user.token, content)
    except ServiceError as err:
        flash(request, err.message)
        return back_to("/imports#people")
    if not report.accepted:
        context = imports_context(user, finance.quarter_of(today()))
        return render(request, "imports.html", {**context, "report": report}, status_code=422)
    flash(
        request,
        f"People imported: {report.lines} line(s); {report.count('imported')} new "
        f"(an assessment started for each), {report.count('already_imported')} "
        "imported before.",
        "success",
    )
    return back_to("/imports")


@router.get("/returns/cld.csv")
async def cld_csv(request: Request, user: Staff, api: Api, quarter: str = "") -> Response:
    if not finance.QUARTER.match(quarter):
        flash(request, "Choose a quarter, like 2026-Q3.")
        return back_to("/imports#cld")
    upstream = await api.request(
        "audit", "GET", "/v1/returns/cld.csv", user.token, params={"quarter": quarter}
    )
    extract = upstream.content.decode("utf-8")
    people = cld.people_in(extract)
    identities: dict[str, dict[str, Any]] = {}
    for start in range(0, len(people), cld.MAX_PEOPLE_PER_REQUEST):
        batch = people[start : start + cld.MAX_PEOPLE_PER_REQUEST]
        answer = await api.post(
            "assessment", "/v1/people/identities", user.token, {"person_ids": batch}
        )
        identities.update({item["person_id"]: item for item in answer["items"]})
    filled = cld.with_identities(extract, identities)
    return download(filled.encode("utf-8"), f"cld-{quarter}.csv")


@router.get("/returns/kpis.csv")
async def kpis_csv(user: Staff, api: Api) -> Response:
    upstream = await api.request("audit", "GET", "/v1/returns/kpis.csv", user.token)
    return download(upstream.content, f"kpis-{today().isoformat()}.csv")
