"""What every service's unit of work and repositories promise, whichever database is behind.

One abstract contract per service on a shared one (the inbox): for allocation, planning,
payments and assessment their aggregate (add, load, nothing kept without a commit, a change
and its event written together at commit, a stale save refused, council-scoped lookups), for
audit its append-only chains. Each runs on SQLite, on PostgreSQL (skipped on a developer's
machine without one, required in CI like the other PostgreSQL suites) and on the service's
fake over dicts that the handler tests use, so the fakes are held to the same promises.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from contracts.envelope import decode
from contracts.events import PlanSignedOff
from contracts.policy import PolicyBook
from contracts.vocabulary import ClientGroup, Role
from servicekit import clock
from servicekit.caller import Caller
from servicekit.db import Database
from servicekit.errors import StaleVersion
from servicekit.policies import policy_for
from servicekit.testing import POLICIES_DIR, InMemoryUnitOfWork
from servicekit.uow import UnitOfWork
from services.allocation import db as allocation_db
from services.allocation.domain import Budget, SignedOffPlan, calculate_budget
from services.allocation.handlers import inputs_from_assessment
from services.allocation.tests import test_api as allocation_tests
from services.allocation.tests.fakes import FakeAllocationUnitOfWork
from services.assessment import db as assessment_db
from services.assessment.domain import Assessment, start
from services.assessment.tests import test_domain as assessment_tests
from services.assessment.tests.fakes import FakeAssessmentUnitOfWork
from services.audit import db as audit_db
from services.audit.domain import facts_from
from services.audit.tests.fakes import FakeAuditUnitOfWork
from services.audit.tests.journey import Journey, at
from services.payments import db as payments_db
from services.payments.domain import Deployment
from services.payments.schedules import PartRequest, PaymentFrequency
from services.payments.tests import test_api as payments_tests
from services.payments.tests.fakes import FakePaymentsUnitOfWork
from services.planning import db as planning_db
from services.planning.domain import KnownBudget, Plan
from services.planning.schemas import PlanIn, plan_content
from services.planning.tests import test_api as planning_tests
from services.planning.tests.fakes import FakePlanningUnitOfWork
from tests.systems import migrated_database_of_its_own

ROOT = Path(__file__).resolve().parent.parent
POLICIES = PolicyBook.from_directory(POLICIES_DIR)
NOW = datetime(2010, 4, 2, 9, tzinfo=UTC)


@dataclass(frozen=True)
class ServiceDatabase:
    name: str
    metadata: sa.MetaData
    unit_of_work: type[UnitOfWork]

    @property
    def migrations(self) -> Path:
        return ROOT / "services" / self.name / "migrations"

    def open(self, database: Database) -> Any:
        tables = self.metadata.tables
        return self.unit_of_work(database.sessions, outbox=tables["outbox"], inbox=tables["inbox"])


ALLOCATION = ServiceDatabase(
    "allocation", allocation_db.metadata, allocation_db.AllocationUnitOfWork
)
PLANNING = ServiceDatabase("planning", planning_db.metadata, planning_db.PlanningUnitOfWork)
PAYMENTS = ServiceDatabase("payments", payments_db.metadata, payments_db.PaymentsUnitOfWork)
AUDIT = ServiceDatabase("audit", audit_db.metadata, audit_db.AuditUnitOfWork)
ASSESSMENT = ServiceDatabase(
    "assessment", assessment_db.metadata, assessment_db.AssessmentUnitOfWork
)


# --- backends: where a unit of work keeps what it commits -------------------------------------


class Units:
    """Units of work of one service over one store, and what they committed to the outbox."""

    def new(self) -> Any:
        raise NotImplementedError

    async def committed_event_types(self) -> list[str]:
        raise NotImplementedError

    async def saved_meanwhile(self, contract: RepositoryContract, key: Hashable) -> None:
        """Another transaction changes the aggregate and commits (while one is open)."""
        other = self.new()
        async with other:
            aggregate = await contract.get(other, key)
            contract.change(aggregate)
            await contract.save(other, aggregate)
            await other.commit()


class InDatabase(Units):
    def __init__(self, service: ServiceDatabase, database: Database) -> None:
        self._service = service
        self._database = database

    def new(self) -> Any:
        return self._service.open(self._database)

    async def committed_event_types(self) -> list[str]:
        outbox = self._service.metadata.tables["outbox"]
        async with self._database.sessions() as session:
            rows = (await session.execute(sa.select(outbox.c.value).order_by(outbox.c.seq))).all()
        return [type(decode(row.value).event).__name__ for row in rows]


class InMemory(Units):
    def __init__(self, fake: InMemoryUnitOfWork) -> None:
        self._fake = fake

    def new(self) -> Any:
        return self._fake  # one store; its transactions run one after another

    async def committed_event_types(self) -> list[str]:
        return self._fake.event_types

    async def saved_meanwhile(self, contract: RepositoryContract, key: Hashable) -> None:
        # The fake runs one transaction at a time: another writer's commit is its row's
        # version moving on under the open transaction.
        contract.repository(self._fake).rows[key].version += 1


class OnSQLite:
    service: ClassVar[ServiceDatabase]

    @pytest.fixture
    async def units(self, tmp_path: Path) -> AsyncIterator[Units]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path}/{self.service.name}.db")
        try:
            await database.migrate(self.service.migrations)
            yield InDatabase(self.service, database)
        finally:
            await database.dispose()


class OnPostgreSQL:
    service: ClassVar[ServiceDatabase]

    @pytest.fixture
    async def units(self, postgres_admin_url: str) -> AsyncIterator[Units]:
        async with migrated_database_of_its_own(
            postgres_admin_url, f"{self.service.name}_contract", self.service.migrations
        ) as database:
            yield InDatabase(self.service, database)


# --- the contracts ------------------------------------------------------------------------


class UnitOfWorkContract:
    """The unit of work's own promises: servicekit.uow, for every service."""

    @pytest.fixture(autouse=True)
    def service_clock(self) -> Any:
        with clock.using(clock.SettableClock(NOW)) as at:
            yield at

    async def test_an_event_marked_applied_is_known_only_once_committed(self, units: Units) -> None:
        uow = units.new()
        async with uow:
            await uow.mark_applied("consumer", "event-1")  # never committed
        async with uow:
            assert not await uow.already_applied("consumer", "event-1")
            await uow.mark_all_applied("consumer", ["event-1", "event-2"])
            await uow.commit()
        async with uow:
            assert await uow.already_applied("consumer", "event-1")
            assert not await uow.already_applied("another-consumer", "event-1")
            assert not await uow.already_applied("consumer", "event-3")

    async def test_a_claimed_event_is_new_once_per_consumer_and_only_once_committed(
        self, units: Units
    ) -> None:
        uow = units.new()
        async with uow:
            assert await uow.claim_unapplied("consumer", ["event-1"]) == {"event-1"}
        async with uow:  # the claim was rolled back with its transaction
            claimed = await uow.claim_unapplied("consumer", ["event-1", "event-2", "event-1"])
            assert claimed == {"event-1", "event-2"}
            assert await uow.claim_unapplied("consumer", ["event-2", "event-3"]) == {"event-3"}
            await uow.commit()
        async with uow:
            assert await uow.claim_unapplied("consumer", ["event-1", "event-3"]) == set()
            assert await uow.claim_unapplied("another-consumer", ["event-1"]) == {"event-1"}
            assert await uow.already_applied("consumer", "event-2")

    async def test_a_batchs_events_are_written_in_the_order_its_use_cases_committed_them(
        self, units: Units
    ) -> None:
        """Each use case in a batch commits its events; the batch writes them all when it
        commits, in that order, or none of them if anything in it fails."""
        events = [envelope.event for envelope in Journey("P-BATCH").full()[:4]]
        uow = units.new()
        async with uow.batch():
            for event in events[:3]:
                async with uow:
                    uow.emit(event)
                    await uow.commit()
        written = [type(event).__name__ for event in events[:3]]
        assert await units.committed_event_types() == written
        with pytest.raises(RuntimeError, match="a later use case failed"):
            async with uow.batch():
                async with uow:
                    uow.emit(events[3])
                    await uow.commit()
                raise RuntimeError("a later use case failed")
        assert await units.committed_event_types() == written


