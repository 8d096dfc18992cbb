"""Benchmark: the API under load, against a bare FastAPI endpoint on the same machine.

Starts the five services (embedded log + SQLite by default), walks one person through
so there is a budget to read, then loads from a SECOND process (keep-alive HTTP/1.1 on
raw asyncio streams, one connection per client, loopback only):

- read:  allocation GET /v1/budgets/{budget_id} (the budget, as care managers read it)
- write: assessment POST /v1/assessments (a new self-assessment; every journey starts here)

at 50 and 200 concurrent clients, each two ways:

- closed loop (saturation): every client sends its next request as soon as the last is
  answered, for --seconds; req/s is the most the server answers.
- open loop (users): each client is a user sending --rate requests a second on a fixed
  schedule, the users' start times spread over the interval; latency counts from when a
  request was due, so queueing is counted (no coordinated omission). Offered and achieved
  rates are both shown.

and the same against a bare FastAPI app on the same uvicorn (bench/_bare_app.py: GET
/read, POST /write; no auth, no database) as the limit this machine can reach. The ratio
service/bare of req/s is the figure; the CPU the server and the load process each spend
per request (from /proc/PID/stat over the row) says which of them bounded it.
Prints two tables and writes bench/results/api.json. Run it with

    .venv/bin/python bench/bench_api.py [--clients 50,200] [--seconds 10] [--engines embedded]
        [--rate 1] [--client raw|httpx] [--kinds read,write] [--before REF]

With --before REF the same rows are measured first on the code at that git ref (its own
bare app, its own services), then on this tree, and both are shown side by side: compare
each run's server CPU per request and its ratio to its own bare route, not raw latencies
across the two runs (the machine's load moves between them).
    .venv/bin/python bench/bench_api.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import httpx

# --- the load process (`--load SPEC_JSON`) -------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams.

    httpx spent ~1.6 ms of CPU per request in the load process, as much as the bare app
    spent answering it, so the load process capped what it measured. This speaks just
    what the benchmark needs (a request with a known body; a response with a
    Content-Length or chunked body) for a few tens of microseconds per request.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes) -> int:
        """Send one request (its head already encoded), read the answer; its status code."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(head + body if body else head)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        headers = raw.lower()
        start = headers.find(b"\r\ncontent-length:")
        if start >= 0:
            end = headers.index(b"\r\n", start + 2)
            await self.reader.readexactly(int(headers[start + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in headers:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if b"\r\nconnection: close" in headers:
            self.close()
        return status


def request_head(spec: dict[str, Any], path: str, authority: str, length: int | None) -> bytes:
    lines = [f"{spec['method']} {path} HTTP/1.1", f"host: {authority}"]
    lines += [f"{name}: {value}" for name, value in spec["headers"].items()]
    if length is not None:
        lines += ["content-type: application/json", f"content-length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Target:
    """What one row sends: the same request, or the same body with `{n}` made unique."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        parts = urlsplit(spec["url"])
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.authority = parts.netloc
        self.body_text = json.dumps(spec["body"]) if spec.get("body") is not None else None
        self.fixed_head = request_head(spec, self.path, self.authority, None)

    def encode(self, unique: str) -> tuple[bytes, bytes]:
        if self.body_text is None:
            return self.fixed_head, b""
        body = self.body_text.replace("{n}", unique).encode()
        return request_head(self.spec, self.path, self.authority, len(body)), body


def own_cpu_seconds() -> float:
    return c.cpu_seconds(os.getpid())


async def send_and_tally(
    target: Target,
    conn: Connection,
    tag: str,
    since: float,
    latencies: list[float],
    errors: dict[str, int],
) -> None:
    """One request; a success's latency counted from `since`, anything else by its status
    or the error that cut the connection (which is then closed, to be reopened)."""
    head, body = target.encode(tag)
    try:
        status: int | str = await conn.request(head, body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        status = type(err).__name__
        conn.close()
    if status in (200, 201):
        latencies.append(time.perf_counter() - since)
    else:
        errors[str(status)] = errors.get(str(status), 0) + 1


async def closed_loop(target: Target, clients: int, seconds: float) -> dict[str, Any]:
    """Saturation: every client sends its next request as soon as the last is answered."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connections = [Connection(target.spec["url"]) for _ in range(clients)]
    await asyncio.gather(*(conn.open() for conn in connections))

    async def one_client(number: int, conn: Connection) -> None:
        sent = 0
        while time.perf_counter() < deadline:
            sent += 1
            started = time.perf_counter()
            await send_and_tally(target, conn, f"{number}x{sent}", started, latencies, errors)

    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(one_client(n, conn) for n, conn in enumerate(connections)))
    wall = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return {
        "mode": "closed",
        "clients": clients,
        "ok": len(latencies),
        "errors": errors,
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(latencies) / wall, 1),
        **c.summary_ms(latencies),
    }


async def closed_loop_httpx(target: Target, clients: int, seconds: float) -> dict[str, Any]:
    """The same closed loop through httpx (`--client httpx`): what this benchmark used
    before, kept to show what the load process itself costs per request."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    spec = target.spec

    async def one_client(number: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=30, limits=limits, headers=spec["headers"]) as client:
            sent = 0
            while time.perf_counter() < deadline:
                sent += 1
                content = None
                if target.body_text is not None:
                    content = target.body_text.replace("{n}", f"{number}x{sent}").encode()
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
                if status in (200, 201):
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    wall = time.perf_counter() - started
    return {
        "mode": "closed",
        "clients": clients,
        "ok": len(latencies),
        "errors": errors,
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(latencies) / wall, 1),
        **c.summary_ms(latencies),
    }


async def open_loop(
    target: Target, users: int, seconds: float, per_user_per_second: float
) -> dict[str, Any]:
    """Users on a fixed schedule: each sends every 1/rate seconds, the users' phases spread
    evenly over that interval. A request's latency runs from when it was due, not from
    when it went out, so time spent queued behind a slow answer (on the connection or in
    the server) counts: a slow server cannot hide its queue by slowing the sender down.
    Requests not answered OPEN_LOOP_GRACE_SECONDS after the window are counted as such."""
    interval = 1 / per_user_per_second
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connections = [Connection(target.spec["url"]) for _ in range(users)]
    await asyncio.gather(*(conn.open() for conn in connections))
    due_in_window = 0

    async def one_user(number: int, conn: Connection) -> None:
        nonlocal due_in_window
        first = begin + interval * number / users
        count = math.ceil((end - first) / interval)
        due_in_window += count
        for sent in range(count):
            due = first + sent * interval  # from the start, so rounding does not drift
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await send_and_tally(target, conn, f"{number}x{sent}", due, latencies, errors)

    begin = time.perf_counter() + 0.05
    end = begin + seconds
    tasks = [asyncio.ensure_future(one_user(n, conn)) for n, conn in enumerate(connections)]
    _, late = await asyncio.wait(tasks, timeout=seconds + 0.05 + OPEN_LOOP_GRACE_SECONDS)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    wall = time.perf_counter() - begin
    for conn in connections:
        conn.close()
    offered = users * per_user_per_second
    not_answered = due_in_window - len(latencies) - sum(errors.values())
    if not_answered > 0:
        errors["not answered in time"] = not_answered
    return {
        "mode": "open",
        "clients": users,
        "per_user_per_second": per_user_per_second,
        "offered_per_second": round(offered, 1),
        "ok": len(latencies),
        "errors": errors,
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(latencies) / seconds, 1),
        **c.summary_ms(latencies),
    }


OPEN_LOOP_GRACE_SECONDS = 10.0


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """One row: spec has url, method, headers, body (or None), mode, clients, seconds, and
    the server's pid so the CPU it spends per request is measured over the same window."""
    target = Target(spec)
    server_before = c.cpu_seconds(spec["server_pid"]) if spec.get("server_pid") else None
    own_before = own_cpu_seconds()
    if spec.get("mode", "closed") == "open":
        result = await open_loop(
            target, int(spec["clients"]), float(spec["seconds"]), float(spec["rate"])
        )
    elif spec.get("client") == "httpx":
        result = await closed_loop_httpx(target, int(spec["clients"]), float(spec["seconds"]))
    else:
        result = await closed_loop(target, int(spec["clients"]), float(spec["seconds"]))
    answered = max(1, result["ok"] + sum(result["errors"].values()))
    result["load_cpu_ms_per_request"] = round((own_cpu_seconds() - own_before) * 1000 / answered, 3)
    if server_before is not None:
        result["server_cpu_ms_per_request"] = round(
            (c.cpu_seconds(spec["server_pid"]) - server_before) * 1000 / answered, 3
        )
    return result


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
            "server_pid": system.pid("allocation"),
        },
        "write": {
            "endpoint": "POST assessment /v1/assessments",
            "url": f"{urls['assessment']}/v1/assessments",
            "method": "POST",
            "headers": headers,
            "body": WRITE_BODY,
            "server_pid": system.pid("assessment"),
        },
    }


