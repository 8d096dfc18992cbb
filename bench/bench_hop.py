"""Benchmark: one event hop through the log, at a steady ~500 events/s.

The hop: an AssessmentValidated record is appended to the log (as assessment's outbox
relay appends it after assessment's commit) -> allocation consumes it, calculates the
indicative budget and commits its budget row. Latency = the row's created_at (set by
allocation inside that transaction; same machine, same clock) minus the time just before
the record was handed to the log. Records are paced at --rate per second in small
batches every 10 ms, for --seconds; each is a new person from whatif's seeded generator.
By default at 500/s (the target's rate) and at 50/s (a rate allocation keeps up with on
this machine, so the hop is measured without a queue in front of it).

Kafka (allocation on PostgreSQL) and the embedded log (allocation on SQLite) side by
side; on Kafka once per --instances count (two allocation processes in one consumer
group share the topic's partitions and one database). Targets on Kafka: p50 < 25 ms,
p99 < 100 ms. If allocation cannot keep up with the rate the latencies grow with the
queue; the table also gives the rate it sustained.
With --before REF the same runs are made first on the code at that git ref (today's
bench/ over it), and the table shows both. Prints a table and writes
bench/results/hop.json. Run it with

    .venv/bin/python bench/bench_hop.py [--rates 500,50] [--seconds 10] [--engines embedded,kafka]
        [--instances 1,2]
    .venv/bin/python bench/bench_hop.py --engines embedded --before main
    .venv/bin/python bench/bench_hop.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET_P50_MS = 25
TARGET_P99_MS = 100
TICK_SECONDS = 0.01
FLOOR_TOPIC = "bench.hop-floor"  # no service reads it


def assessments(count: int, seed: int) -> list[Any]:
    """`count` AssessmentValidated records, one per person (the hop's clock is per person)."""
    out = []
    for record in c.synth_records(count * 8, seed):
        if json.loads(record.value)["type"].startswith("pb.assessment.assessment-validated."):
            out.append(record)
            if len(out) == count:
                return out
    raise RuntimeError("not enough assessments generated")


async def drive(
    log_url: str, warm: list[Any], warmed: Any, records: list[Any], rate: float
) -> dict[str, float]:
    """Publish the records paced at `rate`/s; returns person_id -> time before publish.

    The warm-up records go first through the same producer, and `warmed` (a blocking
    predicate) is awaited, so connections and metadata are in place before measuring.
    """
    from servicekit.eventlog import open_event_log

    log = open_event_log(log_url)
    await log.start()
    sent: dict[str, float] = {}
    per_tick = max(1, round(rate * TICK_SECONDS))
    interval = per_tick / rate
    pending: set[asyncio.Task[None]] = set()
    try:
        if warm:
            await log.publish(warm)
        await asyncio.to_thread(warmed)
        started = time.monotonic()
        for tick, first in enumerate(range(0, len(records), per_tick)):
            await asyncio.sleep(max(0.0, started + tick * interval - time.monotonic()))
            batch = records[first : first + per_tick]
            now = time.time()
            for record in batch:
                sent[record.key] = now
            task = asyncio.create_task(log.publish(batch))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        sent["__seconds__"] = time.monotonic() - started
    finally:
        await log.close()
    return sent


async def budget_rows(database_url: str) -> list[tuple[str, datetime]]:
    if database_url.startswith("sqlite"):
        import sqlite3

        path = database_url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT person_id, created_at FROM budgets").fetchall()
        return [(p, datetime.fromisoformat(t).replace(tzinfo=UTC)) for p, t in rows]
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT person_id, created_at FROM budgets")
    finally:
        await connection.close()
    return [(r["person_id"], r["created_at"]) for r in rows]


async def transport_floor(log_url: str, records: list[Any], rate: float) -> dict[str, Any]:
    """The log alone: the same records, paced the same, to a consumer of our log in-process."""
    from servicekit.eventlog import open_event_log

    log = open_event_log(log_url)
    await log.start()
    await log.ensure_topics([FLOOR_TOPIC])
    reader = log.consumer(f"hop-floor-{time.time_ns()}", [FLOOR_TOPIC])
    await reader.end_offsets()  # joined and assigned before anything is sent
    received: dict[str, float] = {}

    async def read() -> None:
        while len(received) < len(records):
            for record in await reader.poll(max_records=500, timeout_ms=200):
                received[record.key] = time.time()

    task = asyncio.create_task(read())
    try:
        sent = await drive(log_url, [], lambda: None, records, rate)
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        await reader.close()
        await log.close()
    sent.pop("__seconds__")
    return c.summary_ms([received[k] - t for k, t in sent.items() if k in received])


async def group_settled(group: str, members: int, timeout: float = 120) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=c.KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (described,) = await admin.describe_consumer_groups([group])
            (state,) = described.to_object()["groups"]
            if state["state"] == "Stable" and len(state["members"]) == members:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"consumer group {group} not stable with {members} members")
    finally:
        await admin.close()


