"""The run's own system: services under a supervisor on free ports, and on the Kafka engine
a private broker and PostgreSQL cluster, each killable without harming anybody else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pbj.processes import SERVICES, Supervisor
from testkit.chaos.names import KAFKA_SH

# --- small helpers --------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Free ports below the ephemeral range, so nothing else is handed them meanwhile.

    A port the kernel hands out for outgoing connections can be taken while its server
    is down: by another program's connection, or by a client reconnecting to it, which
    then connects to itself (TCP self-connect). A restarted broker, database or service
    would then find its port taken.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    chosen: list[int] = []
    candidates = list(range(10000, max(low, 10001)))
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no {count} free ports between 10000 and {low}")


def _alive(pid: int) -> bool:
    """True while pid runs (a zombie has let go of everything, so it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _sigkill_and_wait(pids: list[int], timeout: float = 30.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {pids} outlived SIGKILL for {timeout:.0f}s")
        time.sleep(0.05)


# --- the private servers --------------------------------------------------------------------


class PrivateBroker:
    """A one-node KRaft broker of the run's own (deploy/kafka/kafka.sh on free ports)."""

    def __init__(
        self, data_dir: Path, kafka_start_timeout: int = 240, start_timeout: float = 600
    ) -> None:
        self.port, self.controller_port = free_ports(2)
        self.data_dir = data_dir
        # How long kafka.sh waits for the broker to answer, and how long we wait for kafka.sh.
        self.kafka_start_timeout = kafka_start_timeout
        self.start_timeout = start_timeout

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, action: str, timeout: float) -> None:
        env = dict(os.environ)
        env.update(
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_DATA_DIR=str(self.data_dir),
            KAFKA_START_TIMEOUT=str(self.kafka_start_timeout),
        )
        done = subprocess.run(
            ["bash", str(KAFKA_SH), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {action} failed:\n{done.stdout}{done.stderr}")

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self) -> None:
        self._run("start", self.start_timeout)

    def stop(self) -> None:
        self._run("stop", 90)

    def sigkill(self) -> None:
        pid = self.pid()
        if pid is not None:
            _sigkill_and_wait([pid])
        # A killed broker nobody has reaped yet still answers `kill -0`, which kafka.sh
        # would take for a broker starting up: it is dead, so forget it.
        (self.data_dir / "kafka.pid").unlink(missing_ok=True)

    def pause(self) -> None:
        if (pid := self.pid()) is not None:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        if (pid := self.pid()) is not None:
            os.kill(pid, signal.SIGCONT)


class PrivatePostgres:
    """A PostgreSQL cluster of the run's own: Debian's initdb and pg_ctl on a free port.

    PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` user when
    the run is root's; otherwise to whoever runs it. Its directory is then one of its own
    under the system's temporary directory: the run's may sit below a directory only root
    may enter (pytest's are), and the postgres user could not reach it.
    """

    def __init__(self, root: Path) -> None:
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            root.parent.mkdir(parents=True, exist_ok=True)
            reachable = subprocess.run([*self.as_user, "test", "-x", str(root.parent)], check=False)
            if reachable.returncode != 0:
                root = Path(tempfile.mkdtemp(prefix="pbj-chaos-postgres-"))
                os.chmod(root, 0o755)
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = free_ports(1)[0]
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
        self.bin = found[-1].parent

    def _run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> dict[str, str]:
        """initdb, start, and one database per service; returns the services' URLs."""
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        self.start()
        statements = [f"CREATE DATABASE pbj_{name}" for name in SERVICES]
        for statement in statements:
            self._run(
                str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                "postgres", "-d", "postgres", "-qc", statement,
            )  # fmt: skip
        return {name: self.url(f"pbj_{name}") for name in SERVICES}

    def start(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            try:
                self._start()
                return
            except RuntimeError:
                if attempt == attempts:
                    raise
                time.sleep(2.0)

    def _start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "120", "start",
        )  # fmt: skip

    def postmaster(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def sigkill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a machine crash would."""
        pid = self.postmaster()
        if pid is not None:
            # Stopped first, so it cannot fork a backend between the listing and the kill:
            # a backend left alive would hold the shared memory and block the restart.
            os.kill(pid, signal.SIGSTOP)
            _sigkill_and_wait([pid, *_children(pid)])

    def stop(self, remove: bool = False) -> None:
        if self.postmaster() is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


# --- the system under test ------------------------------------------------------------------


@dataclass
class ChaosSystem:
    """The five services, and on Kafka the run's own broker and PostgreSQL."""

    engine: str
    root: Path
    supervisor: Supervisor
    broker: PrivateBroker | None = None
    postgres: PrivatePostgres | None = None

    @classmethod
    @contextlib.contextmanager
    def running(cls, engine: str, root: Path) -> Iterator[ChaosSystem]:
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)  # the postgres user walks through it to its own directory
        ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        supervisor = Supervisor(data_dir=root / "services", ports=ports)
        system = cls(engine=engine, root=root, supervisor=supervisor)
        try:
            if engine == "kafka":
                system.postgres = PrivatePostgres(root / "postgres")
                supervisor.database_urls = system.postgres.create()
                system.broker = PrivateBroker(root / "kafka")
                system.broker.start()
                supervisor.event_log_url = f"kafka://{system.broker.bootstrap}"
            supervisor.start()
            supervisor.wait_ready(timeout=300)
            yield system
        finally:
            supervisor.stop()
            if system.broker is not None:
                with contextlib.suppress(Exception):
                    system.broker.sigkill()
            if system.postgres is not None:
                system.postgres.stop(remove=system.postgres.root != root / "postgres")

    def urls(self) -> dict[str, str]:
        return self.supervisor.urls()

    def bring_back(self, name: str, timeout: float = 600.0) -> int:
        """Start a killed service again until it is ready; returns how many starts it took.

        A start while its database is down fails its migrations and exits, as a pod
        would crash-loop: it is started again, as an orchestrator would.
        """
        deadline = time.monotonic() + timeout
        starts = 0
        while True:
            starts += 1
            self.supervisor.start([name])
            while True:
                try:
                    self.supervisor.wait_ready(timeout=20, names=[name])
                    return starts
                except RuntimeError:  # it exited: start it again
                    self.supervisor.processes.pop(name, None)
                    break
                except TimeoutError:  # up, not ready (its broker is down): keep waiting
                    if time.monotonic() > deadline:
                        raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not come back in {timeout:.0f}s")
            time.sleep(1.0)

    def outbox_backlog(self, name: str) -> int:
        """Rows in the service's outbox its relay has not yet published (read directly)."""
        url = self.supervisor.database_urls.get(name)
        if url is None:
            path = self.supervisor.data_dir / f"{name}.db"
            try:
                connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            except sqlite3.Error:
                return 0
            try:
                query = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                return int(connection.execute(query).fetchone()[0])
            except sqlite3.Error:
                return 0
            finally:
                connection.close()
        return asyncio.run(_pg_count(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL"))

    @contextlib.contextmanager
    def log_held(self) -> Iterator[None]:
        """Hold the event log still, so relays block inside publish with a batch in hand.

        Embedded: take the log file's write lock. Kafka: SIGSTOP the broker. Let go after.
        """
        if self.broker is not None:
            self.broker.pause()
            try:
                yield
            finally:
                self.broker.resume()
            return
        connection = sqlite3.connect(self.supervisor.data_dir / "eventlog.db", timeout=30)
        connection.isolation_level = None
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                connection.execute("ROLLBACK")
        finally:
            connection.close()


async def _pg_count(url: str, query: str) -> int:
    import asyncpg  # type: ignore[import-untyped]

    try:
        connection = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return 0
    try:
        return int(await connection.fetchval(query))
    except asyncpg.PostgresError:
        return 0
    finally:
        await connection.close()


# --- the client: a portal that retries as it should -----------------------------------------
