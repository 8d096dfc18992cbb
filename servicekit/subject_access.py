"""What one service holds on one person, for a subject access request (docs/privacy.md).

Every table with a `person_id` column is read for the person, and every table that points
at those rows by a foreign key (a plan's history, a schedule's instalments) follows. The
messaging tables are left out: the outbox and inbox hold copies of events the audit
service already answers for, and the idempotency keys hold replies to staff.

Who may ask: the person or their representative, for themselves, and operations, who
answer subject access requests for the council. Another council's person, or someone
this service holds nothing on, is not found.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.vocabulary import Role
from servicekit.app import runtime_from
from servicekit.auth import CurrentActor
from servicekit.caller import Caller
from servicekit.db import one_of
from servicekit.errors import Forbidden, NotFound
from servicekit.runtime import ServiceRuntime

MESSAGING_TABLES = frozenset({"outbox", "inbox", "idempotency_keys"})
PersonIdPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


def ensure_may_see_subject_access(actor: Caller, person_id: str) -> None:
    """403 for staff other than operations; 404 for a person asking about someone else."""
    if actor.is_citizen:
        if actor.person_id != person_id:
            raise NotFound("not found")
        return
    if actor.role is not Role.OPERATIONS:
        raise Forbidden(
            f"a {actor.role.value} may not read a subject access export; the person, their "
            "representative or operations can",
        )


def plain(value: Any) -> Any:
    """A column value as JSON: times and dates in ISO 8601, bytes in base64."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def holdings(
    session: AsyncSession,
    metadata: sa.MetaData,
    *,
    council: str,
    person_id: str,
    leave_out: frozenset[str] = frozenset(),
) -> dict[str, list[dict[str, Any]]] | None:
    """Table -> the person's rows; None when no council-scoped table holds anything on them."""
    skip = MESSAGING_TABLES | leave_out
    found: dict[str, list[dict[str, Any]]] = {}
    in_council = False
    unscoped: list[sa.Table] = []
    for table in metadata.sorted_tables:  # parents before the tables pointing at them
        if table.name in skip:
            continue
        if "person_id" in table.c:
            if "council" not in table.c:
                unscoped.append(table)
                continue
            query = sa.select(table).where(
                table.c.person_id == person_id, table.c.council == council
            )
            rows = [dict(r) for r in (await session.execute(query)).mappings()]
            in_council = in_council or bool(rows)
            found[table.name] = rows
            continue
        for fk in table.foreign_keys:
            parent_rows = found.get(fk.column.table.name)
            if not parent_rows:
                continue
            ids = [row[fk.column.name] for row in parent_rows]
            query = sa.select(table).where(one_of(fk.parent, ids))
            found.setdefault(table.name, []).extend(
                dict(r) for r in (await session.execute(query)).mappings()
            )
    if not in_council:
        return None
    # A table without a council column is read only once the person is known to be ours.
    for table in unscoped:
        query = sa.select(table).where(table.c.person_id == person_id)
        found[table.name] = [dict(r) for r in (await session.execute(query)).mappings()]
    return {name: [plain(row) for row in rows] for name, rows in found.items() if rows}


def subject_access_router(service: str) -> APIRouter:
    """GET /v1/people/{person_id}/subject-access for a service with nothing to open."""
    router = APIRouter(prefix="/v1", tags=[service])

    @router.get(
        "/people/{person_id}/subject-access",
        summary="Everything this service holds on one person (subject access)",
        response_model=dict[str, Any],
    )
    async def subject_access(
        person_id: PersonIdPath,
        actor: CurrentActor,
        runtime: Annotated[ServiceRuntime[Any], Depends(runtime_from)],
    ) -> dict[str, Any]:
        ensure_may_see_subject_access(actor, person_id)
        async with runtime.database.sessions() as session:
            held = await holdings(
                session, runtime.metadata, council=actor.council, person_id=person_id
            )
        if held is None:
            raise NotFound("not found")
        return {
            "service": service,
            "person_id": person_id,
            "council": actor.council,
            "tables": held,
        }

    return router
