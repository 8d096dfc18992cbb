"""Benchmark: bulk conversion, N existing clients from assessment to payment set-up.

Starts the five services (Kafka + PostgreSQL, and the embedded log + SQLite) and converts
N legacy clients with `pbj.convert.convert_clients`, exactly what `pbj convert FILE` runs:
the four conversion routes (assessment, budget agreement, plan sign-off, payment set-up),
each taking 250 rows a request, with every step between them carried by the log. A Rich
progress bar shows each stage. Side by side, in the same run and on the same services,
the one-person-at-a-time path (pbj.journey.walk_journey through the ordinary routes, 16
people at a time) for --journey-people people: the ratio of the two rates is the figure
that survives this machine's noise.

Also reported: CPU seconds each service spent per converted person (from /proc, so it
does not depend on how busy the machine is), and from it the time 36,252 people would
take on two dedicated cores. Lancashire's 36,252 people (seed 003 ch.1); target under 10
minutes on Kafka + PostgreSQL. Audit keeps consuming in the background and is counted.
Prints a table and writes bench/results/conversion.json. Run it with

    .venv/bin/python bench/bench_conversion.py [--people 36252] [--engines kafka,embedded]
        [--batch 250] [--journey-people 50]
    .venv/bin/python bench/bench_conversion.py --smoke

With --before REF the same run is made first on the code at that git ref (today's bench/
over it, services started from that tree), and both are shown side by side: CPU ms per
converted person for each service, and people/s.

    .venv/bin/python bench/bench_conversion.py --people 1500 --engines kafka --before main
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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

LANCASHIRE_PEOPLE = 36_252
TARGET_SECONDS = 600


SERVICES = ["assessment", "allocation", "planning", "payments", "audit"]


class LeanClient(httpx.AsyncClient):
    """walk_journey's client, except that its final audit-history check is not waited for."""

    async def get(self, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        if str(url).endswith("/history") and "/v1/people/" in str(url):
            return httpx.Response(
                200,
                json={
                    "items": [
                        {"type": "pb.payments.payment-released.v1", "data": {}},
                        {
                            "type": "pb.planning.review-scheduled.v3",
                            "data": {"kind": "direct_payment"},
                        },
                    ]
                },
                request=httpx.Request("GET", url),
            )
        return await super().get(url, *args, **kwargs)


async def journeys(system: c.BenchSystem, people: int, concurrency: int) -> dict[str, Any]:
    """The one-at-a-time path: walk_journey through the ordinary routes."""
    from contracts.policy import PolicyBook
    from pbj.journey import walk_journey

    policy = PolicyBook.from_directory(c.ROOT / "policies").current("lancashire")
    staff = c.staff(system.data_dir)
    urls = system.urls()
    failures: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(people):
        queue.put_nowait(number)
    async with LeanClient(timeout=120) as client:

        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                try:
                    result = await walk_journey(
                        client, urls, staff, policy, person_number=number, timeout=120
                    )
                    if result.stage != "complete":
                        failures.append(f"{number}: {result.stage}")
                except Exception as err:  # counted and reported, not fatal
                    failures.append(f"{number}: {type(err).__name__}: {err}"[:300])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    done = people - len(failures)
    return {
        "people": people,
        "converted": done,
        "failed": len(failures),
        "failures": failures[:5],
        "seconds": round(seconds, 1),
        "people_per_second": round(done / seconds, 2),
    }


async def bulk(system: c.BenchSystem, people: int, batch: int, prefix: str) -> dict[str, Any]:
    """`pbj convert`'s path: the conversion routes, with a progress bar per stage."""
    from contracts.policy import PolicyBook
    from pbj.convert import STAGES, convert_clients, sample_clients

    policy = PolicyBook.from_directory(c.ROOT / "policies").current("lancashire")
    rows = sample_clients(policy, people, prefix=prefix)
    staff = c.staff(system.data_dir)
    before = {name: c.cpu_seconds(system.pid(name)) for name in SERVICES}
    # On Kafka + PostgreSQL the broker and the database server share the two cores with
    # the services: their CPU is measured too, so the time on two cores counts everything.
    servers = c.infrastructure_pids() if system.engine == "kafka" else {}
    servers_before = {name: c.tree_cpu_seconds(pid) for name, pid in servers.items()}
    own_before = time.process_time()
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=c.console,
    ) as progress:
        tasks = [progress.add_task(f"{system.engine}: {stage}", total=people) for stage in STAGES]
        async with httpx.AsyncClient(timeout=300) as client:
            report = await convert_clients(
                client,
                system.urls(),
                staff,
                policy,
                rows,
                batch=batch,
                advance=lambda stage, n: progress.advance(tasks[stage], n),
            )
    cpu = {
        name: round((c.cpu_seconds(system.pid(name)) - before[name]) * 1000 / people, 2)
        for name in SERVICES
    }
    cpu["pbj convert"] = round((time.process_time() - own_before) * 1000 / people, 2)
    servers_cpu = {
        name: round((c.tree_cpu_seconds(pid) - servers_before[name]) * 1000 / people, 2)
        for name, pid in servers.items()
    }
    rate = report.converted / report.seconds
    cpu_total = sum(cpu.values())
    everything = cpu_total + sum(servers_cpu.values())
    return {
        "people": people,
        "converted": report.converted,
        "failed": len(report.failures),
        "failures": list(report.failures.items())[:5],
        "requests": report.requests,
        "seconds": round(report.seconds, 1),
        "people_per_second": round(rate, 2),
        "cpu_ms_per_person": cpu,
        "cpu_ms_per_person_total": round(cpu_total, 1),
        "36252_seconds_at_this_rate": round(LANCASHIRE_PEOPLE / rate) if rate else None,
        "36252_seconds_on_two_free_cores": round(LANCASHIRE_PEOPLE * cpu_total / 1000 / 2),
        "server_cpu_ms_per_person": servers_cpu,
        "cpu_ms_per_person_with_servers": round(everything, 1),
        "36252_seconds_on_two_cores_with_servers": round(LANCASHIRE_PEOPLE * everything / 1000 / 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=LANCASHIRE_PEOPLE)
    parser.add_argument("--batch", type=int, default=250, help="rows per conversion request")
    parser.add_argument("--journey-people", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16, help="for the journey path")
    parser.add_argument("--engines", default="kafka,embedded")
    parser.add_argument("--before", help="a git ref to measure side by side (e.g. main)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    args = parser.parse_args()
    if args.smoke:
        args.people, args.journey_people, args.concurrency, args.batch = 3, 1, 1, 2
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_conversion",
            *("--people", str(args.people), "--batch", str(args.batch)),
            *("--journey-people", str(args.journey_people)),
            *("--concurrency", str(args.concurrency), "--engines", args.engines),
            *(["--smoke"] if args.smoke else []),
        )
    results: dict[str, Any] = {}
    for engine in engines:
        with c.bench_system(engine, SERVICES) as system:
            asyncio.run(bulk(system, 2, args.batch, "WARM"))  # every consumer and pool warm
            journey = asyncio.run(journeys(system, args.journey_people, args.concurrency))
            converted = asyncio.run(bulk(system, args.people, args.batch, "LEG"))
            results[engine] = {
                "bulk": converted,
                "journey": journey,
                "ratio_bulk_to_journey": c.ratio(
                    converted["people_per_second"], journey["people_per_second"]
                ),
                "meets": converted["people"] >= LANCASHIRE_PEOPLE
                and converted["converted"] == converted["people"]
                and converted["seconds"] < TARGET_SECONDS,
            }
    c.show(
        f"Bulk conversion: {args.people:,} people to payment set-up "
        f"(target: {LANCASHIRE_PEOPLE:,} in < {TARGET_SECONDS // 60} min on Kafka + PostgreSQL)",
        [
            "engine",
            "converted",
            "failed",
            "seconds",
            "people/s",
            "one-at-a-time people/s",
            "bulk / one-at-a-time",
            "CPU ms/person",
            "36,252 at this rate",
            "36,252 on 2 free cores",
            "with broker + database",
        ],
        [
            (
                e,
                r["bulk"]["converted"],
                r["bulk"]["failed"],
                r["bulk"]["seconds"],
                r["bulk"]["people_per_second"],
                r["journey"]["people_per_second"],
                r["ratio_bulk_to_journey"],
                r["bulk"]["cpu_ms_per_person_total"],
                f"{(r['bulk']['36252_seconds_at_this_rate'] or 0) / 60:.1f} min",
                f"{r['bulk']['36252_seconds_on_two_free_cores'] / 60:.1f} min",
                f"{r['bulk']['cpu_ms_per_person_with_servers']} ms/person, "
                f"{r['bulk']['36252_seconds_on_two_cores_with_servers'] / 60:.1f} min"
                if r["bulk"]["server_cpu_ms_per_person"]
                else "-",
            )
            for e, r in results.items()
        ],
    )
    for e, r in results.items():
        c.console.print(f"{e}: CPU ms per person by process: {r['bulk']['cpu_ms_per_person']}")
        if r["bulk"]["server_cpu_ms_per_person"]:
            c.console.print(f"{e}: and by server: {r['bulk']['server_cpu_ms_per_person']}")
    if before is not None:
        show_side_by_side(before, results)
    c.write_result(
        "conversion",
        {
            "smoke": args.smoke,
            "people": args.people,
            "batch": args.batch,
            "target_seconds_for_36252": TARGET_SECONDS,
            "engines": results,
            "before": before,
        },
    )


def show_side_by_side(before: dict[str, Any], after: dict[str, Any]) -> None:
    """CPU ms per converted person for each process, and people/s, before and after."""
    processes = [*SERVICES, "pbj convert"]
    rows = []
    for engine, now in after.items():
        then = before["engines"].get(engine)
        if then is None:
            continue
        old, new = then["bulk"], now["bulk"]
        servers = [
            name
            for name in new.get("server_cpu_ms_per_person", {})
            if name in old.get("server_cpu_ms_per_person", {})
        ]
        for name in [*processes, "total", *servers, "people/s"]:
            if name in servers:
                a, b = old["server_cpu_ms_per_person"][name], new["server_cpu_ms_per_person"][name]
            elif name == "total":
                a, b = old["cpu_ms_per_person_total"], new["cpu_ms_per_person_total"]
            elif name == "people/s":
                a, b = old["people_per_second"], new["people_per_second"]
            else:
                a, b = old["cpu_ms_per_person"][name], new["cpu_ms_per_person"][name]
            rows.append((engine, name, a, b, c.ratio(b, a)))
    c.show(
        f"Conversion before ({before['ref']}, {before['commit'][:10]}) and after, one run: "
        "CPU ms per converted person by process, and people/s",
        ["engine", "process", "before", "after", "after / before"],
        rows,
    )


if __name__ == "__main__":
    main()
