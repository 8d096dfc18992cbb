"""Payments's own tables, its repositories and its unit of work.

Portable SQL only (SQLite and PostgreSQL): ids as 36-character strings, money as
BigInteger pence, dates as Date, lists as JSON. A deployment is saved with an optimistic
check on its version (UPDATE ... WHERE version = the one loaded) and each instalment's
status change with a check on its previous status, so two concurrent releases cannot both
pay the same instalment: the second finds nothing to update and its transaction is
refused as stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import (
    ChallengeOutcome,
    DeploymentOption,
    FinancialAssessmentOutcome,
    PaymentReleased,
)
from contracts.money import Frequency
from contracts.policy import UnspentRule
from contracts.vocabulary import Role
from rules.receipts import ReturnItem
from rules.statement import BudgetFigures
from servicekit import clock
from servicekit.db import (
    UtcDateTime,
    adopted_policies_table,
    messaging_tables,
    one_of,
    save_versioned,
)
from servicekit.errors import StaleVersion
from servicekit.uow import UnitOfWork
from services.payments.cards_db import CardRepository, card_tables
from services.payments.charges import AssessedCharge
from services.payments.domain import Deployment
from services.payments.errors import ConcurrentExport
from services.payments.export import ExportBatch, ExportRow
from services.payments.lifecycle import Agreement, Status
from services.payments.monitoring import MonitoringReturn, UnspentAction, UnspentCheck
from services.payments.reconciliation import ConcurrentConfirmation, ConfirmationLine, Outcome
from services.payments.schedules import (
    Instalment,
    InstalmentStatus,
    Part,
    PaymentFrequency,
    Schedule,
    ScheduleKind,
)
from services.payments.statements import (
    BudgetStatement,
    ChallengeAlreadyAnswered,
    StatementChallenge,
)

metadata = sa.MetaData()
outbox, inbox, idempotency_keys = messaging_tables(metadata)
adopted_policies = adopted_policies_table(metadata)
card_accounts, card_transactions, card_balances = card_tables(metadata)

_ID = 36
_ACTOR = 200

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("plan_id", sa.String(_ID), nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("budget_id", sa.String(_ID), nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("gross_annual_pence", sa.BigInteger, nullable=False),
    sa.Column("one_off_pence", sa.BigInteger, nullable=False),
    sa.Column("contingency_weekly_pence", sa.BigInteger, nullable=False),
    sa.Column("contribution_annual_pence", sa.BigInteger, nullable=True),
    sa.Column("net_annual_pence", sa.BigInteger, nullable=True),
    sa.Column("assessed_max_weekly_contribution_pence", sa.BigInteger, nullable=True),
    sa.Column("parts", sa.JSON, nullable=False),
    sa.Column("frequency", sa.String(16), nullable=True),
    sa.Column("first_due_on", sa.Date, nullable=True),
    sa.Column("plan_year_starts_on", sa.Date, nullable=True),
    sa.Column("plan_signed_off_on", sa.Date, nullable=True),
    sa.Column("audit_tier", sa.String(64), nullable=True),
    sa.Column("agreement_signed_on", sa.Date, nullable=True),
    sa.Column("agreement_recorded_by", sa.String(_ACTOR), nullable=True),
    sa.Column("suspended_reason", sa.String(2000), nullable=True),
    sa.Column("predecessor_id", sa.String(_ID), nullable=True),
    sa.Column("successor_id", sa.String(_ID), nullable=True),
    sa.Column("superseded_by", sa.String(_ID), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(_ACTOR), nullable=False),
    sa.UniqueConstraint("plan_id", "plan_version", name="uq_deployments_plan_version"),
)
sa.Index("ix_deployments_council_person", deployments.c.council, deployments.c.person_id)
sa.Index("ix_deployments_council_status", deployments.c.council, deployments.c.status)


def _deployment_child_columns() -> tuple[sa.Column[Any], sa.Column[Any]]:
    """The deployment a child row belongs to and its place among its siblings: how
    DeploymentRepository reads each child table back, in order."""
    return (
        sa.Column(
            "deployment_id",
            sa.String(_ID),
            sa.ForeignKey("deployments.deployment_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("position", sa.Integer, nullable=False),
    )


schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("schedule_id", sa.String(_ID), primary_key=True),
    *_deployment_child_columns(),
    sa.Column("option", sa.String(32), nullable=False),
    sa.Column("frequency", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("first_due_on", sa.Date, nullable=False),
    sa.Column("total_pence", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_ACTOR), nullable=False),
)

instalments = sa.Table(
    "instalments",
    metadata,
    sa.Column("instalment_id", sa.String(_ID), primary_key=True),
    sa.Column(
        "schedule_id", sa.String(_ID), sa.ForeignKey("schedules.schedule_id"), nullable=False
    ),
    sa.Column("deployment_id", sa.String(_ID), nullable=False, index=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("option", sa.String(32), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("amount_pence", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(_ID), nullable=True, unique=True),
    sa.Column("released_on", sa.Date, nullable=True),
    sa.Column("released_by", sa.String(_ACTOR), nullable=True),
    sa.Column("batch_id", sa.String(_ID), nullable=True, index=True),
)
sa.Index(
    "ix_instalments_council_status_due",
    instalments.c.council,
    instalments.c.status,
    instalments.c.due_on,
)

monitoring_returns = sa.Table(
    "monitoring_returns",
    metadata,
    sa.Column("return_id", sa.String(_ID), primary_key=True),
    *_deployment_child_columns(),
    sa.Column("option", sa.String(32), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("balance_pence", sa.BigInteger, nullable=False),
    sa.Column("missing_receipts", sa.JSON, nullable=False),
    sa.Column("recorded_by", sa.String(_ACTOR), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)

unspent_checks = sa.Table(
    "unspent_checks",
    metadata,
    sa.Column("check_id", sa.String(_ID), primary_key=True),
    *_deployment_child_columns(),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("balance_pence", sa.BigInteger, nullable=False),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("allowance_pence", sa.BigInteger, nullable=True),
    sa.Column("clawback_pence", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(16), nullable=True),
    sa.Column("clawback_id", sa.String(_ID), nullable=True),
    sa.Column("held", sa.Boolean, nullable=False),
    sa.Column("recorded_by", sa.String(_ACTOR), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)

export_batches = sa.Table(
    "export_batches",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False, index=True),
    sa.Column("up_to", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(_ACTOR), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("control_total_pence", sa.BigInteger, nullable=False),
)

payment_outcomes = sa.Table(
    "payment_outcomes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("deployment_id", sa.String(_ID), nullable=False),
    sa.Column("option", sa.String(32), nullable=False),
    sa.Column("instalment_number", sa.Integer, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("released_on", sa.Date, nullable=False),
    sa.Column("amount_pence", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_on", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("finance_reference", sa.String(200), nullable=True),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_by", sa.String(_ACTOR), nullable=False),
)
sa.Index(
    "ix_payment_outcomes_council_outcome", payment_outcomes.c.council, payment_outcomes.c.outcome
)

payment_feed = sa.Table(
    "payment_feed",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("payment_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("deployment_id", sa.String(_ID), nullable=False),
    sa.Column("schedule_id", sa.String(_ID), nullable=False),
    sa.Column("option", sa.String(32), nullable=False),
    sa.Column("instalment_number", sa.Integer, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("amount_pence", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_payment_feed_council_seq", payment_feed.c.council, payment_feed.c.seq)

payment_feed_counter = sa.Table(
    "payment_feed_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)
"""One row. Taking the next feed numbers updates it, which locks it until the transaction
ends, so feed numbers are handed out in commit order: a reader that has seen number n can
never later find a smaller number appear (docs/integrations.md, the feed)."""


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value is not None else None


def _str(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


# --- rows <-> domain -----------------------------------------------------------------------


def _deployment_values(dep: Deployment) -> dict[str, Any]:
    return {
        "deployment_id": str(dep.deployment_id),
        "council": dep.council,
        "person_id": dep.person_id,
        "plan_id": str(dep.plan_id),
        "plan_version": dep.plan_version,
        "budget_id": str(dep.budget_id),
        "policy_version": dep.policy_version,
        "status": dep.status.value,
        "version": dep.version,
        "gross_annual_pence": dep.gross_annual_pence,
        "one_off_pence": dep.one_off_pence,
        "contingency_weekly_pence": dep.contingency_weekly_pence,
        "contribution_annual_pence": dep.contribution_annual_pence,
        "net_annual_pence": dep.net_annual_pence,
        "assessed_max_weekly_contribution_pence": dep.assessed_max_weekly_contribution_pence,
        "parts": [
            {
                "option": p.option.value,
                "annual_pence": p.annual_pence,
                "net_annual_pence": p.net_annual_pence,
            }
            for p in dep.parts
        ],
        "frequency": dep.frequency.value if dep.frequency else None,
        "first_due_on": dep.first_due_on,
        "plan_year_starts_on": dep.plan_year_starts_on,
        "plan_signed_off_on": dep.plan_signed_off_on,
        "audit_tier": dep.audit_tier,
        "agreement_signed_on": dep.agreement.signed_on if dep.agreement else None,
        "agreement_recorded_by": dep.agreement.recorded_by if dep.agreement else None,
        "suspended_reason": dep.suspended_reason,
        "predecessor_id": _str(dep.predecessor_id),
        "successor_id": _str(dep.successor_id),
        "superseded_by": _str(dep.superseded_by),
        "updated_by": dep.updated_by,
        "updated_at": clock.now(),
    }


def _deployment_from_row(row: Any) -> Deployment:
    agreement = (
        Agreement(signed_on=row.agreement_signed_on, recorded_by=row.agreement_recorded_by)
        if row.agreement_signed_on is not None
        else None
    )
    return Deployment(
        deployment_id=UUID(row.deployment_id),
        council=row.council,
        person_id=row.person_id,
        plan_id=UUID(row.plan_id),
        plan_version=row.plan_version,
        budget_id=UUID(row.budget_id),
        policy_version=row.policy_version,
        gross_annual_pence=row.gross_annual_pence,
        one_off_pence=row.one_off_pence,
        contingency_weekly_pence=row.contingency_weekly_pence,
        updated_by=row.updated_by,
        status=Status(row.status),
        version=row.version,
        parts=[
            Part(
                option=DeploymentOption(p["option"]),
                annual_pence=int(p["annual_pence"]),
                net_annual_pence=int(p["net_annual_pence"]),
            )
            for p in row.parts
        ],
        frequency=PaymentFrequency(row.frequency) if row.frequency else None,
        first_due_on=row.first_due_on,
        assessed_max_weekly_contribution_pence=row.assessed_max_weekly_contribution_pence,
        contribution_annual_pence=row.contribution_annual_pence,
        net_annual_pence=row.net_annual_pence,
        audit_tier=row.audit_tier,
        agreement=agreement,
        plan_year_starts_on=row.plan_year_starts_on,
        plan_signed_off_on=row.plan_signed_off_on,
        suspended_reason=row.suspended_reason,
        predecessor_id=_uuid(row.predecessor_id),
        successor_id=_uuid(row.successor_id),
        superseded_by=_uuid(row.superseded_by),
    )


def _instalment_values(dep: Deployment, inst: Instalment) -> dict[str, Any]:
    return {
        "instalment_id": str(inst.instalment_id),
        "schedule_id": str(inst.schedule_id),
        "deployment_id": str(dep.deployment_id),
        "council": dep.council,
        "person_id": dep.person_id,
        "option": inst.option.value,
        "number": inst.number,
        "due_on": inst.due_on,
        "amount_pence": inst.amount_pence,
        "status": inst.status.value,
        "payment_id": _str(inst.payment_id),
        "released_on": inst.released_on,
        "released_by": inst.released_by,
        "batch_id": None,
    }


def _instalment_state(inst: Instalment) -> tuple[str, UUID | None, date | None, str | None]:
    return (inst.status.value, inst.payment_id, inst.released_on, inst.released_by)


@dataclass
class _Snapshot:
    version: int
    schedule_ids: set[UUID]
    instalments: dict[UUID, tuple[str, UUID | None, date | None, str | None]]
    return_ids: set[UUID]
    check_ids: set[UUID]


def _snapshot(dep: Deployment) -> _Snapshot:
    return _Snapshot(
        version=dep.version,
        schedule_ids={s.schedule_id for s in dep.schedules},
        instalments={i.instalment_id: _instalment_state(i) for i in dep.instalments},
        return_ids={r.return_id for r in dep.returns},
        check_ids={c.check_id for c in dep.unspent_checks},
    )


assessed_charges = sa.Table(
    "assessed_charges",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("financial_assessment_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("full_cost", sa.Boolean, nullable=False),
    sa.Column("weekly_charge_pence", sa.BigInteger, nullable=True),
    sa.Column("applies_from", sa.Date, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)
"""What each financial assessment set; a deferred one is kept but sets no charge."""
sa.Index(
    "ix_assessed_charges_council_person", assessed_charges.c.council, assessed_charges.c.person_id
)

budget_statements = sa.Table(
    "budget_statements",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("statement_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("deployment_id", sa.String(_ID), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("applies_from", sa.Date, nullable=False),
    sa.Column("total_annual_pence", sa.BigInteger, nullable=False),
    sa.Column("person_pays_annual_pence", sa.BigInteger, nullable=False),
    sa.Column("charge_outcome", sa.String(32), nullable=True),
    sa.Column("financial_assessment_id", sa.String(_ID), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
)
sa.Index(
    "ix_budget_statements_council_person",
    budget_statements.c.council,
    budget_statements.c.person_id,
)

statement_challenges = sa.Table(
    "statement_challenges",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("challenge_id", sa.String(_ID), nullable=False, unique=True),
    sa.Column("statement_id", sa.String(_ID), nullable=False, index=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("deployment_id", sa.String(_ID), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("challenged_on", sa.Date, nullable=False),
    sa.Column("challenged_by", sa.String(_ACTOR), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("answered_on", sa.Date, nullable=True),
    sa.Column("answered_by", sa.String(_ACTOR), nullable=True),
    sa.Column("answered_by_role", sa.String(32), nullable=True),
)
sa.Index(
    "ix_statement_challenges_council_outcome",
    statement_challenges.c.council,
    statement_challenges.c.outcome,
)


class DeploymentRepository:
    """Loads and saves whole deployments: schedules, instalments, returns and checks."""

    def __init__(self, session: AsyncSession, track: Callable[[Deployment], Deployment]) -> None:
        self._session = session
        self._track = track
        self._seen: dict[UUID, _Snapshot] = {}
        # Deployments of the people read with `prefetch_people`, in creation order: this
        # transaction holds every one of them, so they are answered from here.
        self._held: dict[UUID, Deployment] = {}
        self._people: set[tuple[str, str]] = set()

    async def prefetch_people(self, council: str, person_ids: Iterable[str]) -> None:
        """Read every deployment of these people, with one query a table; until the
        transaction ends, `get` and the person's lists answer them from memory (as the
        same objects the use cases changed and saved)."""
        wanted = sorted(set(person_ids) - {p for c, p in self._people if c == council})
        if not wanted:
            return
        rows = (
            await self._session.execute(
                sa.select(deployments)
                .where(deployments.c.council == council, one_of(deployments.c.person_id, wanted))
                .order_by(deployments.c.seq)
            )
        ).all()
        keys = [row.deployment_id for row in rows]
        children: dict[str, dict[str, list[sa.Row[Any]]]] = {}
        for name, table, order in (
            ("schedules", schedules, (schedules.c.position,)),
            ("instalments", instalments, (instalments.c.schedule_id, instalments.c.number)),
            ("returns", monitoring_returns, (monitoring_returns.c.position,)),
            ("checks", unspent_checks, (unspent_checks.c.position,)),
        ):
            found = (
                (
                    await self._session.execute(
                        sa.select(table).where(one_of(table.c.deployment_id, keys)).order_by(*order)
                    )
                ).all()
                if keys
                else []
            )
            for child in found:
                children.setdefault(child.deployment_id, {}).setdefault(name, []).append(child)
        for row in rows:
            if UUID(row.deployment_id) in self._held:
                continue
            of = children.get(row.deployment_id, {})
            dep = self._assemble(
                row,
                of.get("schedules", []),
                of.get("instalments", []),
                of.get("returns", []),
                of.get("checks", []),
            )
            self._held[dep.deployment_id] = dep
        self._people.update((council, person_id) for person_id in wanted)

    async def get(self, deployment_id: UUID) -> Deployment | None:
        held = self._held.get(deployment_id)
        if held is not None:
            return held
        row = (
            await self._session.execute(
                sa.select(deployments).where(deployments.c.deployment_id == str(deployment_id))
            )
        ).first()
        if row is None:
            return None
        key = str(deployment_id)
        return self._assemble(
            row,
            await self._rows_of(schedules, key, schedules.c.position),
            await self._rows_of(instalments, key, instalments.c.schedule_id, instalments.c.number),
            await self._rows_of(monitoring_returns, key, monitoring_returns.c.position),
            await self._rows_of(unspent_checks, key, unspent_checks.c.position),
        )

    def _assemble(
        self,
        row: Any,
        schedule_rows: Sequence[Any],
        instalment_rows: Sequence[Any],
        return_rows: Sequence[Any],
        check_rows: Sequence[Any],
    ) -> Deployment:
        """A whole deployment from its row and its child rows, each in their order."""
        dep = _deployment_from_row(row)
        by_schedule: dict[str, list[Instalment]] = {}
        for r in instalment_rows:
            by_schedule.setdefault(r.schedule_id, []).append(
                Instalment(
                    instalment_id=UUID(r.instalment_id),
                    schedule_id=UUID(r.schedule_id),
                    number=r.number,
                    option=DeploymentOption(r.option),
                    due_on=r.due_on,
                    amount_pence=r.amount_pence,
                    status=InstalmentStatus(r.status),
                    payment_id=_uuid(r.payment_id),
                    released_on=r.released_on,
                    released_by=r.released_by,
                )
            )
        dep.schedules = [
            Schedule(
                schedule_id=UUID(s.schedule_id),
                option=DeploymentOption(s.option),
                frequency=Frequency(s.frequency),
                kind=ScheduleKind(s.kind),
                first_due_on=s.first_due_on,
                total_pence=s.total_pence,
                instalments=by_schedule.get(s.schedule_id, []),
                created_by=s.created_by,
            )
            for s in schedule_rows
        ]
        dep.returns = [
            MonitoringReturn(
                return_id=UUID(r.return_id),
                option=DeploymentOption(r.option),
                period_start=r.period_start,
                period_end=r.period_end,
                items=[
                    ReturnItem(
                        description=i["description"],
                        amount_pence=int(i["amount_pence"]),
                        receipt=bool(i["receipt"]),
                    )
                    for i in r.items
                ],
                balance_pence=r.balance_pence,
                missing_receipts=[int(i) for i in r.missing_receipts],
                recorded_by=r.recorded_by,
            )
            for r in return_rows
        ]
        dep.unspent_checks = [
            UnspentCheck(
                check_id=UUID(c.check_id),
                as_of=c.as_of,
                balance_pence=c.balance_pence,
                rule=UnspentRule(c.rule),
                allowance_pence=c.allowance_pence,
                clawback_pence=c.clawback_pence,
                action=UnspentAction(c.action) if c.action else None,
                clawback_id=_uuid(c.clawback_id),
                held=c.held,
                recorded_by=c.recorded_by,
            )
            for c in check_rows
        ]
        self._seen[dep.deployment_id] = _snapshot(dep)
        return self._track(dep)

    async def _rows_of(
        self, table: sa.Table, key: str, *order: sa.ColumnElement[Any]
    ) -> Sequence[sa.Row[Any]]:
        """The rows a deployment holds in one of its child tables, in their order."""
        return (
            await self._session.execute(
                sa.select(table).where(table.c.deployment_id == key).order_by(*order)
            )
        ).all()

    async def latest_plan_versions(self, plan_ids: Iterable[UUID]) -> dict[UUID, int]:
        """The latest version of each of these plans that has a deployment, with one query."""
        wanted = sorted({str(plan_id) for plan_id in plan_ids})
        if not wanted:
            return {}
        rows = await self._session.execute(
            sa.select(deployments.c.plan_id, sa.func.max(deployments.c.plan_version))
            .where(one_of(deployments.c.plan_id, wanted))
            .group_by(deployments.c.plan_id)
        )
        return {UUID(plan_id): version for plan_id, version in rows}

    async def plan_seen(self, plan_id: UUID, plan_version: int) -> bool:
        """True when this plan version (or a later one) already has a deployment."""
        row = (
            await self._session.execute(
                sa.select(deployments.c.seq).where(
                    deployments.c.plan_id == str(plan_id),
                    deployments.c.plan_version >= plan_version,
                )
            )
        ).first()
        return row is not None

    async def live_for_person(self, council: str, person_id: str) -> list[Deployment]:
        return await self._of_person(council, person_id, superseded=False)

    async def superseded_for_person(self, council: str, person_id: str) -> list[Deployment]:
        """The person's deployments already replaced by a revised plan's, oldest first."""
        return await self._of_person(council, person_id, superseded=True)

    async def _of_person(
        self, council: str, person_id: str, *, superseded: bool
    ) -> list[Deployment]:
        if (council, person_id) in self._people:
            return [
                dep
                for dep in self._held.values()
                if dep.council == council
                and dep.person_id == person_id
                and (dep.status is Status.SUPERSEDED) == superseded
            ]
        is_superseded = deployments.c.status == Status.SUPERSEDED.value
        ids = (
            await self._session.execute(
                sa.select(deployments.c.deployment_id)
                .where(
                    deployments.c.council == council,
                    deployments.c.person_id == person_id,
                    is_superseded if superseded else ~is_superseded,
                )
                .order_by(deployments.c.seq)
            )
        ).scalars()
        found = [await self.get(UUID(i)) for i in list(ids)]
        return [d for d in found if d is not None]

    async def with_due_instalments(self, council: str, as_of: date) -> list[UUID]:
        """Deployments with instalments due by as_of that may be released now."""
        rows = (
            await self._session.execute(
                sa.select(deployments.c.deployment_id)
                .where(
                    deployments.c.council == council,
                    deployments.c.agreement_signed_on.is_not(None),
                    deployments.c.agreement_signed_on <= as_of,
                    deployments.c.suspended_reason.is_(None),
                    sa.exists().where(
                        instalments.c.deployment_id == deployments.c.deployment_id,
                        instalments.c.status == InstalmentStatus.SCHEDULED.value,
                        instalments.c.due_on <= as_of,
                    ),
                )
                .order_by(deployments.c.seq)
            )
        ).scalars()
        return [UUID(i) for i in rows]

    async def page(
        self,
        *,
        council: str,
        person_id: str | None,
        status: Status | None,
        after_seq: int | None,
        limit: int,
    ) -> list[tuple[int, Deployment]]:
        """Deployments of a council in creation order (schedules and returns not loaded)."""
        query = sa.select(deployments).where(deployments.c.council == council)
        if person_id is not None:
            query = query.where(deployments.c.person_id == person_id)
        if status is not None:
            query = query.where(deployments.c.status == status.value)
        if after_seq is not None:
            query = query.where(deployments.c.seq > after_seq)
        rows = (await self._session.execute(query.order_by(deployments.c.seq).limit(limit))).all()
        return [(row.seq, _deployment_from_row(row)) for row in rows]

    async def save(self, dep: Deployment) -> None:
        """Insert a new deployment, or write the changes since it was loaded."""
        snapshot = self._seen.get(dep.deployment_id)
        if snapshot is None:
            await self._session.execute(
                deployments.insert(), {**_deployment_values(dep), "created_at": clock.now()}
            )
            snapshot = _Snapshot(dep.version, set(), {}, set(), set())
            self._track(dep)
            if (dep.council, dep.person_id) in self._people:
                self._held[dep.deployment_id] = dep
        elif dep.version != snapshot.version:
            await save_versioned(
                self._session,
                deployments,
                key=(deployments.c.deployment_id, str(dep.deployment_id)),
                expected_version=snapshot.version,
                values=_deployment_values(dep),
                what=f"deployment {dep.deployment_id}",
            )
        await self._save_schedules(dep, snapshot)
        await self._save_monitoring(dep, snapshot)
        self._seen[dep.deployment_id] = _snapshot(dep)

    async def _save_schedules(self, dep: Deployment, snapshot: _Snapshot) -> None:
        position = len(snapshot.schedule_ids)
        new = [s for s in dep.schedules if s.schedule_id not in snapshot.schedule_ids]
        if new:
            await self._session.execute(
                schedules.insert(),
                [
                    {
                        "schedule_id": str(s.schedule_id),
                        "deployment_id": str(dep.deployment_id),
                        "position": position + index,
                        "option": s.option.value,
                        "frequency": s.frequency.value,
                        "kind": s.kind.value,
                        "first_due_on": s.first_due_on,
                        "total_pence": s.total_pence,
                        "created_by": s.created_by,
                    }
                    for index, s in enumerate(new)
                ],
            )
            await self._session.execute(
                instalments.insert(),
                [_instalment_values(dep, i) for s in new for i in s.instalments],
            )
        for inst in dep.instalments:
            before = snapshot.instalments.get(inst.instalment_id)
            if before is None or before == _instalment_state(inst):
                continue
            result = await self._session.execute(
                instalments.update()
                .where(
                    instalments.c.instalment_id == str(inst.instalment_id),
                    instalments.c.status == before[0],
                )
                .values(
                    status=inst.status.value,
                    payment_id=_str(inst.payment_id),
                    released_on=inst.released_on,
                    released_by=inst.released_by,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleVersion(f"deployment {dep.deployment_id}", snapshot.version)

    async def _save_monitoring(self, dep: Deployment, snapshot: _Snapshot) -> None:
        new_returns = [r for r in dep.returns if r.return_id not in snapshot.return_ids]
        if new_returns:
            start = len(snapshot.return_ids)
            await self._session.execute(
                monitoring_returns.insert(),
                [
                    {
                        "return_id": str(r.return_id),
                        "deployment_id": str(dep.deployment_id),
                        "position": start + index,
                        "option": r.option.value,
                        "period_start": r.period_start,
                        "period_end": r.period_end,
                        "items": [
                            {
                                "description": i.description,
                                "amount_pence": i.amount_pence,
                                "receipt": i.receipt,
                            }
                            for i in r.items
                        ],
                        "balance_pence": r.balance_pence,
                        "missing_receipts": list(r.missing_receipts),
                        "recorded_by": r.recorded_by,
                        "recorded_at": clock.now(),
                    }
                    for index, r in enumerate(new_returns)
                ],
            )
        new_checks = [c for c in dep.unspent_checks if c.check_id not in snapshot.check_ids]
        if new_checks:
            start = len(snapshot.check_ids)
            await self._session.execute(
                unspent_checks.insert(),
                [
                    {
                        "check_id": str(c.check_id),
                        "deployment_id": str(dep.deployment_id),
                        "position": start + index,
                        "as_of": c.as_of,
                        "balance_pence": c.balance_pence,
                        "rule": c.rule.value,
                        "allowance_pence": c.allowance_pence,
                        "clawback_pence": c.clawback_pence,
                        "action": c.action.value if c.action else None,
                        "clawback_id": _str(c.clawback_id),
                        "held": c.held,
                        "recorded_by": c.recorded_by,
                        "recorded_at": clock.now(),
                    }
                    for index, c in enumerate(new_checks)
                ],
            )


def _export_row(r: Any) -> ExportRow:
    return ExportRow(
        payment_id=UUID(r.payment_id),
        person_id=r.person_id,
        council=r.council,
        deployment_id=UUID(r.deployment_id),
        option=DeploymentOption(r.option),
        instalment_number=r.number,
        due_on=r.due_on,
        released_on=r.released_on,
        amount_pence=r.amount_pence,
    )


def _batch_from_row(row: Any) -> ExportBatch:
    return ExportBatch(
        batch_id=UUID(row.batch_id),
        council=row.council,
        up_to=row.up_to,
        created_at=row.created_at,
        created_by=row.created_by,
        rows=row.row_count,
        control_total_pence=row.control_total_pence,
    )


class ExportRepository:
    """Finance export batches and the released payments each one holds."""

    _CHUNK = 500

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def waiting(self, council: str, up_to: date) -> list[tuple[str, ExportRow]]:
        """Released payments of a council up to a date that are in no batch yet."""
        rows = (
            await self._session.execute(
                sa.select(instalments).where(
                    instalments.c.council == council,
                    instalments.c.status == InstalmentStatus.RELEASED.value,
                    instalments.c.batch_id.is_(None),
                    instalments.c.released_on <= up_to,
                )
            )
        ).all()
        return [(r.instalment_id, _export_row(r)) for r in rows]

    async def add(self, batch: ExportBatch, instalment_ids: list[str]) -> None:
        await self._session.execute(
            export_batches.insert().values(
                batch_id=str(batch.batch_id),
                council=batch.council,
                up_to=batch.up_to,
                created_at=batch.created_at,
                created_by=batch.created_by,
                row_count=batch.rows,
                control_total_pence=batch.control_total_pence,
            )
        )
        for start in range(0, len(instalment_ids), self._CHUNK):
            chunk = instalment_ids[start : start + self._CHUNK]
            result = await self._session.execute(
                instalments.update()
                .where(one_of(instalments.c.instalment_id, chunk), instalments.c.batch_id.is_(None))
                .values(batch_id=str(batch.batch_id))
            )
            if result.rowcount != len(chunk):  # type: ignore[attr-defined]
                raise ConcurrentExport()

    async def get(self, batch_id: UUID) -> ExportBatch | None:
        row = (
            await self._session.execute(
                sa.select(export_batches).where(export_batches.c.batch_id == str(batch_id))
            )
        ).first()
        return _batch_from_row(row) if row is not None else None

    async def rows_of(self, batch_id: UUID) -> list[ExportRow]:
        rows = (
            await self._session.execute(
                sa.select(instalments).where(instalments.c.batch_id == str(batch_id))
            )
        ).all()
        return [_export_row(r) for r in rows]

    async def page(
        self, *, council: str, after_seq: int | None, limit: int
    ) -> list[tuple[int, ExportBatch]]:
        query = sa.select(export_batches).where(export_batches.c.council == council)
        if after_seq is not None:
            query = query.where(export_batches.c.seq > after_seq)
        rows = (
            await self._session.execute(query.order_by(export_batches.c.seq).limit(limit))
        ).all()
        return [(row.seq, _batch_from_row(row)) for row in rows]


@dataclass(frozen=True)
class PaymentView:
    """A released payment as finance and the portal see it, with its outcome if any."""

    seq: int
    payment_id: UUID
    council: str
    person_id: str
    deployment_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: int
    outcome: Outcome | None
    outcome_on: date | None
    reason: str | None
    finance_reference: str | None


class LedgerRepository:
    """Released payments' outcomes from finance, and the feed finance systems pull."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def released(self, council: str, payment_ids: list[UUID]) -> dict[UUID, PaymentView]:
        """The caller's council's released payments among these ids, with their outcomes."""
        found: dict[UUID, PaymentView] = {}
        keys = [str(p) for p in payment_ids]
        for start in range(0, len(keys), 500):
            rows = (
                await self._session.execute(
                    self._joined().where(
                        instalments.c.council == council,
                        one_of(instalments.c.payment_id, keys[start : start + 500]),
                        instalments.c.released_on.is_not(None),
                    )
                )
            ).all()
            for row in rows:
                view = _payment_view(row)
                found[view.payment_id] = view
        return found

    @staticmethod
    def _joined() -> sa.Select[Any]:
        return sa.select(
            instalments,
            payment_outcomes.c.seq.label("outcome_seq"),
            payment_outcomes.c.outcome,
            payment_outcomes.c.outcome_on,
            payment_outcomes.c.reason,
            payment_outcomes.c.finance_reference,
        ).join(
            payment_outcomes,
            payment_outcomes.c.payment_id == instalments.c.payment_id,
            isouter=True,
        )

    async def failed_pence_by_option(self, deployment_id: UUID) -> dict[DeploymentOption, int]:
        """What finance last reported failed among a deployment's released payments."""
        rows = await self._session.execute(
            sa.select(payment_outcomes.c.option, sa.func.sum(payment_outcomes.c.amount_pence))
            .where(
                payment_outcomes.c.deployment_id == str(deployment_id),
                payment_outcomes.c.outcome == Outcome.FAILED.value,
            )
            .group_by(payment_outcomes.c.option)
        )
        return {DeploymentOption(option): int(pence) for option, pence in rows}

    async def record_outcome(
        self, payment: PaymentView, line: ConfirmationLine, recorded_by: str
    ) -> None:
        values = {
            "outcome": line.outcome.value,
            "outcome_on": line.processed_on,
            "reason": line.reason,
            "finance_reference": line.finance_reference,
            "recorded_at": clock.now(),
            "recorded_by": recorded_by,
        }
        if payment.outcome is None:
            await self._session.execute(
                payment_outcomes.insert().values(
                    payment_id=str(payment.payment_id),
                    council=payment.council,
                    person_id=payment.person_id,
                    deployment_id=str(payment.deployment_id),
                    option=payment.option.value,
                    instalment_number=payment.instalment_number,
                    due_on=payment.due_on,
                    released_on=payment.released_on,
                    amount_pence=payment.amount_pence,
                    **values,
                )
            )
            return
        result = await self._session.execute(
            payment_outcomes.update()
            .where(
                payment_outcomes.c.payment_id == str(payment.payment_id),
                payment_outcomes.c.outcome == payment.outcome.value,
            )
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentConfirmation(
                f"payment {payment.payment_id} was confirmed by another import meanwhile; "
                "import the file again"
            )

    async def outcomes_page(
        self,
        *,
        council: str,
        outcome: Outcome,
        person_id: str | None,
        after_seq: int | None,
        limit: int,
    ) -> list[PaymentView]:
        """Payments with this outcome, in the order their outcomes were first recorded."""
        query = self._joined().where(
            payment_outcomes.c.council == council, payment_outcomes.c.outcome == outcome.value
        )
        if person_id is not None:
            query = query.where(payment_outcomes.c.person_id == person_id)
        if after_seq is not None:
            query = query.where(payment_outcomes.c.seq > after_seq)
        rows = (
            await self._session.execute(query.order_by(payment_outcomes.c.seq).limit(limit))
        ).all()
        return [_payment_view(row, seq=row.outcome_seq) for row in rows]

    async def append_to_feed(self, released: list[PaymentReleased]) -> None:
        """Number released payments for the feed, in the order their transactions commit."""
        if not released:
            return
        result = await self._session.execute(
            payment_feed_counter.update()
            .where(payment_feed_counter.c.id == 1)
            .values(last_seq=payment_feed_counter.c.last_seq + len(released))
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self._session.execute(payment_feed_counter.insert().values(id=1, last_seq=0))
            await self.append_to_feed(released)
            return
        last = int(
            await self._session.scalar(
                sa.select(payment_feed_counter.c.last_seq).where(payment_feed_counter.c.id == 1)
            )
            or 0
        )
        now = clock.now()
        await self._session.execute(
            payment_feed.insert(),
            [
                {
                    "seq": last - len(released) + number,
                    "council": event.council,
                    "payment_id": str(event.payment_id),
                    "person_id": event.person_id,
                    "deployment_id": str(event.deployment_id),
                    "schedule_id": str(event.schedule_id),
                    "option": event.option.value,
                    "instalment_number": event.instalment_number,
                    "due_on": event.due_on,
                    "amount_pence": event.amount_pence,
                    "recorded_at": now,
                }
                for number, event in enumerate(released, start=1)
            ],
        )

    async def feed_page(self, *, council: str, after_seq: int, limit: int) -> list[Any]:
        """Feed entries after a number, with the payment's released date and outcome."""
        rows = (
            await self._session.execute(
                sa.select(
                    payment_feed,
                    instalments.c.released_on,
                    payment_outcomes.c.outcome,
                    payment_outcomes.c.outcome_on,
                )
                .join(instalments, instalments.c.payment_id == payment_feed.c.payment_id)
                .join(
                    payment_outcomes,
                    payment_outcomes.c.payment_id == payment_feed.c.payment_id,
                    isouter=True,
                )
                .where(payment_feed.c.council == council, payment_feed.c.seq > after_seq)
                .order_by(payment_feed.c.seq)
                .limit(limit)
            )
        ).all()
        return list(rows)


def _payment_view(row: Any, seq: int | None = None) -> PaymentView:
    return PaymentView(
        seq=seq if seq is not None else 0,
        payment_id=UUID(row.payment_id),
        council=row.council,
        person_id=row.person_id,
        deployment_id=UUID(row.deployment_id),
        option=DeploymentOption(row.option),
        instalment_number=row.number,
        due_on=row.due_on,
        released_on=row.released_on,
        amount_pence=row.amount_pence,
        outcome=Outcome(row.outcome) if row.outcome else None,
        outcome_on=row.outcome_on,
        reason=row.reason,
        finance_reference=row.finance_reference,
    )


def _charge_from_row(row: Any) -> AssessedCharge:
    return AssessedCharge(
        financial_assessment_id=UUID(row.financial_assessment_id),
        council=row.council,
        person_id=row.person_id,
        outcome=FinancialAssessmentOutcome(row.outcome),
        full_cost=row.full_cost,
        weekly_charge_pence=row.weekly_charge_pence,
        applies_from=row.applies_from,
        policy_version=row.policy_version,
    )


def _statement_from_row(row: Any) -> BudgetStatement:
    return BudgetStatement(
        statement_id=UUID(row.statement_id),
        council=row.council,
        person_id=row.person_id,
        deployment_id=UUID(row.deployment_id),
        issued_on=row.issued_on,
        applies_from=row.applies_from,
        figures=BudgetFigures(row.total_annual_pence, row.person_pays_annual_pence),
        charge_outcome=(
            FinancialAssessmentOutcome(row.charge_outcome) if row.charge_outcome else None
        ),
        financial_assessment_id=_uuid(row.financial_assessment_id),
        text=row.text,
        policy_version=row.policy_version,
    )


def _challenge_from_row(row: Any) -> StatementChallenge:
    return StatementChallenge(
        challenge_id=UUID(row.challenge_id),
        statement_id=UUID(row.statement_id),
        council=row.council,
        person_id=row.person_id,
        deployment_id=UUID(row.deployment_id),
        reason=row.reason,
        challenged_on=row.challenged_on,
        challenged_by=row.challenged_by,
        outcome=ChallengeOutcome(row.outcome) if row.outcome else None,
        response=row.response,
        answered_on=row.answered_on,
        answered_by=row.answered_by,
        answered_by_role=Role(row.answered_by_role) if row.answered_by_role else None,
    )


class StatementRepository:
    """Assessed charges, personal budget statements and the challenges to them."""

    def __init__(self, session: AsyncSession, track: Callable[[Any], Any]) -> None:
        self._session = session
        self._track = track
        # The latest statement of each person read with `prefetch_people` (None: none yet),
        # kept up to date by `add_statement` until the transaction ends.
        self._latest: dict[tuple[str, str], BudgetStatement | None] = {}

    async def prefetch_people(self, council: str, person_ids: Iterable[str]) -> None:
        """Read these people's latest statements with one query; until the transaction
        ends, `latest_statement` answers them from memory (a bulk conversion read one a
        row)."""
        wanted = sorted({p for p in person_ids if (council, p) not in self._latest})
        if not wanted:
            return
        latest_seq = (
            sa.select(sa.func.max(budget_statements.c.seq))
            .where(
                budget_statements.c.council == council,
                one_of(budget_statements.c.person_id, wanted),
            )
            .group_by(budget_statements.c.person_id)
        )
        rows = (
            await self._session.execute(
                sa.select(budget_statements).where(budget_statements.c.seq.in_(latest_seq))
            )
        ).all()
        self._latest.update(((council, person_id), None) for person_id in wanted)
        for row in rows:
            self._latest[(council, row.person_id)] = _statement_from_row(row)

    async def add_charge(self, charge: AssessedCharge) -> bool:
        """Keep a charge; False when this assessment's charge is already kept."""
        seen = (
            await self._session.execute(
                sa.select(assessed_charges.c.seq).where(
                    assessed_charges.c.financial_assessment_id
                    == str(charge.financial_assessment_id)
                )
            )
        ).first()
        if seen is not None:
            return False
        await self._session.execute(
            assessed_charges.insert().values(
                financial_assessment_id=str(charge.financial_assessment_id),
                council=charge.council,
                person_id=charge.person_id,
                outcome=charge.outcome.value,
                full_cost=charge.full_cost,
                weekly_charge_pence=charge.weekly_charge_pence,
                applies_from=charge.applies_from,
                policy_version=charge.policy_version,
                recorded_at=clock.now(),
            )
        )
        return True

    async def charge_in_force(
        self, council: str, person_id: str, on: date
    ) -> AssessedCharge | None:
        """The latest charge applying on a day (a deferral sets none): the latest day, then
        the latest recorded."""
        row = (
            await self._session.execute(
                sa.select(assessed_charges)
                .where(
                    assessed_charges.c.council == council,
                    assessed_charges.c.person_id == person_id,
                    assessed_charges.c.applies_from <= on,
                    assessed_charges.c.outcome != FinancialAssessmentOutcome.DEFERRED.value,
                )
                .order_by(assessed_charges.c.applies_from.desc(), assessed_charges.c.seq.desc())
                .limit(1)
            )
        ).first()
        return _charge_from_row(row) if row is not None else None

    async def add_statement(self, statement: BudgetStatement) -> None:
        f = statement.figures
        # The values as parameters of one cached statement: `.values(...)` built a new
        # statement, and derived its cache key, for every row.
        await self._session.execute(
            budget_statements.insert(),
            {
                "statement_id": str(statement.statement_id),
                "council": statement.council,
                "person_id": statement.person_id,
                "deployment_id": str(statement.deployment_id),
                "issued_on": statement.issued_on,
                "applies_from": statement.applies_from,
                "total_annual_pence": f.total_annual_pence,
                "person_pays_annual_pence": f.person_pays_annual_pence,
                "charge_outcome": (
                    statement.charge_outcome.value if statement.charge_outcome else None
                ),
                "financial_assessment_id": _str(statement.financial_assessment_id),
                "text": statement.text,
                "policy_version": statement.policy_version,
            },
        )
        if (statement.council, statement.person_id) in self._latest:
            self._latest[(statement.council, statement.person_id)] = statement
        self._track(statement)

    async def latest_statement(self, council: str, person_id: str) -> BudgetStatement | None:
        if (council, person_id) in self._latest:
            return self._latest[(council, person_id)]
        row = (
            await self._session.execute(
                sa.select(budget_statements)
                .where(
                    budget_statements.c.council == council,
                    budget_statements.c.person_id == person_id,
                )
                .order_by(budget_statements.c.seq.desc())
                .limit(1)
            )
        ).first()
        return _statement_from_row(row) if row is not None else None

    async def statements_of(self, council: str, person_id: str) -> list[BudgetStatement]:
        """A person's statements, the newest first."""
        rows = (
            await self._session.execute(
                sa.select(budget_statements)
                .where(
                    budget_statements.c.council == council,
                    budget_statements.c.person_id == person_id,
                )
                .order_by(budget_statements.c.seq.desc())
            )
        ).all()
        return [_statement_from_row(r) for r in rows]

    async def get_statement(self, statement_id: UUID) -> BudgetStatement | None:
        row = (
            await self._session.execute(
                sa.select(budget_statements).where(
                    budget_statements.c.statement_id == str(statement_id)
                )
            )
        ).first()
        return _statement_from_row(row) if row is not None else None

    async def add_challenge(self, challenge: StatementChallenge) -> None:
        await self._session.execute(
            statement_challenges.insert().values(
                challenge_id=str(challenge.challenge_id),
                statement_id=str(challenge.statement_id),
                council=challenge.council,
                person_id=challenge.person_id,
                deployment_id=str(challenge.deployment_id),
                reason=challenge.reason,
                challenged_on=challenge.challenged_on,
                challenged_by=challenge.challenged_by,
            )
        )
        self._track(challenge)

    async def get_challenge(self, challenge_id: UUID) -> StatementChallenge | None:
        row = (
            await self._session.execute(
                sa.select(statement_challenges).where(
                    statement_challenges.c.challenge_id == str(challenge_id)
                )
            )
        ).first()
        return _challenge_from_row(row) if row is not None else None

    async def save_answer(self, challenge: StatementChallenge) -> None:
        """Write a challenge's answer; a second answer meanwhile is refused as stale."""
        assert challenge.outcome is not None and challenge.answered_by_role is not None
        result = await self._session.execute(
            statement_challenges.update()
            .where(
                statement_challenges.c.challenge_id == str(challenge.challenge_id),
                statement_challenges.c.outcome.is_(None),
            )
            .values(
                outcome=challenge.outcome.value,
                response=challenge.response,
                answered_on=challenge.answered_on,
                answered_by=challenge.answered_by,
                answered_by_role=challenge.answered_by_role.value,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ChallengeAlreadyAnswered(
                f"challenge {challenge.challenge_id} was answered meanwhile"
            )
        self._track(challenge)

    async def challenges_of(self, council: str, person_id: str) -> list[StatementChallenge]:
        rows = (
            await self._session.execute(
                sa.select(statement_challenges)
                .where(
                    statement_challenges.c.council == council,
                    statement_challenges.c.person_id == person_id,
                )
                .order_by(statement_challenges.c.seq)
            )
        ).all()
        return [_challenge_from_row(r) for r in rows]

    async def challenges_page(
        self, *, council: str, open_only: bool, after_seq: int | None, limit: int
    ) -> list[tuple[int, StatementChallenge]]:
        """A council's challenges, the oldest first: the team manager's queue."""
        query = sa.select(statement_challenges).where(statement_challenges.c.council == council)
        if open_only:
            query = query.where(statement_challenges.c.outcome.is_(None))
        if after_seq is not None:
            query = query.where(statement_challenges.c.seq > after_seq)
        rows = (
            await self._session.execute(query.order_by(statement_challenges.c.seq).limit(limit))
        ).all()
        return [(r.seq, _challenge_from_row(r)) for r in rows]


class PaymentsUnitOfWork(UnitOfWork):
    deployments: DeploymentRepository
    exports: ExportRepository
    ledger: LedgerRepository
    cards: CardRepository
    statements: StatementRepository

    def _open(self) -> None:
        self.deployments = DeploymentRepository(self.session, self.track)
        self.exports = ExportRepository(self.session)
        self.ledger = LedgerRepository(self.session)
        self.cards = CardRepository(
            self.session, (card_accounts, card_transactions, card_balances), self.track
        )
        self.statements = StatementRepository(self.session, self.track)
