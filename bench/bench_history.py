"""Benchmark: one person's history and as-of budget through audit's HTTP API, many events stored.

For each store (SQLite; PostgreSQL) it starts the audit service alone, loads its store
(audit_events and audit_heads, hash chains and all, computed with audit's own `chain`)
with realistic journey events for many people plus one person with 200 events, and
times, sequentially from this process over loopback:

- GET /v1/people/{id}/history?limit=200  (the person's whole history, one page)
- GET /v1/people/{id}/budget?as_of=DATE   (their budget history folded as of a day)

first with --small events stored, then again after the store has grown to --events: the
ratio large/small of each p50 shows whether the queries depend on the store's size (they
should not: both read one person's rows through the (person_id, seq) key).

The store is loaded directly, not through the consumer, with the service stopped meanwhile:
each template person's events are encoded once and every copy is made from them by
replacing its person id and id suffix, then hashed into its chain (the rows of a sample are
checked equal to audit's own `chain`, and a sample of stored chains is verified through
audit's API after each load). The secondary indexes are dropped for the load and built
again after it; SQLite runs without a journal or syncs meanwhile, PostgreSQL takes COPY in
chunks of ~8,400 events. The service's CPU per request (from /proc) is reported beside the
latencies. Prints a table and writes bench/results/history.json. Run it with

    .venv/bin/python bench/bench_history.py [--events 10000000] [--small 1000000]
        [--stores sqlite,postgres] [--requests 300]
    PBJ_BENCH_QUICK=1 .venv/bin/python bench/bench_history.py   # 10,000 and 1,000,000
    .venv/bin/python bench/bench_history.py --smoke
    .venv/bin/python bench/bench_history.py --small 1000 --events 20000 --stores sqlite \\
        --before main

With --before REF the same benchmark runs first on the code at that git ref (its audit
service; today's script), then on this tree, and the table shows both, with the ratio of
each endpoint's p50 and service CPU at the large store (after / before).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx
import msgspec

PERSON_EVENTS = 200
TARGET_PERSON = "bench-person-200"
START = datetime(2009, 4, 1, 9, 0, tzinfo=UTC)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def template_facts(people: int, seed: int) -> list[list[Any]]:
    from contracts.envelope import decode
    from services.audit.domain import facts_from

    return [
        [facts_from(decode(r.value)) for r in person] for person in c.template_people(people, seed)
    ]


def _copy(facts: Any, person_id: str, suffix: str, at: datetime | None = None) -> Any:
    def new_id(value: str | None) -> str | None:
        return None if value is None else _UUID.sub(lambda m: m.group(0)[:24] + suffix, value)

    # EventFacts is a msgspec Struct; with --before, code older than that has a dataclass.
    replace = msgspec.structs.replace if isinstance(facts, msgspec.Struct) else dataclasses.replace
    return replace(
        facts,
        event_id=new_id(facts.event_id),
        person_id=person_id,
        correlation_id=new_id(facts.correlation_id),
        causation_id=new_id(facts.causation_id),
        time=at or facts.time,
        data={**facts.data, "person_id": person_id},
    )


def person_of(number: int, templates: int) -> tuple[str, str]:
    """Person number n: its id and the suffix its event ids end in."""
    replica, index = divmod(number, templates)
    return f"h{replica:05d}{index:06d}", f"{replica:012x}"


def chains(templates: list[list[Any]], start: int, people: int) -> Any:
    """Chains (lists of StoredEvent) for people number start.. start+people-1, made by
    audit's own `chain`: what the loader's fast rows are checked against."""
    from services.audit.domain import chain

    for number in range(start, start + people):
        person_id, suffix = person_of(number, len(templates))
        yield chain(_copy(f, person_id, suffix) for f in templates[number % len(templates)])


def target_chain(templates: list[list[Any]]) -> list[Any]:
    """One person with 200 events: 40-odd journeys' worth, a day apart, in order."""
    from services.audit.domain import chain

    facts = []
    replica = 99_999
    for index in range(len(templates)):
        for f in templates[index]:
            facts.append(
                _copy(f, TARGET_PERSON, f"{replica:012x}", START + timedelta(days=len(facts)))
            )
            if len(facts) == PERSON_EVENTS:
                return chain(facts)
        replica -= 1
    raise RuntimeError("not enough template events")


