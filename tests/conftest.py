"""Real servers for the tests that ask for them: Apache Kafka, PostgreSQL, a browser.

A test that requests `kafka_bootstrap` or `postgres_url` gets a server that answers on
this machine. If none does, the fixture starts one with deploy/ (unless
PBJ_START_SERVERS=0). If there is still none, the test is skipped with the reason on a
developer's machine, and fails loudly in CI (CI=true), where a skipped suite would
pass for a tested one.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import subprocess
import tempfile
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
KAFKA_BOOTSTRAP = "127.0.0.1:9092"
POSTGRES_ADMIN_URL = "postgresql+asyncpg://pbj:pbj@127.0.0.1:5432/postgres"
POSTGRES_TEST_URL = "postgresql+asyncpg://pbj:pbj@127.0.0.1:5432/pbj_test"
_START_TIMEOUT_SECONDS = 900  # a first Kafka start fetches its jars from Maven Central


def _run(coroutine: Coroutine[Any, Any, bool]) -> bool:
    # A loop of its own that is never made current: pytest-asyncio's loops stay untouched.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs this server and it is not available: {reason}", pytrace=False)
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _kafka_answers(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    if not _port_open(host, int(port)):
        return False

    async def metadata() -> bool:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await client.bootstrap()
            return bool((await client.fetch_all_metadata()).brokers())
        except Exception:
            return False
        finally:
            await client.close()

    return _run(metadata())


def _postgres_answers(url: str) -> bool:
    if not _port_open("127.0.0.1", 5432):
        return False

    async def connect() -> bool:
        import asyncpg

        try:
            connection = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    return _run(connect())


@contextmanager
def _one_starter_at_a_time() -> Iterator[None]:
    """Test workers in parallel (pytest -n) each ask for the same servers: one starts
    them while the others wait, then find them answering."""
    with open(Path(tempfile.gettempdir()) / "pbj-test-servers.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start(script: str) -> str | None:
    """Run deploy/<script> start; None when it worked, else why not."""
    if os.environ.get("PBJ_START_SERVERS") == "0":
        return "PBJ_START_SERVERS=0, so the tests do not start servers"
    command = ["bash", str(ROOT / "deploy" / script), "start"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_START_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`{' '.join(command)}` did not finish: {err}"
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        return f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{tail}"
    return None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of a Kafka broker that answers, started by deploy/kafka/kafka.sh if need be."""
    if _kafka_answers(KAFKA_BOOTSTRAP):
        return KAFKA_BOOTSTRAP
    with _one_starter_at_a_time():
        problem = None if _kafka_answers(KAFKA_BOOTSTRAP) else _start("kafka/kafka.sh")
    if problem is None and _kafka_answers(KAFKA_BOOTSTRAP):
        return KAFKA_BOOTSTRAP
    _unavailable(f"no Kafka broker on {KAFKA_BOOTSTRAP}: {problem or 'it did not answer'}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The pbj_test database (owner pbj, who may also CREATE DATABASE for a test of its own)."""
    if _postgres_answers(POSTGRES_TEST_URL):
        return POSTGRES_TEST_URL
    with _one_starter_at_a_time():
        problem = None if _postgres_answers(POSTGRES_TEST_URL) else _start("postgres/postgres.sh")
    if problem is None and _postgres_answers(POSTGRES_TEST_URL):
        return POSTGRES_TEST_URL
    _unavailable(f"no PostgreSQL with pbj_test on 127.0.0.1:5432: {problem or 'no answer'}")


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_url: str) -> str:
    """The maintenance database, to create and drop databases of a test's own."""
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def kcat() -> str:
    """The kcat binary (Debian's), installed by deploy/ensure-tools.sh if need be."""
    import shutil

    found = shutil.which("kcat")
    if found is None and os.environ.get("PBJ_START_SERVERS") != "0":
        with _one_starter_at_a_time():  # apt takes one install at a time
            subprocess.run(
                ["bash", str(ROOT / "deploy" / "ensure-tools.sh")],
                check=False,
                capture_output=True,
                timeout=_START_TIMEOUT_SECONDS,
            )
        found = shutil.which("kcat")
    if found is None:
        _unavailable("kcat is not installed: run `bash deploy/ensure-tools.sh`")
    return found


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (Playwright drives it; Playwright's own browsers are never fetched)."""
    if not Path(CHROMIUM).exists():
        with _one_starter_at_a_time():  # apt takes one install at a time
            problem = None if Path(CHROMIUM).exists() else _start("browser/chromium.sh")
        if problem is not None or not Path(CHROMIUM).exists():
            _unavailable(f"no Chromium at {CHROMIUM}: {problem or 'it did not install'}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        _unavailable(f"playwright is not installed: {err}")
    return CHROMIUM
