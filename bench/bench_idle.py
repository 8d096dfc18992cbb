"""Benchmark: the idle resident memory of each of the five services after start.

Starts the five services (embedded log + SQLite; and Kafka + PostgreSQL), waits until
every one is ready, lets them settle, and reads each process's VmRSS from /proc. Side by
side: a bare FastAPI app on the same uvicorn (bench/_bare_app.py), the least a service
of this stack can weigh. Target: under 150 MiB each. Prints a table and writes
bench/results/idle.json. Run it with

    .venv/bin/python bench/bench_idle.py [--engines embedded,kafka] [--settle 5]
    .venv/bin/python bench/bench_idle.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from pbj.processes import SERVICES

TARGET_MIB = 150


def measure(engine: str, settle: float) -> dict[str, Any]:
    with c.bench_system(engine, list(SERVICES)) as system:
        time.sleep(settle)
        return {name: c.proc_memory_mib(system.pid(name)) for name in SERVICES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="embedded,kafka")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after ready")
    parser.add_argument("--smoke", action="store_true", help="a short settle")
    args = parser.parse_args()
    if args.smoke:
        args.settle = 0.5
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    with c.bare_app() as (_, pid):
        time.sleep(args.settle)
        bare = c.proc_memory_mib(pid)
    results = {engine: measure(engine, args.settle) for engine in engines}
    rows = [("bare FastAPI app", *(f"{bare['rss_mib']:.0f}" for _ in engines), "1.00")]
    for name in SERVICES:
        worst = max(results[e][name]["rss_mib"] for e in engines)
        rows.append(
            (
                name,
                *(f"{results[e][name]['rss_mib']:.0f}" for e in engines),
                f"{worst / bare['rss_mib']:.2f}",
            )
        )
    c.show(
        f"Idle RSS (MiB) after start, target < {TARGET_MIB} MiB",
        ["process", *engines, "worst / bare"],
        rows,
    )
    c.write_result(
        "idle",
        {
            "smoke": args.smoke,
            "settle_seconds": args.settle,
            "target_mib": TARGET_MIB,
            "bare_fastapi": bare,
            "engines": results,
            "ratio_to_bare": {
                e: {n: c.ratio(results[e][n]["rss_mib"], bare["rss_mib"]) for n in SERVICES}
                for e in engines
            },
            "meets": {
                e: all(results[e][n]["rss_mib"] < TARGET_MIB for n in SERVICES) for e in engines
            },
        },
    )


if __name__ == "__main__":
    main()
