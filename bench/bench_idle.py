"""Benchmark: what the five services and the portal cost while nobody uses them.

Starts the five services and the portal (embedded log + SQLite; and Kafka + PostgreSQL),
waits until every one is ready, lets them settle, then reads each process's VmRSS and the
CPU time it uses over a window of --window seconds (user + system, from /proc), as a
share of one core. Side by side: a bare FastAPI app on the same uvicorn
(bench/_bare_app.py), the least a service of this stack can weigh. Targets: under
150 MiB and under 1 % of a core each. With --before REF the same is measured on the
code at that git ref (today's bench/ over it) in the same run, and the table shows both.
Prints a table and writes bench/results/idle.json. Run it with

    .venv/bin/python bench/bench_idle.py [--engines embedded,kafka] [--settle 5] [--window 30]
    .venv/bin/python bench/bench_idle.py --engines embedded --before main
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

from pbj.processes import PORTAL, SERVICES

TARGET_MIB = 150
TARGET_CPU_PERCENT = 1.0
PROCESSES = [*SERVICES, PORTAL]


def cpu_percent_over(pids: dict[str, int], window: float) -> dict[str, float]:
    """Each process's CPU over the same window, as a percentage of one core."""
    before = {name: c.cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    return {
        name: round(100 * (c.cpu_seconds(pid) - before[name]) / elapsed, 2)
        for name, pid in pids.items()
    }


def measure(engine: str, settle: float, window: float) -> dict[str, Any]:
    with c.bench_system(engine, PROCESSES) as system:
        time.sleep(settle)
        pids = {name: system.pid(name) for name in PROCESSES}
        memory = {name: c.proc_memory_mib(pid) for name, pid in pids.items()}
        cpu = cpu_percent_over(pids, window)
    return {name: {**memory[name], "cpu_percent": cpu[name]} for name in PROCESSES}


def measure_here(engines: list[str], settle: float, window: float) -> dict[str, Any]:
    with c.bare_app() as (_, pid):
        time.sleep(settle)
        bare = {**c.proc_memory_mib(pid), "cpu_percent": cpu_percent_over({"b": pid}, window)["b"]}
    return {"bare_fastapi": bare, "engines": {e: measure(e, settle, window) for e in engines}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="embedded,kafka")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after ready")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of CPU measured")
    parser.add_argument("--before", help="a git ref to measure side by side (e.g. main)")
    parser.add_argument("--smoke", action="store_true", help="a short settle and window")
    args = parser.parse_args()
    if args.smoke:
        args.settle, args.window = 0.5, 1.0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_idle",
            *("--engines", ",".join(engines)),
            *("--settle", str(args.settle), "--window", str(args.window)),
        )
    now = measure_here(engines, args.settle, args.window)
    bare, results = now["bare_fastapi"], now["engines"]

    columns = ["process"]
    for e in engines:
        if before is not None:
            columns += [f"{e} CPU % before", f"{e} CPU % after", f"{e} MiB before", f"{e} MiB"]
        else:
            columns += [f"{e} CPU %", f"{e} MiB"]
    rows: list[tuple[Any, ...]] = []
    for name in ["bare", *PROCESSES]:
        row: list[Any] = ["bare FastAPI app" if name == "bare" else name]
        for e in engines:
            here = bare if name == "bare" else results[e][name]
            if before is not None:
                then = before["bare_fastapi"] if name == "bare" else before["engines"][e][name]
                row += [then["cpu_percent"], here["cpu_percent"]]
                row += [f"{then['rss_mib']:.0f}", f"{here['rss_mib']:.0f}"]
            else:
                row += [here["cpu_percent"], f"{here['rss_mib']:.0f}"]
        rows.append(tuple(row))
    c.show(
        f"Idle: CPU over {args.window:.0f}s (% of one core, target < {TARGET_CPU_PERCENT}) and "
        f"RSS (MiB, target < {TARGET_MIB})",
        columns,
        rows,
    )
    c.write_result(
        "idle",
        {
            "smoke": args.smoke,
            "settle_seconds": args.settle,
            "window_seconds": args.window,
            "target_mib": TARGET_MIB,
            "target_cpu_percent": TARGET_CPU_PERCENT,
            "bare_fastapi": bare,
            "engines": results,
            "ratio_to_bare": {
                e: {n: c.ratio(results[e][n]["rss_mib"], bare["rss_mib"]) for n in SERVICES}
                for e in engines
            },
            "meets": {
                e: all(results[e][n]["rss_mib"] < TARGET_MIB for n in SERVICES) for e in engines
            },
            "meets_cpu": {
                e: all(results[e][n]["cpu_percent"] < TARGET_CPU_PERCENT for n in SERVICES)
                for e in engines
            },
            "before": None
            if before is None
            else {
                "ref": before["ref"],
                "commit": before["commit"],
                "bare_fastapi": before["bare_fastapi"],
                "engines": before["engines"],
            },
        },
    )


if __name__ == "__main__":
    main()