class RepositoryContract(UnitOfWorkContract):
    """A service's aggregate through its repository. Subclasses say how to make, change,
    store and find one; every council's records live side by side."""

    def repository(self, uow: Any) -> Any:
        raise NotImplementedError

    def new_aggregate(self, council: str, person_id: str) -> Any:
        raise NotImplementedError

    def key(self, aggregate: Any) -> Hashable:
        raise NotImplementedError

    def change(self, aggregate: Any) -> str:
        """A state change that records an event; returns the event's type name."""
        raise NotImplementedError

    def summary(self, aggregate: Any) -> tuple[Any, ...]:
        """What a round trip through the store must keep."""
        raise NotImplementedError

    async def add(self, uow: Any, aggregate: Any) -> None:
        await self.repository(uow).add(aggregate)

    async def get(self, uow: Any, key: Hashable) -> Any:
        return await self.repository(uow).get(key)

    async def save(self, uow: Any, aggregate: Any) -> None:
        await self.repository(uow).save(aggregate)

    async def found_for_person(self, uow: Any, council: str, person_id: str) -> list[Hashable]:
        raise NotImplementedError

    async def stored(self, units: Units, council: str = "lancashire", person: str = "P-1") -> Any:
        aggregate = self.new_aggregate(council, person)
        uow = units.new()
        async with uow:
            await self.add(uow, aggregate)
            await uow.commit()
        return aggregate

    async def test_an_aggregate_added_and_committed_is_loaded_back_as_it_was(
        self, units: Units
    ) -> None:
        aggregate = await self.stored(units)
        uow = units.new()
        async with uow:
            loaded = await self.get(uow, self.key(aggregate))
        assert loaded is not None and self.summary(loaded) == self.summary(aggregate)

    async def test_nothing_is_kept_from_a_transaction_that_does_not_commit(
        self, units: Units
    ) -> None:
        aggregate = self.new_aggregate("lancashire", "P-1")
        uow = units.new()
        async with uow:
            await self.add(uow, aggregate)
        async with uow:
            assert await self.get(uow, self.key(aggregate)) is None
        assert await units.committed_event_types() == []

    async def test_a_change_and_the_event_it_records_are_written_together_at_commit(
        self, units: Units
    ) -> None:
        aggregate = await self.stored(units)
        before = await units.committed_event_types()
        uow = units.new()
        async with uow:
            loaded = await self.get(uow, self.key(aggregate))
            recorded = self.change(loaded)
            await self.save(uow, loaded)
            assert await units.committed_event_types() == before
            await uow.commit()
        assert await units.committed_event_types() == [*before, recorded]
        async with uow:
            reloaded = await self.get(uow, self.key(aggregate))
        assert self.summary(reloaded) == self.summary(loaded) != self.summary(aggregate)

    async def test_saving_a_copy_someone_else_saved_meanwhile_raises_stale_version(
        self, units: Units
    ) -> None:
        aggregate = await self.stored(units)
        uow = units.new()
        async with uow:
            mine = await self.get(uow, self.key(aggregate))
            await units.saved_meanwhile(self, self.key(aggregate))
            self.change(mine)
            with pytest.raises(StaleVersion):
                await self.save(uow, mine)

    async def test_the_same_person_id_in_two_councils_finds_only_the_councils_own(
        self, units: Units
    ) -> None:
        in_lancashire = await self.stored(units, "lancashire", "P-7")
        in_council_a = await self.stored(units, "council_a", "P-7")
        uow = units.new()
        async with uow:
            assert await self.found_for_person(uow, "lancashire", "P-7") == [
                self.key(in_lancashire)
            ]
            assert await self.found_for_person(uow, "council_a", "P-7") == [self.key(in_council_a)]
            assert await self.found_for_person(uow, "council_b", "P-7") == []


