"""Benchmark: the API under load, against a bare FastAPI endpoint on the same machine.

Starts the five services (embedded log + SQLite by default), walks one person through
so there is a budget to read, then loads from a SECOND process (httpx async, closed
loop: C clients each sending the next request when the last is answered, for --seconds,
loopback only):

- read:  allocation GET /v1/budgets/{budget_id} (the budget, as care managers read it)
- write: assessment POST /v1/assessments (a new self-assessment; every journey starts here)

at 50 and 200 concurrent clients, and the same against a bare FastAPI app on the same
uvicorn (bench/_bare_app.py: GET /read, POST /write; no auth, no database) as the limit
this machine and client can reach. The ratio service/bare of req/s is the figure.
Prints a table and writes bench/results/api.json. Run it with

    .venv/bin/python bench/bench_api.py [--clients 50,200] [--seconds 10] [--engines embedded]
    .venv/bin/python bench/bench_api.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx

# --- the load process (`--load SPEC_JSON`) -------------------------------------------------


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed-loop load: spec has url, method, clients, seconds, headers, body (or None)."""
    clients, seconds = int(spec["clients"]), float(spec["seconds"])
    latencies: list[float] = []
    errors: dict[str, int] = {}
    body_text = json.dumps(spec["body"]) if spec.get("body") is not None else None
    deadline = time.perf_counter() + seconds

    async def one_client(number: int) -> None:
        # A client (and connection) of its own per simulated user: one shared httpx pool
        # with hundreds of connections costs the load process more CPU than the server.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=30, limits=limits, headers=spec["headers"]) as client:
            sent = 0
            while time.perf_counter() < deadline:
                sent += 1
                content = None
                if body_text is not None:
                    content = body_text.replace("{n}", f"{number}x{sent}").encode()
                started = time.perf_counter()
                try:
                    response = await client.request(
                        spec["method"],
                        spec["url"],
                        content=content,
                        headers={"content-type": "application/json"} if content else None,
                    )
                    status: int | str = response.status_code
                except httpx.HTTPError as err:
                    status = type(err).__name__
                elapsed = time.perf_counter() - started
                if status in (200, 201):
                    latencies.append(elapsed)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "ok": len(latencies),
        "errors": errors,
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(latencies) / wall, 1),
        **c.summary_ms(latencies),
    }


async def load_all(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for spec in specs:
        results.append(await load(spec))
        await asyncio.sleep(0.5)  # let the server settle between rows
    return results


def run_loads(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every load, one after the other, in ONE second process (loopback only)."""
    done = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(specs)],
        check=True,
        capture_output=True,
        text=True,
        cwd=c.ROOT,
        timeout=sum(float(s["seconds"]) + 60 for s in specs),
    )
    results: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# --- the benchmark -------------------------------------------------------------------------

WRITE_BODY = {
    "person_id": "LOAD{n}",
    "client_group": "older_people",
    "completed_by": "supported",
    "team": "Preston",
    "key_worker_id": "KW1",
    "age_band": "75-84",
    "community_based": True,
}


def targets_for_services(system: c.BenchSystem) -> dict[str, dict[str, Any]]:
    from contracts.policy import PolicyBook
    from contracts.vocabulary import Role
    from pbj.journey import walk_journey

    staff = c.staff(system.data_dir)
    urls = system.urls()
    policy = PolicyBook.from_directory(c.ROOT / "policies").current("lancashire")

    async def walk() -> Any:
        async with httpx.AsyncClient(timeout=60) as client:
            return await walk_journey(client, urls, staff, policy)

    journey = asyncio.run(walk())
    headers = staff(Role.CARE_MANAGER)
    return {
        "read": {
            "endpoint": "GET allocation /v1/budgets/{id}",
            "url": f"{urls['allocation']}/v1/budgets/{journey.budget_id}",
            "method": "GET",
            "headers": headers,
            "body": None,
        },
        "write": {
            "endpoint": "POST assessment /v1/assessments",
            "url": f"{urls['assessment']}/v1/assessments",
            "method": "POST",
            "headers": headers,
            "body": WRITE_BODY,
        },
    }


def bare_targets(url: str) -> dict[str, dict[str, Any]]:
    return {
        "read": {
            "endpoint": "GET bare /read",
            "url": f"{url}/read",
            "method": "GET",
            "headers": {},
            "body": None,
        },
        "write": {
            "endpoint": "POST bare /write",
            "url": f"{url}/write",
            "method": "POST",
            "headers": {},
            "body": {"person_id": "LOAD{n}", "text": "hello"},
        },
    }


def run_matrix(
    targets: dict[str, dict[str, Any]], clients: list[int], seconds: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = [(kind, count) for kind in targets for count in clients]
    results = run_loads([{**targets[k], "clients": n, "seconds": seconds} for k, n in keys])
    for (kind, count), result in zip(keys, results, strict=True):
        target = targets[kind]
        c.console.print(
            f"  {target['endpoint']} x{count}: {result['requests_per_second']} req/s, "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}"
        )
        out[f"{kind}@{count}"] = {"endpoint": target["endpoint"], **result}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--engines", default="embedded")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that takes seconds")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(load_all(json.loads(args.load)))))
        return
    if args.smoke:
        args.clients, args.seconds = "2", 0.3
    clients = [int(x) for x in args.clients.split(",")]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    with c.bare_app() as (url, _):
        c.console.print("[bold]bare FastAPI[/] ...")
        bare = run_matrix(bare_targets(url), clients, args.seconds)
    services: dict[str, Any] = {}
    for engine in engines:
        with c.bench_system(
            engine, ["assessment", "allocation", "planning", "payments", "audit"]
        ) as system:
            c.console.print(f"[bold]{engine}[/] ...")
            services[engine] = run_matrix(targets_for_services(system), clients, args.seconds)
    ratios = {
        engine: {
            key: c.ratio(r["requests_per_second"], bare[key]["requests_per_second"])
            for key, r in results.items()
        }
        for engine, results in services.items()
    }
    rows = []
    for key, b in bare.items():
        rows.append(
            (
                f"bare {key}",
                b["requests_per_second"],
                b["p50_ms"],
                b["p99_ms"],
                "1.00",
                sum(b["errors"].values()),
            )
        )
        for engine, results in services.items():
            r = results[key]
            rows.append(
                (
                    f"{engine} {r['endpoint'].split()[0]} {key}",
                    r["requests_per_second"],
                    r["p50_ms"],
                    r["p99_ms"],
                    f"{ratios[engine][key]:.2f}",
                    sum(r["errors"].values()),
                )
            )
    c.show(
        f"API under load ({args.seconds:.0f}s per row, closed loop from a second process)",
        ["endpoint@clients", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "errors"],
        rows,
    )
    c.write_result(
        "api",
        {
            "smoke": args.smoke,
            "clients": clients,
            "seconds": args.seconds,
            "bare": bare,
            "services": services,
            "ratio_to_bare": ratios,
        },
    )


if __name__ == "__main__":
    main()