# The columns of audit_events, in the order the loader's row tuples hold them.
COLUMNS = (
    "person_id",
    "seq",
    "event_id",
    "council",
    "type",
    "time",
    "correlation_id",
    "causation_id",
    "policy_version",
    "canonical",
    "prev_hash",
    "hash",
)
HEAD_COLUMNS = ("person_id", "council", "last_seq", "last_hash")
# Stand-ins written where a copy's person id and id suffix go; no template holds them.
PERSON_MARK = "\u27e8person\u27e9"
SUFFIX_MARK = "\u27e8suffix\u27e9"


def _tuple(stored: Any) -> tuple[Any, ...]:
    from services.audit.db import _event_row

    row = _event_row(stored)
    return tuple(row[column] for column in COLUMNS)


class Replicas:
    """The store's people as audit_events rows, fast: each template event is encoded once
    with marks where the copy's person id and id suffix go, and a copy is those documents
    with the marks replaced, hashed into a chain.

    `_copy` changes only those values (the keys and everything else stay), so the
    canonical document of a copy is the template's with the marks replaced: the same
    bytes audit's `chain` makes, and `check` asserts it against `chain` itself.
    """

    def __init__(self, templates: list[list[Any]]) -> None:
        self.count = len(templates)
        self.sizes = [len(person) for person in templates]
        self.patterns = [[_tuple(s) for s in _marked_chain(person)] for person in templates]

    def rows(self, number: int) -> list[tuple[Any, ...]]:
        from services.audit.domain import GENESIS_HASH, chain_hash

        person_id, suffix = person_of(number, self.count)
        prev_hash = GENESIS_HASH
        rows = []
        for pattern in self.patterns[number % self.count]:
            (_, seq, event_id, council, type_, at, correlation, causation, policy, canonical) = (
                pattern[:10]
            )
            canonical = canonical.replace(PERSON_MARK, person_id).replace(SUFFIX_MARK, suffix)
            hash_ = chain_hash(prev_hash, canonical)
            rows.append(
                (
                    person_id,
                    seq,
                    event_id.replace(SUFFIX_MARK, suffix),
                    council,
                    type_,
                    at,
                    correlation.replace(SUFFIX_MARK, suffix),
                    None if causation is None else causation.replace(SUFFIX_MARK, suffix),
                    policy,
                    canonical,
                    prev_hash,
                    hash_,
                )
            )
            prev_hash = hash_
        return rows

    def check(self, templates: list[list[Any]], numbers: Iterable[int]) -> int:
        """Assert these people's rows are the rows audit's own `chain` makes; how many."""
        checked = 0
        for number in numbers:
            expected = [_tuple(s) for s in next(chains(templates, number, 1))]
            if self.rows(number) != expected:
                raise AssertionError(f"person {number}: fast rows differ from audit's chain")
            checked += 1
        return checked


def _marked_chain(person: list[Any]) -> list[Any]:
    from services.audit.domain import chain

    return chain(_copy(f, PERSON_MARK, SUFFIX_MARK) for f in person)