class AllocationContract(RepositoryContract):
    service = ALLOCATION

    def repository(self, uow: Any) -> Any:
        return uow.budgets

    def new_aggregate(self, council: str, person_id: str) -> Budget:
        assessed = allocation_tests.validated(
            person_id, council, domain_levels=allocation_tests.LOWEST
        )
        inputs = inputs_from_assessment(assessed)
        return Budget.open(
            budget_id=uuid.uuid4(),
            council=council,
            person_id=person_id,
            assessment_id=assessed.assessment_id,
            inputs=inputs,
            calculation=calculate_budget(inputs, policy_for(POLICIES, council)),
            by="care_manager:cm-1",
            at=clock.now(),
        )

    def key(self, aggregate: Budget) -> Hashable:
        return aggregate.budget_id

    def change(self, aggregate: Budget) -> str:
        panel = Caller(record="panel:panel-1", role=Role.PANEL, council=aggregate.council)
        policy = policy_for(POLICIES, aggregate.council, version=aggregate.current.policy_version)
        aggregate.agree(by=panel, policy=policy, at=clock.now())
        return "BudgetIssued"

    def summary(self, aggregate: Budget) -> tuple[Any, ...]:
        current = aggregate.current
        return (
            aggregate.budget_id,
            aggregate.council,
            aggregate.person_id,
            aggregate.version,
            aggregate.status,
            current.weekly_pence,
            current.explanation,
            current.agreed_by,
            len(aggregate.revisions),
        )

    async def found_for_person(self, uow: Any, council: str, person_id: str) -> list[Hashable]:
        budget = await uow.budgets.for_person(council, person_id)
        return [] if budget is None else [budget.budget_id]

    async def test_a_budget_saved_after_each_change_reads_back_every_revision_as_it_was_left(
        self, units: Units
    ) -> None:
        """Agreed, saved, saved again unchanged, revised and saved, then agreed and made
        final by a signed-off plan and saved, all in one unit of work: each save writes what
        changed since the one before (the revision that was current, the ones added), and
        the stored budget is the one in hand, revision for revision, explanations too."""
        aggregate = await self.stored(units)
        uow = units.new()
        async with uow:
            budget = await self.get(uow, self.key(aggregate))
            self.change(budget)  # the panel agrees the only revision
            await self.save(uow, budget)
            await self.save(uow, budget)
            current = budget.current
            budget.revise(
                inputs=current.inputs,
                calculation=current.calculation,
                reason="a second look",
                by=Caller(record="care_manager:cm-1", role=Role.CARE_MANAGER, council="lancashire"),
                at=clock.now(),
            )
            await self.save(uow, budget)
            budget.agree(
                by=Caller(record="panel:panel-1", role=Role.PANEL, council="lancashire"),
                policy=policy_for(POLICIES, "lancashire", version=current.policy_version),
                at=clock.now(),
            )
            budget.finalise(  # its explanation: the calculation's lines and the plan's
                plan=SignedOffPlan(
                    plan_id=uuid.uuid4(),
                    plan_version=1,
                    person_id=budget.person_id,
                    council=budget.council,
                    weekly_pence=budget.current.weekly_pence,
                    annual_pence=budget.current.annual_pence,
                    one_off_pence=0,
                    signed_off_by="team_manager:tm-1",
                    signed_off_by_role=Role.TEAM_MANAGER,
                ),
                at=clock.now(),
            )
            await self.save(uow, budget)
            await uow.commit()
        async with uow:
            reloaded = await self.get(uow, self.key(aggregate))
        assert reloaded.version == budget.version
        assert [_revision_fields(r) for r in reloaded.revisions] == [
            _revision_fields(r) for r in budget.revisions
        ]
        assert [r.state for r in reloaded.revisions] != [r.state for r in aggregate.revisions]
        assert len(reloaded.revisions) == 3
        final = reloaded.revisions[-1]
        assert final.explanation[:-1] == final.calculation.explanation != final.explanation


