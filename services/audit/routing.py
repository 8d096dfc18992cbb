"""What the audit routes share: the runtime and the replay service of the app, who may read
what, and the check that the caller may see a person."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from contracts.vocabulary import CITIZEN_ROLES, STAFF_ROLES, Role
from servicekit.app import runtime_from
from servicekit.auth import require_role
from servicekit.caller import Caller
from servicekit.runtime import ServiceRuntime
from services.audit import handlers
from services.audit.db import AuditUnitOfWork
from services.audit.domain import PersonNotFound
from services.audit.schemas import AUDITORS_ONLY_CHAINS, SEQ_CURSOR


async def _runtime(request: Request) -> ServiceRuntime[AuditUnitOfWork]:
    """The app's runtime; async, because FastAPI runs a plain function dependency in a
    worker thread, a hand-off that cost every request a share of its time."""
    return runtime_from(request)


Runtime = Annotated[ServiceRuntime[AuditUnitOfWork], Depends(_runtime)]


def replays_from(request: Request) -> handlers.ReplayService:
    """FastAPI dependency: the replay service of the app serving this request."""
    service: handlers.ReplayService = request.app.state.replays
    return service


ReplayDep = Annotated[handlers.ReplayService, Depends(replays_from)]

PERSON_READERS = (*sorted(STAFF_ROLES), *sorted(CITIZEN_ROLES))
CHAIN_AUDITORS = (Role.AUDITOR, Role.OPERATIONS)
CASELOAD_READERS = tuple(sorted(STAFF_ROLES))


async def authorise_person(uow: AuditUnitOfWork, actor: Caller, person_id: str) -> None:
    """Staff of the person's council, or the person themselves; anyone else: 404.

    Call it inside the read's own `uow.batch()`: one session and transaction for the
    check and the read (a connection checkout and a round trip fewer per request).
    """
    authorise_reader(actor, person_id)
    await handlers.ensure_person_held(uow=uow, council=actor.council, person_id=person_id)


def authorise_reader(actor: Caller, person_id: str) -> None:
    """`authorise_person` for a read that finds whether the person is held itself (a read
    of their verified chain, `tamper.verified_chain`): who may ask, without the query."""
    require_role(
        actor,
        *(CHAIN_AUDITORS if person_id.startswith(AUDITORS_ONLY_CHAINS) else PERSON_READERS),
    )
    if actor.is_citizen and actor.person_id != person_id:
        raise PersonNotFound(person_id)


def json_response(body: bytes) -> Response:
    """An answer already encoded: FastAPI would validate and encode it again."""
    return Response(content=body, media_type="application/json")


def seq_after(cursor: str | None) -> int:
    position = SEQ_CURSOR.decode(cursor)
    return 0 if position is None else position[0]
