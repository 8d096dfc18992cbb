"""Payments HTTP API for personal budget statements (Care Act 2014 s.26): a person's
statements, their challenge to one, and the team manager's queue of challenges and answer
(docs/charging.md, docs/api.md)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from fastapi import APIRouter

from contracts.vocabulary import Role
from servicekit.auth import CurrentActor, require_role
from servicekit.pagination import Cursor, Limit, Page
from servicekit.subject_access import PersonIdPath
from services.payments import handlers, schemas
from services.payments.routing import SEQ_CURSOR, VIEWERS, Runtime, uow_of

router = APIRouter(prefix="/v1", tags=["budget statements"])

PERSONAL_DATA_PATHS = frozenset(
    {
        "/v1/budget-statements/{statement_id}/challenges",
        "/v1/statement-challenges/{challenge_id}/answer",
    }
)
"""Their answers repeat the person's own words about their needs: never kept for a replay."""

CHALLENGERS = (Role.PERSON, Role.REPRESENTATIVE)
# A challenge is answered by someone senior to the worker who set the budget up.
ANSWERERS = (Role.TEAM_MANAGER, Role.PANEL)


@router.get(
    "/people/{person_id}/budget-statements",
    response_model=schemas.BudgetStatementsOut,
    summary="A person's personal budget statements, the newest first, with their challenges",
)
async def list_statements(
    person_id: PersonIdPath, actor: CurrentActor, runtime: Runtime
) -> schemas.BudgetStatementsOut:
    require_role(actor, *VIEWERS)
    statements, challenges = await handlers.statements_of_person(
        uow=uow_of(runtime), actor=actor, person_id=person_id
    )
    return schemas.statements_out(person_id, statements, challenges)


@router.post(
    "/budget-statements/{statement_id}/challenges",
    response_model=schemas.ChallengeOut,
    status_code=201,
    summary="Challenge the statement in force: the budget is not enough to meet the needs",
)
async def post_challenge(
    statement_id: UUID, body: schemas.ChallengeIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ChallengeOut:
    require_role(actor, *CHALLENGERS)
    challenge = await handlers.challenge_statement(
        uow=uow_of(runtime), actor=actor, statement_id=statement_id, reason=body.reason
    )
    return schemas.challenge_out(challenge)


@router.get(
    "/statement-challenges",
    response_model=Page[schemas.ChallengeOut],
    summary="The council's challenges to budget statements, the oldest first",
)
async def list_challenges(
    actor: CurrentActor,
    runtime: Runtime,
    status: Literal["open", "all"] = "open",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[schemas.ChallengeOut]:
    require_role(actor, *ANSWERERS)
    rows = await handlers.list_challenges(
        uow=uow_of(runtime),
        actor=actor,
        open_only=status == "open",
        after_seq=SEQ_CURSOR.after(cursor),
        limit=limit,
    )
    return Page[schemas.ChallengeOut](
        items=[schemas.challenge_out(c) for _, c in rows],
        next_cursor=SEQ_CURSOR.at(rows[-1][0]) if len(rows) == limit else None,
    )


@router.post(
    "/statement-challenges/{challenge_id}/answer",
    response_model=schemas.ChallengeOut,
    summary="Answer a challenge: upheld (a review is asked for) or not upheld, with reasons",
)
async def post_answer(
    challenge_id: UUID, body: schemas.ChallengeAnswerIn, actor: CurrentActor, runtime: Runtime
) -> schemas.ChallengeOut:
    require_role(actor, *ANSWERERS)
    challenge = await handlers.answer_challenge(
        uow=uow_of(runtime),
        actor=actor,
        challenge_id=challenge_id,
        outcome=body.outcome,
        response=body.response,
    )
    return schemas.challenge_out(challenge)