def bench_engine(
    engine: str, rate: float, seconds: float, seed: int, instances: int = 1
) -> dict[str, Any]:
    records = assessments(int(rate * seconds), seed)
    floor_records = [
        type(r)(FLOOR_TOPIC, r.key, r.value, r.headers) for r in assessments(len(records), seed + 2)
    ]
    with c.bench_system(engine, ["allocation"]) as system:
        c.console.print(f"[bold]{engine}[/]: the log alone (floor) ...")
        floor = asyncio.run(transport_floor(system.log_url(), floor_records, rate))
        db_url = system.database_url("allocation")
        names = ["allocation"]
        for port in c.free_ports(instances - 1):
            # More instances in the same consumer group: the topic's partitions are shared.
            names.append(system.supervisor.start_instance("allocation", port))
        system.supervisor.wait_ready(timeout=120, names=names)
        if engine == "kafka":
            # Measure the group as it runs, not its rebalance: wait until every instance
            # is a member and the group is stable.
            asyncio.run(group_settled(f"{system.namespace}.allocation", instances))
        pids = [system.pid(name) for name in names]
        c.console.print(
            f"[bold]{engine}[/]: {len(records):,} assessments at {rate:.0f}/s, "
            f"{instances} allocation instance(s) ..."
        )
        cpu_before = sum(c.cpu_seconds(pid) for pid in pids)
        sent = asyncio.run(
            drive(
                system.log_url(),
                assessments_warm(seed),
                lambda: c.wait_until(lambda: len(asyncio.run(budget_rows(db_url))) >= 20, 60, 0.2),
                records,
                rate,
            )
        )
        send_seconds = sent.pop("__seconds__")
        # A backlog drains at the sustained rate: wait for it (bounded), then count.
        c.wait_until(
            lambda: len(asyncio.run(budget_rows(db_url))) >= len(records) + 20,
            max(120.0, len(records) / 20),
            0.5,
        )
        rows = asyncio.run(budget_rows(db_url))
        cpu_spent = sum(c.cpu_seconds(pid) for pid in pids) - cpu_before
        cpu_ms_per_event = cpu_spent * 1000 / len(records)
    latencies = [
        max(0.0, created.timestamp() - sent[person]) for person, created in rows if person in sent
    ]
    last = max((created.timestamp() for p, created in rows if p in sent), default=0.0)
    first = min(sent.values())
    summary = c.summary_ms(latencies)
    return {
        "store": "SQLite" if engine == "embedded" else "PostgreSQL",
        "instances": instances,
        "sent": len(records),
        "budgets": len(latencies),
        "offered_rate": round(len(records) / send_seconds, 1),
        "sustained_rate": round(len(latencies) / max(1e-9, last - first), 1),
        **summary,
        # CPU allocation spent per event (warm-up excluded): what bounds the rate it can
        # sustain, and unlike latency it does not depend on how busy the machine is.
        "allocation_cpu_ms_per_event": round(cpu_ms_per_event, 2),
        "log_only_floor": floor,
        "ratio_p50_to_floor": c.ratio(summary["p50_ms"], floor["p50_ms"]),
        "meets": {
            "p50": summary["p50_ms"] < TARGET_P50_MS,
            "p99": summary["p99_ms"] < TARGET_P99_MS,
        },
    }


def assessments_warm(seed: int) -> list[Any]:
    from servicekit.eventlog import OutgoingRecord

    return [
        OutgoingRecord(r.topic, "w" + r.key, r.value.replace(b'"c0', b'"wc0'), r.headers)
        for r in assessments(20, seed + 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="500,50", help="events per second, one run each (comma-separated)"
    )
    parser.add_argument("--seconds", type=float, default=10, help="per run")
    parser.add_argument("--engines", default="embedded,kafka")
    parser.add_argument(
        "--instances",
        default="1,2",
        help="allocation instances sharing the topic on Kafka, one run each (the embedded "
        "log runs one: its services are one process each)",
    )
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--before", help="a git ref to measure side by side (e.g. main)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.rates, args.seconds = "50", 1
    rates = [float(r) for r in args.rates.split(",")]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_hop",
            *("--rates", args.rates, "--seconds", str(args.seconds)),
            *("--engines", args.engines, "--seed", str(args.seed)),
            # One instance: code before start_instance() cannot run more.
            *("--instances", "1"),
        )
    counts = [int(n) for n in args.instances.split(",")]
    variants = [
        (f"{e} x{n}" if e == "kafka" else e, e, n)
        for e in engines
        for n in (counts if e == "kafka" else [1])
    ]
    runs = {
        f"{rate:g}": {
            label: bench_engine(e, rate, args.seconds, args.seed, n) for label, e, n in variants
        }
        for rate in rates
    }
    compared = [("before", before["runs"]), ("after", runs)] if before else [("", runs)]
    c.show(
        "Event hop: AssessmentValidated appended -> allocation's budget row committed "
        f"({args.seconds:.0f}s per run)",
        [
            "code",
            "rate/s",
            "engine",
            "events",
            "sustained/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "CPU ms/event",
            "log-only p50/p99 ms",
            "p50 / log-only",
        ],
        [
            (
                code,
                rate,
                f"{label} + {r['store']}",
                r["budgets"],
                r["sustained_rate"],
                r["p50_ms"],
                r["p99_ms"],
                r["max_ms"],
                r["allocation_cpu_ms_per_event"],
                f"{r['log_only_floor']['p50_ms']} / {r['log_only_floor']['p99_ms']}",
                r["ratio_p50_to_floor"],
            )
            for rate in runs
            for label, e, n in variants
            for code, measured in compared
            # Runs of code before --instances existed are keyed by engine alone.
            if (r := measured[rate].get(label) or (measured[rate].get(e) if n == 1 else None))
        ],
    )
    c.write_result(
        "hop",
        {
            "smoke": args.smoke,
            "rates": rates,
            "seconds": args.seconds,
            "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
            "runs": runs,
            "before": before,
        },
    )


if __name__ == "__main__":
    main()
