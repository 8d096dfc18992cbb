"""Payments' unit of work over dicts: deployments and the payment feed, no database.

Exports and finance's confirmation outcomes are not faked: their use cases are tested
through the API (test_reconciliation.py), where their SQL is the point.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from contracts.events import DeploymentOption, PaymentReleased
from servicekit.testing import InMemoryRepository, InMemoryStore, InMemoryUnitOfWork
from services.payments.charges import AssessedCharge
from services.payments.db import PaymentsUnitOfWork
from services.payments.domain import Deployment
from services.payments.lifecycle import Status
from services.payments.schedules import InstalmentStatus
from services.payments.statements import BudgetStatement, StatementChallenge


class FakeDeploymentRepository(InMemoryRepository[Deployment]):
    async def get(self, deployment_id: UUID) -> Deployment | None:
        return self.load(deployment_id)

    async def plan_seen(self, plan_id: UUID, plan_version: int) -> bool:
        return any(
            d.plan_id == plan_id and d.plan_version >= plan_version for d in self.rows.values()
        )

    def _in_order(self) -> list[Deployment]:
        return list(self.rows.values())  # insertion order: the table's seq

    async def live_for_person(self, council: str, person_id: str) -> list[Deployment]:
        return self.find(
            lambda d: (
                (d.council, d.person_id) == (council, person_id)
                and d.status is not Status.SUPERSEDED
            )
        )

    async def superseded_for_person(self, council: str, person_id: str) -> list[Deployment]:
        return self.find(
            lambda d: (
                (d.council, d.person_id) == (council, person_id) and d.status is Status.SUPERSEDED
            )
        )

    async def with_due_instalments(self, council: str, as_of: date) -> list[UUID]:
        return [
            d.deployment_id
            for d in self._in_order()
            if d.council == council
            and d.agreement is not None
            and d.agreement.signed_on <= as_of
            and d.suspended_reason is None
            and any(
                i.status is InstalmentStatus.SCHEDULED and i.due_on <= as_of for i in d.instalments
            )
        ]

    async def page(
        self,
        *,
        council: str,
        person_id: str | None,
        status: Status | None,
        after_seq: int | None,
        limit: int,
    ) -> list[tuple[int, Deployment]]:
        numbered = [
            (seq, d)
            for seq, d in enumerate(self.find(lambda d: d.council == council), start=1)
            if person_id in (None, d.person_id) and status in (None, d.status)
        ]
        return [(seq, d) for seq, d in numbered if after_seq is None or seq > after_seq][:limit]

    async def save(self, dep: Deployment) -> None:
        if dep.deployment_id in self.rows:
            self.update(dep)
        else:
            self.insert(dep)


class FakeLedgerRepository(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.feed: list[PaymentReleased] = []

    async def append_to_feed(self, released: list[PaymentReleased]) -> None:
        self.feed.extend(released)

    async def failed_pence_by_option(self, deployment_id: UUID) -> dict[DeploymentOption, int]:
        return {}


class FakeStatementRepository(InMemoryStore):
    """Assessed charges, statements and challenges in recording order."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.charges: list[AssessedCharge] = []
        self.statements: list[BudgetStatement] = []
        self.challenges: list[StatementChallenge] = []

    async def add_charge(self, charge: AssessedCharge) -> bool:
        if any(c.financial_assessment_id == charge.financial_assessment_id for c in self.charges):
            return False
        self.charges.append(charge)
        return True

    async def charge_in_force(
        self, council: str, person_id: str, on: date
    ) -> AssessedCharge | None:
        mine = [
            (c.applies_from, n, c)
            for n, c in enumerate(self.charges)
            if (c.council, c.person_id) == (council, person_id)
            and c.applies_from <= on
            and c.sets_a_charge
        ]
        return max(mine, key=lambda t: (t[0], t[1]))[2] if mine else None

    async def add_statement(self, statement: BudgetStatement) -> None:
        self.statements.append(statement)
        self._uow.track(statement)

    async def latest_statement(self, council: str, person_id: str) -> BudgetStatement | None:
        mine = await self.statements_of(council, person_id)
        return mine[0] if mine else None

    async def statements_of(self, council: str, person_id: str) -> list[BudgetStatement]:
        return [
            s for s in reversed(self.statements) if (s.council, s.person_id) == (council, person_id)
        ]

    async def get_statement(self, statement_id: UUID) -> BudgetStatement | None:
        return next((s for s in self.statements if s.statement_id == statement_id), None)

    async def add_challenge(self, challenge: StatementChallenge) -> None:
        self.challenges.append(challenge)
        self._uow.track(challenge)

    async def get_challenge(self, challenge_id: UUID) -> StatementChallenge | None:
        return next((c for c in self.challenges if c.challenge_id == challenge_id), None)

    async def save_answer(self, challenge: StatementChallenge) -> None:
        self._uow.track(challenge)

    async def challenges_of(self, council: str, person_id: str) -> list[StatementChallenge]:
        return [c for c in self.challenges if (c.council, c.person_id) == (council, person_id)]

    async def challenges_page(
        self, *, council: str, open_only: bool, after_seq: int | None, limit: int
    ) -> list[tuple[int, StatementChallenge]]:
        numbered = [
            (seq, c)
            for seq, c in enumerate(self.challenges, start=1)
            if c.council == council and (c.open or not open_only)
        ]
        return [(n, c) for n, c in numbered if after_seq is None or n > after_seq][:limit]


class FakePaymentsUnitOfWork(InMemoryUnitOfWork, PaymentsUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.deployments = FakeDeploymentRepository(
            self, key=lambda d: d.deployment_id, what="deployment"
        )
        self.ledger = FakeLedgerRepository(self)
        self.statements = FakeStatementRepository(self)
