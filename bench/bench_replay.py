"""Benchmark: audit replay, every chain and projection rebuilt from N journey events.

For each engine (the embedded SQLite log with audit on SQLite; Kafka with audit on
PostgreSQL) it writes N realistic journey events (whatif's seeded generator, copied: see
_common.synth_records), then measures side by side in the same run:

- the floor: the least work a rebuild could do. On Kafka a bare aiokafka consumer that
  only reads the topics; on the embedded log, reading the log and appending one row per
  event to a plain SQLite table. Each in a process of its own.
- the replay: the audit service (its live consumer already caught up, its store empty)
  is asked for POST /v1/replay and polled until done; events/s, the phases' times and
  the service's peak RSS (VmHWM) and its CPU time per 1,000 events.

Prints a table and writes bench/results/replay.json. Run it with

    .venv/bin/python bench/bench_replay.py [--events 1000000] [--engines embedded,kafka]
    PBJ_BENCH_QUICK=1 .venv/bin/python bench/bench_replay.py   # 100,000 events
    .venv/bin/python bench/bench_replay.py --smoke
    .venv/bin/python bench/bench_replay.py --events 100000 --engines embedded --before main

With --before REF the same benchmark runs first on the code at that git ref (its audit
service and log; today's script), then on this tree, and the table shows both with the
ratio of their replay rates (after / before), each beside the floor of its own run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx

TARGET_EVENTS_PER_SECOND = 50_000
TARGET_RATIO_TO_FLOOR = 0.5
TARGET_PEAK_RSS_MIB = 500
FLOOR_BATCH = 5_000  # what the replay polls at a time (services/audit/rebuild.LOG_BATCH)


# --- the floors (each runs in a child process: `--floor ENGINE LOG_URL EVENTS DIR`) -------


async def floor_embedded(log_url: str, events: int, work: Path) -> dict[str, Any]:
    from contracts.registry import ALL_TOPICS
    from servicekit.eventlog import open_event_log

    log = open_event_log(log_url)
    await log.start()
    consumer = log.consumer(f"floor-{time.time_ns()}", list(ALL_TOPICS))
    target = sqlite3.connect(work / "floor.db", isolation_level=None)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    target.execute(
        'CREATE TABLE copy (topic TEXT, partition INTEGER, "offset" INTEGER, value BLOB)'
    )
    started = time.perf_counter()
    read = 0
    while read < events:
        records = await consumer.poll(max_records=FLOOR_BATCH, timeout_ms=2000)
        if not records:
            break
        target.execute("BEGIN")
        target.executemany(
            "INSERT INTO copy VALUES (?, ?, ?, ?)",
            [(r.topic, r.partition, r.offset, r.value) for r in records],
        )
        target.execute("COMMIT")
        read += len(records)
    seconds = time.perf_counter() - started
    await consumer.close()
    await log.close()
    target.close()
    return {"events": read, "seconds": seconds}


async def floor_kafka(log_url: str, events: int, work: Path) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    from contracts.registry import ALL_TOPICS

    namespace = log_url.partition("namespace=")[2]
    consumer = AIOKafkaConsumer(
        *(f"{namespace}.{t}" for t in ALL_TOPICS),
        bootstrap_servers=c.KAFKA_BOOTSTRAP,
        group_id=f"{namespace}.floor-{time.time_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    started = time.perf_counter()
    read = 0
    try:
        while read < events:
            batches = await consumer.getmany(timeout_ms=5000, max_records=FLOOR_BATCH)
            if not batches:
                break
            read += sum(len(messages) for messages in batches.values())
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"events": read, "seconds": seconds}


def run_floor(engine: str, log_url: str, events: int, work: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--floor", engine, log_url, str(events), str(work)],
        check=True,
        capture_output=True,
        text=True,
        cwd=c.ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["events_per_second"] = round(result["events"] / result["seconds"])
    return result


# --- the replay ----------------------------------------------------------------------------


async def write_events(log_url: str, events: int, seed: int) -> dict[str, Any]:
    from contracts.registry import ALL_TOPICS
    from servicekit.eventlog import open_event_log

    log = open_event_log(log_url)
    await log.start()
    started = time.perf_counter()
    try:
        await log.ensure_topics(list(ALL_TOPICS))
        written = await c.publish_all(log, c.synth_records(events, seed))
        # The live audit consumer is caught up: its group's offsets are at the end, so
        # nothing but the replay works while we measure (the store starts empty).
        group = log.consumer("audit", list(ALL_TOPICS))
        ends = await group.end_offsets()
        from servicekit.eventlog import Record

        await group.commit(
            [Record(t, p, end - 1, "", b"", 0) for (t, p), end in ends.items() if end > 0]
        )
        await group.close()
    finally:
        await log.close()
    return {"events": written, "seconds": round(time.perf_counter() - started, 1)}


def run_replay(system: c.BenchSystem, events: int, timeout: float) -> dict[str, Any]:
    from contracts.vocabulary import Role

    url = system.urls()["audit"]
    headers = c.staff(system.data_dir)(Role.OPERATIONS)
    pid = system.pid("audit")
    before = c.proc_memory_mib(pid)
    cpu_before = c.cpu_seconds(pid)
    phases: dict[str, float] = {}
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        response = client.post(f"{url}/v1/replay", json={}, headers=headers)
        response.raise_for_status()
        replay_id = response.json()["replay_id"]
        status: dict[str, Any] = {}
        peak = before["peak_mib"]
        while time.perf_counter() - started < timeout:
            status = client.get(f"{url}/v1/replay/{replay_id}", headers=headers).json()
            phases.setdefault(status["phase"], round(time.perf_counter() - started, 2))
            peak = max(peak, c.proc_memory_mib(pid)["peak_mib"])
            if status["status"] != "running":
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - started
    if status.get("status") != "done":
        raise RuntimeError(f"replay did not finish in {timeout:.0f}s: {status}")
    after = c.proc_memory_mib(pid)
    cpu = c.cpu_seconds(pid) - cpu_before
    return {
        "events": status["processed"],
        "skipped": status["skipped"],
        "seconds": round(seconds, 2),
        "events_per_second": round(status["processed"] / seconds),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_1000_events": round(cpu * 1_000_000 / max(status["processed"], 1), 1),
        "phase_started_at_s": phases,
        "rss_before_mib": before["rss_mib"],
        "peak_rss_mib": max(peak, after["peak_mib"]),
    }


def bench_engine(engine: str, events: int, seed: int, timeout: float) -> dict[str, Any]:
    c.console.print(f"[bold]{engine}[/]: writing {events:,} events ...")
    with c.bench_system(engine, ["audit"], start=False) as system:
        generated = asyncio.run(write_events(system.log_url(), events, seed))
        c.console.print(f"  written in {generated['seconds']}s; floor ...")
        floor = run_floor(engine, system.log_url(), events, system.data_dir)
        c.console.print(f"  floor {floor['events_per_second']:,} events/s; replay ...")
        system.start()
        replay = run_replay(system, events, timeout)
        c.console.print(f"  replay {replay['events_per_second']:,} events/s")
    return {
        "store": "SQLite" if engine == "embedded" else "PostgreSQL",
        "generated": generated,
        "floor": floor,
        "replay": replay,
        "ratio_to_floor": c.ratio(replay["events_per_second"], floor["events_per_second"]),
        "meets": {
            "events_per_second": replay["events_per_second"] >= TARGET_EVENTS_PER_SECOND,
            "ratio_to_floor": replay["events_per_second"]
            >= TARGET_RATIO_TO_FLOOR * floor["events_per_second"],
            "peak_rss": replay["peak_rss_mib"] < TARGET_PEAK_RSS_MIB,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("PBJ_BENCH_QUICK") == "1"  # `PBJ_BENCH_QUICK=1 make bench`
    parser.add_argument("--events", type=int, default=100_000 if quick else 1_000_000)
    parser.add_argument("--engines", default="embedded,kafka")
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per replay")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    parser.add_argument("--before", help="a git ref to measure side by side (e.g. main)")
    parser.add_argument("--floor", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        engine, log_url, events, work = args.floor
        floor = floor_kafka if engine == "kafka" else floor_embedded
        print(json.dumps(asyncio.run(floor(log_url, int(events), Path(work)))))
        return
    if args.smoke:
        args.events = 300
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_replay",
            *("--events", str(args.events), "--engines", args.engines),
            *("--seed", str(args.seed), "--timeout", str(args.timeout)),
        )
    results = {
        engine: bench_engine(engine, args.events, args.seed, args.timeout) for engine in engines
    }
    compared = [("before", before["engines"]), ("after", results)] if before else [("", results)]
    c.show(
        f"Audit replay of {args.events:,} journey events (ratio = replay / floor, same run)",
        [
            "code",
            "engine",
            "floor ev/s",
            "replay ev/s",
            "ratio",
            "replay s",
            "CPU ms / 1k ev",
            "peak RSS MiB",
        ],
        [
            (
                code,
                f"{engine} + {r['store']}",
                f"{r['floor']['events_per_second']:,}",
                f"{r['replay']['events_per_second']:,}",
                f"{r['ratio_to_floor']:.3f}",
                r["replay"]["seconds"],
                r["replay"]["cpu_ms_per_1000_events"],
                r["replay"]["peak_rss_mib"],
            )
            for code, runs in compared
            for engine, r in runs.items()
        ],
    )
    if before:
        for engine, r in results.items():
            was = before["engines"][engine]["replay"]
            c.console.print(
                f"{engine}: replay after / before "
                f"{c.ratio(r['replay']['events_per_second'], was['events_per_second']):.2f}x, "
                f"CPU per event {was['cpu_ms_per_1000_events']} -> "
                f"{r['replay']['cpu_ms_per_1000_events']} ms per 1,000"
            )
    c.write_result(
        "replay",
        {
            "smoke": args.smoke,
            "events": args.events,
            "seed": args.seed,
            "targets": {
                "events_per_second": TARGET_EVENTS_PER_SECOND,
                "ratio_to_floor": TARGET_RATIO_TO_FLOOR,
                "peak_rss_mib": TARGET_PEAK_RSS_MIB,
            },
            "engines": results,
            "before": before,
        },
    )


if __name__ == "__main__":
    main()
