"""Allocation's wire models: what the API takes and answers, and how budgets map to them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.events import BudgetStage, ExplanationLine, OtherFunding, OtherFundingSource, Scale
from contracts.vocabulary import ClientGroup, Role
from rules.authority import Sitting
from servicekit.app import RequestPence
from servicekit.bulk import ConversionRef
from servicekit.caller import Caller
from servicekit.pagination import CursorCodec
from services.allocation.domain import (
    ISSUED_STATES,
    Budget,
    BudgetNotFound,
    BudgetStatus,
    Calculation,
    FundingStream,
    Revision,
    RevisionState,
)

BUDGET_CURSOR = CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))
"""Budgets are listed, and revised for a policy, in (created_at, budget_id) order."""


def budgets_after(cursor: str | None) -> tuple[datetime, str] | None:
    position = BUDGET_CURSOR.decode(cursor)
    return None if position is None else (position[0], str(position[1]))


DomainKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LevelNumber = Annotated[int, Field(strict=True, ge=0, le=99)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Version = Annotated[int, Field(strict=True, ge=1)]
PersonIdQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="One person.")
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundingIn(_Request):
    """Other funding the person gets, deducted from the budget at the policy's rate."""

    source: OtherFundingSource
    weekly_pence: RequestPence


class CalculationRequest(_Request):
    """The RAS inputs; the council (and so the policy) comes from the caller's token."""

    client_group: ClientGroup
    domain_levels: dict[DomainKey, LevelNumber] = Field(min_length=1, max_length=30)
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: RequestPence = 0
    other_funding: list[FundingIn] = Field(default_factory=list, max_length=10)
    additional_weekly_pence: RequestPence = 0


class AgreeRequest(_Request):
    expected_version: Version | None = None
    ceiling_exception_reason: Reason | None = None
    panel_sitting: Sitting | None = Field(
        None,
        description="Where the council's panel sits separately above a weekly amount "
        "(Council B: above £300 a week), the sitting that took the decision; above that "
        "amount only the separate sitting's counts. Left out: the sitting the amount goes "
        "to is recorded.",
    )


class RevisionRequest(_Request):
    reason: Reason
    additional_weekly_pence: RequestPence | None = Field(
        None, description="Support the points do not capture, e.g. 2-to-1 (seed 003 ch.2 §iii)."
    )
    carer_support_weekly_pence: RequestPence | None = Field(
        None, description="The carer's agreed support now; 0 restores the money if they stop."
    )
    other_funding: list[FundingIn] | None = Field(None, max_length=10)
    expected_version: Version | None = None


class DomainScoreOut(BaseModel):
    key: str
    name: str
    level: int
    points: int


class DeductionOut(BaseModel):
    source: str
    label: str
    agreed_weekly_pence: int
    deducted_weekly_pence: int


class CalculationOut(BaseModel):
    policy_version: str
    client_group: ClientGroup
    domain_scores: list[DomainScoreOut]
    points: int
    max_points: int
    price_per_point_weekly_pence: int
    standard_weekly_pence: int
    scale: Scale
    scale_basis_points: int
    scaled_weekly_pence: int
    additional_weekly_pence: int
    deductions: list[DeductionOut]
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    explanation: list[ExplanationLine]

    @classmethod
    def of(cls, calc: Calculation) -> CalculationOut:
        return cls.model_validate(calc.model_dump())


class InputsOut(BaseModel):
    client_group: ClientGroup
    domain_levels: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: int
    other_funding: list[OtherFunding]
    additional_weekly_pence: int
    additional_reason: str | None