def _revision_fields(revision: Any) -> tuple[Any, ...]:
    return (
        revision.number,
        revision.state,
        revision.stage,
        revision.reason,
        revision.weekly_pence,
        revision.explanation,
        revision.agreed_by,
        revision.agreed_by_role,
        revision.agreed_at,
        revision.ceiling_exception,
        revision.panel_sitting,
    )


class PlanningContract(RepositoryContract):
    service = PLANNING

    def repository(self, uow: Any) -> Any:
        return uow.plans

    def new_aggregate(self, council: str, person_id: str) -> Plan:
        issued = planning_tests.issued(planning_tests.validated(person_id, council), 25_000)
        budget = KnownBudget(
            budget_id=issued.budget_id,
            assessment_id=issued.assessment_id,
            person_id=person_id,
            council=council,
            stage=issued.stage.value,
            revision=issued.revision,
            weekly_pence=issued.weekly_pence,
            annual_pence=issued.annual_pence,
            policy_version=issued.policy_version,
        )
        content = plan_content(PlanIn.model_validate(planning_tests.plan_body(issued)))
        return Plan.draft(
            person_id=person_id,
            council=council,
            budget=budget,
            content=content,
            fee_basis_points=1_000,
            by="care_manager:cm-1",
            at=clock.now(),
        )

    def key(self, aggregate: Plan) -> Hashable:
        return aggregate.plan_id

    def change(self, aggregate: Plan) -> str:
        aggregate.submit(checks=[], by="care_manager:cm-1", at=clock.now())
        return "PlanSubmitted"

    def summary(self, aggregate: Plan) -> tuple[Any, ...]:
        return (
            aggregate.plan_id,
            aggregate.council,
            aggregate.person_id,
            aggregate.version,
            aggregate.status,
            aggregate.content,
            aggregate.costing.weekly_pence,
            len(aggregate.history),
        )

    async def found_for_person(self, uow: Any, council: str, person_id: str) -> list[Hashable]:
        plans = await uow.plans.list(
            council=council, person_id=person_id, status=None, after=None, limit=10
        )
        return [plan.plan_id for plan in plans]


