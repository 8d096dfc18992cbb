"""What every benchmark in bench/ shares: results files, tables, systems, synthetic events.

Not a benchmark itself (its name starts with an underscore, so `make bench` skips it).
Every figure that matters is a ratio measured side by side in the same run: the machine is
shared and noisy, so absolute numbers move from run to run and ratios move much less.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # scripts run as `python bench/bench_x.py`
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

RESULTS_DIR = Path(os.environ.get("PBJ_BENCH_RESULTS", ROOT / "bench" / "results"))
KAFKA_BOOTSTRAP = os.environ.get("PBJ_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
POSTGRES_ADMIN_URL = os.environ.get(
    "PBJ_POSTGRES_ADMIN_URL", "postgresql+asyncpg://pbj:pbj@127.0.0.1:5432/postgres"
)
console = Console(width=None if sys.stdout.isatty() else 150)


# --- results -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(name: str, document: dict[str, Any]) -> Path:
    """bench/results/<name>.json with the benchmark's name, the time and the machine."""
    full = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **document,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(full, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"Wrote {path}")
    return path


def show(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


def own_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc; Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its live children and the children it has reaped.

    PostgreSQL runs a process per connection: a backend that exited has its CPU added to
    the postmaster's reaped-children fields, a live one is read itself."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += (task / "children").read_text().split()
    seconds = ticks / os.sysconf("SC_CLK_TCK")
    for child in children:
        with contextlib.suppress(OSError):
            seconds += tree_cpu_seconds(int(child))
    return seconds


DEPLOY_DIR_ENV = "PBJ_BENCH_DEPLOY_DIR"


def deploy_dir() -> Path:
    """Where the running broker and database server keep their pid files: this tree's
    deploy/, or the one a `--before` run was started from."""
    return Path(os.environ.get(DEPLOY_DIR_ENV) or ROOT / "deploy")


def infrastructure_pids() -> dict[str, int]:
    """The broker and the database server that deploy/ started, by name (those running)."""
    pid_files = {
        "kafka broker": deploy_dir() / "kafka/data/kafka.pid",
        "postgresql": deploy_dir() / "postgres/data/pgdata/postmaster.pid",
    }
    found: dict[str, int] = {}
    for name, path in pid_files.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(path.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                found[name] = pid
    return found


def proc_memory_mib(pid: int) -> dict[str, float]:
    """A process's resident memory now (VmRSS) and its peak so far (VmHWM), in MiB."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return {
        "rss_mib": round(found.get("VmRSS", 0.0), 1),
        "peak_mib": round(found.get("VmHWM", 0.0), 1),
    }


# --- servers -------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


async def pg_admin(*statements: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def delete_kafka_namespace(namespace: str, bootstrap: str = KAFKA_BOOTSTRAP) -> None:
    """Delete every topic of a benchmark's namespace (they can hold a million records)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(namespace + ".")]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


@dataclass
class BenchSystem:
    """Some of the five services as processes, on the embedded log or on Kafka + PostgreSQL."""

    engine: str  # "embedded" or "kafka"
    data_dir: Path
    names: list[str]
    run_id: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:10]}")
    event_log_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    supervisor: Any = None

    @property
    def namespace(self) -> str:
        return self.run_id

    def log_url(self) -> str:
        if self.event_log_url:
            return self.event_log_url
        if self.engine == "kafka":
            return f"kafka://{KAFKA_BOOTSTRAP}?namespace={self.namespace}"
        return f"sqlite:///{self.data_dir}/eventlog.db"

    def database_url(self, name: str) -> str:
        if self.engine == "kafka":
            return f"postgresql+asyncpg://pbj:pbj@127.0.0.1:5432/{self.run_id}_{name}"
        return f"sqlite+aiosqlite:///{self.data_dir}/{name}.db"

    @property
    def database_names(self) -> list[str]:
        """The names that own a database: every one but the portal, which has none."""
        return [n for n in self.names if n != "portal"]

    def create_databases(self) -> None:
        if self.engine == "kafka":
            asyncio.run(
                pg_admin(*(f"CREATE DATABASE {self.run_id}_{n}" for n in self.database_names))
            )

    def start(self, timeout: float = 120) -> None:
        from pbj.processes import Supervisor

        self.supervisor = Supervisor(
            data_dir=self.data_dir,
            ports=dict(zip(self.names, free_ports(len(self.names)), strict=True)),
            event_log_url=self.log_url(),
            database_urls={n: self.database_url(n) for n in self.database_names}
            if self.engine == "kafka"
            else {},
            extra_env={
                **{f"{n.upper()}_LOG_LEVEL": "WARNING" for n in self.names},
                **self.extra_env,
            },
        )
        self.supervisor.start()
        self.supervisor.wait_ready(timeout=timeout)

    def stop_services(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()

    def urls(self) -> dict[str, str]:
        urls: dict[str, str] = self.supervisor.urls()
        return urls

    def pid(self, name: str) -> int:
        return int(self.supervisor.processes[name].pid)

    def close(self) -> None:
        self.stop_services()
        if self.engine == "kafka":
            with contextlib.suppress(Exception):
                asyncio.run(
                    pg_admin(
                        *(
                            f"DROP DATABASE IF EXISTS {self.run_id}_{n} WITH (FORCE)"
                            for n in self.database_names
                        )
                    )
                )
            with contextlib.suppress(Exception):
                asyncio.run(delete_kafka_namespace(self.namespace))


@contextlib.contextmanager
def bench_system(
    engine: str,
    names: Sequence[str],
    *,
    data_dir: Path | None = None,
    start: bool = True,
    **kwargs: Any,
) -> Iterator[BenchSystem]:
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pbj-bench-")))
        system = BenchSystem(engine=engine, data_dir=data_dir, names=list(names), **kwargs)
        system.create_databases()
        try:
            if start:
                system.start()
            yield system
        finally:
            system.close()


@contextlib.contextmanager
def code_at(ref: str) -> Iterator[tuple[Path, str]]:
    """The project's code at a git ref, in a temporary directory, with today's bench/ over
    it (so "before" is measured by the same script as "after"): (the tree, its commit)."""
    import shutil
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="pbj-before-") as directory:
        tree = Path(directory)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        for script in (ROOT / "bench").glob("*.py"):
            shutil.copy2(script, tree / "bench" / script.name)
        yield tree, commit


