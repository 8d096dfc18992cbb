"""Planning's unit of work over dicts: its five repositories' interfaces, no database."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from contracts.events import ReviewKind
from servicekit.testing import InMemoryRepository, InMemoryStore, InMemoryUnitOfWork
from services.planning.db import PlanningUnitOfWork
from services.planning.domain import (
    KnownAssessment,
    KnownBudget,
    KnownDeployment,
    Plan,
    PlanStatus,
    Review,
    ReviewStatus,
)


class FakeAssessmentRepository(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.rows: dict[UUID, KnownAssessment] = {}

    async def get(self, assessment_id: UUID) -> KnownAssessment | None:
        return self.rows.get(assessment_id)

    async def put(self, assessment: KnownAssessment, *, at: datetime) -> None:
        self.rows[assessment.assessment_id] = assessment


class FakeBudgetRepository(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.rows: dict[UUID, KnownBudget] = {}

    async def get(self, budget_id: UUID) -> KnownBudget | None:
        return self.rows.get(budget_id)

    async def put_if_newer(self, budget: KnownBudget, *, at: datetime) -> bool:
        current = self.rows.get(budget.budget_id)
        if current is not None and current.revision >= budget.revision:
            return False
        self.rows[budget.budget_id] = budget
        return True


class FakeDeploymentRepository(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.rows: dict[UUID, KnownDeployment] = {}

    async def get(self, deployment_id: UUID) -> KnownDeployment | None:
        return self.rows.get(deployment_id)

    async def put(self, deployment: KnownDeployment, *, at: datetime) -> None:
        self.rows[deployment.deployment_id] = deployment


class FakePlanRepository(InMemoryRepository[Plan]):
    async def get(self, plan_id: UUID) -> Plan | None:
        return self.load(plan_id)

    async def add(self, plan: Plan) -> None:
        self.insert(plan)

    async def save(self, plan: Plan) -> None:
        self.update(plan)

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        status: PlanStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Plan]:
        def wanted(p: Plan) -> bool:
            return (
                p.council == council
                and person_id in (None, p.person_id)
                and status in (None, p.status)
                and (after is None or (p.created_at, p.plan_id) > after)
            )

        return sorted(self.find(wanted), key=lambda p: (p.created_at, p.plan_id))[:limit]


class FakeReviewRepository(InMemoryRepository[Review]):
    async def get(self, review_id: UUID) -> Review | None:
        return self.load(review_id)

    async def add(self, review: Review) -> None:
        self.insert(review)

    async def save(self, review: Review) -> None:
        self.update(review)

    async def scheduled_due(self, *, council: str, as_of: date, limit: int) -> list[Review]:
        def wanted(r: Review) -> bool:
            return r.council == council and r.status is ReviewStatus.SCHEDULED and r.due_on <= as_of

        return sorted(self.find(wanted), key=lambda r: (r.due_on, r.review_id))[:limit]

    async def open_of_kind(self, *, council: str, person_id: str, kind: ReviewKind) -> list[Review]:
        def wanted(r: Review) -> bool:
            return (r.council, r.person_id, r.kind) == (
                council,
                person_id,
                kind,
            ) and r.status is not ReviewStatus.COMPLETED

        return self.find(wanted)

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
        def wanted(r: Review) -> bool:
            return (
                r.council == council
                and person_id in (None, r.person_id)
                and (due_on_or_before is None or r.due_on <= due_on_or_before)
                and status in (None, r.status)
                and (after is None or (r.due_on, r.review_id) > after)
            )

        return sorted(self.find(wanted), key=lambda r: (r.due_on, r.review_id))[:limit]


class FakePlanningUnitOfWork(InMemoryUnitOfWork, PlanningUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.assessments = FakeAssessmentRepository(self)
        self.budgets = FakeBudgetRepository(self)
        self.deployments = FakeDeploymentRepository(self)
        self.plans = FakePlanRepository(self, key=lambda p: p.plan_id, what="plan")
        self.reviews = FakeReviewRepository(self, key=lambda r: r.review_id, what="review")