def _head(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    last = rows[-1]
    return (last[0], last[3], last[1], last[11])


class Loader:
    """Appends chains to audit's store directly, on SQLite or PostgreSQL, with the service
    stopped: the secondary indexes are dropped first and built again at the end, SQLite
    runs without a journal or syncs meanwhile, PostgreSQL takes COPY in big chunks."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.events = 0

    def load(self, people: Iterable[list[list[tuple[Any, ...]]]]) -> None:
        """people: chunks of people, each person a list of audit_events row tuples."""
        if self.url.startswith("sqlite"):
            self._load_sqlite(people)
        else:
            asyncio.run(self._load_postgres(people))

    def _load_sqlite(self, people: Iterable[list[list[tuple[Any, ...]]]]) -> None:
        import sqlite3

        from sqlalchemy.dialects import sqlite

        from services.audit.db import audit_events

        as_stored = audit_events.c.time.type.bind_processor(sqlite.dialect())
        assert as_stored is not None
        times: dict[datetime, str] = {}
        connection = sqlite3.connect(self.url.split(":///", 1)[1], isolation_level=None)
        try:
            for pragma in (
                "journal_mode=OFF",
                "synchronous=OFF",
                "locking_mode=EXCLUSIVE",
                "cache_size=-2000000",  # KiB: the event_id index stays in memory
                "temp_store=MEMORY",
            ):
                connection.execute(f"PRAGMA {pragma}")
            indexes = connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('audit_events', 'audit_heads')"
            ).fetchall()
            for name, _ in indexes:
                connection.execute(f"DROP INDEX {name}")
            insert_event = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES"
            insert_event += f" ({', '.join('?' * len(COLUMNS))})"
            insert_head = "INSERT INTO audit_heads (person_id, council, last_seq, last_hash)"
            insert_head += " VALUES (?, ?, ?, ?)"
            for chunk in people:
                rows = []
                for person in chunk:
                    for row in person:
                        at = row[5]
                        stored = times.get(at)
                        if stored is None:
                            stored = times[at] = as_stored(at)
                        rows.append((*row[:5], stored, *row[6:]))
                connection.execute("BEGIN")
                connection.executemany(insert_event, rows)
                connection.executemany(insert_head, [_head(person) for person in chunk])
                connection.execute("COMMIT")
                self.events += len(rows)
            for _, sql in indexes:
                connection.execute(sql)
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()

    async def _load_postgres(self, people: Iterable[list[list[tuple[Any, ...]]]]) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.url.replace("+asyncpg", ""))
        try:
            await connection.execute(
                "SET synchronous_commit = off; SET maintenance_work_mem = '1GB'"
            )
            # Unique constraints (not the primary keys: rows arrive in their order) and
            # plain indexes, to be built again from their own definitions at the end.
            constraints = await connection.fetch(
                "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def"
                " FROM pg_constraint WHERE contype = 'u'"
                " AND conrelid IN ('audit_events'::regclass, 'audit_heads'::regclass)"
            )
            indexes = await connection.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " WHERE i.tablename IN ('audit_events', 'audit_heads')"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
            for row in constraints:
                await connection.execute(
                    f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"'
                )
            for row in indexes:
                await connection.execute(f'DROP INDEX "{row["indexname"]}"')
            for chunk in people:
                rows = [row for person in chunk for row in person]
                async with connection.transaction():
                    await connection.copy_records_to_table(
                        "audit_events", records=rows, columns=list(COLUMNS)
                    )
                    await connection.copy_records_to_table(
                        "audit_heads",
                        records=[_head(person) for person in chunk],
                        columns=list(HEAD_COLUMNS),
                    )
                self.events += len(rows)
            for row in constraints:
                await connection.execute(
                    f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'
                )
            for row in indexes:
                await connection.execute(row["indexdef"])
            await connection.execute("ANALYZE audit_events; ANALYZE audit_heads")
        finally:
            await connection.close()


PEOPLE_PER_CHUNK = 2_000  # ~8,400 events a transaction (SQLite) or a COPY (PostgreSQL)


def grow(loader: Loader, replicas: Replicas, people_done: int, events: int) -> int:
    """Add people until the store holds `events` events; returns people loaded so far.

    The rows are made in this process, a chunk at a time, between the writes: on two
    shared cores a second process making them ran slower, its chunks pickled across.
    """
    number, total = people_done, loader.events
    while total < events:
        total += replicas.sizes[number % replicas.count]
        number += 1
    loader.load(
        [replicas.rows(n) for n in range(start, min(start + PEOPLE_PER_CHUNK, number))]
        for start in range(people_done, number, PEOPLE_PER_CHUNK)
    )
    return number


def time_requests(url: str, headers: dict[str, str], requests: int, pid: int) -> dict[str, Any]:
    """p50/p99 of each request, and the service's CPU per request (the machine is shared:
    CPU time moves much less with the load than the wall clock does)."""
    last_day = (START + timedelta(days=PERSON_EVENTS)).date()
    middle = (START + timedelta(days=PERSON_EVENTS // 2)).date()
    endpoints = {
        "history": (f"{url}/v1/people/{TARGET_PERSON}/history", {"limit": PERSON_EVENTS}),
        "as_of_all": (f"{url}/v1/people/{TARGET_PERSON}/budget", {"as_of": last_day.isoformat()}),
        "as_of_half": (f"{url}/v1/people/{TARGET_PERSON}/budget", {"as_of": middle.isoformat()}),
    }
    out: dict[str, Any] = {}
    with httpx.Client(timeout=60) as client:
        for name, (endpoint, params) in endpoints.items():
            for _ in range(5):  # warm-up
                client.get(endpoint, params=params, headers=headers).raise_for_status()
            seconds = []
            cpu_before = c.cpu_seconds(pid)
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(endpoint, params=params, headers=headers)
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
            cpu = c.cpu_seconds(pid) - cpu_before
            body = response.json()
            out[name] = {
                **c.summary_ms(seconds),
                "service_cpu_ms_per_request": round(cpu / requests * 1000, 2),
                "events_in_answer": len(body["items"]) if "items" in body else body["events"],
            }
    return out


def verify_sample(url: str, headers: dict[str, str], people: int, templates: int) -> int:
    """Audit's own verification of the target's chain and of people spread over the store."""
    numbers = sorted({0, people - 1, *random.Random(people).sample(range(people), min(48, people))})
    person_ids = [TARGET_PERSON, *(person_of(n, templates)[0] for n in numbers)]
    with httpx.Client(timeout=60) as client:
        for person_id in person_ids:
            response = client.get(f"{url}/v1/people/{person_id}/verify", headers=headers)
            response.raise_for_status()
            report = response.json()
            if not report["ok"]:
                raise AssertionError(f"{person_id}'s chain does not verify: {report}")
    return len(person_ids)


def bench_store(
    store: str, sizes: list[int], requests: int, seed: int, templates: int = 1_000
) -> dict[str, Any]:
    from contracts.vocabulary import Role

    engine = "kafka" if store == "postgres" else "embedded"
    facts = template_facts(templates, seed)
    replicas = Replicas(facts)
    spread = len(facts) * 37 + 11
    checked = replicas.check(facts, [*range(len(facts)), spread, spread * 101])
    c.console.print(f"  {store}: fast rows of {checked} people equal audit's own chain")
    with c.bench_system(engine, ["audit"]) as system:
        loader = Loader(system.database_url("audit"))
        headers = c.staff(system.data_dir)(Role.AUDITOR)
        people = 0
        results: dict[str, Any] = {}
        for size in sizes:
            system.stop_services()  # nothing reads a store being loaded
            started = time.perf_counter()
            if people == 0:
                loader.load([[[_tuple(s) for s in target_chain(facts)]]])
            people = grow(loader, replicas, people, size)
            loaded = time.perf_counter() - started
            system.start()
            url = system.urls()["audit"]
            verified = verify_sample(url, headers, people, len(facts))
            c.console.print(
                f"  {store}: {loader.events:,} events stored (+{loaded:.0f}s,"
                f" {loader.events / loaded:,.0f} events/s, {verified} chains verified);"
                f" load average {os.getloadavg()[0]:.1f}; querying ..."
            )
            results[str(size)] = {
                "events_stored": loader.events,
                "people": people + 1,
                "load_seconds": round(loaded, 1),
                "chains_verified": verified,
                "load_average": round(os.getloadavg()[0], 1),
                "endpoints": time_requests(url, headers, requests, system.pid("audit")),
            }
            c.console.print(  # now, not only in the table: a long run may not reach it
                f"  {store} at {loader.events:,}: "
                + "; ".join(
                    f"{name} p50 {e['p50_ms']} p99 {e['p99_ms']} ms,"
                    f" CPU {e['service_cpu_ms_per_request']} ms"
                    for name, e in results[str(size)]["endpoints"].items()
                )
            )
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("PBJ_BENCH_QUICK") == "1"  # `PBJ_BENCH_QUICK=1 make bench`
    parser.add_argument(
        "--events", type=int, default=1_000_000 if quick else 10_000_000, help="the large store"
    )
    parser.add_argument(
        "--small", type=int, default=10_000 if quick else 1_000_000, help="the small store"
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and size")
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    parser.add_argument("--before", help="a git ref to measure first, side by side")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.small, args.requests = 2_000, 500, 10
    sizes = [args.small, args.events]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    results: dict[str, Any] = {}
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_history",
            *("--events", str(args.events), "--small", str(args.small)),
            *("--stores", args.stores, "--requests", str(args.requests)),
            *("--seed", str(args.seed)),
            *(["--smoke"] if args.smoke else []),
        )

    def write(results: dict[str, Any]) -> None:
        c.write_result(
            "history",
            {
                "smoke": args.smoke,
                "person_events": PERSON_EVENTS,
                "sizes": sizes,
                "requests_per_endpoint": args.requests,
                "stores": results,
                **({"before": before} if before else {}),
            },
        )

    for store in stores:
        results[store] = {
            "sizes": bench_store(
                store, sizes, args.requests, args.seed, 60 if args.smoke else 1_000
            )
        }
        small, large = (results[store]["sizes"][str(s)]["endpoints"] for s in sizes)
        results[store]["ratio_large_to_small_p50"] = {
            name: c.ratio(large[name]["p50_ms"], small[name]["p50_ms"]) for name in small
        }
        write(results)  # each store as it finishes: the next may take an hour
    rows = []
    runs = [("before ", before["stores"]), ("", results)] if before else [("", results)]
    for code, measured in runs:
        rows += _rows_of(code, measured, sizes)
    if before:
        for store, r in results.items():
            large = r["sizes"][str(sizes[-1])]["endpoints"]
            old = before["stores"][store]["sizes"][str(sizes[-1])]["endpoints"]
            rows.append(
                (
                    f"{store} after / before, p50 (CPU)",
                    *(_ratios(large[n], old[n]) for n in large),
                )
            )
    c.show(
        f"Audit API, a person with {PERSON_EVENTS} events: p50 / p99 ms (service CPU ms a request)"
        " (sequential, loopback)",
        ["store", "history (200)", "as-of (all 200)", "as-of (100)"],
        rows,
    )
    write(results)


def _ratios(after: dict[str, Any], before: dict[str, Any]) -> str:
    p50 = c.ratio(after["p50_ms"], before["p50_ms"])
    cpu = c.ratio(after["service_cpu_ms_per_request"], before["service_cpu_ms_per_request"])
    return f"{p50:.2f} ({cpu:.2f})"


def _rows_of(code: str, results: dict[str, Any], sizes: list[int]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for store, r in results.items():
        for size in sizes:
            e = r["sizes"][str(size)]["endpoints"]
            rows.append(
                (
                    f"{code}{store} {r['sizes'][str(size)]['events_stored']:,} events",
                    *(
                        f"{e[n]['p50_ms']:.1f} / {e[n]['p99_ms']:.1f}"
                        f" ({e[n]['service_cpu_ms_per_request']:.1f})"
                        for n in e
                    ),
                )
            )
        rows.append(
            (
                f"{code}{store} ratio p50 large/small",
                *(f"{v:.2f}" for v in r["ratio_large_to_small_p50"].values()),
            )
        )
    return rows


if __name__ == "__main__":
    main()