class PaymentsContract(RepositoryContract):
    service = PAYMENTS

    def repository(self, uow: Any) -> Any:
        return uow.deployments

    async def add(self, uow: Any, aggregate: Any) -> None:
        await uow.deployments.save(aggregate)  # a deployment not loaded before is inserted

    def new_aggregate(self, council: str, person_id: str) -> Deployment:
        plan: PlanSignedOff = payments_tests.signed_plan(council, person_id=person_id)
        policy = policy_for(POLICIES, council, version=plan.policy_version)
        return Deployment.for_signed_plan(plan, policy=policy, recorded_by="payments")

    def key(self, aggregate: Deployment) -> Hashable:
        return aggregate.deployment_id

    def change(self, aggregate: Deployment) -> str:
        aggregate.arrange(
            parts=[PartRequest(payments_tests.ev.DeploymentOption.DIRECT_PAYMENT)],
            frequency=PaymentFrequency.WEEKLY,
            first_due_on=clock.today(),
            assessed_max_weekly_contribution_pence=0,
            policy=policy_for(POLICIES, aggregate.council, version=aggregate.policy_version),
            actor="care_manager:cm-1",
            today=clock.today(),
        )
        return "DeploymentSetUp"

    def summary(self, aggregate: Deployment) -> tuple[Any, ...]:
        return (
            aggregate.deployment_id,
            aggregate.council,
            aggregate.person_id,
            aggregate.version,
            aggregate.status,
            aggregate.gross_annual_pence,
            aggregate.parts,
            aggregate.frequency,
            aggregate.first_due_on,
        )

    async def found_for_person(self, uow: Any, council: str, person_id: str) -> list[Hashable]:
        return [d.deployment_id for d in await uow.deployments.live_for_person(council, person_id)]


class AssessmentContract(RepositoryContract):
    service = ASSESSMENT

    def repository(self, uow: Any) -> Any:
        return uow.assessments

    def _person(self, council: str, person_id: str) -> Caller:
        return Caller(
            record=f"person:{person_id}", role=Role.PERSON, council=council, person_id=person_id
        )

    def new_aggregate(self, council: str, person_id: str) -> Assessment:
        return start(
            assessment_id=uuid.uuid4(),
            command=assessment_tests.command(
                person_id=person_id, client_group=ClientGroup.OLDER_PEOPLE
            ),
            caller=self._person(council, person_id),
            policy=policy_for(POLICIES, council),
            now=clock.now(),
        )

    def key(self, aggregate: Assessment) -> Hashable:
        return aggregate.assessment_id

    def change(self, aggregate: Assessment) -> str:
        person = self._person(aggregate.council, aggregate.person_id)
        questionnaire = assessment_tests.QUESTIONNAIRE  # Lancashire's, the contract's council
        aggregate.answer(
            assessment_tests.answers(), questionnaire=questionnaire, caller=person, now=clock.now()
        )
        aggregate.submit(questionnaire=questionnaire, caller=person, now=clock.now())
        return "AssessmentSubmitted"

    def summary(self, aggregate: Assessment) -> tuple[Any, ...]:
        return (
            aggregate.assessment_id,
            aggregate.council,
            aggregate.person_id,
            aggregate.version,
            aggregate.status,
            aggregate.answers,
            aggregate.history,
        )

    async def found_for_person(self, uow: Any, council: str, person_id: str) -> list[Hashable]:
        found = await uow.assessments.list(
            council=council, person_id=person_id, status=None, limit=10, after=None
        )
        return [a.assessment_id for a in found]


