"""The plumbing every service shares once: caller, versioned save, policy, cursor, events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from contracts.events import AssessmentReturned, Event
from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from servicekit import clock
from servicekit.caller import Caller, asks_for_another_person, may_see, person_listed
from servicekit.clock import SettableClock
from servicekit.db import Database, VersionedWithHistory, messaging_tables, save_versioned
from servicekit.errors import InvalidCursor, StaleVersion, UnknownCouncil, require_version
from servicekit.pagination import CursorCodec, encode_cursor, next_page
from servicekit.policies import policy_for
from servicekit.uow import UnitOfWork

POLICIES = Path(__file__).resolve().parents[1] / "policies"

metadata = sa.MetaData()
outbox, inbox, _ = messaging_tables(metadata)
records = sa.Table(
    "records",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("note", sa.String(50), nullable=False),
)

record_history = sa.Table(
    "record_history",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("note", sa.String(50), nullable=False),
)


@dataclass
class Record:
    """A stand-in aggregate kept as a versioned row with an append-only history."""

    record_id: str
    version: int
    notes: list[str]


def versioned_records(session) -> VersionedWithHistory[Record]:
    return VersionedWithHistory[Record](
        session,
        records,
        record_history,
        what="record",
        key=lambda record: record.record_id,
        values=lambda record: {"version": record.version, "note": record.notes[-1]},
        history_rows=lambda record: [
            {"record_id": record.record_id, "seq": seq, "note": note}
            for seq, note in enumerate(record.notes, start=1)
        ],
    )


@dataclass
class Case:
    """A stand-in aggregate: it records events as it acts."""

    person_id: str
    events: list[Event] = field(default_factory=list)

    def return_for(self, reason: str) -> None:
        self.events.append(
            AssessmentReturned(
                person_id=self.person_id,
                council="lancashire",
                assessment_id=uuid.uuid4(),
                reasons=[reason],
                returned_by="care_manager:cm-1",
            )
        )


@pytest.fixture
async def database(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/kit.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def unit_of_work(database: Database) -> UnitOfWork:
    return UnitOfWork(database.sessions, outbox=outbox, inbox=inbox)


async def outbox_reasons(database: Database) -> list[str]:
    async with database.sessions() as session:
        rows = (await session.execute(sa.select(outbox.c.value).order_by(outbox.c.seq))).all()
    return [row.value.decode() for row in rows]


def test_a_caller_from_a_token_records_role_and_user_and_keeps_council_and_person():
    caller = Caller.of(
        user_id="rep-1", role=Role.REPRESENTATIVE, council="lancashire", person_id="p-1"
    )
    assert caller.user_id == "rep-1"
    assert caller.record == "representative:rep-1"
    assert (caller.council, caller.person_id) == ("lancashire", "p-1")
    assert caller.is_citizen and not caller.is_practitioner


async def test_a_save_against_a_version_someone_moved_on_is_refused_and_writes_nothing(database):
    async with database.sessions() as session:
        await session.execute(records.insert().values(record_id="r-1", version=2, note="theirs"))
        await session.execute(records.insert().values(record_id="r-2", version=1, note="other"))
        with pytest.raises(StaleVersion, match="you had version 1"):
            await save_versioned(
                session,
                records,
                key=(records.c.record_id, "r-1"),
                expected_version=1,
                values={"version": 2, "note": "mine"},
                what="record r-1",
            )
        await save_versioned(
            session,
            records,
            key=(records.c.record_id, "r-1"),
            expected_version=2,
            values={"version": 3, "note": "mine"},
            what="record r-1",
        )
        await save_versioned(  # other columns set: only those change
            session,
            records,
            key=(records.c.record_id, "r-1"),
            expected_version=3,
            values={"version": 4},
            what="record r-1",
        )
        rows = (await session.execute(sa.select(records).order_by(records.c.record_id))).all()
    assert [(row.record_id, row.version, row.note) for row in rows] == [
        ("r-1", 4, "mine"),
        ("r-2", 1, "other"),
    ]


async def test_a_saved_aggregate_appends_only_the_history_it_gained_since_it_was_loaded(
    database,
):
    record = Record("r-1", version=1, notes=["drafted"])
    async with database.sessions() as session:
        await versioned_records(session).add(record)
        rows = versioned_records(session)  # another unit of work loading it afresh
        await rows.load("r-1")
        record.version, record.notes = 2, ["drafted", "submitted"]
        await rows.save(record)
        history = (await session.execute(sa.select(record_history.c.note))).scalars().all()
        row = (await session.execute(sa.select(records))).one()
    assert history == ["drafted", "submitted"]
    assert (row.version, row.note) == (2, "submitted")


async def test_a_saved_aggregate_someone_else_saved_meanwhile_is_refused(database):
    async with database.sessions() as session:
        await versioned_records(session).add(Record("r-1", version=2, notes=["a", "b"]))
        rows = versioned_records(session)
        await rows.load("r-1")
        await session.execute(records.update().values(version=3))  # someone else saved it
        with pytest.raises(StaleVersion, match="record r-1"):
            await rows.save(Record("r-1", version=2, notes=["a", "mine"]))


def test_a_person_lists_only_their_own_records_and_staff_whoever_they_name():
    person = Caller.of(user_id="u-1", role=Role.PERSON, council="lancashire", person_id="p-1")
    care_manager = Caller.of(user_id="cm-1", role=Role.CARE_MANAGER, council="lancashire")
    assert asks_for_another_person(person, "p-2")
    assert not asks_for_another_person(person, "p-1") and not asks_for_another_person(person, None)
    assert person_listed(person, None) == "p-1"
    assert not asks_for_another_person(care_manager, "p-2")
    assert (person_listed(care_manager, "p-2"), person_listed(care_manager, None)) == ("p-2", None)


def test_a_record_is_seen_by_its_councils_staff_and_its_own_person_only():
    person = Caller.of(
        user_id="u-1", role=Role.REPRESENTATIVE, council="lancashire", person_id="p-1"
    )
    care_manager = Caller.of(user_id="cm-1", role=Role.CARE_MANAGER, council="lancashire")
    assert may_see(person, "lancashire", "p-1") and not may_see(person, "lancashire", "p-2")
    assert may_see(care_manager, "lancashire", "p-2")
    assert not may_see(care_manager, "council-b", "p-2")
    assert not may_see(person, "council-b", "p-1")


def test_a_page_read_with_one_row_more_tells_whether_another_page_follows():
    page, cursor = next_page([1, 2, 3], 2, lambda last: f"after {last}")
    assert (list(page), cursor) == ([1, 2], "after 2")
    page, cursor = next_page([1, 2], 2, lambda last: f"after {last}")
    assert (list(page), cursor) == ([1, 2], None)
    assert next_page([], 2, lambda last: f"after {last}") == ([], None)


def test_a_change_against_an_old_version_is_a_409_stale_version():
    require_version("plan p", None, 4)
    with pytest.raises(StaleVersion) as refused:
        require_version("plan p", 3, 4)
    assert refused.value.status_code == 409
    assert "version 3" in str(refused.value) and "version 4" in str(refused.value)


def test_a_council_without_a_policy_is_refused_with_422_unknown_council():
    book = PolicyBook.from_directory(POLICIES)
    with pytest.raises(UnknownCouncil) as refused:
        policy_for(book, "atlantis")
    assert refused.value.status_code == 422


def test_the_recorded_policy_version_is_used_while_known_else_the_one_in_force():
    book = PolicyBook.from_directory(POLICIES)
    council = book.councils[0]
    first = book.versions(council)[0]
    assert policy_for(book, council, version=first.policy_version) == first
    with clock.using(SettableClock(datetime(2030, 1, 1, tzinfo=UTC))):
        assert policy_for(book, council, version=f"{council}/no-such") == book.current(
            council, date(2030, 1, 1)
        )
    other = next(c for c in book.councils if c != council)
    assert policy_for(book, other, version=first.policy_version).council == other


PLAN_CURSOR = CursorCodec[tuple[datetime, UUID]](("t", datetime), ("id", UUID))
SEQ_CURSOR = CursorCodec[tuple[int]](("seq", int))


def test_a_cursor_gives_back_the_position_it_was_made_from():
    position = (datetime(2026, 3, 1, 9, 30, tzinfo=UTC), uuid.uuid4())
    assert PLAN_CURSOR.decode(PLAN_CURSOR.encode(position)) == position
    assert PLAN_CURSOR.decode(None) is None
    assert CursorCodec[tuple[date, str]](("d", date), ("k", str)).decode(
        encode_cursor({"d": "2026-03-01", "k": "north"})
    ) == (date(2026, 3, 1), "north")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 json!",
        encode_cursor({"t": "2026-03-01T09:30:00+00:00"}),
        encode_cursor({"t": "yesterday", "id": "de438a0f-024f-4c3e-bbf2-6366ad1a4060"}),
        encode_cursor({"t": "2026-03-01T09:30:00+00:00", "id": "p-1"}),
        encode_cursor({"t": 5, "id": "4db332e8-dcdf-404b-a2c8-cb6d96462244"}),
        encode_cursor({"seq": 1}),
    ],
)
def test_a_cursor_this_service_did_not_give_out_is_invalid(cursor):
    with pytest.raises(InvalidCursor):
        PLAN_CURSOR.decode(cursor)


@pytest.mark.parametrize("seq", [-1, True, "3", 1.5])
def test_a_sequence_cursor_is_a_whole_number_not_below_zero(seq):
    with pytest.raises(InvalidCursor):
        SEQ_CURSOR.decode(encode_cursor({"seq": seq}))


async def test_the_unit_of_work_writes_the_events_its_aggregates_recorded_once(database):
    uow = unit_of_work(database)
    async with uow:
        case = uow.track(Case("p-1"))
        case.return_for("first")
        await uow.commit()
    assert case.events == []
    async with uow:
        uow.track(case)
        await uow.commit()
    [written] = await outbox_reasons(database)
    assert "first" in written


async def test_events_reach_the_outbox_in_the_order_they_happened(database):
    uow = unit_of_work(database)
    async with uow:
        case = uow.track(Case("p-1"))
        case.return_for("before")
        uow.emit(
            AssessmentReturned(
                person_id="p-1",
                council="lancashire",
                assessment_id=uuid.uuid4(),
                reasons=["emitted"],
                returned_by="care_manager:cm-1",
            )
        )
        case.return_for("after")
        await uow.commit()
    order = ("before", "emitted", "after")
    written = [next(w for w in order if w in row) for row in await outbox_reasons(database)]
    assert written == list(order)


async def test_a_rolled_back_unit_of_work_writes_none_of_its_aggregates_events(database):
    uow = unit_of_work(database)
    async with uow:
        uow.track(Case("p-1")).return_for("never")
    assert await outbox_reasons(database) == []


async def test_a_unit_of_work_opened_for_reading_writes_nothing_and_refuses_to_commit(database):
    uow = unit_of_work(database)
    async with uow.reading(), uow:  # a use case inside joins the read
        uow.track(Case("p-1")).return_for("never")
        with pytest.raises(RuntimeError, match="reading"):
            await uow.commit()
    assert await outbox_reasons(database) == []
    async with uow:  # the same unit of work writes again once the read is over
        uow.track(Case("p-1")).return_for("later")
        await uow.commit()
    assert ["later" in row for row in await outbox_reasons(database)] == [True]
