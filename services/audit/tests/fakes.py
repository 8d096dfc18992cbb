"""Audit's unit of work over dicts: the hash-chained store and the projections a recorded
event updates, no database.

A replay is not faked: it reads the log and rewrites the store with driver calls of its
own (rebuild.py, `db.digest`), so it is tested on real databases (test_tamper.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.testing import InMemoryStore, InMemoryUnitOfWork
from services.audit.db import AuditUnitOfWork
from services.audit.domain import (
    ChainHead,
    EventFacts,
    PersonInputs,
    StoredEvent,
    TimelineEntry,
    event_of,
    link,
    timeline_entry,
)

Person = tuple[str, str]  # (council, person_id)


class FakeEventStore(InMemoryStore):
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.chains: dict[Person, list[StoredEvent]] = {}
        self.heads: dict[Person, ChainHead] = {}

    async def head(self, council: str, person_id: str) -> ChainHead | None:
        return self.heads.get((council, person_id))

    async def contains(self, event_id: str) -> bool:
        return any(e.event_id == event_id for chain in self.chains.values() for e in chain)

    async def append(self, facts: EventFacts) -> StoredEvent:
        person = (facts.council, facts.person_id)
        stored = link(facts, self.heads.get(person))
        self.chains.setdefault(person, []).append(stored)
        self.heads[person] = ChainHead(stored.person_id, stored.council, stored.seq, stored.hash)
        return stored

    async def chain_of(self, council: str, person_id: str) -> list[StoredEvent]:
        return sorted(self.chains.get((council, person_id), []), key=lambda e: e.seq)

    async def chain_and_head(
        self, council: str, person_id: str
    ) -> tuple[list[StoredEvent], ChainHead | None]:
        return await self.chain_of(council, person_id), self.heads.get((council, person_id))

    async def holds(self, council: str, person_id: str) -> bool:
        return (council, person_id) in self.heads or bool(self.chains.get((council, person_id)))

    async def people(self, council: str) -> list[str]:
        held = {p for (c, p) in self.heads if c == council}
        held |= {p for (c, p), chain in self.chains.items() if c == council and chain}
        return sorted(held)


class FakeProjections(InMemoryStore):
    """The KPI inputs; the timeline rendered from the fake store's events as it is read."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        super().__init__(uow)
        self.people: dict[Person, PersonInputs] = {}

    async def person(self, council: str, person_id: str) -> PersonInputs | None:
        return self.people.get((council, person_id))

    async def save_person(self, inputs: PersonInputs, *, existed: bool) -> None:
        self.people[(inputs.council, inputs.person_id)] = inputs

    async def people_by_id(
        self, council: str, person_ids: Sequence[str]
    ) -> dict[str, PersonInputs]:
        return {p: self.people[(council, p)] for p in person_ids if (council, p) in self.people}

    async def people_of(self, council: str) -> list[PersonInputs]:
        return sorted(
            (i for (c, _), i in self.people.items() if c == council), key=lambda i: i.person_id
        )

    async def timeline(
        self, council: str, person_id: str, *, after_seq: int, limit: int
    ) -> list[TimelineEntry]:
        uow = self._uow
        assert isinstance(uow, FakeAuditUnitOfWork)  # the store is read through the uow,
        chain = await uow.store.chain_of(council, person_id)  # never copied with this one
        return [timeline_entry(e, event_of(e)) for e in chain if e.seq > after_seq][:limit]


class FakeAuditUnitOfWork(InMemoryUnitOfWork, AuditUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.store = FakeEventStore(self)
        self.projections = FakeProjections(self)

    async def applied_of(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        return {e for e in event_ids if await self.already_applied(consumer, e)}
