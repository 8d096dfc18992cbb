"""Planning's own tables, their repositories, and its unit of work.

Portable SQL only (SQLite and PostgreSQL): JSON columns via sa.JSON, dates as sa.Date,
money as sa.BigInteger, ids as sa.Uuid. Plans and reviews carry a `version`; saving
one updates only the row still at the version it was loaded with, so two concurrent
changes cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import ProviderKind, ReviewKind, ReviewOutcome, ReviewTrigger
from contracts.money import Frequency
from contracts.vocabulary import Role
from servicekit.db import (
    UtcDateTime,
    VersionedWithHistory,
    adopted_policies_table,
    messaging_tables,
    one_of,
    save_versioned,
)
from servicekit.uow import UnitOfWork
from services.planning.domain import (
    HistoryEntry,
    KnownAssessment,
    KnownBudget,
    KnownDeployment,
    KnownRisk,
    Plan,
    PlanContent,
    PlanLine,
    PlanStatus,
    RequestForMore,
    Review,
    ReviewStatus,
    RiskMitigation,
    SharedSupport,
    SignOff,
)

metadata = sa.MetaData()
outbox, inbox, idempotency_keys = messaging_tables(metadata)
adopted_policies = adopted_policies_table(metadata)

PERSON = sa.String(64)
COUNCIL = sa.String(64)
ACTOR = sa.String(200)
TS = UtcDateTime()

assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.Uuid, primary_key=True),
    sa.Column("person_id", PERSON, nullable=False, index=True),
    sa.Column("council", COUNCIL, nullable=False),
    sa.Column("client_group", sa.String(32), nullable=False),
    sa.Column("domain_levels", sa.JSON, nullable=False),
    sa.Column("risks", sa.JSON, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("budget_id", sa.Uuid, primary_key=True),
    sa.Column("assessment_id", sa.Uuid, nullable=False),
    sa.Column("person_id", PERSON, nullable=False, index=True),
    sa.Column("council", COUNCIL, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("weekly_pence", sa.BigInteger, nullable=False),
    sa.Column("annual_pence", sa.BigInteger, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("plan_id", sa.Uuid, primary_key=True),
    sa.Column("person_id", PERSON, nullable=False),
    sa.Column("council", COUNCIL, nullable=False),
    sa.Column("budget_id", sa.Uuid, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("content", sa.JSON, nullable=False),
    sa.Column("fee_basis_points", sa.Integer, nullable=False),
    sa.Column("weekly_pence", sa.BigInteger, nullable=False),
    sa.Column("annual_pence", sa.BigInteger, nullable=False),
    sa.Column("one_off_pence", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("submitted_at", TS, nullable=True),
    sa.Column("signed_off_on", sa.Date, nullable=True),
    sa.Column("signed_off_by", ACTOR, nullable=True),
    sa.Column("signed_off_by_role", sa.String(32), nullable=True),
    sa.Column("first_review_on", sa.Date, nullable=True),
    sa.Column("signed_off_policy_version", sa.String(100), nullable=True),
)
sa.Index("plans_by_person", plans.c.council, plans.c.person_id, plans.c.created_at)
sa.Index("plans_by_status", plans.c.council, plans.c.status, plans.c.created_at)

plan_history = sa.Table(
    "plan_history",
    metadata,
    sa.Column("plan_id", sa.Uuid, sa.ForeignKey("plans.plan_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", ACTOR, nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("review_id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Uuid, sa.ForeignKey("plans.plan_id"), nullable=False, index=True),
    sa.Column("person_id", PERSON, nullable=False),
    sa.Column("council", COUNCIL, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("scheduled_by", ACTOR, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("announced_at", TS, nullable=True),
    sa.Column("announced_by", ACTOR, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("completed_on", sa.Date, nullable=True),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("completed_by", ACTOR, nullable=True),
    sa.Column("trigger", sa.String(32), nullable=True),
    sa.Column("happened_on", sa.Date, nullable=True),
    sa.Column("deployment_id", sa.Uuid, nullable=True),
    sa.Column("policy_version", sa.String(100), nullable=True),
)
sa.Index("reviews_by_due", reviews.c.council, reviews.c.status, reviews.c.due_on)
sa.Index("reviews_by_person", reviews.c.council, reviews.c.person_id, reviews.c.due_on)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("deployment_id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Uuid, nullable=False),
    sa.Column("person_id", PERSON, nullable=False),
    sa.Column("council", COUNCIL, nullable=False),
    sa.Column("direct_payment", sa.Boolean, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)


def _utc(value: Any) -> Any:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# --- plan content <-> JSON ----------------------------------------------------------------


def content_to_json(content: PlanContent) -> dict[str, Any]:
    return {
        "outcomes": list(content.outcomes),
        "lines": [
            {
                "line_id": str(line.line_id),
                "description": line.description,
                "provider_kind": line.provider_kind.value,
                "provider_name": line.provider_name,
                "frequency": line.frequency.value,
                "amount_pence": line.amount_pence,
                "domains": list(line.domains),
                "outcomes": list(line.outcomes),
                "provider_holds_funds": line.provider_holds_funds,
                "shared": None
                if line.shared is None
                else {
                    "total_amount_pence": line.shared.total_amount_pence,
                    "people": line.shared.people,
                    "share_basis_points": line.shared.share_basis_points,
                },
            }
            for line in content.lines
        ],
        "contingency_weekly_pence": content.contingency_weekly_pence,
        "request_for_more": None
        if content.request_for_more is None
        else {
            "weekly_pence": content.request_for_more.weekly_pence,
            "reason": content.request_for_more.reason,
        },
        "risk_mitigations": [
            {
                "risk_id": m.risk_id,
                "mitigation": m.mitigation,
                "referred_to_risk_panel": m.referred_to_risk_panel,
            }
            for m in content.risk_mitigations
        ],
    }


def content_from_json(data: dict[str, Any]) -> PlanContent:
    lines = []
    for raw in data["lines"]:
        shared = raw.get("shared")
        lines.append(
            PlanLine(
                line_id=UUID(raw["line_id"]),
                description=raw["description"],
                provider_kind=ProviderKind(raw["provider_kind"]),
                provider_name=raw.get("provider_name"),
                frequency=Frequency(raw["frequency"]),
                amount_pence=int(raw["amount_pence"]),
                domains=tuple(raw["domains"]),
                outcomes=tuple(raw["outcomes"]),
                provider_holds_funds=bool(raw["provider_holds_funds"]),
                shared=None if shared is None else SharedSupport(**shared),
            )
        )
    more = data.get("request_for_more")
    return PlanContent(
        outcomes=tuple(data["outcomes"]),
        lines=tuple(lines),
        contingency_weekly_pence=int(data["contingency_weekly_pence"]),
        request_for_more=None if more is None else RequestForMore(**more),
        risk_mitigations=tuple(RiskMitigation(**m) for m in data["risk_mitigations"]),
    )


# --- repositories -------------------------------------------------------------------------


def _bound(table: sa.Table, columns: Iterable[str]) -> dict[str, sa.BindParameter[Any]]:
    """Parameters for an update of many rows in one statement (`b_` + the column's name,
    which SQLAlchemy keeps for the columns themselves), typed as the columns are."""
    return {column: sa.bindparam(f"b_{column}", type_=table.c[column].type) for column in columns}


class AssessmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, assessment_id: UUID) -> KnownAssessment | None:
        row = (
            await self.session.execute(
                sa.select(assessments).where(assessments.c.assessment_id == assessment_id)
            )
        ).first()
        return None if row is None else _assessment_from_row(row)

    async def get_many(self, assessment_ids: Iterable[UUID]) -> dict[UUID, KnownAssessment]:
        """The known ones among these assessments, with one query."""
        wanted = list(set(assessment_ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(assessments).where(one_of(assessments.c.assessment_id, wanted))
        )
        return {row.assessment_id: _assessment_from_row(row) for row in rows}

    async def put(self, assessment: KnownAssessment, *, at: datetime) -> None:
        """Keep the newest validation of an assessment (a revalidation replaces it)."""
        await self.put_all([assessment], at=at)

    async def put_all(self, validated: Sequence[KnownAssessment], *, at: datetime) -> None:
        """`put` for many, in order (a later one of the same assessment replaces an earlier
        one), with one query and one statement per kind of write."""
        latest = {assessment.assessment_id: assessment for assessment in validated}
        if not latest:
            return
        known = set(
            (
                await self.session.execute(
                    sa.select(assessments.c.assessment_id).where(
                        one_of(assessments.c.assessment_id, latest)
                    )
                )
            ).scalars()
        )
        new = [_assessment_values(a, at) for key, a in latest.items() if key not in known]
        if new:
            await self.session.execute(assessments.insert(), new)
        changed = [_assessment_values(a, at) for key, a in latest.items() if key in known]
        if changed:
            await self.session.execute(
                assessments.update()
                .where(
                    assessments.c.assessment_id
                    == _bound(assessments, ["assessment_id"])["assessment_id"]
                )
                .values(_bound(assessments, _ASSESSMENT_COLUMNS)),
                [{f"b_{key}": value for key, value in row.items()} for row in changed],
            )


_ASSESSMENT_COLUMNS = (
    "person_id",
    "council",
    "client_group",
    "domain_levels",
    "risks",
    "policy_version",
    "updated_at",
)


def _assessment_from_row(row: Any) -> KnownAssessment:
    return KnownAssessment(
        assessment_id=row.assessment_id,
        person_id=row.person_id,
        council=row.council,
        client_group=row.client_group,
        domain_levels={str(k): int(v) for k, v in row.domain_levels.items()},
        risks=tuple(KnownRisk(**r) for r in row.risks),
        policy_version=row.policy_version,
    )


def _assessment_values(assessment: KnownAssessment, at: datetime) -> dict[str, Any]:
    return {
        "assessment_id": assessment.assessment_id,
        "person_id": assessment.person_id,
        "council": assessment.council,
        "client_group": assessment.client_group,
        "domain_levels": dict(assessment.domain_levels),
        "risks": [
            {"risk_id": r.risk_id, "description": r.description, "flagged": r.flagged}
            for r in assessment.risks
        ],
        "policy_version": assessment.policy_version,
        "updated_at": at,
    }


class BudgetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, budget_id: UUID) -> KnownBudget | None:
        row = (
            await self.session.execute(sa.select(budgets).where(budgets.c.budget_id == budget_id))
        ).first()
        return None if row is None else _budget_from_row(row)

    async def get_many(self, budget_ids: Iterable[UUID]) -> dict[UUID, KnownBudget]:
        """The known ones among these budgets, with one query."""
        wanted = list(set(budget_ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(budgets).where(one_of(budgets.c.budget_id, wanted))
        )
        return {row.budget_id: _budget_from_row(row) for row in rows}

    async def put_if_newer(self, budget: KnownBudget, *, at: datetime) -> bool:
        """Keep the latest revision of a budget; an older revision arriving late is ignored."""
        return bool(await self.put_all_if_newer([budget], at=at))

    async def put_all_if_newer(
        self, issued: Sequence[KnownBudget], *, at: datetime
    ) -> list[KnownBudget]:
        """`put_if_newer` for many, in order, with one query and one statement per kind of
        write; the ones kept, in order."""
        if not issued:
            return []
        current = {
            budget_id: budget.revision
            for budget_id, budget in (
                await self.get_many(budget.budget_id for budget in issued)
            ).items()
        }
        stored = set(current)
        kept: list[KnownBudget] = []
        latest: dict[UUID, KnownBudget] = {}
        for budget in issued:
            revision = current.get(budget.budget_id)
            if revision is not None and revision >= budget.revision:
                continue
            current[budget.budget_id] = budget.revision
            latest[budget.budget_id] = budget
            kept.append(budget)
        new = [_budget_values(b, at) for key, b in latest.items() if key not in stored]
        if new:
            await self.session.execute(budgets.insert(), new)
        changed = [_budget_values(b, at) for key, b in latest.items() if key in stored]
        if changed:
            await self.session.execute(
                budgets.update()
                .where(budgets.c.budget_id == _bound(budgets, ["budget_id"])["budget_id"])
                .values(_bound(budgets, _BUDGET_COLUMNS)),
                [{f"b_{key}": value for key, value in row.items()} for row in changed],
            )
        return kept


_BUDGET_COLUMNS = (
    "assessment_id",
    "person_id",
    "council",
    "stage",
    "revision",
    "weekly_pence",
    "annual_pence",
    "policy_version",
    "updated_at",
)


def _budget_from_row(row: Any) -> KnownBudget:
    return KnownBudget(
        budget_id=row.budget_id,
        assessment_id=row.assessment_id,
        person_id=row.person_id,
        council=row.council,
        stage=row.stage,
        revision=row.revision,
        weekly_pence=row.weekly_pence,
        annual_pence=row.annual_pence,
        policy_version=row.policy_version,
    )


def _budget_values(budget: KnownBudget, at: datetime) -> dict[str, Any]:
    return {
        "budget_id": budget.budget_id,
        "assessment_id": budget.assessment_id,
        "person_id": budget.person_id,
        "council": budget.council,
        "stage": budget.stage,
        "revision": budget.revision,
        "weekly_pence": budget.weekly_pence,
        "annual_pence": budget.annual_pence,
        "policy_version": budget.policy_version,
        "updated_at": at,
    }


def _plan_from_row(row: Any, history: list[HistoryEntry]) -> Plan:
    signed_off = None
    if row.signed_off_on is not None:
        signed_off = SignOff(
            on=row.signed_off_on,
            by=row.signed_off_by,
            role=Role(row.signed_off_by_role),
            first_review_on=row.first_review_on,
            policy_version=row.signed_off_policy_version,
        )
    return Plan(
        plan_id=row.plan_id,
        person_id=row.person_id,
        council=row.council,
        budget_id=row.budget_id,
        content=content_from_json(row.content),
        fee_basis_points=row.fee_basis_points,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        status=PlanStatus(row.status),
        version=row.version,
        plan_version=row.plan_version,
        submitted_at=_utc(row.submitted_at),
        signed_off=signed_off,
        history=history,
    )


def _plan_values(plan: Plan) -> dict[str, Any]:
    costing = plan.costing
    signed = plan.signed_off
    return {
        "person_id": plan.person_id,
        "council": plan.council,
        "budget_id": plan.budget_id,
        "status": plan.status.value,
        "version": plan.version,
        "plan_version": plan.plan_version,
        "content": content_to_json(plan.content),
        "fee_basis_points": plan.fee_basis_points,
        "weekly_pence": costing.weekly_pence,
        "annual_pence": costing.annual_pence,
        "one_off_pence": costing.one_off_pence,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
        "submitted_at": plan.submitted_at,
        "signed_off_on": signed.on if signed else None,
        "signed_off_by": signed.by if signed else None,
        "signed_off_by_role": signed.role.value if signed else None,
        "first_review_on": signed.first_review_on if signed else None,
        "signed_off_policy_version": signed.policy_version if signed else None,
    }


def _history_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "plan_id": plan.plan_id,
            "seq": seq,
            "at": entry.at,
            "action": entry.action,
            "actor": entry.actor[:200],
            "plan_version": entry.plan_version,
            "version": entry.version,
            "detail": entry.detail,
        }
        for seq, entry in enumerate(plan.history, start=1)
    ]


class PlanRepository:
    def __init__(self, session: AsyncSession, track: Callable[[Plan], Plan]) -> None:
        self.session = session
        self._track = track
        self._rows = VersionedWithHistory[Plan](
            session,
            plans,
            plan_history,
            what="plan",
            key=lambda plan: plan.plan_id,
            values=_plan_values,
            history_rows=_history_rows,
        )

    async def get(self, plan_id: UUID) -> Plan | None:
        loaded = await self._rows.load(plan_id)
        if loaded is None:
            return None
        row, entries = loaded
        history = [
            HistoryEntry(_utc(e.at), e.action, e.actor, e.plan_version, e.version, dict(e.detail))
            for e in entries
        ]
        return self._track(_plan_from_row(row, history))

    async def add(self, plan: Plan) -> None:
        await self._rows.add(plan)
        self._track(plan)

    async def add_all(self, new_plans: Sequence[Plan]) -> None:
        """`add` for many: one insert for the plans, one for their history."""
        await self._rows.add_all(new_plans)
        for plan in new_plans:
            self._track(plan)

    async def get_many(self, plan_ids: Iterable[UUID]) -> dict[UUID, Plan]:
        """The plans among these ids, with their history: two queries."""
        wanted = list(set(plan_ids))
        if not wanted:
            return {}
        rows = (
            await self.session.execute(sa.select(plans).where(one_of(plans.c.plan_id, wanted)))
        ).all()
        entries = (
            await self.session.execute(
                sa.select(plan_history)
                .where(one_of(plan_history.c.plan_id, [row.plan_id for row in rows]))
                .order_by(plan_history.c.plan_id, plan_history.c.seq)
            )
        ).all()
        history: dict[UUID, list[HistoryEntry]] = {}
        for e in entries:
            history.setdefault(e.plan_id, []).append(
                HistoryEntry(
                    _utc(e.at), e.action, e.actor, e.plan_version, e.version, dict(e.detail)
                )
            )
        found: dict[UUID, Plan] = {}
        for row in rows:
            self._rows.remember(
                row.plan_id, version=row.version, history_length=len(history.get(row.plan_id, []))
            )
            found[row.plan_id] = self._track(_plan_from_row(row, history.get(row.plan_id, [])))
        return found

    async def save(self, plan: Plan) -> None:
        """Write a loaded plan back, refusing if someone else changed it meanwhile."""
        await self._rows.save(plan)

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        status: PlanStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Plan]:
        """Plans in creation order (without their history), one page after the cursor."""
        query = sa.select(plans).where(plans.c.council == council)
        if person_id is not None:
            query = query.where(plans.c.person_id == person_id)
        if status is not None:
            query = query.where(plans.c.status == status.value)
        if after is not None:
            created, plan_id = after
            query = query.where(
                sa.or_(
                    plans.c.created_at > created,
                    sa.and_(plans.c.created_at == created, plans.c.plan_id > plan_id),
                )
            )
        query = query.order_by(plans.c.created_at, plans.c.plan_id).limit(limit)
        return [_plan_from_row(row, []) for row in (await self.session.execute(query)).all()]


def _review_from_row(row: Any) -> Review:
    return Review(
        review_id=row.review_id,
        plan_id=row.plan_id,
        person_id=row.person_id,
        council=row.council,
        kind=ReviewKind(row.kind),
        due_on=row.due_on,
        scheduled_by=row.scheduled_by,
        created_at=_utc(row.created_at),
        reason=row.reason,
        status=ReviewStatus(row.status),
        version=row.version,
        announced_at=_utc(row.announced_at),
        announced_by=row.announced_by,
        outcome=None if row.outcome is None else ReviewOutcome(row.outcome),
        completed_on=row.completed_on,
        notes=row.notes,
        completed_by=row.completed_by,
        trigger=None if row.trigger is None else ReviewTrigger(row.trigger),
        happened_on=row.happened_on,
        deployment_id=row.deployment_id,
        policy_version=row.policy_version,
    )


def _review_values(review: Review) -> dict[str, Any]:
    return {
        "plan_id": review.plan_id,
        "person_id": review.person_id,
        "council": review.council,
        "kind": review.kind.value,
        "due_on": review.due_on,
        "reason": review.reason,
        "status": review.status.value,
        "version": review.version,
        "scheduled_by": review.scheduled_by[:200],
        "created_at": review.created_at,
        "announced_at": review.announced_at,
        "announced_by": None if review.announced_by is None else review.announced_by[:200],
        "outcome": None if review.outcome is None else review.outcome.value,
        "completed_on": review.completed_on,
        "notes": review.notes,
        "completed_by": None if review.completed_by is None else review.completed_by[:200],
        "trigger": None if review.trigger is None else review.trigger.value,
        "happened_on": review.happened_on,
        "deployment_id": review.deployment_id,
        "policy_version": review.policy_version,
    }


class ReviewRepository:
    def __init__(self, session: AsyncSession, track: Callable[[Review], Review]) -> None:
        self.session = session
        self._track = track
        self._loaded: dict[UUID, int] = {}

    async def get(self, review_id: UUID) -> Review | None:
        row = (
            await self.session.execute(sa.select(reviews).where(reviews.c.review_id == review_id))
        ).first()
        if row is None:
            return None
        self._loaded[review_id] = row.version
        return self._track(_review_from_row(row))

    async def add(self, review: Review) -> None:
        await self.session.execute(
            reviews.insert().values(review_id=review.review_id, **_review_values(review))
        )
        self._loaded[review.review_id] = review.version
        self._track(review)

    async def add_all(self, new_reviews: Sequence[Review]) -> None:
        """`add` for many, with one insert."""
        if not new_reviews:
            return
        await self.session.execute(
            reviews.insert(),
            [{"review_id": r.review_id, **_review_values(r)} for r in new_reviews],
        )
        for review in new_reviews:
            self._loaded[review.review_id] = review.version
            self._track(review)

    async def save(self, review: Review) -> None:
        loaded = self._loaded[review.review_id]
        await save_versioned(
            self.session,
            reviews,
            key=(reviews.c.review_id, review.review_id),
            expected_version=loaded,
            values=_review_values(review),
            what=f"review {review.review_id}",
        )
        self._loaded[review.review_id] = review.version

    async def scheduled_due(self, *, council: str, as_of: date, limit: int) -> list[Review]:
        """Scheduled reviews due on or before a date, not yet announced, oldest first."""
        rows = (
            await self.session.execute(
                sa.select(reviews)
                .where(
                    reviews.c.council == council,
                    reviews.c.status == ReviewStatus.SCHEDULED.value,
                    reviews.c.due_on <= as_of,
                )
                .order_by(reviews.c.due_on, reviews.c.review_id)
                .limit(limit)
            )
        ).all()
        found = [_review_from_row(row) for row in rows]
        for review in found:
            self._loaded[review.review_id] = review.version
            self._track(review)
        return found

    async def people_with_open(
        self, *, council: str, person_ids: Iterable[str], kind: ReviewKind
    ) -> set[str]:
        """Which of these people have a review of this kind not yet completed: one query."""
        wanted = list(set(person_ids))
        if not wanted:
            return set()
        rows = await self.session.execute(
            sa.select(reviews.c.person_id).where(
                reviews.c.council == council,
                one_of(reviews.c.person_id, wanted),
                reviews.c.kind == kind.value,
                reviews.c.status != ReviewStatus.COMPLETED.value,
            )
        )
        return set(rows.scalars())

    async def open_of_kind(self, *, council: str, person_id: str, kind: ReviewKind) -> list[Review]:
        """The person's reviews of a kind not yet completed."""
        rows = (
            await self.session.execute(
                sa.select(reviews).where(
                    reviews.c.council == council,
                    reviews.c.person_id == person_id,
                    reviews.c.kind == kind.value,
                    reviews.c.status != ReviewStatus.COMPLETED.value,
                )
            )
        ).all()
        return [_review_from_row(row) for row in rows]

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        due_on_or_before: date | None,
        status: ReviewStatus | None,
        after: tuple[date, UUID] | None,
        limit: int,
    ) -> list[Review]:
        query = sa.select(reviews).where(reviews.c.council == council)
        if person_id is not None:
            query = query.where(reviews.c.person_id == person_id)
        if due_on_or_before is not None:
            query = query.where(reviews.c.due_on <= due_on_or_before)
        if status is not None:
            query = query.where(reviews.c.status == status.value)
        if after is not None:
            due, review_id = after
            query = query.where(
                sa.or_(
                    reviews.c.due_on > due,
                    sa.and_(reviews.c.due_on == due, reviews.c.review_id > review_id),
                )
            )
        query = query.order_by(reviews.c.due_on, reviews.c.review_id).limit(limit)
        return [_review_from_row(row) for row in (await self.session.execute(query)).all()]