def bare_targets(url: str, pid: int) -> dict[str, dict[str, Any]]:
    return {
        "read": {
            "endpoint": "GET bare /read",
            "url": f"{url}/read",
            "method": "GET",
            "headers": {},
            "body": None,
            "server_pid": pid,
        },
        "write": {
            "endpoint": "POST bare /write",
            "url": f"{url}/write",
            "method": "POST",
            "headers": {},
            "body": {"person_id": "LOAD{n}", "text": "hello"},
            "server_pid": pid,
        },
    }


MODES = ("closed", "open")


def run_matrix(
    targets: dict[str, dict[str, Any]],
    clients: list[int],
    seconds: float,
    *,
    rate: float,
    client: str,
    kinds: list[str],
) -> dict[str, dict[str, Any]]:
    """{"closed": {"read@50": row, ...}, "open": {...}}: every row of one system."""
    out: dict[str, dict[str, Any]] = {mode: {} for mode in MODES}
    keys = [(kind, mode, count) for kind in kinds for mode in MODES for count in clients]
    specs = [
        {**targets[kind], "mode": mode, "clients": n, "seconds": seconds, "rate": rate}
        | {"client": client}
        for kind, mode, n in keys
    ]
    for (kind, mode, count), result in zip(keys, run_loads(specs), strict=True):
        target = targets[kind]
        c.console.print(
            f"  {target['endpoint']} {mode} x{count}: {result['requests_per_second']} req/s, "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"load CPU {result['load_cpu_ms_per_request']} ms/req, errors {result['errors']}"
        )
        out[mode][f"{kind}@{count}"] = {"endpoint": target["endpoint"], **result}
    return out


