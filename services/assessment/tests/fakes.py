"""Assessment's unit of work over dicts: assessments and people's sealed details, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from rules.eligibility import DeterminationOnRecord
from servicekit.testing import InMemoryRepository, InMemoryStore, InMemoryUnitOfWork
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.domain import Assessment, Status
from services.assessment.personal import FinancialRecord, PersonKey, SealedRecord


class FakeAssessmentRepository(InMemoryRepository[Assessment]):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow, key=lambda a: a.assessment_id, what="assessment")
        self.determinations: dict[UUID, list[DeterminationOnRecord]] = {}

    async def get(self, assessment_id: UUID) -> Assessment | None:
        assessment = self.load(assessment_id)
        if assessment is not None:
            assessment.eligibility = await self.latest_determination(assessment_id)
        return assessment

    async def latest_determination(self, assessment_id: UUID) -> DeterminationOnRecord | None:
        found = self.determinations.get(assessment_id, [])
        return found[-1] if found else None

    async def add_determination(
        self, assessment_id: UUID, determination: DeterminationOnRecord, recorded_at: datetime
    ) -> None:
        self.determinations.setdefault(assessment_id, []).append(determination)

    async def add(self, assessment: Assessment) -> None:
        self.insert(assessment)

    async def save(self, assessment: Assessment) -> None:
        self.update(assessment)

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        status: Status | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Assessment]:
        def wanted(a: Assessment) -> bool:
            return (
                a.council == council
                and person_id in (None, a.person_id)
                and status in (None, a.status)
                and (after is None or (a.created_at, a.assessment_id) < after)
            )

        newest_first = sorted(
            self.find(wanted), key=lambda a: (a.created_at, a.assessment_id), reverse=True
        )
        return newest_first[:limit]


class FakePeopleRepository(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.keys: dict[tuple[str, str], PersonKey] = {}
        self.sealed: dict[tuple[str, str], list[SealedRecord]] = {}
        self.contact: dict[tuple[str, str], datetime] = {}

    async def key(self, council: str, person_id: str) -> PersonKey | None:
        return self.keys.get((council, person_id))

    async def add_key(self, key: PersonKey) -> None:
        self.keys[(key.council, key.person_id)] = key

    async def records(self, council: str, person_id: str) -> list[SealedRecord]:
        return list(self.sealed.get((council, person_id), []))

    async def add_record(self, record: SealedRecord) -> None:
        self.sealed.setdefault((record.council, record.person_id), []).append(record)

    async def erase(self, council: str, person_id: str, *, at: datetime, by: str) -> None:
        self.sealed.pop((council, person_id), None)
        key = self.keys[(council, person_id)]
        self.keys[(council, person_id)] = replace(key, wrapped_key=None, erased_at=at, erased_by=by)

    async def scrub_freed_space(self) -> None:
        """Nothing is left in free space by a dict."""

    async def touch(self, council: str, person_id: str, at: datetime) -> None:
        known = self.contact.get((council, person_id))
        if known is None or known < at:
            self.contact[(council, person_id)] = at

    async def last_contact(self, council: str, person_id: str) -> datetime | None:
        """The latest of: any event about the person, any assessment change, any details."""
        assessments = self._uow.assessments.rows.values()  # type: ignore[attr-defined]
        times = [
            *([self.contact[(council, person_id)]] if (council, person_id) in self.contact else []),
            *(
                a.updated_at
                for a in assessments
                if (a.council, a.person_id) == (council, person_id)
            ),
            *(r.recorded_at for r in self.sealed.get((council, person_id), [])),
        ]
        return max(times) if times else None


class FakeFinancialInputs(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.records: list[FinancialRecord] = []

    async def add(self, record: FinancialRecord) -> None:
        self.records.append(record)

    async def latest_per_person(self, council: str) -> list[FinancialRecord]:
        latest = {r.person_id: r for r in self.records if r.council == council}
        return [latest[person_id] for person_id in sorted(latest)]


class FakeAssessmentUnitOfWork(InMemoryUnitOfWork, AssessmentUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.assessments = FakeAssessmentRepository(self)
        self.people = FakePeopleRepository(self)
        self.finances = FakeFinancialInputs(self)
