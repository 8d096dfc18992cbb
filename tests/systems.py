"""The five services as real processes, for the end-to-end test modules.

`supervised_system` makes a module's `system` fixture: the services on SQLite and the
embedded log, and again on PostgreSQL and Kafka. The Kafka variant asks conftest for
`kafka_bootstrap` and `postgres_admin_url`, so it is skipped on a developer's machine
without those servers and fails in CI. `run_pbj` runs the `pbj` command line against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pbj.processes import PORTAL, REPO_ROOT, SERVICES, Supervisor, postgres_database_urls
from servicekit.db import Database
from testkit.chaos.processes import free_ports

__all__ = [
    "ENGINES",
    "admin",
    "database_of_its_own",
    "free_ports",
    "migrated_database_of_its_own",
    "run_pbj",
    "supervised_system",
]

ENGINES = [
    "embedded",
    pytest.param("kafka-postgres", marks=[pytest.mark.kafka, pytest.mark.postgres]),
]


async def admin(admin_url: str, *statements: str) -> None:
    """Statements on the maintenance database (CREATE and DROP DATABASE cannot be in one).

    `DROP DATABASE … WITH (FORCE)` ends the other sessions in the database, but not an
    autovacuum worker's: it belongs to no role of ours, so PostgreSQL refuses the drop
    ("must be a member of the role whose process is being terminated"). The worker is gone
    in moments, so the drop is asked again for a while."""
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        for statement in statements:
            for attempt in itertools.count(1):
                try:
                    await connection.execute(statement)
                    break
                except asyncpg.InsufficientPrivilegeError:
                    if attempt >= _DROP_ATTEMPTS or not statement.startswith("DROP DATABASE"):
                        raise
                    await asyncio.sleep(0.1)
    finally:
        await connection.close()


_DROP_ATTEMPTS = 100


@contextlib.asynccontextmanager
async def database_of_its_own(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A new PostgreSQL database for one test: its URL; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await admin(admin_url, f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin(admin_url, f"DROP DATABASE {name} WITH (FORCE)")


@contextlib.asynccontextmanager
async def migrated_database_of_its_own(
    admin_url: str, prefix: str, migrations: Path
) -> AsyncIterator[Database]:
    """database_of_its_own with a service's schema, as its Database."""
    async with database_of_its_own(admin_url, prefix) as url:
        database = Database(url)
        try:
            await database.migrate(migrations)
            yield database
        finally:
            await database.dispose()


def supervised_system(
    name: str, run_prefix: str, ready_timeout: float = 120, *, with_portal: bool = False
) -> Callable[..., Iterator[Supervisor]]:
    """A module-scoped `system` fixture, once per engine in ENGINES.

    On Kafka each run gets its own namespace (topics and groups) and its own five
    databases, all named after `run_prefix` and a random suffix, so runs never see each
    other's events; the databases are dropped afterwards. `with_portal`: the portal runs
    too, over the same services.
    """

    @pytest.fixture(scope="module", params=ENGINES)
    def system(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Supervisor]:
        names = [*SERVICES, PORTAL] if with_portal else list(SERVICES)
        supervisor = Supervisor(
            data_dir=tmp_path_factory.mktemp(name),
            ports=dict(zip(names, free_ports(len(names)), strict=True)),
        )
        run_id = f"{run_prefix}{uuid.uuid4().hex[:10]}"
        admin_url = None
        if request.param == "kafka-postgres":
            bootstrap = request.getfixturevalue("kafka_bootstrap")
            admin_url = request.getfixturevalue("postgres_admin_url")
            supervisor.event_log_url = f"kafka://{bootstrap}?namespace={run_id}"
            supervisor.database_urls = postgres_database_urls(prefix=run_id)
            asyncio.run(admin(admin_url, *(f"CREATE DATABASE {run_id}_{s}" for s in SERVICES)))
        supervisor.start()
        try:
            supervisor.wait_ready(timeout=ready_timeout)
            yield supervisor
        finally:
            supervisor.stop()
            if admin_url is not None:
                drops = (f"DROP DATABASE {run_id}_{s} WITH (FORCE)" for s in SERVICES)
                asyncio.run(admin(admin_url, *drops))

    return system


def run_pbj(
    system: Supervisor,
    *args: str,
    with_data_dir: bool = True,
    timeout: float = 180,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`pbj ARGS` pointed at the system's services, as an officer would run it.

    `--data-dir` lets the command sign its staff tokens with the system's keys.
    """
    if with_data_dir:
        args = (*args, "--data-dir", str(system.data_dir))
    environment = dict(os.environ, **(env or {}))
    for service, url in system.urls().items():
        environment[f"PBJ_{service.upper()}_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "pbj.cli", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