class RevisionOut(BaseModel):
    revision: int
    state: RevisionState
    stage: BudgetStage | None
    reason: str
    assessment_id: UUID
    client_group: ClientGroup
    points: int
    scale: Scale
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    ceiling_exception: bool
    ceiling_exception_reason: str | None
    policy_version: str
    explanation: list[ExplanationLine]
    inputs: InputsOut
    created_by: str
    created_at: datetime
    agreed_by: str | None
    agreed_by_role: Role | None
    agreed_at: datetime | None
    panel_sitting: Sitting | None = Field(
        description="The panel sitting that agreed it, where the council's panel sits "
        "separately above a weekly amount."
    )
    plan_id: UUID | None
    plan_version: int | None

    @classmethod
    def of(cls, rev: Revision) -> RevisionOut:
        return cls(
            revision=rev.number,
            state=rev.state,
            stage=rev.stage,
            reason=rev.reason,
            assessment_id=rev.assessment_id,
            client_group=rev.inputs.client_group,
            points=rev.points,
            scale=rev.scale,
            weekly_pence=rev.weekly_pence,
            annual_pence=rev.annual_pence,
            ceiling_weekly_pence=rev.ceiling_weekly_pence,
            above_ceiling=rev.above_ceiling,
            ceiling_exception=rev.ceiling_exception,
            ceiling_exception_reason=rev.ceiling_exception_reason,
            policy_version=rev.policy_version,
            explanation=list(rev.explanation),
            inputs=InputsOut.model_validate(rev.inputs.model_dump()),
            created_by=rev.created_by,
            created_at=rev.created_at,
            agreed_by=rev.agreed_by,
            agreed_by_role=rev.agreed_by_role,
            agreed_at=rev.agreed_at,
            panel_sitting=rev.panel_sitting,
            plan_id=rev.plan_id,
            plan_version=rev.plan_version,
        )


class BudgetOut(BaseModel):
    budget_id: UUID
    person_id: str
    council: str
    status: BudgetStatus
    version: int
    created_at: datetime
    updated_at: datetime | None
    current_revision: RevisionOut
    revisions: list[RevisionOut] = Field(description="Every revision, oldest first.")


class BudgetSummary(BaseModel):
    budget_id: UUID
    person_id: str
    status: BudgetStatus
    version: int
    revision: int
    stage: BudgetStage | None
    client_group: ClientGroup
    points: int
    weekly_pence: int
    annual_pence: int
    policy_version: str
    updated_at: datetime | None


class ExplanationOut(BaseModel):
    budget_id: UUID
    revision: int
    state: RevisionState
    stage: BudgetStage | None
    weekly_pence: int
    annual_pence: int
    policy_version: str
    lines: list[ExplanationLine]
    summary: str


Shown = TypeVar("Shown")


def shown_of(
    actor: Caller,
    budget_id: UUID,
    council: str,
    person_id: str,
    revisions: Sequence[Shown],
    state: Callable[[Shown], RevisionState],
) -> tuple[BudgetStatus, list[Shown]]:
    """Staff of the council see every revision; a person only what they have been told.

    Agreement in principle comes before the person is told (seed 003 ch.2 §iv), so a
    revision still awaiting agreement (or superseded unagreed) is not shown to them. The
    revisions are the domain's or a budget's stored rows; `state` reads each one's state.
    """
    if actor.council != council:
        raise BudgetNotFound(budget_id)
    if not actor.is_citizen:
        return BudgetStatus(state(revisions[-1]).value), list(revisions)
    if actor.person_id != person_id:
        raise BudgetNotFound(budget_id)
    issued = [rev for rev in revisions if state(rev) in ISSUED_STATES]
    if not issued:
        raise BudgetNotFound(budget_id)
    return BudgetStatus(state(issued[-1]).value), issued


def shown_to(actor: Caller, budget: Budget) -> tuple[BudgetStatus, list[Revision]]:
    """The budget's status and revisions as `actor` may see them (`shown_of`)."""
    return shown_of(
        actor,
        budget.budget_id,
        budget.council,
        budget.person_id,
        budget.revisions,
        lambda rev: rev.state,
    )


def budget_out(actor: Caller, budget: Budget) -> BudgetOut:
    budget_status, revisions = shown_to(actor, budget)
    shown = [RevisionOut.of(rev) for rev in revisions]
    return BudgetOut(
        budget_id=budget.budget_id,
        person_id=budget.person_id,
        council=budget.council,
        status=budget_status,
        version=budget.version,
        created_at=budget.created_at,
        updated_at=budget.updated_at,
        current_revision=shown[-1],
        revisions=shown,
    )


# --- GET budget from its stored JSON ----------------------------------------------------------
#
# A budget read is answered from its stored rows without building the domain's models and
# then the wire models from them (pydantic was a fifth of the route's CPU). The answer is
# BudgetOut's JSON byte for byte: the same fields in the same order, encoded by msgspec,
# which writes JSON as pydantic does (compact, UTF-8, the same escapes, RFC 3339 times
# ending in Z). services/allocation/tests/test_budget_answer.py holds the two answers
# equal. A stored revision whose JSON has a shape these structs do not know raises
# `msgspec.ValidationError` and is answered through the models instead.


class _StoredFunding(msgspec.Struct, forbid_unknown_fields=True):
    source: str
    weekly_pence: int


