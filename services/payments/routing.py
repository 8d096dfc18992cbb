"""What every payments route shares: who may call it, the runtime, the unit of work and
the list cursors (servicekit's codec; the same cursors as before it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from contracts.vocabulary import CITIZEN_ROLES, STAFF_ROLES, Role
from servicekit.app import runtime_from
from servicekit.pagination import CursorCodec
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


class SequenceCursor(CursorCodec[tuple[int]]):
    """A list read in the order rows were numbered: the cursor is the last number seen."""

    def __init__(self, name: str) -> None:
        super().__init__((name, int))

    def after(self, cursor: str | None) -> int | None:
        """The number to read on after; None from the start."""
        position = self.decode(cursor)
        return None if position is None else position[0]

    def at(self, number: int) -> str:
        return self.encode((number,))


SEQ_CURSOR = SequenceCursor("seq")
"""Deployments, export batches and outcomes, in the order they were recorded."""
OFFSET_CURSOR = SequenceCursor("offset")
"""A deployment's instalments in due order: how many came before."""
FEED_POSITION = SequenceCursor("feed")
"""The payment feed: the number of the last released payment read."""


def uow_of(runtime: ServiceRuntime[Any]) -> PaymentsUnitOfWork:
    uow: PaymentsUnitOfWork = runtime.uow()
    return uow
