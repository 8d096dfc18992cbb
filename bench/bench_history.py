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

The store is loaded directly (bulk INSERT on SQLite, COPY on PostgreSQL), not through
the consumer, so a million events take minutes rather than hours. Prints a table and
writes bench/results/history.json. Run it with

    .venv/bin/python bench/bench_history.py [--events 10000000] [--small 1000000]
        [--stores sqlite,postgres] [--requests 300]
    PBJ_BENCH_QUICK=1 .venv/bin/python bench/bench_history.py   # 10,000 and 1,000,000
    .venv/bin/python bench/bench_history.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx

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

    return dataclasses.replace(
        facts,
        event_id=new_id(facts.event_id),
        person_id=person_id,
        correlation_id=new_id(facts.correlation_id),
        causation_id=new_id(facts.causation_id),
        time=at or facts.time,
        data={**facts.data, "person_id": person_id},
    )


def chains(templates: list[list[Any]], start: int, people: int) -> Any:
    """Chains (lists of StoredEvent) for people number start.. start+people-1."""
    from services.audit.domain import chain

    for number in range(start, start + people):
        replica, index = divmod(number, len(templates))
        person_id = f"h{replica:05d}{index:06d}"
        suffix = f"{replica:012x}"
        yield chain(_copy(f, person_id, suffix) for f in templates[index])


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


def _row(stored: Any) -> dict[str, Any]:
    from services.audit.db import _event_row

    return _event_row(stored)


class Loader:
    """Appends chains to audit's store directly, on SQLite or PostgreSQL."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.events = 0

    def load(self, batches: Any) -> None:
        if self.url.startswith("sqlite"):
            self._load_sqlite(batches)
        else:
            asyncio.run(self._load_postgres(batches))

    def _load_sqlite(self, batches: Any) -> None:
        import sqlalchemy as sa

        from services.audit.db import audit_events, audit_heads

        engine = sa.create_engine(self.url.replace("+aiosqlite", ""))
        try:
            with engine.begin() as conn:
                for links_batch in batches:
                    rows = [_row(s) for links in links_batch for s in links]
                    conn.execute(audit_events.insert(), rows)
                    conn.execute(
                        audit_heads.insert(),
                        [
                            {
                                "person_id": links[-1].person_id,
                                "council": links[-1].council,
                                "last_seq": links[-1].seq,
                                "last_hash": links[-1].hash,
                            }
                            for links in links_batch
                        ],
                    )
                    self.events += len(rows)
        finally:
            engine.dispose()

    async def _load_postgres(self, batches: Any) -> None:
        import asyncpg

        from services.audit.db import audit_events

        columns = [col.name for col in audit_events.columns]
        connection = await asyncpg.connect(self.url.replace("+asyncpg", ""))
        try:
            for links_batch in batches:
                rows = [_row(s) for links in links_batch for s in links]
                await connection.copy_records_to_table(
                    "audit_events",
                    records=[tuple(r[k] for k in columns) for r in rows],
                    columns=columns,
                )
                await connection.copy_records_to_table(
                    "audit_heads",
                    records=[
                        (links[-1].person_id, links[-1].council, links[-1].seq, links[-1].hash)
                        for links in links_batch
                    ],
                    columns=["person_id", "council", "last_seq", "last_hash"],
                )
                self.events += len(rows)
            await connection.execute("ANALYZE audit_events; ANALYZE audit_heads")
        finally:
            await connection.close()


def grow(loader: Loader, templates: list[list[Any]], people_done: int, events: int) -> int:
    """Add people until the store holds `events` events; returns people loaded so far."""
    batch: list[list[Any]] = []
    number = people_done

    def batches() -> Any:
        nonlocal number, batch
        for links in chains(templates, people_done, 10**9):
            number += 1
            batch.append(links)
            pending = sum(len(x) for x in batch)
            if loader.events + pending >= events or len(batch) >= 2_000:
                yield batch
                batch = []
                if loader.events >= events:
                    return

    if loader.events < events:
        loader.load(batches())
    return number


def time_requests(url: str, headers: dict[str, str], requests: int) -> dict[str, Any]:
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
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(endpoint, params=params, headers=headers)
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
            body = response.json()
            out[name] = {
                **c.summary_ms(seconds),
                "events_in_answer": len(body["items"]) if "items" in body else body["events"],
            }
    return out


def bench_store(
    store: str, sizes: list[int], requests: int, seed: int, templates: int = 1_000
) -> dict[str, Any]:
    from contracts.vocabulary import Role

    engine = "kafka" if store == "postgres" else "embedded"
    templates = template_facts(templates, seed)
    with c.bench_system(engine, ["audit"]) as system:
        loader = Loader(system.database_url("audit"))
        loader.load([[target_chain(templates)]])
        headers = c.staff(system.data_dir)(Role.AUDITOR)
        people = 0
        results: dict[str, Any] = {}
        for size in sizes:
            started = time.perf_counter()
            people = grow(loader, templates, people, size)
            loaded = time.perf_counter() - started
            c.console.print(
                f"  {store}: {loader.events:,} events stored (+{loaded:.0f}s); querying ..."
            )
            results[str(size)] = {
                "events_stored": loader.events,
                "people": people + 1,
                "load_seconds": round(loaded, 1),
                "endpoints": time_requests(system.urls()["audit"], headers, requests),
            }
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
    args = parser.parse_args()
    if args.smoke:
        args.events, args.small, args.requests = 2_000, 500, 10
    sizes = [args.small, args.events]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    results: dict[str, Any] = {}
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
    rows = []
    for store, r in results.items():
        for size in sizes:
            e = r["sizes"][str(size)]["endpoints"]
            rows.append(
                (
                    f"{store} {r['sizes'][str(size)]['events_stored']:,} events",
                    *(f"{e[n]['p50_ms']:.1f} / {e[n]['p99_ms']:.1f}" for n in e),
                )
            )
        rows.append(
            (
                f"{store} ratio p50 large/small",
                *(f"{v:.2f}" for v in r["ratio_large_to_small_p50"].values()),
            )
        )
    c.show(
        f"Audit API, a person with {PERSON_EVENTS} events: p50 / p99 ms (sequential, loopback)",
        ["store", "history (200)", "as-of (all 200)", "as-of (100)"],
        rows,
    )
    c.write_result(
        "history",
        {
            "smoke": args.smoke,
            "person_events": PERSON_EVENTS,
            "sizes": sizes,
            "requests_per_endpoint": args.requests,
            "stores": results,
        },
    )


if __name__ == "__main__":
    main()