def run_script_at(tree: Path, script: str, *args: str) -> dict[str, Any]:
    """Run bench/<script>.py from another tree of the project; returns the JSON it wrote.

    The services it starts and the log it opens are that tree's code: the script puts its
    tree first on sys.path, and the supervisor starts uvicorn in the tree's directory."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="pbj-before-results-") as results:
        subprocess.run(
            [sys.executable, str(tree / "bench" / f"{script}.py"), *args],
            cwd=tree,
            # The broker and the database server are the ones this tree's deploy/ started.
            env={**os.environ, "PBJ_BENCH_RESULTS": results, DEPLOY_DIR_ENV: str(deploy_dir())},
            check=True,
        )
        name = script.removeprefix("bench_")
        document: dict[str, Any] = json.loads((Path(results) / f"{name}.json").read_text())
        return document


def measured_before(ref: str, script: str, *args: str) -> dict[str, Any]:
    """`--before REF`: bench/<script>.py with these arguments on the code at `ref` (today's
    script over it), run before this tree's: the JSON it wrote, with "ref" and "commit"."""
    with code_at(ref) as (tree, commit):
        console.print(f"[bold]before[/]: {ref} ({commit[:10]}) ...")
        document = run_script_at(tree, script, *args)
    console.print("[bold]after[/]: this tree ...")
    return {**document, "ref": ref, "commit": commit}


def staff(data_dir: Path, council: str = "lancashire") -> Any:
    from pbj.journey import Staff

    return Staff(data_dir, council)


# --- synthetic events ----------------------------------------------------------------------

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PERSON = re.compile(rb'"p(\d{7})"')


def template_people(people: int, seed: int = 2009, council: str = "lancashire") -> list[list[Any]]:
    """`people` realistic journeys from whatif's seeded generator, as OutgoingRecords each."""
    from contracts.policy import load_policy
    from whatif.generate import generate_cohort, outgoing

    policy = load_policy(ROOT / "policies" / f"{council}.yaml")
    by_person: dict[str, list[Any]] = {}
    for envelope in generate_cohort(policy, people, seed):
        by_person.setdefault(envelope.subject, []).append(outgoing(envelope))
    return list(by_person.values())


def synth_records(events: int, seed: int = 2009, templates: int = 1000) -> Iterator[Any]:
    """`events` realistic journey events, fast: the seeded generator's people, copied.

    The generator computes every budget with allocation's RAS and writes about 3,400
    events/s here, too slow for a million. So it makes `templates` people once, and each
    copy r of a person gets a new person id and new event ids (the last 12 hex digits of
    every UUID become r), so every event is distinct and valid and a person's events keep
    their order and links (causation, correlation).
    """
    from servicekit.eventlog import OutgoingRecord

    pool = template_people(min(templates, max(1, events // 3)), seed)
    produced = 0
    replica = 0
    while True:
        suffix = f"{replica:012x}".encode()
        person_prefix = f'"c{replica:05d}'.encode()
        for person in pool:
            for record in person:
                value = _UUID.sub(lambda m, s=suffix: m.group(0)[:24] + s, record.value)
                value = _PERSON.sub(lambda m, p=person_prefix: p + m.group(1) + b'"', value)
                key = f"c{replica:05d}{record.key[1:]}"
                yield OutgoingRecord(record.topic, key, value, record.headers)
                produced += 1
                if produced >= events:
                    return
        replica += 1


async def publish_all(
    log: Any, records: Iterator[Any], batch: int = 5_000, progress: Any = None
) -> int:
    """Publish records in batches through an EventLog; returns how many."""
    count = 0
    chunk: list[Any] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= batch:
            await log.publish(chunk)
            count += len(chunk)
            chunk = []
            if progress is not None:
                progress(count)
    if chunk:
        await log.publish(chunk)
        count += len(chunk)
        if progress is not None:
            progress(count)
    return count


def seed_rng(seed: int) -> random.Random:
    return random.Random(seed)


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@contextlib.contextmanager
def bare_app(workers: int = 1) -> Iterator[tuple[str, int]]:
    """The bare FastAPI app (bench/_bare_app.py) on uvicorn: (its URL, its pid)."""
    import subprocess

    import httpx

    (port,) = free_ports(1)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(ROOT / "bench"),
            "_bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(up, 30, 0.1):
            raise RuntimeError("the bare FastAPI app did not start")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)
