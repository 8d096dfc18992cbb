"""Benchmark: bulk conversion, N people from self-assessment to payment set-up via the APIs.

Starts the five services on Kafka + PostgreSQL (fresh namespace and databases) and walks
N people through pbj.journey.walk_journey, --concurrency at a time, as a council's
migration script would: assessment, questionnaire, validation, the indicative budget
(through the log), agreement, plan, sign-off, the deployment (through the log), the
direct-payment arrangement, the signed agreement and the first payment released. That is
payment set-up and a little more. The journey's last step (waiting until audit's history
shows the payment) is answered by the benchmark's own client (LeanClient): audit keeps
consuming in the background, on the same CPUs, but a conversion does not wait for it.

Reports people/s and extrapolates to Lancashire's 36,252 people (seed 003 ch.1); target
under 10 minutes. Side by side: the same walk on the embedded log + SQLite (--engines).
Prints a table and writes bench/results/conversion.json. Run it with

    .venv/bin/python bench/bench_conversion.py [--people 200] [--concurrency 16]
        [--engines kafka,embedded]
    .venv/bin/python bench/bench_conversion.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

LANCASHIRE_PEOPLE = 36_252
TARGET_SECONDS = 600


class LeanClient(httpx.AsyncClient):
    """walk_journey's client, except that its final audit-history check is not waited for."""

    async def get(self, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        if str(url).endswith("/history") and "/v1/people/" in str(url):
            return httpx.Response(
                200,
                json={"items": [{"type": "pb.payments.payment-released.v1"}]},
                request=httpx.Request("GET", url),
            )
        return await super().get(url, *args, **kwargs)


async def convert(system: c.BenchSystem, people: int, concurrency: int) -> dict[str, Any]:
    from contracts.policy import PolicyBook
    from pbj.journey import walk_journey

    book = PolicyBook.from_directory(c.ROOT / "policies")
    policy = book.current("lancashire")
    staff = c.staff(system.data_dir)
    urls = system.urls()
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    failures: list[str] = []
    step_seconds: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(people):
        queue.put_nowait(number)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=c.console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"{system.engine}: people converted", total=people)
        async with LeanClient(timeout=120, limits=limits) as client:

            async def worker() -> None:
                while True:
                    try:
                        number = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    started = time.perf_counter()
                    try:
                        result = await walk_journey(
                            client, urls, staff, policy, person_number=number, timeout=120
                        )
                        if result.stage != "complete":
                            failures.append(f"{number}: {result.stage}")
                    except Exception as err:  # counted and reported, not fatal
                        failures.append(f"{number}: {type(err).__name__}: {err}"[:300])
                    step_seconds.append(time.perf_counter() - started)
                    progress.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    done = people - len(failures)
    rate = done / seconds
    return {
        "people": people,
        "converted": done,
        "failures": failures[:10],
        "failed": len(failures),
        "seconds": round(seconds, 1),
        "people_per_second": round(rate, 2),
        "journey_latency": c.summary_ms(step_seconds),
        "extrapolated_36252_seconds": round(LANCASHIRE_PEOPLE / rate, 0) if rate else None,
        "meets": bool(rate) and LANCASHIRE_PEOPLE / rate < TARGET_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--engines", default="kafka,embedded")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.people, args.concurrency = 1, 1
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results: dict[str, Any] = {}
    for engine in engines:
        with c.bench_system(
            engine, ["assessment", "allocation", "planning", "payments", "audit"]
        ) as system:
            if not args.smoke:  # one person first: every consumer and pool warm
                asyncio.run(convert(system, 1, 1))
            results[engine] = asyncio.run(convert(system, args.people, args.concurrency))
    c.show(
        f"Bulk conversion: {args.people} people, {args.concurrency} at a time, "
        f"extrapolated to {LANCASHIRE_PEOPLE:,} (target < {TARGET_SECONDS // 60} min)",
        ["engine", "converted", "failed", "seconds", "people/s", "36,252 in", "journey p50 s"],
        [
            (
                e,
                r["converted"],
                r["failed"],
                r["seconds"],
                r["people_per_second"],
                f"{(r['extrapolated_36252_seconds'] or 0) / 60:.0f} min",
                f"{r['journey_latency']['p50_ms'] / 1000:.1f}",
            )
            for e, r in results.items()
        ],
    )
    if "kafka" in results and "embedded" in results:
        kafka, embedded = results["kafka"], results["embedded"]
        ratio = c.ratio(kafka["people_per_second"], embedded["people_per_second"])
        c.console.print(f"people/s Kafka / embedded: {ratio}")
    c.write_result(
        "conversion",
        {
            "smoke": args.smoke,
            "people": args.people,
            "concurrency": args.concurrency,
            "target_seconds_for_36252": TARGET_SECONDS,
            "engines": results,
        },
    )


if __name__ == "__main__":
    main()