class DeploymentRepository:
    """What planning knows of each deployment: its plan and whether it holds a direct
    payment (the latest of DeploymentSetUp and DeploymentSwitched)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, deployment_id: UUID) -> KnownDeployment | None:
        row = (
            await self.session.execute(
                sa.select(deployments).where(deployments.c.deployment_id == deployment_id)
            )
        ).first()
        if row is None:
            return None
        return KnownDeployment(
            deployment_id=row.deployment_id,
            plan_id=row.plan_id,
            person_id=row.person_id,
            council=row.council,
            direct_payment=row.direct_payment,
        )

    async def put(self, deployment: KnownDeployment, *, at: datetime) -> None:
        await self.put_all([deployment], at=at)

    async def put_all(self, known: Sequence[KnownDeployment], *, at: datetime) -> None:
        """`put` for many, in order (the later of the same deployment wins), with one query
        and one statement per kind of write."""
        latest = {deployment.deployment_id: deployment for deployment in known}
        if not latest:
            return
        stored = set(
            (
                await self.session.execute(
                    sa.select(deployments.c.deployment_id).where(
                        one_of(deployments.c.deployment_id, latest)
                    )
                )
            ).scalars()
        )
        new = [_deployment_values(d, at) for key, d in latest.items() if key not in stored]
        if new:
            await self.session.execute(deployments.insert(), new)
        changed = [_deployment_values(d, at) for key, d in latest.items() if key in stored]
        if changed:
            await self.session.execute(
                deployments.update()
                .where(
                    deployments.c.deployment_id
                    == _bound(deployments, ["deployment_id"])["deployment_id"]
                )
                .values(_bound(deployments, _DEPLOYMENT_COLUMNS)),
                [{f"b_{key}": value for key, value in row.items()} for row in changed],
            )


_DEPLOYMENT_COLUMNS = ("plan_id", "person_id", "council", "direct_payment", "updated_at")


def _deployment_values(deployment: KnownDeployment, at: datetime) -> dict[str, Any]:
    return {
        "deployment_id": deployment.deployment_id,
        "plan_id": deployment.plan_id,
        "person_id": deployment.person_id,
        "council": deployment.council,
        "direct_payment": deployment.direct_payment,
        "updated_at": at,
    }


class PlanningUnitOfWork(UnitOfWork):
    assessments: AssessmentRepository
    budgets: BudgetRepository
    deployments: DeploymentRepository
    plans: PlanRepository
    reviews: ReviewRepository

    def _open(self) -> None:
        self.assessments = AssessmentRepository(self.session)
        self.budgets = BudgetRepository(self.session)
        self.deployments = DeploymentRepository(self.session)
        self.plans = PlanRepository(self.session, self.track)
        self.reviews = ReviewRepository(self.session, self.track)
