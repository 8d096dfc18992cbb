"""Audit's statutory returns: the Client Level Data extract for a quarter (checked against
its layout, or as the CSV a council submits) and the KPIs as CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from contracts.vocabulary import STAFF_ROLES, Role
from servicekit import clock
from servicekit.app import runtime_from
from servicekit.auth import CurrentActor, require_role
from servicekit.caller import Caller
from servicekit.runtime import ServiceRuntime
from services.audit import handlers
from services.audit.domain import GroupBy
from services.audit.returns import CLD_FIELDS, Quarter, ReturnRequestInvalid, la_code_for, to_csv
from services.audit.schemas import CldReportOut, KpiDayQuery, LaCodeQuery, QuarterQuery

router = APIRouter(prefix="/v1", tags=["audit"])

KPI_READERS = tuple(sorted(STAFF_ROLES))

RETURN_READERS = (Role.AUDITOR, Role.OPERATIONS, Role.TEAM_MANAGER)


async def _cld(
    actor: Caller, runtime: ServiceRuntime[Any], quarter: str, la_code: str | None
) -> handlers.CldReturn:
    try:
        period = Quarter.parse(quarter)
        code = la_code_for(actor.council, la_code)
    except ReturnRequestInvalid as err:
        raise HTTPException(422, str(err)) from err
    try:
        la_name = runtime.policies.current(actor.council).name
    except KeyError:
        la_name = actor.council
    return await handlers.cld_return(
        uow=runtime.uow(), council=actor.council, la_name=la_name, quarter=period, la_code=code
    )


@router.get(
    "/returns/cld",
    response_model=CldReportOut,
    summary="The Client Level Data extract for a quarter, checked against the layout's rules",
)
async def get_cld_report(
    request: Request,
    actor: CurrentActor,
    quarter: QuarterQuery,
    la_code: LaCodeQuery = None,
) -> CldReportOut:
    require_role(actor, *RETURN_READERS)
    cld = await _cld(actor, runtime_from(request), quarter, la_code)
    return CldReportOut.of(cld)


@router.get(
    "/returns/cld.csv",
    response_class=Response,
    summary="The Client Level Data extract for a quarter as the CSV a council submits",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_cld_csv(
    request: Request,
    actor: CurrentActor,
    quarter: QuarterQuery,
    la_code: LaCodeQuery = None,
) -> Response:
    require_role(actor, *RETURN_READERS)
    cld = await _cld(actor, runtime_from(request), quarter, la_code)
    name = f"cld-{cld.la_code}-{cld.quarter}.csv"
    return Response(
        content=to_csv(CLD_FIELDS, cld.rows).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-CLD-Violations": str(len(cld.violations)),
        },
    )


@router.get(
    "/returns/kpis.csv",
    response_class=Response,
    summary="NI130 and the Lancashire measure as CSV, the council total then each group",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_kpis_csv(
    request: Request,
    actor: CurrentActor,
    by: GroupBy = GroupBy.COUNCIL,
    as_of: KpiDayQuery = None,
) -> Response:
    require_role(actor, *KPI_READERS)
    day = as_of or clock.today()
    text = await handlers.kpis_csv(
        uow=runtime_from(request).uow(), council=actor.council, by=by, as_of=day
    )
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kpis-{day}.csv"'},
    )
