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

Both in this process, one after the other, on fresh files in the same directory. The
figures: events/s for each phase and ours/theirs. PostgreSQL is not compared: the
library's PostgreSQL recorder needs psycopg 3, which this project does not otherwise use.
Prints a table and writes bench/results/peer.json. Run it with

    .venv/bin/python bench/bench_peer.py [--events 100000] [--batch 100]
    .venv/bin/python bench/bench_peer.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

REPLAY_PAGE = 500


async def ours(path: Path, records: list[Any], batch: int) -> dict[str, float]:
    from contracts.registry import ALL_TOPICS
    from servicekit.eventlog.embedded import EmbeddedEventLog

    log = EmbeddedEventLog(path)
    await log.start()
    await log.ensure_topics(list(ALL_TOPICS))
    started = time.perf_counter()
    for first in range(0, len(records), batch):
        await log.publish(records[first : first + batch])
    append = time.perf_counter() - started
    consumer = log.consumer("peer-replay", list(ALL_TOPICS))
    started = time.perf_counter()
    read = 0
    while read < len(records):
        page = await consumer.poll(max_records=REPLAY_PAGE, timeout_ms=1000)
        if not page:
            break
        read += len(page)
    replay = time.perf_counter() - started
    await consumer.close()
    await log.close()
    return {"append_seconds": append, "replay_seconds": replay, "read": read}


def theirs(path: Path, records: list[Any], batch: int) -> dict[str, float]:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path), originator_id_type="text")
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    versions: dict[str, int] = {}

    def stored(record: Any) -> Any:
        version = versions.get(record.key, 0) + 1
        versions[record.key] = version
        return StoredEvent(record.key, version, record.topic, record.value)

    started = time.perf_counter()
    for first in range(0, len(records), batch):
        recorder.insert_events([stored(r) for r in records[first : first + batch]])
    append = time.perf_counter() - started
    started = time.perf_counter()
    read = 0
    position = 1
    while read < len(records):
        page = recorder.select_notifications(position, REPLAY_PAGE)
        if not page:
            break
        read += len(page)
        position = page[-1].id + 1
    replay = time.perf_counter() - started
    datastore.close()
    return {"append_seconds": append, "replay_seconds": replay, "read": read}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="events per append transaction")
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.events = 500
    import eventsourcing

    records = list(c.synth_records(args.events, args.seed))
    with tempfile.TemporaryDirectory(prefix="pbj-bench-peer-") as tmp:
        mine = asyncio.run(ours(Path(tmp) / "ours.db", records, args.batch))
        peer = theirs(Path(tmp) / "eventsourcing.db", records, args.batch)
    results: dict[str, Any] = {}
    for name, r in (("pbj embedded log", mine), ("eventsourcing SQLite", peer)):
        results[name] = {
            "append_events_per_second": round(args.events / r["append_seconds"]),
            "replay_events_per_second": round(r["read"] / r["replay_seconds"]),
            "read": r["read"],
            "append_seconds": round(r["append_seconds"], 2),
            "replay_seconds": round(r["replay_seconds"], 2),
        }
    a, b = results["pbj embedded log"], results["eventsourcing SQLite"]
    ratios = {
        "append": c.ratio(a["append_events_per_second"], b["append_events_per_second"]),
        "replay": c.ratio(a["replay_events_per_second"], b["replay_events_per_second"]),
    }
    c.show(
        f"Append {args.events:,} events (batches of {args.batch}) and replay them: events/s",
        ["store", "append", "replay"],
        [
            *(
                (name, f"{r['append_events_per_second']:,}", f"{r['replay_events_per_second']:,}")
                for name, r in results.items()
            ),
            ("ours / theirs", f"{ratios['append']:.2f}", f"{ratios['replay']:.2f}"),
        ],
    )
    c.write_result(
        "peer",
        {
            "smoke": args.smoke,
            "events": args.events,
            "batch": args.batch,
            "peer": f"eventsourcing {eventsourcing.__version__}"
            if hasattr(eventsourcing, "__version__")
            else "eventsourcing",
            "results": results,
            "ratio_ours_to_peer": ratios,
        },
    )


if __name__ == "__main__":
    main()
