"""Benchmark: the same append-and-replay workload on our embedded log and on `eventsourcing`.

The peer is the `eventsourcing` library (PyPI, pinned in the dev extra) with its SQLite
application recorder: the layer that matches our log (append stored events in one
transaction; read them all back in order as notifications). Both get the same N realistic
journey events (whatif's generator, copied; ~1.8 KB each), appended in batches of
--batch in one transaction each, then replayed from the start in pages of 500:

- ours: EmbeddedEventLog.publish(batch) (topic + partition by key, offsets, headers),
  then a fresh consumer group polls until it has read all N.
- eventsourcing: SQLiteApplicationRecorder.insert_events(batch) (originator id = the
  person, version = their event count), then select_notifications(start, 500) until N.

Fair by construction:

- Same durability. Both files are in WAL mode with `synchronous=NORMAL`, the setting our
  log uses (ADR 0001): a commit survives the crash of any process; only a power cut can
  lose the last commits before a checkpoint, and never corrupts the file. `eventsourcing`
  leaves SQLite's default (FULL, an fsync of the WAL per commit), so its connections are
  given NORMAL too, and both files' settings are read back and reported. Left at FULL the
  peer's append rate follows the disk's fsync latency, which other work on the machine
  moves by several times (the earlier 0.6x-2x swings). Each file keeps its store's own
  page size (ours 16 KiB, ADR 0001; the peer SQLite's 4 KiB), both printed; same WAL
  auto-checkpoint threshold (1,000 pages); fresh files in the same directory every round.
  Both replays start from a settled log: the peer checkpoints inside its appends, ours on
  a thread of its own, whose last checkpoint the append phase waits for (an earlier log
  without that wait may carry one into its replay).
- Same conditions. --rounds rounds; each round runs every contestant once on fresh files,
  and the order rotates from round to round, so neither side always runs first (on a warm
  page cache, after the other's garbage, or into a load spike). The table reports each
  rate's median over the rounds and the ratio of the medians; the JSON keeps every round.

With --before REF our log as it was at that git ref (its servicekit/eventlog/embedded.py
and the base.py and wakeup.py beside it, loaded under other module names) runs as a third
contestant in the same rounds, for a before/after measured side by side. Prints a table
and writes bench/results/peer.json. PostgreSQL is not compared: the library's PostgreSQL
recorder needs psycopg 3, which this project does not otherwise use. Run it with

    .venv/bin/python bench/bench_peer.py [--events 100000] [--batch 100] [--rounds 5]
    .venv/bin/python bench/bench_peer.py --before main
    .venv/bin/python bench/bench_peer.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

REPLAY_PAGE = 500
SYNCHRONOUS = "NORMAL"
OURS = "pbj embedded log"
THEIRS = "eventsourcing SQLite"


class Phase:
    """Wall time and this process's CPU time (every thread) over a phase of a run."""

    def __enter__(self) -> Phase:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def settings_of(path: Path) -> dict[str, Any]:
    """The settings a file was written with that bear on speed and durability."""
    conn = sqlite3.connect(path)
    try:
        return {
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "wal_autocheckpoint": conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        }
    finally:
        conn.close()


async def ours(log_class: Any, path: Path, records: list[Any], batch: int) -> dict[str, Any]:
    from contracts.registry import ALL_TOPICS

    log = log_class(path)
    await log.start()
    await log.ensure_topics(list(ALL_TOPICS))
    synchronous = await log._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    with Phase() as append:
        for first in range(0, len(records), batch):
            await log.publish(records[first : first + batch])
        # The peer checkpoints inside its appends; ours defers that copy to a thread. Its
        # last one is append work: waited for here, not left to run into the replay.
        checkpointer = getattr(log, "_checkpointer", None)
        if hasattr(checkpointer, "wait_until_idle"):
            await asyncio.to_thread(checkpointer.wait_until_idle, 120)
    consumer = log.consumer("peer-replay", list(ALL_TOPICS))
    read = 0
    with Phase() as replay:
        while read < len(records):
            page = await consumer.poll(max_records=REPLAY_PAGE, timeout_ms=1000)
            if not page:
                break
            read += len(page)
    await consumer.close()
    await log.close()
    return {
        "append_seconds": append.wall,
        "replay_seconds": replay.wall,
        "append_cpu_seconds": append.cpu,
        "replay_cpu_seconds": replay.cpu,
        "read": read,
        "synchronous": synchronous,
    }


