"""Allocation's own tables, the budget repository, and its unit of work.

Portable across SQLite and PostgreSQL: JSON via sa.JSON, money as BigInteger pence,
timestamps with time zone. A budget row carries the version used for optimistic
concurrency; its revisions are rows of their own and are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import BudgetStage, ExplanationLine
from contracts.vocabulary import Role
from rules.authority import Sitting
from servicekit.db import (
    UtcDateTime,
    adopted_policies_table,
    messaging_tables,
    one_of,
    save_versioned,
)
from servicekit.uow import UnitOfWork
from services.allocation.domain import (
    Budget,
    BudgetInputs,
    Calculation,
    Revision,
    RevisionState,
)

metadata = sa.MetaData()
outbox, inbox, idempotency_keys = messaging_tables(metadata)
adopted_policies = adopted_policies_table(metadata)

budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("budget_id", sa.String(36), primary_key=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("has_issued", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("budgets_by_person", budgets.c.council, budgets.c.person_id)
sa.Index("budgets_by_council", budgets.c.council, budgets.c.created_at, budgets.c.budget_id)

budget_revisions = sa.Table(
    "budget_revisions",
    metadata,
    sa.Column("budget_id", sa.String(36), sa.ForeignKey("budgets.budget_id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("assessment_id", sa.String(36), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(16), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("calculation", sa.JSON, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("weekly_pence", sa.BigInteger, nullable=False),
    sa.Column("annual_pence", sa.BigInteger, nullable=False),
    sa.Column("explanation", sa.JSON, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("ceiling_exception", sa.Boolean, nullable=False),
    sa.Column("ceiling_exception_reason", sa.Text, nullable=True),
    sa.Column("agreed_by", sa.String(200), nullable=True),
    sa.Column("agreed_by_role", sa.String(32), nullable=True),
    sa.Column("agreed_at", UtcDateTime(), nullable=True),
    sa.Column("plan_id", sa.String(36), nullable=True),
    sa.Column("plan_version", sa.Integer, nullable=True),
    sa.Column("panel_sitting", sa.String(16), nullable=True),
)

# The columns a revision may change after it was written (agreed, or superseded).
_MUTABLE = (
    "state",
    "stage",
    "ceiling_exception",
    "ceiling_exception_reason",
    "agreed_by",
    "agreed_by_role",
    "agreed_at",
    "panel_sitting",
)


def _revision_row(budget_id: UUID, rev: Revision) -> dict[str, Any]:
    calculation = rev.calculation.model_dump(mode="json")
    # A revision straight from the RAS explains itself with the calculation's own lines:
    # reuse them rather than serialise the same lines twice.
    explanation = (
        calculation["explanation"]
        if rev.explanation is rev.calculation.explanation
        else [line.model_dump(mode="json") for line in rev.explanation]
    )
    return {
        "budget_id": str(budget_id),
        "number": rev.number,
        "assessment_id": str(rev.assessment_id),
        "reason": rev.reason,
        "created_by": rev.created_by,
        "created_at": rev.created_at,
        "inputs": rev.inputs.model_dump(mode="json"),
        "calculation": calculation,
        "points": rev.points,
        "weekly_pence": rev.weekly_pence,
        "annual_pence": rev.annual_pence,
        "explanation": explanation,
        "policy_version": rev.policy_version,
        "plan_id": str(rev.plan_id) if rev.plan_id else None,
        "plan_version": rev.plan_version,
        **_mutable_values(rev),
    }


def _mutable_values(rev: Revision) -> dict[str, Any]:
    """A revision's _MUTABLE columns, as its row holds them (an enum as its value). Read
    from _MUTABLE itself, so the values saved and the columns _UPDATE_MUTABLE writes are
    one list."""
    values = {name: getattr(rev, name) for name in _MUTABLE}
    return {name: v.value if isinstance(v, Enum) else v for name, v in values.items()}


_UPDATE_MUTABLE = (
    budget_revisions.update()
    .where(
        budget_revisions.c.budget_id == sa.bindparam("revision_budget_id"),
        budget_revisions.c.number == sa.bindparam("revision_number"),
    )
    .values({name: sa.bindparam(name, type_=budget_revisions.c[name].type) for name in _MUTABLE})
)
"""A revision's _MUTABLE columns written back: built once, as save_versioned's update is
(built per save, its cache key cost more CPU than running it)."""


def _revision(row: sa.Row[Any]) -> Revision:
    calculation = Calculation.model_validate(row.calculation)
    # As _revision_row wrote it: a revision straight from the RAS explains itself with the
    # calculation's own lines, so they are validated once and shared (the lines are frozen).
    explanation = (
        calculation.explanation
        if row.explanation == row.calculation.get("explanation")
        else tuple(ExplanationLine.model_validate(line) for line in row.explanation)
    )
    return Revision(
        number=row.number,
        assessment_id=UUID(row.assessment_id),
        inputs=BudgetInputs.model_validate(row.inputs),
        calculation=calculation,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        state=RevisionState(row.state),
        weekly_pence=row.weekly_pence,
        annual_pence=row.annual_pence,
        explanation=explanation,
        stage=BudgetStage(row.stage) if row.stage else None,
        ceiling_exception=row.ceiling_exception,
        ceiling_exception_reason=row.ceiling_exception_reason,
        agreed_by=row.agreed_by,
        agreed_by_role=Role(row.agreed_by_role) if row.agreed_by_role else None,
        agreed_at=row.agreed_at,
        plan_id=UUID(row.plan_id) if row.plan_id else None,
        plan_version=row.plan_version,
        panel_sitting=Sitting(row.panel_sitting) if row.panel_sitting else None,
    )


class BudgetRepository:
    """Loads and stores whole budgets; `save` refuses if someone else changed one meanwhile."""

    def __init__(self, session: AsyncSession, track: Callable[[Budget], Budget]) -> None:
        self._session = session
        self._track = track
        # id -> (version, current revision, its _MUTABLE values) as loaded or last saved
        self._loaded: dict[UUID, tuple[int, int, dict[str, Any]]] = {}

    async def _load(self, rows: list[sa.Row[Any]]) -> list[Budget]:
        if not rows:
            return []
        ids = [row.budget_id for row in rows]
        # One budget (every GET): `=` is compiled once and cached; `IN` is expanded and
        # re-rendered on every execution (about 7% of a budget read's CPU in a profile).
        which = (
            budget_revisions.c.budget_id == ids[0]
            if len(ids) == 1
            else one_of(budget_revisions.c.budget_id, ids)
        )
        revision_rows = (
            await self._session.execute(
                sa.select(budget_revisions)
                .where(which)
                .order_by(budget_revisions.c.budget_id, budget_revisions.c.number)
            )
        ).all()
        by_budget: dict[str, list[Revision]] = {}
        for rev_row in revision_rows:
            by_budget.setdefault(rev_row.budget_id, []).append(_revision(rev_row))
        result = []
        for row in rows:
            budget = Budget(
                budget_id=UUID(row.budget_id),
                council=row.council,
                person_id=row.person_id,
                created_at=row.created_at,
                revisions=by_budget[row.budget_id],
                version=row.version,
                updated_at=row.updated_at,
            )
            self._remember(budget)
            result.append(self._track(budget))
        return result

    async def get(self, budget_id: UUID) -> Budget | None:
        rows = (
            await self._session.execute(
                sa.select(budgets).where(budgets.c.budget_id == str(budget_id))
            )
        ).all()
        found = await self._load(list(rows))
        return found[0] if found else None

    async def by_ids(self, budget_ids: Collection[UUID]) -> dict[UUID, Budget]:
        """These budgets (those held), by id, with two queries."""
        if not budget_ids:
            return {}
        rows = (
            await self._session.execute(
                sa.select(budgets).where(one_of(budgets.c.budget_id, [str(i) for i in budget_ids]))
            )
        ).all()
        return {budget.budget_id: budget for budget in await self._load(list(rows))}

    async def for_person(self, council: str, person_id: str) -> Budget | None:
        """The person's current budget (the newest, should there ever be more than one)."""
        return (await self.for_people(council, [person_id])).get(person_id)

    async def for_people(self, council: str, person_ids: Collection[str]) -> dict[str, Budget]:
        """The current budget of each of these people who has one, by person id (two queries)."""
        # No ORDER BY in SQL: with one, SQLite (which has no statistics here) walks the
        # council's whole (council, created_at) index to avoid a sort, a scan of every
        # budget per lookup. A person has one budget or a few; pick the newest here.
        rows = (
            await self._session.execute(
                sa.select(budgets).where(
                    budgets.c.council == council, one_of(budgets.c.person_id, person_ids)
                )
            )
        ).all()
        newest: dict[str, sa.Row[Any]] = {}
        for row in rows:
            known = newest.get(row.person_id)
            if known is None or (row.created_at, row.budget_id) > (
                known.created_at,
                known.budget_id,
            ):
                newest[row.person_id] = row
        return {budget.person_id: budget for budget in await self._load(list(newest.values()))}

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        status: str | None,
        issued_only: bool,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Budget]:
        """A page of a council's budgets, oldest first, after a (created_at, id) position."""
        query = sa.select(budgets).where(budgets.c.council == council)
        if person_id is not None:
            query = query.where(budgets.c.person_id == person_id)
        if status is not None:
            query = query.where(budgets.c.status == status)
        if issued_only:
            query = query.where(budgets.c.has_issued.is_(True))
        if after is not None:
            created_at, budget_id = after
            query = query.where(
                sa.or_(
                    budgets.c.created_at > created_at,
                    sa.and_(budgets.c.created_at == created_at, budgets.c.budget_id > budget_id),
                )
            )
        query = query.order_by(budgets.c.created_at, budgets.c.budget_id).limit(limit)
        rows = (await self._session.execute(query)).all()
        return await self._load(list(rows))

    async def count(self, *, council: str) -> int:
        """How many budgets the council has."""
        query = sa.select(sa.func.count()).select_from(budgets).where(budgets.c.council == council)
        return int((await self._session.execute(query)).scalar_one())

    def _budget_row(self, budget: Budget) -> dict[str, Any]:
        return {
            "council": budget.council,
            "person_id": budget.person_id,
            "status": budget.status.value,
            "has_issued": bool(budget.issued_revisions),
            "version": budget.version,
            "updated_at": budget.updated_at or budget.created_at,
        }

    async def add(self, budget: Budget) -> None:
        await self.add_all([budget])

    async def add_all(self, new: Sequence[Budget]) -> None:
        """Insert new budgets with their revisions: one statement per table."""
        if not new:
            return
        await self._session.execute(
            budgets.insert(),
            [
                {
                    "budget_id": str(budget.budget_id),
                    "created_at": budget.created_at,
                    **self._budget_row(budget),
                }
                for budget in new
            ],
        )
        await self._session.execute(
            budget_revisions.insert(),
            [_revision_row(budget.budget_id, rev) for budget in new for rev in budget.revisions],
        )
        for budget in new:
            self._remember(budget)
            self._track(budget)

    async def save(self, budget: Budget) -> None:
        """Write a loaded budget back: only if its stored version is still the one loaded.

        Of its revisions, those added since are inserted, and the one that was current is
        written back only if its _MUTABLE columns changed; older ones never change."""
        loaded_version, loaded_current, loaded_mutable = self._loaded[budget.budget_id]
        await save_versioned(
            self._session,
            budgets,
            key=(budgets.c.budget_id, str(budget.budget_id)),
            expected_version=loaded_version,
            values=self._budget_row(budget),
            what=f"budget {budget.budget_id}",
        )
        added = []
        for rev in budget.revisions:
            if rev.number == loaded_current:
                mutable = _mutable_values(rev)
                if mutable != loaded_mutable:
                    await self._session.execute(
                        _UPDATE_MUTABLE,
                        {
                            "revision_budget_id": str(budget.budget_id),
                            "revision_number": rev.number,
                            **mutable,
                        },
                    )
            elif rev.number > loaded_current:
                added.append(_revision_row(budget.budget_id, rev))
        if added:
            await self._session.execute(budget_revisions.insert(), added)
        self._remember(budget)

    def _remember(self, budget: Budget) -> None:
        current = budget.current
        self._loaded[budget.budget_id] = (budget.version, current.number, _mutable_values(current))


class AllocationUnitOfWork(UnitOfWork):
    budgets: BudgetRepository

    def _open(self) -> None:
        self.budgets = BudgetRepository(self.session, self.track)
