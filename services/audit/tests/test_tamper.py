"""Tamper-evidence at scale: 1,000 seeded random mutations of realistic chains, each caught.

Five people's journeys (three councils, 10 to 15 events each, the contracts' real event
shapes) are chained with the audit domain's own functions. Each mutation is applied to a
fresh copy of one chain, as someone with write access to the audit tables could, and the
chain is verified against the person's head as it was before (the trusted head: only the
seq and hash of the last event).

The expected first bad seq is computed here, independently of `verify_chain`: it is the
first position at which the stored rows differ from the chain as it was (or the first one
missing or extra). One class cannot be localised that far: a re-hashed forged tail is
consistent link by link, and the head anchors only the last hash, so the earliest event
verification can prove bad is the head's own seq (or the first missing one). For that
class the test asserts that bound, and that the real first change lies at or before it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import random
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from msgspec.structs import replace
from typer.testing import CliRunner

from contracts import events as ev
from contracts.envelope import Envelope
from services.audit.domain import (
    GENESIS_HASH,
    ChainHead,
    ChainReport,
    EventFacts,
    StoredEvent,
    chain,
    chain_hash,
    facts_from,
    verify_chain,
)
from services.audit.tests.journey import Journey, at

SEED = 20_250_106
SCHEDULE = {  # mutation class -> how many of the 1,000
    "edit_data": 100,
    "edit_data_rehashed": 100,
    "edit_hash": 100,
    "edit_prev_hash": 100,
    "delete": 80,
    "delete_renumbered": 80,
    "insert_forged": 100,
    "insert_copy": 60,
    "forged_tail": 100,
    "swap": 100,
    "truncate": 80,
}


# --- realistic chains ----------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    journey: Journey
    links: tuple[StoredEvent, ...]

    @property
    def head(self) -> ChainHead:
        return self.links[-1].head()


def envelopes_of(journey: Journey, start: str, extra_payments: int) -> list[Envelope]:
    """A whole journey, then a budget revision, more instalments and a second review."""
    day = date.fromisoformat(start)
    events = journey.full(start)
    events.append(
        journey.budget(
            at((day + timedelta(weeks=12)).isoformat()),
            revision=2,
            weekly_pence=27_500,
            stage=ev.BudgetStage.FINAL,
            reason="Review found night-time support the points missed",
        )
    )
    for number in range(2, 2 + extra_payments):
        events.append(
            journey.paid(at((day + timedelta(weeks=4 * number + 1)).isoformat()), number=number)
        )
    events.append(journey.reviewed(at((day + timedelta(weeks=52)).isoformat())))
    return events


def build_people() -> list[Person]:
    specs = [
        ("tp-1", "lancashire", "north", "2025-01-06", 0),
        ("tp-2", "lancashire", "south", "2025-02-03", 2),
        ("tp-3", "council_a", "east", "2025-03-10", 1),
        ("tp-4", "council_a", "east", "2025-04-07", 3),
        ("tp-5", "council_b", "central", "2025-05-05", 1),
    ]
    people = []
    for person_id, council, team, start, extra in specs:
        journey = Journey(person_id, council, team=team, key_worker_id=f"kw-{team}")
        links = chain(facts_from(e) for e in envelopes_of(journey, start, extra))
        people.append(Person(journey, tuple(links)))
    return people


PEOPLE = build_people()


# --- mutations: each one tampers with a fresh copy of one chain ------------------------------


@dataclass(frozen=True)
class Mutation:
    kind: str
    person: Person
    rows: list[StoredEvent]
    note: str


def canonical_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def changed(value: Any, rng: random.Random) -> Any:
    """A different, plausible-looking value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.randint(1, 50_000)
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return value + " (amended)"
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if value is None:
        return "amended"
    if isinstance(value, list):
        return value[:-1] if value else ["amended"]
    if isinstance(value, dict):
        return {**value, "amended": True}
    raise AssertionError(f"no change for {value!r}")


def edited_document(row: StoredEvent, rng: random.Random) -> str:
    """The row's document with one data field (or, now and then, the time) changed."""
    document = json.loads(row.canonical)
    if rng.random() < 0.1:
        document["time"] = document["time"].replace(":00:00.", ":07:00.")
    else:
        key = rng.choice(sorted(document["data"]))
        document["data"][key] = changed(document["data"][key], rng)
    edited = canonical_json(document)
    assert edited != row.canonical
    return edited


def random_hash(rng: random.Random, not_: str) -> str:
    while (value := f"{rng.getrandbits(256):064x}") == not_:
        pass
    return value