class AuditContract(UnitOfWorkContract):
    """Audit's store is append-only: chains of events by (council, person), not aggregates."""

    service = AUDIT

    async def appended(self, units: Units, council: str, person_id: str, *days: str) -> list[Any]:
        person = Journey(person_id, council)
        uow = units.new()
        stored = []
        async with uow:
            for day in days:
                stored.append(await uow.store.append(facts_from(person.started(at(day)))))
            await uow.commit()
        return stored

    async def test_an_appended_chain_is_read_back_link_for_link(self, units: Units) -> None:
        stored = await self.appended(units, "lancashire", "P-1", "2025-01-06", "2025-01-13")
        uow = units.new()
        async with uow:
            chain, head = await uow.store.chain_and_head("lancashire", "P-1")
            assert await uow.store.contains(stored[0].event_id)
        assert chain == stored
        assert head is not None and (head.last_seq, head.last_hash) == (2, stored[-1].hash)

    async def test_a_chain_is_read_with_its_own_councils_head_and_nobody_elses(
        self, units: Units
    ) -> None:
        ours = await self.appended(units, "lancashire", "P-2", "2025-01-06", "2025-01-13")
        theirs = await self.appended(units, "council_a", "P-2", "2025-01-20")
        uow = units.new()
        async with uow:
            nobody = await uow.store.chain_and_head("lancashire", "P-nobody")
            chain, head = await uow.store.chain_and_head("council_a", "P-2")
        assert nobody == ([], None)
        assert chain == theirs != ours
        assert head is not None and (head.council, head.last_seq) == ("council_a", 1)

    async def test_nothing_is_appended_by_a_transaction_that_does_not_commit(
        self, units: Units
    ) -> None:
        facts = facts_from(Journey("P-1").started(at("2025-01-06")))
        uow = units.new()
        async with uow:
            await uow.store.append(facts)
        async with uow:
            assert not await uow.store.contains(facts.event_id)
            assert await uow.store.head("lancashire", "P-1") is None

    async def test_the_same_person_id_in_two_councils_has_two_chains(self, units: Units) -> None:
        await self.appended(units, "lancashire", "P-7", "2025-01-06", "2025-01-13")
        await self.appended(units, "council_a", "P-7", "2025-01-20")
        uow = units.new()
        async with uow:
            assert [e.seq for e in await uow.store.chain_of("council_a", "P-7")] == [1]
            assert await uow.store.people("council_a") == ["P-7"]
            assert not await uow.store.holds("council_b", "P-7")
            lancashire = await uow.store.chain_of("lancashire", "P-7")
        assert [e.seq for e in lancashire] == [1, 2]


# --- each contract on each backend -----------------------------------------------------------


class TestAllocationOnSQLite(AllocationContract, OnSQLite):
    pass


@pytest.mark.postgres
class TestAllocationOnPostgreSQL(AllocationContract, OnPostgreSQL):
    pass


class TestAllocationFake(AllocationContract):
    @pytest.fixture
    def units(self) -> Units:
        return InMemory(FakeAllocationUnitOfWork())


class TestPlanningOnSQLite(PlanningContract, OnSQLite):
    pass


@pytest.mark.postgres
class TestPlanningOnPostgreSQL(PlanningContract, OnPostgreSQL):
    pass


class TestPlanningFake(PlanningContract):
    @pytest.fixture
    def units(self) -> Units:
        return InMemory(FakePlanningUnitOfWork())


class TestPaymentsOnSQLite(PaymentsContract, OnSQLite):
    pass


@pytest.mark.postgres
class TestPaymentsOnPostgreSQL(PaymentsContract, OnPostgreSQL):
    pass


class TestPaymentsFake(PaymentsContract):
    @pytest.fixture
    def units(self) -> Units:
        return InMemory(FakePaymentsUnitOfWork())


class TestAssessmentOnSQLite(AssessmentContract, OnSQLite):
    pass


@pytest.mark.postgres
class TestAssessmentOnPostgreSQL(AssessmentContract, OnPostgreSQL):
    pass


class TestAssessmentFake(AssessmentContract):
    @pytest.fixture
    def units(self) -> Units:
        return InMemory(FakeAssessmentUnitOfWork())


class TestAuditOnSQLite(AuditContract, OnSQLite):
    pass


@pytest.mark.postgres
class TestAuditOnPostgreSQL(AuditContract, OnPostgreSQL):
    pass


class TestAuditFake(AuditContract):
    @pytest.fixture
    def units(self) -> Units:
        return InMemory(FakeAuditUnitOfWork())
