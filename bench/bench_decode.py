"""Benchmark: decoding one event, the pydantic models' path against the msgspec path.

Every consumer and every replay turns each record's bytes into an Envelope with
`contracts.envelope.decode`. This times, in one process, alternating rounds over the same
realistic journey records (bench/_common.synth_records):

- models: `decode_with_models`, JSON parsed into dicts, then each event's pydantic model
  validates them (the path every record took before ADR 0021, and the one that still
  decides any record the msgspec Structs refuse);
- msgspec: `decode`, the record read and validated by msgspec in one pass.

It checks first that both give the same envelope for every record, then reports the
median CPU µs per event of each and their ratio. The same for writing a record: the
CloudEvents SDK's `to_structured` against `Envelope.to_message` (the same bytes). And the
audit replay's decode step as the replay runs it: batches of 5,000 records decoded and
kept with their facts until the batch is done, with Python's cyclic collector running
and paused (services/audit/rebuild.cyclic_collector_paused). Prints a table and writes
bench/results/decode.json. Run it with

    .venv/bin/python bench/bench_decode.py [--events 20000] [--rounds 5]
    .venv/bin/python bench/bench_decode.py --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from cloudevents.core.bindings.kafka import KafkaMessage, to_structured
from cloudevents.core.formats.json import JSONFormat

from contracts.envelope import Envelope, decode, decode_with_models
from services.audit.domain import facts_from
from services.audit.rebuild import LOG_BATCH, cyclic_collector_paused


def time_per_event(work: Callable[[Any], object], inputs: list[Any], events: int) -> float:
    """CPU microseconds per event for one pass of `work` over every input (CPU time:
    other work on the machine disturbs it far less than the wall clock)."""
    started = time.process_time()
    for item in inputs:
        work(item)
    return (time.process_time() - started) / events * 1e6


def replay_step(decoder: Callable[[bytes], Envelope], paused: bool) -> Callable[[Any], object]:
    """The replay's decode step over a list of record values, a batch at a time."""

    def step(values: list[bytes]) -> None:
        for start in range(0, len(values), LOG_BATCH):
            batch = {}
            with cyclic_collector_paused() if paused else contextlib.nullcontext():
                for value in values[start : start + LOG_BATCH]:
                    envelope = decoder(value)
                    batch[envelope.id] = (facts_from(envelope), envelope.event)

    return step


def written_by_the_sdk(envelope: Envelope) -> KafkaMessage:
    return to_structured(
        envelope.to_cloudevent(), JSONFormat(), key_mapper=lambda _: envelope.subject
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.rounds = 300, 2

    values = [record.value for record in c.synth_records(args.events, args.seed)]
    mismatched = sum(1 for value in values if decode(value) != decode_with_models(value))
    if mismatched:
        raise SystemExit(f"{mismatched} records decode differently on the two paths")

    envelopes = [decode(value) for value in values]
    if any(e.to_message().value != written_by_the_sdk(e).value for e in envelopes):
        raise SystemExit("records are written differently from the CloudEvents SDK")

    paths: dict[str, tuple[Callable[[Any], object], list[Any]]] = {
        "models (pydantic)": (decode_with_models, values),
        "msgspec": (decode, values),
        "write: CloudEvents SDK": (written_by_the_sdk, envelopes),
        "write: to_message": (Envelope.to_message, envelopes),
    }
    batches = [values]  # one call over all the values, timed per event below
    for decoder_name, decoder in (("models", decode_with_models), ("msgspec", decode)):
        for paused in (False, True):
            collector = "paused" if paused else "running"
            name = f"replay step: {decoder_name}, collector {collector}"
            paths[name] = (replay_step(decoder, paused), batches)
    rounds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, (work, inputs) in paths.items():
            rounds[name].append(time_per_event(work, inputs, len(values)))
    median = {name: statistics.median(times) for name, times in rounds.items()}
    speedup = c.ratio(median["models (pydantic)"], median["msgspec"])
    write_speedup = c.ratio(median["write: CloudEvents SDK"], median["write: to_message"])
    replay_speedup = c.ratio(
        median["replay step: models, collector running"],
        median["replay step: msgspec, collector paused"],
    )

    mean_bytes = sum(map(len, values)) / len(values)
    c.show(
        f"Decoding {len(values):,} journey records (~{mean_bytes:,.0f} bytes each), "
        f"median of {args.rounds} alternating rounds",
        ["path", "CPU µs per event", "events/s of CPU", "rounds (µs per event)"],
        [
            (
                name,
                f"{median[name]:.1f}",
                f"{1e6 / median[name]:,.0f}",
                ", ".join(f"{t:.1f}" for t in rounds[name]),
            )
            for name in paths
        ]
        + [
            ("decode: models / msgspec", f"{speedup:.2f}×", "", ""),
            ("write: SDK / to_message", f"{write_speedup:.2f}×", "", ""),
            ("replay step: before / after", f"{replay_speedup:.2f}×", "", ""),
        ],
    )
    document: dict[str, Any] = {
        "smoke": args.smoke,
        "events": len(values),
        "mean_record_bytes": round(mean_bytes),
        "rounds": args.rounds,
        "same_envelopes": True,
        "paths": {
            name: {
                "median_us_per_event": round(median[name], 2),
                "events_per_second": round(1e6 / median[name]),
                "rounds_us_per_event": [round(t, 2) for t in rounds[name]],
            }
            for name in paths
        },
        "speedup_models_over_msgspec": round(speedup, 2),
        "same_bytes_written": True,
        "speedup_sdk_over_to_message": round(write_speedup, 2),
        "speedup_replay_step_before_over_after": round(replay_speedup, 2),
    }
    c.write_result("decode", document)


if __name__ == "__main__":
    main()