def renumbered(rows: list[StoredEvent]) -> list[StoredEvent]:
    """Seq = position again, as someone hiding a gap or a move would make it."""
    return [row if row.seq == n else replace(row, seq=n) for n, row in enumerate(rows, 1)]


def relinked(rows: list[StoredEvent], start: int) -> list[StoredEvent]:
    """Recompute seq, prev_hash and hash from index `start` on: a consistent forged tail."""
    out = renumbered(rows)
    for index in range(start, len(out)):
        prev = out[index - 1].hash if index else GENESIS_HASH
        out[index] = replace(
            out[index], prev_hash=prev, hash=chain_hash(prev, out[index].canonical)
        )
    return out


def forged_event(person: Person, rng: random.Random, number: int) -> StoredEvent:
    """A plausible payment nobody made, with its own hash computed over its prev_hash."""
    journey = person.journey
    when = person.links[rng.randrange(len(person.links))].time
    envelope = journey.paid(when, amount_pence=rng.randint(50_000, 900_000), number=99)
    envelope = dataclasses.replace(envelope, id=f"forged-{number}")
    (forged,) = chain([facts_from(envelope)])
    return forged


def link_forged_after(forged: StoredEvent, prev_hash: str) -> StoredEvent:
    return replace(forged, prev_hash=prev_hash, hash=chain_hash(prev_hash, forged.canonical))


def mutate(kind: str, person: Person, rng: random.Random, number: int) -> Mutation:
    rows = list(person.links)  # a fresh copy; the rows themselves are frozen
    n = len(rows)
    k = rng.randrange(n)  # an index
    if kind == "edit_data":
        rows[k] = replace(rows[k], canonical=edited_document(rows[k], rng))
        note = f"seq {k + 1} document edited"
    elif kind == "edit_data_rehashed":
        edited = edited_document(rows[k], rng)
        rows[k] = replace(rows[k], canonical=edited, hash=chain_hash(rows[k].prev_hash, edited))
        note = f"seq {k + 1} document edited and its own hash recomputed"
    elif kind == "edit_hash":
        rows[k] = replace(rows[k], hash=random_hash(rng, rows[k].hash))
        note = f"seq {k + 1} hash replaced"
    elif kind == "edit_prev_hash":
        rows[k] = replace(rows[k], prev_hash=random_hash(rng, rows[k].prev_hash))
        note = f"seq {k + 1} prev_hash replaced"
    elif kind == "delete":
        del rows[k]
        note = f"seq {k + 1} deleted, the gap left"
    elif kind == "delete_renumbered":
        del rows[k]
        rows = renumbered(rows)
        note = f"seq {k + 1} deleted, later seqs renumbered"
    elif kind == "insert_forged":
        position = rng.randrange(n + 1)  # an index; n = after the last event
        if rng.random() < 0.5:  # linked to the event it follows: its own link holds
            prev = rows[position - 1].hash if position else GENESIS_HASH
        else:  # linked somewhere else in the chain
            target = rng.randrange(n + 1)
            prev = rows[target - 1].hash if target else GENESIS_HASH
        forged = link_forged_after(forged_event(person, rng, number), prev)
        rows.insert(position, forged)
        rows = renumbered(rows)
        note = f"forged event inserted at seq {position + 1}, own hash correct"
    elif kind == "insert_copy":
        position = rng.randrange(n + 1)
        rows.insert(position, rows[k])
        rows = renumbered(rows)
        note = f"seq {k + 1} stored again at seq {position + 1}"
    elif kind == "forged_tail":
        how = rng.choice(["edit", "insert", "delete"])
        if how == "edit":  # a careful forger: the time column follows the document
            edited = edited_document(rows[k], rng)
            rows[k] = replace(
                rows[k], canonical=edited, time=EventFacts.from_canonical(edited).time
            )
        elif how == "insert":
            rows.insert(k, forged_event(person, rng, number))
        else:
            k = rng.randrange(n - 1)  # not the last: that would be a plain truncation
            del rows[k]
        rows = relinked(rows, k)
        note = f"{how} at seq {k + 1}, every later link re-hashed, head kept"
    elif kind == "swap":
        i, j = sorted(rng.sample(range(n), 2))
        rows[i], rows[j] = rows[j], rows[i]
        rows = renumbered(rows)
        note = f"seq {i + 1} and seq {j + 1} swapped"
    elif kind == "truncate":
        rows = rows[:k]
        note = f"truncated to {k} events"
    else:
        raise AssertionError(kind)
    return Mutation(kind, person, rows, note)


