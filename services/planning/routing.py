"""What every planning route shares: who may call it, the runtime and its unit of work, and
how a plan refused by its sign-off checks is answered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, Role
from servicekit.app import runtime_from
from servicekit.problems import problem
from servicekit.runtime import ServiceRuntime
from services.planning.db import PlanningUnitOfWork
from services.planning.domain import ChecksFailed

Runtime = Annotated[ServiceRuntime[Any], Depends(runtime_from)]

PLAN_WRITERS = (*sorted(PRACTITIONER_ROLES), *sorted(CITIZEN_ROLES))
PRACTITIONERS = tuple(sorted(PRACTITIONER_ROLES))
REVIEW_CLOCK = (Role.TEAM_MANAGER, Role.OPERATIONS)


def uow_of(runtime: ServiceRuntime[Any]) -> PlanningUnitOfWork:
    uow: PlanningUnitOfWork = runtime.uow()
    return uow


async def checks_failed(_: Request, err: Exception) -> JSONResponse:
    """The failed checks travel as a `failures` member of the problem, one per check."""
    assert isinstance(err, ChecksFailed)
    return problem(
        err.status_code,
        type(err).__name__,
        str(err),
        extensions={
            "failures": [{"check": c.name.value, "reason": c.reason} for c in err.failures]
        },
    )
