"""Payments' unit of work over dicts: deployments and the payment feed, no database.

Exports and finance's confirmation outcomes are not faked: their use cases are tested
through the API (test_reconciliation.py), where their SQL is the point.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from contracts.events import DeploymentOption, PaymentReleased
from servicekit.testing import InMemoryRepository, InMemoryStore, InMemoryUnitOfWork
from services.payments.db import PaymentsUnitOfWork
from services.payments.domain import Deployment
from services.payments.lifecycle import Status
from services.payments.schedules import InstalmentStatus


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


class FakePaymentsUnitOfWork(InMemoryUnitOfWork, PaymentsUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.deployments = FakeDeploymentRepository(
            self, key=lambda d: d.deployment_id, what="deployment"
        )
        self.ledger = FakeLedgerRepository(self)