def mutations() -> list[Mutation]:
    rng = random.Random(SEED)
    kinds = [kind for kind, count in SCHEDULE.items() for _ in range(count)]
    rng.shuffle(kinds)
    return [mutate(kind, rng.choice(PEOPLE), rng, n) for n, kind in enumerate(kinds)]


MUTATIONS = mutations()


# --- the independent oracle ----------------------------------------------------------------


def first_difference(original: tuple[StoredEvent, ...], stored: list[StoredEvent]) -> int:
    """The first seq at which the stored rows are not the chain as it was."""
    for seq, (was, now) in enumerate(zip(original, stored, strict=False), 1):
        if was != now:
            return seq
    assert len(original) != len(stored), "the mutation changed nothing"
    return min(len(original), len(stored)) + 1


def expected_first_bad(mutation: Mutation) -> int:
    first = first_difference(mutation.person.links, mutation.rows)
    if mutation.kind != "forged_tail":
        return first
    # Consistent link by link: only the head's last seq and hash can tell.
    bound = min(mutation.person.head.last_seq, len(mutation.rows) + 1)
    assert first <= bound
    return bound


# --- the tests -----------------------------------------------------------------------------


def test_the_schedule_is_a_thousand_mutations_of_every_class() -> None:
    assert sum(SCHEDULE.values()) == len(MUTATIONS) == 1_000
    assert Counter(m.kind for m in MUTATIONS) == Counter(SCHEDULE)
    assert {m.person.links[0].person_id for m in MUTATIONS} == {
        p.links[0].person_id for p in PEOPLE
    }


def test_every_untouched_chain_verifies() -> None:
    for person in PEOPLE:
        report = verify_chain(person.links[0].person_id, person.links, person.head)
        assert report.ok and report.events == len(person.links), report
        assert 10 <= len(person.links) <= 15


def named_event(rows: list[StoredEvent], seq: int) -> str | None:
    """The event id a report names for a seq: the one stored there, if any."""
    return rows[seq - 1].event_id if seq <= len(rows) else None


@pytest.mark.parametrize("kind", list(SCHEDULE))
def test_every_mutation_is_caught_and_the_first_bad_event_named(kind: str) -> None:
    wrong: list[str] = []
    of_kind = [m for m in MUTATIONS if m.kind == kind]
    assert len(of_kind) == SCHEDULE[kind]
    for mutation in of_kind:
        person_id = mutation.person.links[0].person_id
        report = verify_chain(person_id, mutation.rows, mutation.person.head)
        expected = expected_first_bad(mutation)
        got = (report.ok, report.first_bad_seq, report.first_bad_event_id)
        want = (False, expected, named_event(mutation.rows, expected))
        if got != want or not report.reason:
            wrong.append(f"{person_id}: {mutation.note}: got {got} ({report.reason}), want {want}")
    assert not wrong, f"{len(wrong)} of {len(of_kind)} {kind} mutations:\n" + "\n".join(wrong[:10])


# --- `pbj verify` exits 2 on a broken chain -------------------------------------------------


def run_pbj_verify(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, report: ChainReport
) -> tuple[int, str]:
    """`pbj verify --person ...` with the audit service's answer stubbed: nothing is started."""
    from pbj import cli

    asked: list[str] = []

    def fake_get(url: str, **_: Any) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200, json=asdict(report), request=httpx.Request("GET", url))

    monkeypatch.setattr(cli.httpx, "get", fake_get)
    result = CliRunner().invoke(
        cli.app, ["verify", "--person", report.person_id, "--data-dir", str(tmp_path)]
    )
    assert asked and asked[0].endswith(f"/v1/people/{report.person_id}/verify")
    return result.exit_code, result.output


def test_pbj_verify_exits_2_when_a_chain_is_broken_and_0_when_sound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pbj import cli

    source = inspect.getsource(cli.verify)
    assert 'if not report.get("ok"):' in source and "raise typer.Exit(2)" in source
    person = PEOPLE[0]
    person_id = person.links[0].person_id
    tampered = next(m for m in MUTATIONS if m.person is person and m.kind == "edit_data")
    broken = verify_chain(person_id, tampered.rows, person.head)
    code, output = run_pbj_verify(monkeypatch, tmp_path, broken)
    assert code == 2 and str(broken.first_bad_seq) in output
    sound = verify_chain(person_id, person.links, person.head)
    assert run_pbj_verify(monkeypatch, tmp_path, sound)[0] == 0
