"""What every payments route shares: who may call it, the runtime, the unit of work and
the list cursors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from contracts.vocabulary import CITIZEN_ROLES, STAFF_ROLES, Role
from servicekit.app import runtime_from
from servicekit.errors import InvalidCursor
from servicekit.pagination import decode_cursor
from servicekit.runtime import ServiceRuntime
from services.payments.db import PaymentsUnitOfWork

Runtime = Annotated[ServiceRuntime[Any], Depends(runtime_from)]

VIEWERS = tuple(STAFF_ROLES | CITIZEN_ROLES)
# The panel arranges and records agreements too: arrears above a team manager's limit are
# the panel's to approve (rules/arrears.py).
ARRANGERS = (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.FINANCE, Role.PANEL)
RELEASERS = (Role.FINANCE, Role.OPERATIONS)
RETURN_SUBMITTERS = (
    Role.PERSON,
    Role.REPRESENTATIVE,
    Role.CARE_MANAGER,
    Role.TEAM_MANAGER,
    Role.FINANCE,
)
HOLDERS = (Role.FINANCE, Role.TEAM_MANAGER)
EXPORT_READERS = (Role.FINANCE, Role.AUDITOR)
CONFIRMERS = (Role.FINANCE,)
FEED_READERS = (Role.FINANCE,)
OUTCOME_READERS = VIEWERS

PersonIdQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Opaque id.")
]


def after_seq(cursor: str | None, key: str = "seq") -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    value = position.get(key)
    if not isinstance(value, int) or value < 0:
        raise InvalidCursor()
    return value


def uow_of(runtime: ServiceRuntime[Any]) -> PaymentsUnitOfWork:
    uow: PaymentsUnitOfWork = runtime.uow()
    return uow