def table_rows(code: str, document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of one run (its closed-loop document, or its "open_loop" part): each bare
    row, then each engine's row of the same kind and count with its ratios to that bare
    row. Runs written before the p99 ratio existed show it blank."""

    def row(name: str, r: dict[str, Any], vs_bare: str, p99_vs_bare: str) -> tuple[Any, ...]:
        return (
            code,
            name,
            r.get("offered_per_second", "as fast as answered"),
            r["requests_per_second"],
            r["p50_ms"],
            r["p99_ms"],
            vs_bare,
            p99_vs_bare,
            r.get("server_cpu_ms_per_request", ""),
            r["load_cpu_ms_per_request"],
            sum(r["errors"].values()),
        )

    rows = []
    for key, b in document["bare"].items():
        rows.append(row(f"bare {key}", b, "1.00", "1.00"))
        for engine, results in document["services"].items():
            r = results[key]
            ratio = document["ratio_to_bare"][engine][key]
            p99 = document.get("p99_ratio_to_bare", {}).get(engine, {}).get(key)
            name = f"{engine} {r['endpoint'].split()[0]} {key}"
            rows.append(row(name, r, f"{ratio:.2f}", "" if p99 is None else f"{p99:.1f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--engines", default="embedded")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="open loop: requests per user per second"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="closed loop's client: raw asyncio streams, or httpx to see what it costs",
    )
    parser.add_argument("--kinds", default="read,write", help="which rows: read, write or both")
    parser.add_argument("--before", help="a git ref to measure side by side (e.g. main)")
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
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    matrix = {"rate": args.rate, "client": args.client, "kinds": kinds}
    before: dict[str, Any] | None = None
    if args.before:
        before = c.measured_before(
            args.before,
            "bench_api",
            *("--clients", args.clients, "--seconds", str(args.seconds)),
            *("--engines", args.engines, "--rate", str(args.rate)),
            *("--client", args.client, "--kinds", args.kinds),
            *(["--smoke"] if args.smoke else []),
        )
    with c.bare_app() as (url, pid):
        c.console.print("[bold]bare FastAPI[/] ...")
        bare = run_matrix(bare_targets(url, pid), clients, args.seconds, **matrix)
    services: dict[str, dict[str, Any]] = {}
    for engine in engines:
        with c.bench_system(
            engine, ["assessment", "allocation", "planning", "payments", "audit"]
        ) as system:
            c.console.print(f"[bold]{engine}[/] ...")
            services[engine] = run_matrix(
                targets_for_services(system), clients, args.seconds, **matrix
            )
    ratios = {
        mode: {
            engine: {
                key: c.ratio(r["requests_per_second"], bare[mode][key]["requests_per_second"])
                for key, r in results[mode].items()
            }
            for engine, results in services.items()
        }
        for mode in MODES
    }
    p99_ratios = {
        mode: {
            engine: {
                key: c.ratio(r["p99_ms"], bare[mode][key]["p99_ms"])
                for key, r in results[mode].items()
            }
            for engine, results in services.items()
        }
        for mode in MODES
    }
    document = {
        "smoke": args.smoke,
        "clients": clients,
        "seconds": args.seconds,
        "load_client": args.client,
        "bare": bare["closed"],
        "services": {engine: r["closed"] for engine, r in services.items()},
        "ratio_to_bare": ratios["closed"],
        "p99_ratio_to_bare": p99_ratios["closed"],
        "open_loop": {
            "per_user_per_second": args.rate,
            "bare": bare["open"],
            "services": {engine: r["open"] for engine, r in services.items()},
            "ratio_to_bare": ratios["open"],
            "p99_ratio_to_bare": p99_ratios["open"],
        },
    }
    compared = [("before", before), ("after", document)] if before else [("", document)]
    columns = [
        "code",
        "endpoint@clients",
        "offered req/s",
        "req/s",
        "p50 ms",
        "p99 ms",
        "req/s vs bare",
        "p99 vs bare",
        "server CPU ms/req",
        "load CPU ms/req",
        "errors",
    ]
    c.show(
        f"API under load, CLOSED loop (saturation: each client sends again as soon as "
        f"answered; {args.seconds:.0f}s per row, {args.client} client in a second process)",
        columns,
        [row for code, doc in compared for row in table_rows(code, doc)],
    )
    c.show(
        f"API under load, OPEN loop (each user sends {args.rate:g} request/s on a fixed "
        f"schedule, latency from when it was due; {args.seconds:.0f}s per row)",
        columns,
        [row for code, doc in compared for row in table_rows(code, doc["open_loop"])],
    )
    c.write_result("api", {**document, "before": before})


if __name__ == "__main__":
    main()
