"""Benchmark: the policy what-if over Lancashire's whole cohort.

Seed 003 ch.1: "During 2007/08 ... 36,252 individuals being supported" in Lancashire. This
generates that many people (with budgets, plans and deployments for most) into a temporary
embedded event log, then times, in a fresh process, what an officer's `pbj whatif run`
does: read the log, compare every budget under the policy in force and a proposed one,
and write the JSON, CSV and HTML reports. Prints a table and writes
bench/results/whatif.json. Not a test: run it with

    .venv/bin/python bench/bench_whatif.py [--people 36252] [--seed 2009]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "whatif.json"
LANCASHIRE_PEOPLE = 36_252  # seed 003 ch.1, people supported in 2007/08
TARGET_SECONDS = 60


def write_proposal(path: Path) -> Path:
    """A plausible proposal touching prices, the lower scale and ceilings."""
    raw = yaml.safe_load((ROOT / "policies" / "lancashire.yaml").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["version"] = "2026.1-bench"
    raw["effective_from"] = "2026-04-01"
    raw["ras"]["price_per_point_weekly_pence"].update(
        {"older_people": 950, "learning_disability": 1_050}
    )
    raw["ras"]["lower_scale_basis_points"] = 7_500
    raw["ras"]["ceilings_weekly_pence"] = {"older_people": 45_000, "mental_health": 40_000}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def measure(log: Path, proposed: Path, out: Path) -> dict[str, Any]:
    """In the child process: one what-if run, timed by phase, with this process's peak RSS."""
    from whatif.runner import run_whatif

    started = time.perf_counter()
    run = asyncio.run(
        run_whatif(proposed, log_url=f"sqlite:///{log}", out_dir=out, show_progress=False)
    )
    total = time.perf_counter() - started
    t = run.comparison.total
    return {
        "people": t.people + len(run.comparison.excluded),
        "people_compared": t.people,
        "records_read": run.info.records_read,
        "seconds": {**run.seconds, "total": total},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outputs_bytes": {kind: path.stat().st_size for kind, path in run.written.items()},
        "winners": t.winners,
        "losers": t.losers,
        "unchanged": t.unchanged,
        "annual_now_pence": t.annual_now,
        "annual_proposed_pence": t.annual_proposed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=LANCASHIRE_PEOPLE)
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument(
        "--measure", nargs=3, metavar=("LOG", "PROPOSED", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        log, proposed, out = (Path(a) for a in args.measure)
        print(json.dumps(measure(log, proposed, out)))
        return

    from contracts.policy import load_policy
    from whatif.generate import write_cohort

    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        work = Path(tmp)
        log = work / "eventlog.db"
        policy = load_policy(ROOT / "policies" / "lancashire.yaml")
        console.print(f"Generating {args.people:,} Lancashire people into {log} ...")
        generated = asyncio.run(write_cohort(log, policy, args.people, args.seed))
        proposed = write_proposal(work / "proposed.yaml")
        console.print(
            f"  {generated.events:,} events in {generated.seconds:.1f}s; "
            f"log {log.stat().st_size / 2**20:.1f} MiB. Running the what-if in a fresh process ..."
        )
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(log), str(proposed), str(work / "out")],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        process_seconds = time.perf_counter() - started
        result = json.loads(child.stdout.strip().splitlines()[-1])

    seconds = result["seconds"]
    people = result["people"]
    table = Table(title="pbj whatif run: Lancashire's cohort (seed 003: 36,252 people)")
    for column in (
        "people",
        "events read",
        "read s",
        "compare s",
        "write s",
        "total s",
        "people/s",
        "peak RSS",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{people:,}",
        f"{result['records_read']:,}",
        f"{seconds['read']:.1f}",
        f"{seconds['compare']:.1f}",
        f"{seconds['write']:.1f}",
        f"{seconds['total']:.1f}",
        f"{people / seconds['total']:,.0f}",
        f"{result['peak_rss_mib']:.0f} MiB",
    )
    console.print(table)
    verdict = "within" if seconds["total"] < TARGET_SECONDS else "OVER"
    console.print(
        f"{verdict} the {TARGET_SECONDS}s target; {process_seconds:.1f}s for the whole process "
        f"(interpreter start and imports included) on {os.cpu_count()} CPU(s)."
    )
    document = {
        "benchmark": "whatif",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seed": args.seed,
        "generated": {
            "people": generated.people,
            "events": generated.events,
            "seconds": round(generated.seconds, 2),
        },
        "run": {
            **result,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "process_seconds": round(process_seconds, 2),
            "people_per_second": round(people / seconds["total"]),
            "peak_rss_mib": round(result["peak_rss_mib"], 1),
        },
        "target_seconds": TARGET_SECONDS,
        "within_target": seconds["total"] < TARGET_SECONDS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    console.print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