def theirs(path: Path, records: list[Any], batch: int) -> dict[str, Any]:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path), originator_id_type="text")
    create_connection = datastore.pool._create_connection

    def with_our_durability() -> Any:
        connection = create_connection()
        connection._sqlite_conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        return connection

    datastore.pool._create_connection = with_our_durability  # type: ignore[method-assign]
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    versions: dict[str, int] = {}

    def stored(record: Any) -> Any:
        version = versions.get(record.key, 0) + 1
        versions[record.key] = version
        return StoredEvent(record.key, version, record.topic, record.value)

    with Phase() as append:
        for first in range(0, len(records), batch):
            recorder.insert_events([stored(r) for r in records[first : first + batch]])
    read = 0
    position = 1
    with Phase() as replay:
        while read < len(records):
            page = recorder.select_notifications(position, REPLAY_PAGE)
            if not page:
                break
            read += len(page)
            position = page[-1].id + 1
    datastore.close()
    return {
        "append_seconds": append.wall,
        "replay_seconds": replay.wall,
        "append_cpu_seconds": append.cpu,
        "replay_cpu_seconds": replay.cpu,
        "read": read,
        "synchronous": synchronous,
    }


def log_class_at(ref: str) -> tuple[Any, str]:
    """EmbeddedEventLog as it was at a git ref, loaded beside today's: (class, commit).

    Its siblings in servicekit/eventlog (the Record it builds, the wake-ups) come from the
    same ref, so the contestant is that ref's log as a whole."""
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(
        ["git", "rev-parse", ref], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    directory = Path(tempfile.mkdtemp(prefix="pbj-peer-before-"))
    module: Any = None
    for name in ("base", "wakeup", "embedded"):
        source = subprocess.run(
            ["git", "show", f"{commit}:servicekit/eventlog/{name}.py"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        for sibling in ("base", "wakeup"):
            source = source.replace(
                f"servicekit.eventlog.{sibling} ".encode(), f"{sibling}_before ".encode()
            )
        file = directory / f"{name}_before.py"
        file.write_bytes(source)
        spec = importlib.util.spec_from_file_location(f"{name}_before", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"{name}_before"] = module
        spec.loader.exec_module(module)
    return module.EmbeddedEventLog, commit


def one_round(
    contestants: list[tuple[str, Callable[[Path], dict[str, Any]]]], directory: Path
) -> dict[str, dict[str, Any]]:
    results = {}
    for index, (name, run) in enumerate(contestants):
        path = directory / f"{index}.db"
        gc.collect()
        results[name] = run(path)
        results[name]["settings"] = {
            **settings_of(path),
            "synchronous": results[name].pop("synchronous"),
        }
        for leftover in directory.glob(f"{index}.db*"):
            leftover.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="events per append transaction")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, order rotating")
    parser.add_argument("--before", help="a git ref whose embedded log runs alongside")
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.rounds = 500, 2
    import eventsourcing

    from servicekit.eventlog.embedded import EmbeddedEventLog

    records = list(c.synth_records(args.events, args.seed))
    contestants: list[tuple[str, Callable[[Path], dict[str, Any]]]] = [
        (OURS, lambda p: asyncio.run(ours(EmbeddedEventLog, p, records, args.batch))),
        (THEIRS, lambda p: theirs(p, records, args.batch)),
    ]
    before_commit = None
    if args.before:
        before_class, before_commit = log_class_at(args.before)
        before_name = f"ours at {args.before} ({before_commit[:8]})"
        contestants.append(
            (before_name, lambda p: asyncio.run(ours(before_class, p, records, args.batch)))
        )
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="pbj-bench-peer-") as tmp:
        for number in range(args.rounds):
            shift = number % len(contestants)
            order = contestants[shift:] + contestants[:shift]
            rounds.append(one_round(order, Path(tmp)))
            c.console.print(
                f"round {number + 1}/{args.rounds}: "
                + ", ".join(
                    f"{name} {args.events / r['append_seconds']:,.0f} / "
                    f"{r['read'] / r['replay_seconds']:,.0f}"
                    for name, r in rounds[-1].items()
                )
            )
    results: dict[str, Any] = {}
    for name, _ in contestants:
        runs = [r[name] for r in rounds]
        appends = [args.events / r["append_seconds"] for r in runs]
        replays = [r["read"] / r["replay_seconds"] for r in runs]
        results[name] = {
            "append_events_per_second": round(statistics.median(appends)),
            "replay_events_per_second": round(statistics.median(replays)),
            "append_cpu_us_per_event": round(
                statistics.median(1e6 * r["append_cpu_seconds"] / args.events for r in runs), 2
            ),
            "replay_cpu_us_per_event": round(
                statistics.median(1e6 * r["replay_cpu_seconds"] / r["read"] for r in runs), 2
            ),
            "read": min(r["read"] for r in runs),
            "settings": runs[0]["settings"],
            "rounds": [
                {"append_events_per_second": round(a), "replay_events_per_second": round(b)}
                for a, b in zip(appends, replays, strict=True)
            ],
        }

    def ratios_of(name: str) -> dict[str, float]:
        a, b = results[name], results[THEIRS]
        return {
            phase: c.ratio(a[f"{phase}_events_per_second"], b[f"{phase}_events_per_second"])
            for phase in ("append", "replay")
        }

    ratios = ratios_of(OURS)
    per_round = [
        {
            "append": c.ratio(r[THEIRS]["append_seconds"], r[OURS]["append_seconds"]),
            "replay": c.ratio(
                r[OURS]["read"] / r[OURS]["replay_seconds"],
                r[THEIRS]["read"] / r[THEIRS]["replay_seconds"],
            ),
        }
        for r in rounds
    ]
    rows: list[tuple[str, ...]] = [
        (
            name,
            f"{r['append_events_per_second']:,}",
            f"{r['replay_events_per_second']:,}",
            f"{r['append_cpu_us_per_event']:.1f}",
            f"{r['replay_cpu_us_per_event']:.1f}",
        )
        for name, r in results.items()
    ]
    rows.append(
        (f"{OURS} / {THEIRS}", f"{ratios['append']:.2f}", f"{ratios['replay']:.2f}", "", "")
    )
    rows.append(
        (
            "  range over rounds",
            f"{min(r['append'] for r in per_round):.2f}-{max(r['append'] for r in per_round):.2f}",
            f"{min(r['replay'] for r in per_round):.2f}-{max(r['replay'] for r in per_round):.2f}",
            "",
            "",
        )
    )
    if args.before:
        before = ratios_of(before_name)
        rows.append(
            (
                f"{before_name} / {THEIRS}",
                f"{before['append']:.2f}",
                f"{before['replay']:.2f}",
                "",
                "",
            )
        )
    settings = {name: r["settings"] for name, r in results.items()}
    c.show(
        f"Append {args.events:,} events (batches of {args.batch}) and replay them: events/s, "
        f"median of {args.rounds} rounds",
        ["store", "append", "replay", "append CPU µs/event", "replay CPU µs/event"],
        rows,
    )
    c.console.print(f"settings: {settings}")
    c.write_result(
        "peer",
        {
            "smoke": args.smoke,
            "events": args.events,
            "batch": args.batch,
            "rounds": args.rounds,
            "peer": f"eventsourcing {eventsourcing.__version__}"
            if hasattr(eventsourcing, "__version__")
            else "eventsourcing",
            "before": None if not args.before else {"ref": args.before, "commit": before_commit},
            "results": results,
            "ratio_ours_to_peer": ratios,
            "ratio_ours_to_peer_per_round": per_round,
        },
    )


if __name__ == "__main__":
    main()
