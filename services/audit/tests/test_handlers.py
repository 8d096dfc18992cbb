"""Audit's use cases on a unit of work over dicts: every event linked into its person's
chain, tampering found and named, councils kept apart, a budget as it stood; no database.

A replay's tamper findings need the log and a real store: test_tamper.py has those.
"""

from __future__ import annotations

from datetime import date

import pytest
from msgspec.structs import replace

from contracts.envelope import Envelope
from services.audit.domain import PersonNotFound
from services.audit.handlers import (
    budget_as_of,
    ensure_person_held,
    record_event,
    timeline_page,
    verify_council,
    verify_person,
)
from services.audit.tests.fakes import FakeAuditUnitOfWork
from services.audit.tests.journey import Journey, at


@pytest.fixture
def uow() -> FakeAuditUnitOfWork:
    return FakeAuditUnitOfWork()


async def recorded(uow: FakeAuditUnitOfWork, envelopes: list[Envelope]) -> None:
    """Each event applied as the consumer applies it: one transaction each."""
    for envelope in envelopes:
        async with uow:
            await record_event(envelope=envelope, uow=uow)
            await uow.commit()


def first_steps(person: Journey) -> list[Envelope]:
    return [
        person.started(at("2025-01-06")),
        person.validated(at("2025-01-13")),
        person.budget(at("2025-01-20")),
    ]


async def test_each_event_is_linked_after_the_persons_last_and_the_chain_verifies(
    uow: FakeAuditUnitOfWork,
) -> None:
    person = Journey("P-1")
    await recorded(uow, first_steps(person))
    chain = uow.store.chains[("lancashire", "P-1")]
    assert [e.seq for e in chain] == [1, 2, 3]
    assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
    report = await verify_person(uow=uow, council="lancashire", person_id="P-1")
    assert (report.ok, report.events, report.head_hash) == (True, 3, chain[-1].hash)


async def test_an_event_edited_in_the_store_is_named_as_the_first_bad_one(
    uow: FakeAuditUnitOfWork,
) -> None:
    person = Journey("P-1")
    await recorded(uow, first_steps(person))
    chain = uow.store.chains[("lancashire", "P-1")]
    edited = chain[1].canonical.replace("learning_disability", "older_people")
    assert edited != chain[1].canonical
    chain[1] = replace(chain[1], canonical=edited)
    report = await verify_person(uow=uow, council="lancashire", person_id="P-1")
    assert (report.ok, report.first_bad_seq, report.first_bad_event_id) == (
        False,
        2,
        chain[1].event_id,
    )
    assert "edited" in (report.reason or "")


async def test_an_event_deleted_from_the_store_is_found_missing(
    uow: FakeAuditUnitOfWork,
) -> None:
    await recorded(uow, first_steps(Journey("P-1")))
    del uow.store.chains[("lancashire", "P-1")][1]
    report = await verify_person(uow=uow, council="lancashire", person_id="P-1")
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "missing" in (report.reason or "")


async def test_the_same_person_id_in_two_councils_keeps_two_chains_apart(
    uow: FakeAuditUnitOfWork,
) -> None:
    await recorded(uow, first_steps(Journey("P-1", "lancashire")))
    await recorded(uow, [Journey("P-1", "council_a").started(at("2025-02-03"))])
    reports = await verify_council(uow=uow, council="council_a")
    assert [(r.person_id, r.ok, r.events) for r in reports] == [("P-1", True, 1)]
    await ensure_person_held(uow=uow, council="council_a", person_id="P-1")
    with pytest.raises(PersonNotFound):
        await ensure_person_held(uow=uow, council="council_b", person_id="P-1")


async def test_the_budget_as_of_a_day_is_the_one_issued_by_then(
    uow: FakeAuditUnitOfWork,
) -> None:
    person = Journey("P-1")
    await recorded(
        uow,
        [
            *first_steps(person),  # £250 a week on 20 January
            person.budget(at("2025-02-10"), revision=2, weekly_pence=27_500),
        ],
    )
    before = await budget_as_of(
        uow=uow, council="lancashire", person_id="P-1", as_of=date(2025, 2, 1)
    )
    after = await budget_as_of(
        uow=uow, council="lancashire", person_id="P-1", as_of=date(2025, 2, 10)
    )
    assert [b.weekly_pence for b in before.budgets] == [25_000]
    assert [b.weekly_pence for b in after.budgets] == [25_000, 27_500]


async def test_the_timeline_tells_each_step_and_nothing_of_another_council(
    uow: FakeAuditUnitOfWork,
) -> None:
    await recorded(uow, first_steps(Journey("P-1", "lancashire")))
    await recorded(uow, [Journey("P-1", "council_a").started(at("2025-02-03"))])
    entries, more = await timeline_page(
        uow=uow, council="lancashire", person_id="P-1", after_seq=0, limit=10
    )
    assert len(entries) == 3 and not more
    assert {e.council for e in entries} == {"lancashire"}
