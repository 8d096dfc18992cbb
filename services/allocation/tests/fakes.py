"""Allocation's unit of work over dicts: the budget repository's interface, no database."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from uuid import UUID

from servicekit.testing import InMemoryRepository, InMemoryUnitOfWork
from services.allocation.db import AllocationUnitOfWork
from services.allocation.domain import Budget


class FakeBudgetRepository(InMemoryRepository[Budget]):
    async def get(self, budget_id: UUID) -> Budget | None:
        return self.load(budget_id)

    async def for_person(self, council: str, person_id: str) -> Budget | None:
        return (await self.for_people(council, [person_id])).get(person_id)

    async def for_people(self, council: str, person_ids: Collection[str]) -> dict[str, Budget]:
        found = self.find(lambda b: b.council == council and b.person_id in person_ids)
        newest: dict[str, Budget] = {}
        for budget in sorted(found, key=lambda b: (b.created_at, str(b.budget_id))):
            newest[budget.person_id] = budget
        return newest

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
        def wanted(b: Budget) -> bool:
            return (
                b.council == council
                and person_id in (None, b.person_id)
                and status in (None, b.status.value)
                and (not issued_only or bool(b.issued_revisions))
                and (after is None or (b.created_at, str(b.budget_id)) > after)
            )

        found = sorted(self.find(wanted), key=lambda b: (b.created_at, str(b.budget_id)))
        return found[:limit]

    async def count(self, *, council: str) -> int:
        return sum(1 for b in self.rows.values() if b.council == council)

    async def add(self, budget: Budget) -> None:
        self.insert(budget)

    async def add_all(self, new: Sequence[Budget]) -> None:
        for budget in new:
            self.insert(budget)

    async def save(self, budget: Budget) -> None:
        self.update(budget)


class FakeAllocationUnitOfWork(InMemoryUnitOfWork, AllocationUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.budgets = FakeBudgetRepository(self, key=lambda b: b.budget_id, what="budget")
