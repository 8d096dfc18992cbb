"""Start, watch and stop the five services (and the portal) as real processes.

Used by `pbj up` and the tests. The portal is a web application over the services'
APIs, not a service: it has no database and no events, so SERVICES leaves it out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pbj.idp import JwksServer, LocalIdentityProvider, idp_directory, record_trust
from servicekit.auth import ensure_dev_keys

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVICES: dict[str, int] = {
    "assessment": 8001,
    "allocation": 8002,
    "planning": 8003,
    "payments": 8004,
    "audit": 8005,
}
PORTAL = "portal"
PORTAL_PORT = 8000

KAFKA_BOOTSTRAP = "127.0.0.1:9092"


def postgres_database_urls(prefix: str = "pbj", host: str = "127.0.0.1:5432") -> dict[str, str]:
    """One PostgreSQL database per service, as deploy/postgres/postgres.sh creates them."""
    return {name: f"postgresql+asyncpg://pbj:pbj@{host}/{prefix}_{name}" for name in SERVICES}


def service_urls(ports: dict[str, int] | None = None, host: str = "127.0.0.1") -> dict[str, str]:
    """Where each service listens; PBJ_<SERVICE>_URL overrides (for remote deployments)."""
    ports = ports or SERVICES
    return {
        name: os.environ.get(f"PBJ_{name.upper()}_URL", f"http://{host}:{port}")
        for name, port in ports.items()
    }


def service_of_instance(name: str) -> str:
    """The service an instance runs: "allocation@2" and "allocation" are allocation."""
    return name.split("@", 1)[0]


@dataclass
class Supervisor:
    """The five services on one machine, each its own uvicorn process, and the portal.

    `ports` names what runs: the services, and "portal" when the portal should run too.
    """

    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {**SERVICES, PORTAL: PORTAL_PORT})
    event_log_url: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    idp_port: int = 0
    """Where the local identity provider serves its JWKS (0: any free port)."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    identity: JwksServer | None = None

    @property
    def embedded(self) -> bool:
        """SQLite and the embedded log: the only set-up that may trust the development key."""
        return not self.database_urls and self.log_url.startswith("sqlite:")

    def _ensure_identity(self) -> None:
        """On Kafka or PostgreSQL the services verify against a JWKS URL, as in production:
        here the local identity provider's, served from this process."""
        if self.embedded or self.identity is not None:
            return
        provider = LocalIdentityProvider(idp_directory(self.data_dir))
        self.identity = JwksServer(provider, port=self.idp_port).start()
        record_trust(self.data_dir, self.identity.jwks_url)

    def env_for(self, name: str) -> dict[str, str]:
        prefix = name.upper()
        env = dict(os.environ)
        env.update(
            {
                f"{prefix}_DATA_DIR": str(self.data_dir),
                f"{prefix}_PORT": str(self.ports[name]),
                f"{prefix}_POLICIES_DIR": str(REPO_ROOT / "policies"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if name == PORTAL:
            for service, port in self.ports.items():
                if service != PORTAL and service == service_of_instance(service):
                    env[f"PORTAL_{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
        if self.event_log_url:
            env[f"{prefix}_EVENT_LOG_URL"] = self.event_log_url
        if name in self.database_urls:
            env[f"{prefix}_DATABASE_URL"] = self.database_urls[name]
        if self.identity is not None:
            env.update(self.identity.idp.service_env(prefix, self.identity.jwks_url))
        env.update(self.extra_env)
        return env

    def start(self, names: list[str] | None = None) -> None:
        if self.embedded:
            ensure_dev_keys(self.data_dir)
            record_trust(self.data_dir, None)
        else:
            self._ensure_identity()
        for name in names or list(self.ports):
            self._spawn(name, service_of_instance(name))

    def start_instance(self, service: str, port: int) -> str:
        """Another instance of a running service: its own process and port, the same
        database, log and consumer group, so the instances share the topics' partitions.
        Returns the name it runs under ("allocation@2"), for urls(), kill() and stop()."""
        count = sum(1 for name in self.processes if service_of_instance(name) == service)
        name = f"{service}@{count + 1}"
        self.ports[name] = port
        self._spawn(name, service)
        return name

    def _spawn(self, name: str, service: str) -> None:
        log_dir = self.log_dir or self.data_dir / "logs"
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Owner-only whatever the caller's umask: a log names people by their ids.
        log_fd = os.open(log_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log_file = os.fdopen(log_fd, "ab")
        env = self.env_for(service)
        env[f"{service.upper()}_PORT"] = str(self.ports[name])
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"services.{service}.api:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[name]),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()

    @property
    def log_url(self) -> str:
        """The event log every service of this system uses."""
        return self.event_log_url or f"sqlite:///{self.data_dir}/eventlog.db"

    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    def wait_ready(self, timeout: float = 60.0, names: list[str] | None = None) -> None:
        """Block until every service answers /readyz with 200; raise naming the laggards."""
        deadline = time.monotonic() + timeout
        pending = set(names or self.ports)
        urls = self.urls()
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    process = self.processes.get(name)
                    if process is not None and process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {process.returncode}; see its log in "
                            f"{(self.log_dir or self.data_dir / 'logs') / (name + '.log')}"
                        )
                    try:
                        if client.get(f"{urls[name]}/readyz").status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass
                if pending:
                    time.sleep(0.1)
        if pending:
            raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")

    def kill(self, name: str) -> None:
        """SIGKILL one service, as a crash would."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start one service again (after kill(), say) and block until it is ready.

        A copy still running is stopped first, so two never contend for the port.
        """
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.start([name])
        self.wait_ready(timeout=timeout, names=[name])

    def stop(self, timeout: float = 10.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.identity is not None:
            self.identity.stop()
            self.identity = None