class _StoredInputs(msgspec.Struct, forbid_unknown_fields=True):
    """A revision's stored inputs (rules.ras.BudgetInputs), in InputsOut's order."""

    client_group: str
    domain_levels: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: int = 0
    other_funding: list[_StoredFunding] = []
    additional_weekly_pence: int = 0
    additional_reason: str | None = None


class _StoredLine(msgspec.Struct, forbid_unknown_fields=True):
    """One stored explanation line (contracts.events.ExplanationLine)."""

    label: str
    amount_pence: int
    detail: str = ""


_INPUTS = msgspec.json.Decoder(_StoredInputs)
_LINES = msgspec.json.Decoder(list[_StoredLine])
_ENCODE = msgspec.json.Encoder().encode

Stored = TypeVar("Stored")


def _stored(value: Any, decoder: msgspec.json.Decoder[Stored]) -> Stored:
    """A JSON column as its struct: SQLite hands over the text, asyncpg the decoded value."""
    if isinstance(value, str | bytes):
        return decoder.decode(value)
    converted: Stored = msgspec.convert(value, decoder.type)
    return converted


def _revision_answer(row: sa.Row[Any]) -> dict[str, Any]:
    """RevisionOut of one stored revision, as a dict in RevisionOut's field order."""
    ceiling = row.ceiling_weekly_pence
    return {
        "revision": row.number,
        "state": row.state,
        "stage": row.stage,
        "reason": row.reason,
        "assessment_id": row.assessment_id,
        "client_group": (inputs := _stored(row.inputs_json, _INPUTS)).client_group,
        "points": row.points,
        "scale": row.scale,
        "weekly_pence": row.weekly_pence,
        "annual_pence": row.annual_pence,
        "ceiling_weekly_pence": ceiling,
        "above_ceiling": ceiling is not None and row.weekly_pence > ceiling,
        "ceiling_exception": row.ceiling_exception,
        "ceiling_exception_reason": row.ceiling_exception_reason,
        "policy_version": row.policy_version,
        "explanation": _stored(row.explanation_json, _LINES),
        "inputs": inputs,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "agreed_by": row.agreed_by,
        "agreed_by_role": row.agreed_by_role,
        "agreed_at": row.agreed_at,
        "panel_sitting": row.panel_sitting,
        "plan_id": row.plan_id,
        "plan_version": row.plan_version,
    }


def budget_json(actor: Caller, budget_id: UUID, rows: Sequence[Any]) -> bytes:
    """BudgetOut's JSON from a budget's stored revision rows (`BUDGET_AS_STORED`), as
    `budget_out` answers it; the same rights (`shown_of`)."""
    first = rows[0]
    status, shown = shown_of(
        actor,
        budget_id,
        first.budget_council,
        first.budget_person_id,
        rows,
        lambda row: RevisionState(row.state),
    )
    revisions = [_revision_answer(row) for row in shown]
    return _ENCODE(
        {
            "budget_id": str(budget_id),
            "person_id": first.budget_person_id,
            "council": first.budget_council,
            "status": status.value,
            "version": first.budget_version,
            "created_at": first.budget_created_at,
            "updated_at": first.budget_updated_at,
            "current_revision": revisions[-1],
            "revisions": revisions,
        }
    )


def budget_summary(actor: Caller, budget: Budget) -> BudgetSummary:
    budget_status, revisions = shown_to(actor, budget)
    rev = revisions[-1]
    return BudgetSummary(
        budget_id=budget.budget_id,
        person_id=budget.person_id,
        status=budget_status,
        version=budget.version,
        revision=rev.number,
        stage=rev.stage,
        client_group=rev.inputs.client_group,
        points=rev.points,
        weekly_pence=rev.weekly_pence,
        annual_pence=rev.annual_pence,
        policy_version=rev.policy_version,
        updated_at=budget.updated_at,
    )


def funding_streams(funding: list[FundingIn]) -> list[FundingStream]:
    return [FundingStream(source=f.source, weekly_pence=f.weekly_pence) for f in funding]


class BudgetConversionRow(_Request):
    """One converted person whose indicative budget the caller agrees in principle."""

    ref: ConversionRef
    person_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    ceiling_exception_reason: Reason | None = Field(
        None,
        description=(
            "Used only if the calculated budget is above its ceiling (then required, and "
            "only a ceiling-exception role may agree it); ignored otherwise."
        ),
    )
