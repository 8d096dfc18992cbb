"""Random crashes during a run of journeys, then an independent oracle (`pbj chaos`).

People walk through the five services over HTTP, as a portal would, while a seeded
random injector SIGKILLs and restarts a service, kills a service while its outbox relay
holds unpublished rows, and, on the Kafka engine, SIGKILLs and restarts the broker and
PostgreSQL. The broker and the PostgreSQL cluster are private to the run (temporary
directory, free ports), so a kill harms nobody else. Afterwards the oracle reads the
event log itself (the embedded SQLite file, or every Kafka partition from the start)
and each service's HTTP API, and checks what a council and an auditor would ask: every
acknowledged change is in the log and its effect is downstream, nothing happened twice,
each released payment is a scheduled instalment, and the money released is the money due.

The oracle uses none of the services' code: it parses the CloudEvents JSON itself, works
out due dates and instalment splits from the PaymentScheduled facts, and compares.
docs/faults.md says what this proves and what it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import Role
from pbj.journey import Staff, demo_answers
from pbj.processes import REPO_ROOT, SERVICES, Supervisor
from rules.authority import lowest_sign_off_role, who_may_agree

COUNCIL = "lancashire"
PRODUCERS = ("assessment", "allocation", "planning", "payments")
"""Services whose outbox relay publishes events (audit only consumes)."""
TOPICS = tuple(f"pb.{name}" for name in PRODUCERS)
DEAD_LETTERS = "pb.dead-letter"
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"

STARTED = "pb.assessment.assessment-started.v1"
SUBMITTED = "pb.assessment.assessment-submitted.v1"
VALIDATED = "pb.assessment.assessment-validated.v1"
BUDGET_ISSUED = "pb.allocation.budget-issued.v1"
PLAN_SUBMITTED = "pb.planning.plan-submitted.v1"
SIGNED_OFF = "pb.planning.plan-signed-off.v1"
SET_UP = "pb.payments.deployment-set-up.v1"
AGREEMENT = "pb.payments.agreement-signed.v1"
SCHEDULED = "pb.payments.payment-scheduled.v1"
RELEASED = "pb.payments.payment-released.v1"

ONCE_PER_PERSON = (STARTED, SUBMITTED, VALIDATED, PLAN_SUBMITTED, SIGNED_OFF, SET_UP, AGREEMENT)
"""One journey causes each of these exactly once; a second event id is an effect twice."""

FREQUENCY_DAYS = {"weekly": 7, "four_weekly": 28}


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


class JourneyFailed(RuntimeError):
    """A step went wrong in a way no retry mends; the message says which and why."""


@dataclass
class Ack:
    """A 2xx answer the client received: the service promised this change."""

    person_id: str
    step: str
    body: dict[str, Any]


@dataclass
class ClientTally:
    acks: list[Ack] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)


STILL_RUNNING = "still running"


class PortalClient:
    """Sends each change with an Idempotency-Key and retries it with the same key.

    A connection refused or cut, a 5xx, or a 503: the same request again with the same
    key, so a change the service made before dying is answered from the stored response,
    never made twice. A 409 "still running" for the key means the process that claimed
    it died between claiming and storing the answer (ADR 0007): the key is stuck for
    good. Once the claim is old enough that no live process can be working on it, the
    client reads the state: if the change is there it carries on (the change was made but
    never acknowledged); if not, it sends the change again under a fresh key.
    """

    def __init__(self, http: httpx.AsyncClient, staff: Staff, tally: ClientTally) -> None:
        self.http = http
        self.staff = staff
        self.tally = tally
        self.patience = 900.0

    async def read(
        self, url: str, role: Role = Role.CARE_MANAGER, *, missing_ok: bool = False, **params: Any
    ) -> dict[str, Any]:
        """GET, retried through crashes; with missing_ok a 404 reads as {} (not there yet)."""
        deadline = time.monotonic() + self.patience
        delay = 0.05
        while True:
            try:
                response = await self.http.get(url, params=params, headers=self.staff(role))
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                if response.status_code == 404 and missing_ok:
                    return {}
                if response.status_code < 500:
                    raise JourneyFailed(f"GET {url}: HTTP {response.status_code} {response.text}")
                self.tally.retries["read 5xx"] += 1
            except httpx.TransportError:
                self.tally.retries["read transport error"] += 1
            if time.monotonic() > deadline:
                raise JourneyFailed(f"GET {url}: no answer for {self.patience:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def change(
        self,
        person_id: str,
        step: str,
        method: str,
        url: str,
        body: dict[str, Any],
        *,
        role: Role = Role.CARE_MANAGER,
        expect: int = 200,
        reconcile: Callable[[], Awaitable[dict[str, Any] | None]],
        not_yet: Callable[[httpx.Response], bool] = lambda _: False,
    ) -> dict[str, Any]:
        """Make one change; returns the answer, or the state read back when reconciled."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self.patience
        stuck_since: float | None = None
        delay = 0.05
        while True:
            if time.monotonic() > deadline:
                raise JourneyFailed(f"{step}: not done after {self.patience:.0f}s")
            headers = {**self.staff(role), "Idempotency-Key": key}
            try:
                response = await self.http.request(method, url, json=body, headers=headers)
            except httpx.TransportError:
                self.tally.retries["write transport error"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            status = response.status_code
            if status == expect:
                answer: dict[str, Any] = response.json()
                self.tally.acks.append(Ack(person_id, step, answer))
                if response.headers.get("Idempotent-Replayed") == "true":
                    self.tally.retries["answered from the stored response"] += 1
                return answer
            if status == 409 and STILL_RUNNING in response.text:
                now = time.monotonic()
                if stuck_since is None:
                    stuck_since = now
                    self.tally.retries["key still running"] += 1
                if now - stuck_since > 3.0:
                    # Nothing lives that could finish it: the claimant died with the process.
                    found = await reconcile()
                    if found is not None:
                        self.tally.retries["stuck key: change found made"] += 1
                        return found
                    self.tally.retries["stuck key: sent again with a new key"] += 1
                    key, stuck_since = str(uuid.uuid4()), None
                    continue
            elif status >= 500:
                self.tally.retries["write 5xx"] += 1
            elif not_yet(response):
                self.tally.retries["not there yet"] += 1
            else:
                raise JourneyFailed(f"{step}: HTTP {status}: {response.text[:500]}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def eventually(
        self, what: str, attempt: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience
        delay = 0.05
        while True:
            found = await attempt()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise JourneyFailed(f"waited {self.patience:.0f}s for {what}")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)


@dataclass
class Walked:
    person_id: str
    number: int
    stage: str = "started"
    error: str | None = None


async def walk(
    client: PortalClient, urls: dict[str, str], policy: Policy, walked: Walked, today: date
) -> None:
    """One person's journey, self-assessment to a released payment in the audit history."""
    person_id, number = walked.person_id, walked.number
    assessment_url = f"{urls['assessment']}/v1/assessments"

    async def first(url: str, role: Role = Role.CARE_MANAGER, **params: Any) -> dict[str, Any]:
        items: list[dict[str, Any]] = (await client.read(url, role, **params))["items"]
        return items[0] if items else {}

    async def my_assessment() -> dict[str, Any] | None:
        return await first(assessment_url, person_id=person_id) or None

    group = policy.client_groups[number % len(policy.client_groups)]
    created = await client.change(
        person_id, "start the self-assessment", "POST", assessment_url,
        {
            "person_id": person_id, "client_group": group.value, "completed_by": "supported",
            "team": f"Team {1 + number % 3}", "key_worker_id": f"KW{1 + number % 5}",
            "age_band": ["18-64", "65-74", "75-84", "85+"][number % 4], "community_based": True,
        },
        expect=201, reconcile=my_assessment,
    )  # fmt: skip
    assessment_id = created["assessment_id"]
    one = f"{assessment_url}/{assessment_id}"

    def assessment_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(one)
            return found if found["status"] in states else None

        return check

    async def answers_saved() -> dict[str, Any] | None:
        found = await client.read(one)
        return found if found["answers"].get("domains") or found["status"] != "draft" else None

    await client.change(
        person_id, "answer the questionnaire", "PUT", f"{one}/answers",
        {
            "domains": demo_answers(policy, number),
            "significant_informal_support": number % 2 == 0, "needs_24_7": False,
            "carer_support_weekly_pence": 0, "other_funding": [],
            "outcomes": ["Stay living in my own home"],
            "risks": [{"risk_id": "falls", "description": "Has fallen at home twice",
                       "persons_view": "I manage if someone checks on me"}],
        },
        reconcile=answers_saved,
    )  # fmt: skip
    await client.change(
        person_id, "submit the self-assessment", "POST", f"{one}/submit", {},
        reconcile=assessment_reached("submitted", "validated"),
    )  # fmt: skip
    await client.change(
        person_id, "validate the self-assessment", "POST", f"{one}/validate",
        {"adjustments": [], "risks": [{"risk_id": "falls", "flagged": True,
                                       "practitioners_view": "Needs a pendant alarm"}]},
        reconcile=assessment_reached("validated"),
    )  # fmt: skip
    walked.stage = "assessment validated"

    budgets_url = f"{urls['allocation']}/v1/budgets"

    async def budget_listed() -> dict[str, Any] | None:
        return await first(budgets_url, person_id=person_id) or None

    listed = await client.eventually("allocation to issue the indicative budget", budget_listed)
    budget_id = listed["budget_id"]
    budget = await client.read(f"{budgets_url}/{budget_id}")
    weekly = int(budget["current_revision"]["weekly_pence"])
    above = bool(budget["current_revision"]["above_ceiling"])
    agreeing_role = (
        who_may_agree(policy, weekly, group) or policy.approvals.ceiling_exception_roles[0]
    )

    async def budget_agreed() -> dict[str, Any] | None:
        found = await client.read(f"{budgets_url}/{budget_id}")
        return found if found["status"] != "awaiting_agreement" else None

    await client.change(
        person_id, "agree the budget", "POST", f"{budgets_url}/{budget_id}/agree",
        {"ceiling_exception_reason": "Agreed at panel"} if above else {},
        role=agreeing_role, reconcile=budget_agreed,
    )  # fmt: skip
    walked.stage = "budget agreed"

    plans_url = f"{urls['planning']}/v1/plans"
    contingency = weekly // 20

    async def my_plan() -> dict[str, Any] | None:
        summary = await first(plans_url, person_id=person_id)
        return await client.read(f"{plans_url}/{summary['plan_id']}") if summary else None

    plan = await client.change(
        person_id, "draft the support plan", "POST", plans_url,
        {
            "person_id": person_id, "budget_id": budget_id,
            "outcomes": ["Stay living in my own home"],
            "lines": [{"description": "Personal assistant", "provider_kind": "personal_assistant",
                       "frequency": "weekly", "amount_pence": max(weekly - contingency, 0),
                       "domains": [d.key for d in policy.questionnaire.domains],
                       "outcomes": ["Stay living in my own home"],
                       "provider_holds_funds": False}],
            "contingency_weekly_pence": contingency,
            "risk_mitigations": [{"risk_id": "falls", "mitigation": "Pendant alarm",
                                  "referred_to_risk_panel": False}],
        },
        expect=201, reconcile=my_plan,
        # planning has not yet read the BudgetIssued event
        not_yet=lambda r: r.status_code == 422 and "budget" in r.text.lower(),
    )  # fmt: skip
    plan_id = plan["plan_id"]

    def plan_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(f"{plans_url}/{plan_id}")
            return found if found["status"] in states else None

        return check

    await client.change(
        person_id, "submit the support plan", "POST", f"{plans_url}/{plan_id}/submit", {},
        reconcile=plan_reached("submitted", "signed_off"),
    )  # fmt: skip
    signing_role = lowest_sign_off_role(policy, int(plan["costing"]["weekly_pence"]), group)
    if signing_role is None:
        raise JourneyFailed(f"no role may sign off {plan['costing']['weekly_pence']}p a week")
    await client.change(
        person_id, "sign off the support plan", "POST", f"{plans_url}/{plan_id}/sign-off", {},
        role=signing_role, reconcile=plan_reached("signed_off"),
    )  # fmt: skip
    walked.stage = "plan signed off"

    deployments_url = f"{urls['payments']}/v1/deployments"

    async def deployment_listed() -> dict[str, Any] | None:
        return await first(deployments_url, person_id=person_id) or None

    deployment = await client.eventually("payments to set up the deployment", deployment_listed)
    deployment_id = deployment["deployment_id"]
    one_deployment = f"{deployments_url}/{deployment_id}"

    def deployment_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(one_deployment, Role.FINANCE)
            return found if found["status"] in states else None

        return check

    await client.change(
        person_id, "arrange a direct payment", "PUT", f"{one_deployment}/arrangement",
        {
            "parts": [{"option": "direct_payment",
                       "annual_pence": int(deployment["gross_annual_pence"])}],
            "frequency": "four_weekly", "first_due_on": today.isoformat(),
            "assessed_max_weekly_contribution_pence": 0,
        },
        reconcile=deployment_reached("awaiting_agreement", "active"),
    )  # fmt: skip
    await client.change(
        person_id, "record the signed agreement", "POST", f"{one_deployment}/agreement",
        {"signed_on": today.isoformat()},
        reconcile=deployment_reached("active"),
    )  # fmt: skip

    async def first_released() -> dict[str, Any] | None:
        schedule = await client.read(f"{one_deployment}/schedule", Role.FINANCE, limit=200)
        done = [i for i in schedule["items"] if i["status"] == "released"]
        return {"released": done} if done else None

    await client.change(
        person_id, "release the first payment", "POST", f"{one_deployment}/release",
        {"as_of": today.isoformat()}, role=Role.FINANCE, reconcile=first_released,
    )  # fmt: skip
    walked.stage = "payment released"

    history_url = f"{urls['audit']}/v1/people/{person_id}/history"

    async def audited() -> dict[str, Any] | None:
        # audit answers 404 for a person until the first of their events reaches it
        page = await client.read(history_url, Role.AUDITOR, missing_ok=True, limit=200)
        types = {event["type"] for event in page.get("items", [])}
        return page if RELEASED in types else None

    await client.eventually("the audit history to show the payment", audited)
    walked.stage = "complete"


# --- the injector ---------------------------------------------------------------------------


@dataclass
class Injection:
    number: int
    target: str
    kind: str
    detail: str
    seconds: float


class Injector:
    """Chooses each fault with a seeded RNG and carries it out; restarts run alongside."""

    def __init__(self, system: ChaosSystem, seed: int, mean_gap: float) -> None:
        self.system = system
        # Two generators: the seed alone fixes which faults come in which order, whatever
        # the timings (which depend on the machine) turn out to be.
        self.choices = random.Random(seed)
        self.rng = random.Random(seed + 1)
        self.mean_gap = mean_gap
        self.done: list[Injection] = []
        self._returning: dict[str, asyncio.Task[int]] = {}
        self.extra_starts = 0
        self.targets: list[tuple[str, str]] = [("kill", name) for name in SERVICES]
        self.targets += [("relay", name) for name in PRODUCERS]
        if system.engine == "kafka":
            self.targets += [("kill", "broker"), ("kill", "postgres")]

    async def _settled(self, name: str) -> None:
        task = self._returning.pop(name, None)
        if task is not None:
            self.extra_starts += await task - 1

    async def all_back(self) -> None:
        for name in list(self._returning):
            await self._settled(name)

    async def run(
        self, count: int, on_done: Callable[[Injection], None], enough: asyncio.Event
    ) -> None:
        for number in range(1, count + 1):
            await asyncio.sleep(self.rng.uniform(0, 2 * self.mean_gap))
            if enough.is_set():
                break
            kind, target = self.choices.choice(self.targets)
            started = time.monotonic()
            if target in ("broker", "postgres"):
                # The whole system leans on these: let every service come back first.
                await self.all_back()
                detail = await asyncio.to_thread(self._server, target)
            else:
                await self._settled(target)
                detail = await asyncio.to_thread(self._service, kind, target)
                self._returning[target] = asyncio.create_task(
                    asyncio.to_thread(self.system.bring_back, target)
                )
            injection = Injection(number, target, kind, detail, time.monotonic() - started)
            self.done.append(injection)
            on_done(injection)
        await self.all_back()

    def _service(self, kind: str, name: str) -> str:
        supervisor = self.system.supervisor
        if kind == "kill":
            supervisor.kill(name)
            return "SIGKILL"
        # The relay runs inside the service: hold the log so the relay blocks in publish
        # with a batch in hand; once the outbox shows unpublished rows, let the log go and
        # kill the service a few milliseconds later, before or after the log took the
        # batch but before the outbox marked it published (that one is published twice).
        backlog = 0
        with self.system.log_held():
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                backlog = self.system.outbox_backlog(name)
                if backlog:
                    break
                time.sleep(0.02)
        delay = self.rng.uniform(0, 0.015) if backlog else 0.0
        time.sleep(delay)
        supervisor.kill(name)
        if backlog:
            return (
                f"SIGKILL {delay * 1000:.0f} ms after the log came back, relay mid-batch "
                f"with {backlog} unpublished outbox row(s)"
            )
        return "SIGKILL; its outbox stayed empty for 2 s (no traffic for it)"

    def _server(self, name: str) -> str:
        if name == "broker":
            assert self.system.broker is not None
            self.system.broker.sigkill()
            time.sleep(self.rng.uniform(0.5, 3.0))
            started = time.monotonic()
            self.system.broker.start()
            return f"SIGKILL, restarted in {time.monotonic() - started:.1f}s"
        assert self.system.postgres is not None
        self.system.postgres.sigkill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        started = time.monotonic()
        self.system.postgres.start()
        return f"SIGKILL (postmaster and backends), restarted in {time.monotonic() - started:.1f}s"


# --- the oracle -----------------------------------------------------------------------------


@dataclass
class LogEvent:
    event_id: str
    type: str
    person_id: str
    data: dict[str, Any]


def read_embedded_log(path: Path) -> tuple[list[LogEvent], int]:
    """Every event in the embedded log file, in offset order, and the dead letters."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            'SELECT topic, value FROM records ORDER BY topic, partition, "offset"'
        ).fetchall()
    finally:
        connection.close()
    events = [_parse(value) for topic, value in rows if topic in TOPICS]
    return events, sum(1 for topic, _ in rows if topic == DEAD_LETTERS)


async def read_kafka_log(bootstrap: str) -> tuple[list[LogEvent], int]:
    """Every record of every partition from offset 0, with no consumer group."""
    from aiokafka import (  # type: ignore[import-untyped]
        AIOKafkaClient,
        AIOKafkaConsumer,
        TopicPartition,
    )

    metadata_client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await metadata_client.bootstrap()
    try:
        cluster = await metadata_client.fetch_all_metadata()
    finally:
        await metadata_client.close()
    partitions = [
        TopicPartition(topic, p)
        for topic in (*TOPICS, DEAD_LETTERS)
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        raise RuntimeError(f"the broker at {bootstrap} has none of the topics {TOPICS}")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        events: list[LogEvent] = []
        dead = 0
        while remaining:
            batches = await consumer.getmany(timeout_ms=2000, max_records=1000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == DEAD_LETTERS:
                        dead += 1
                    else:
                        events.append(_parse(record.value))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return events, dead
    finally:
        await consumer.stop()


def _parse(value: bytes) -> LogEvent:
    cloud_event = json.loads(value)
    data = cloud_event["data"]
    return LogEvent(cloud_event["id"], cloud_event["type"], cloud_event["subject"], data)


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    checks: Counter[str] = field(default_factory=Counter)

    def check(self, name: str, ok: bool, why: str) -> None:
        self.checks[name] += 1
        if not ok:
            self.failures.append(f"{name}: {why}")

    @property
    def ok(self) -> bool:
        return not self.failures


async def _items(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        response = await http.get(url, params=query, headers=headers)
        if response.status_code != 200:
            raise JourneyFailed(f"GET {url}: HTTP {response.status_code} {response.text[:300]}")
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def person_views(
    http: httpx.AsyncClient, urls: dict[str, str], staff: Staff, person_id: str
) -> dict[str, Any]:
    """What each service's API shows of one person."""
    cm, fin, aud = staff(Role.CARE_MANAGER), staff(Role.FINANCE), staff(Role.AUDITOR)
    pid = {"person_id": person_id}
    deployments = await _items(http, f"{urls['payments']}/v1/deployments", fin, **pid)
    return {
        "assessments": await _items(http, f"{urls['assessment']}/v1/assessments", cm, **pid),
        "budgets": await _items(http, f"{urls['allocation']}/v1/budgets", cm, **pid),
        "plans": await _items(http, f"{urls['planning']}/v1/plans", cm, **pid),
        "deployments": deployments,
        "instalments": [
            i
            for d in deployments
            for i in await _items(
                http, f"{urls['payments']}/v1/deployments/{d['deployment_id']}/schedule", fin
            )
        ],
        "history": await _items(http, f"{urls['audit']}/v1/people/{person_id}/history", aud),
    }


ACKED_EVENTS: dict[str, tuple[str, str]] = {
    "start the self-assessment": (STARTED, "assessment_id"),
    "submit the self-assessment": (SUBMITTED, "assessment_id"),
    "validate the self-assessment": (VALIDATED, "assessment_id"),
    "agree the budget": (BUDGET_ISSUED, "budget_id"),
    "submit the support plan": (PLAN_SUBMITTED, "plan_id"),
    "sign off the support plan": (SIGNED_OFF, "plan_id"),
    "arrange a direct payment": (SET_UP, "deployment_id"),
    "record the signed agreement": (AGREEMENT, "deployment_id"),
}
"""The event each acknowledged step promised, and the field naming the thing it changed."""


def judge(
    people: list[str],
    acks: list[Ack],
    log: list[LogEvent],
    dead_letters: int,
    views: dict[str, dict[str, Any]],
    verify: dict[str, Any],
    as_of: date,
) -> Verdict:
    """Every check of the oracle over what was read; no service code is involved."""
    verdict = Verdict()
    copies = Counter(e.event_id for e in log)
    distinct: dict[str, LogEvent] = {}
    for event in log:
        distinct.setdefault(event.event_id, event)
    by_person: dict[str, list[LogEvent]] = defaultdict(list)
    for event in distinct.values():
        by_person[event.person_id].append(event)
    verdict.figures.update(
        {
            "log records": len(log),
            "distinct events": len(distinct),
            "copies published again (at-least-once)": sum(n - 1 for n in copies.values()),
            "dead letters": dead_letters,
        }
    )
    verdict.check("no dead letters", dead_letters == 0, f"{dead_letters} record(s) dead-lettered")
    strangers = set(by_person) - set(people)
    verdict.check("no events for people never walked", not strangers, f"{sorted(strangers)}")

    # 1. No acknowledged event lost.
    for ack in acks:
        mine = by_person.get(ack.person_id, [])
        if ack.step == "release the first payment":
            released_ids = {e.data["payment_id"] for e in mine if e.type == RELEASED}
            for item in ack.body["released"]:
                verdict.check(
                    "acknowledged release in the log",
                    item["payment_id"] in released_ids,
                    f"{ack.person_id}: payment {item['payment_id']} answered 200, no event",
                )
            continue
        if ack.step not in ACKED_EVENTS:
            continue
        kind, id_field = ACKED_EVENTS[ack.step]
        wanted = str(ack.body[id_field])
        verdict.check(
            "acknowledged change in the log",
            any(e.type == kind and str(e.data.get(id_field)) == wanted for e in mine),
            f"{ack.person_id}: '{ack.step}' answered 2xx but no {kind} for {wanted} in the log",
        )

    released_total = due_total = 0
    for person_id in people:
        mine = by_person.get(person_id, [])
        view = views[person_id]
        who = person_id
        types = Counter(e.type for e in mine)

        # 2. No effect applied twice (distinct event ids for one effect; doubled records).
        for kind in ONCE_PER_PERSON:
            verdict.check(
                "each journey event once", types[kind] == 1, f"{who}: {types[kind]} x {kind}"
            )
        budgets = sorted(
            (e.data["budget_id"], e.data["revision"], e.data["stage"])
            for e in mine
            if e.type == BUDGET_ISSUED
        )
        verdict.check(
            "budget issued indicative then final, once each",
            [stage for *_, stage in budgets] == ["indicative", "final"]
            or sorted(stage for *_, stage in budgets) == ["final", "indicative"],
            f"{who}: {budgets}",
        )
        for name in ("assessments", "budgets", "plans", "deployments"):
            verdict.check(f"one of each: {name}", len(view[name]) == 1, f"{who}: {view[name]}")
        history_ids = [e["event_id"] for e in view["history"]]
        verdict.check(
            "audit recorded each event once",
            len(history_ids) == len(set(history_ids)),
            f"{who}: {Counter(history_ids).most_common(3)}",
        )

        # 3. Effects downstream: audit has exactly the log's events; each service shows
        # what the events it consumes say.
        verdict.check(
            "audit history equals the log",
            set(history_ids) == {e.event_id for e in mine},
            f"{who}: missing from audit { ({e.event_id for e in mine} - set(history_ids)) }, "
            f"not in the log {set(history_ids) - {e.event_id for e in mine}}",
        )
        issued = {b for b, _, _ in budgets}
        verdict.check(
            "validated assessment became a budget",
            [b["budget_id"] for b in view["budgets"]] == sorted(issued),
            f"{who}: allocation lists {view['budgets']}, the log issued {issued}",
        )
        verdict.check(
            "final budget after sign-off",
            all(b["status"] == "final" for b in view["budgets"]),
            f"{who}: {[b['status'] for b in view['budgets']]}",
        )
        signed = {e.data["plan_id"] for e in mine if e.type == SIGNED_OFF}
        verdict.check(
            "signed-off plan became a deployment",
            {d["plan_id"] for d in view["deployments"]} == signed,
            f"{who}: deployments for {[d['plan_id'] for d in view['deployments']]}, "
            f"signed {signed}",
        )

        # 4. Every release matches a scheduled instalment; each instalment released once.
        schedules = {e.data["schedule_id"]: e.data for e in mine if e.type == SCHEDULED}
        verdict.check(
            "each schedule once",
            len(schedules) == types[SCHEDULED],
            f"{who}: {types[SCHEDULED]} PaymentScheduled for {len(schedules)} schedule(s)",
        )
        instalments = {(i["schedule_id"], i["instalment_number"]): i for i in view["instalments"]}
        verdict.check(
            "payments shows each instalment once",
            len(instalments) == len(view["instalments"]),
            f"{who}: {len(view['instalments'])} rows for {len(instalments)} slots",
        )
        due = 0
        for schedule_id, fact in schedules.items():
            rows = sorted(
                (i for i in view["instalments"] if i["schedule_id"] == schedule_id),
                key=lambda i: int(i["instalment_number"]),
            )
            count, total = int(fact["instalments"]), int(fact["total_pence"])
            amounts = [int(i["amount_pence"]) for i in rows]
            verdict.check(
                "schedule splits its total exactly",
                [int(i["instalment_number"]) for i in rows] == list(range(1, count + 1))
                and sum(amounts) == total
                and all(total // count <= a <= -(-total // count) for a in amounts),
                f"{who}: schedule {schedule_id} of {total}p in {count}: {amounts}",
            )
            step = FREQUENCY_DAYS.get(fact["frequency"])
            first_due = date.fromisoformat(fact["first_due_on"])
            if step is not None:
                expected = [first_due + timedelta(days=step * k) for k in range(count)]
                verdict.check(
                    "instalments fall due on the schedule's dates",
                    [date.fromisoformat(i["due_on"]) for i in rows] == expected,
                    f"{who}: schedule {schedule_id}",
                )
            due += sum(
                int(i["amount_pence"]) for i in rows if date.fromisoformat(i["due_on"]) <= as_of
            )
        releases = [e.data for e in mine if e.type == RELEASED]
        slots = Counter((r["schedule_id"], int(r["instalment_number"])) for r in releases)
        verdict.check(
            "each instalment released once",
            all(n == 1 for n in slots.values()),
            f"{who}: {[s for s, n in slots.items() if n > 1]} released more than once",
        )
        for release in releases:
            scheduled = schedules.get(release["schedule_id"])
            row = instalments.get((release["schedule_id"], int(release["instalment_number"])))
            verdict.check(
                "release matches a scheduled instalment",
                scheduled is not None
                and row is not None
                and release["deployment_id"] == scheduled["deployment_id"]
                and 1 <= int(release["instalment_number"]) <= int(scheduled["instalments"])
                and int(release["amount_pence"]) == int(row["amount_pence"])
                and row["status"] == "released"
                and row["payment_id"] == release["payment_id"]
                and date.fromisoformat(release["due_on"]) <= as_of,
                f"{who}: {release} against {scheduled} / {row}",
            )
        released = sum(int(r["amount_pence"]) for r in releases)
        verdict.check(
            "released equals due",
            released == due and due > 0,
            f"{who}: released {released}p, due {due}p by {as_of}",
        )
        released_total += released
        due_total += due

    # 5. The audit chains verify, over exactly the events the log holds.
    verdict.check("audit chains verify", verify.get("ok") is True, json.dumps(verify)[:500])
    verdict.check(
        "audit holds every event",
        verify.get("events") == len(distinct),
        f"audit verified {verify.get('events')} events, the log holds {len(distinct)}",
    )
    verdict.figures.update(
        {"released pence": released_total, "due pence": due_total, "people": len(people)}
    )
    return verdict


async def consult_oracle(
    system: ChaosSystem, people: list[str], acks: list[Ack], as_of: date
) -> Verdict:
    """Read the log and the APIs once everything has settled, and judge."""
    urls = system.urls()
    staff = Staff(system.supervisor.data_dir, COUNCIL)
    async with httpx.AsyncClient(timeout=120) as http:
        previous: tuple[Any, ...] | None = None
        deadline = time.monotonic() + 120
        while True:  # settled: two readings two seconds apart agree
            if system.broker is not None:
                log, dead = await read_kafka_log(system.broker.bootstrap)
            else:
                log, dead = await asyncio.to_thread(
                    read_embedded_log, system.supervisor.data_dir / "eventlog.db"
                )
            views = {p: await person_views(http, urls, staff, p) for p in people}
            reading = (len(log), dead, json.dumps(views, sort_keys=True, default=str))
            if reading == previous or time.monotonic() > deadline:
                break
            previous = reading
            await asyncio.sleep(2.0)
        response = await http.get(f"{urls['audit']}/v1/verify", headers=staff(Role.AUDITOR))
        verify = response.json() if response.status_code == 200 else {"status": response.text}
    return judge(people, acks, log, dead, views, verify, as_of)


# --- the run --------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    engine: str
    seed: int
    requested: int
    seconds: float
    injections: list[Injection]
    extra_starts: int
    journeys: list[Walked]
    tally: ClientTally
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.verdict.ok and all(w.stage == "complete" for w in self.journeys)


async def run_chaos(
    system: ChaosSystem,
    *,
    injections: int,
    people: int,
    seed: int,
    mean_gap: float = 0.5,
    on_injection: Callable[[Injection], None] = lambda _: None,
    on_journey: Callable[[Walked], None] = lambda _: None,
    enough: asyncio.Event | None = None,
) -> ChaosReport:
    """people walkers walk person after person while the injections run, then the oracle.

    Setting `enough` stops the injections early; the journeys under way finish and the
    oracle judges the run all the same.
    """
    enough = enough or asyncio.Event()
    policy = PolicyBook.from_directory(REPO_ROOT / "policies").current(COUNCIL)
    staff = Staff(system.supervisor.data_dir, COUNCIL)
    tally = ClientTally()
    today = date.today()
    walked: list[Walked] = []
    injector = Injector(system, seed, mean_gap)
    finished = asyncio.Event()
    started = time.monotonic()
    run_tag = f"{seed:x}{uuid.uuid4().hex[:4]}"

    async def walker(client: PortalClient) -> None:
        while True:
            person = Walked(f"CHAOS-{run_tag}-{len(walked):04d}", len(walked))
            walked.append(person)
            try:
                await walk(client, system.urls(), policy, person, today)
            except (JourneyFailed, httpx.HTTPError, KeyError) as err:
                person.error = f"{type(err).__name__}: {err}"
            on_journey(person)
            if finished.is_set():
                return

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        client = PortalClient(http, staff, tally)
        lanes = [asyncio.create_task(walker(client)) for _ in range(people)]
        try:
            await injector.run(injections, on_injection, enough)
        finally:
            finished.set()
            await injector.all_back()
        await asyncio.gather(*lanes)
    people_ids = [w.person_id for w in walked]
    verdict = await consult_oracle(system, people_ids, tally.acks, today)
    return ChaosReport(
        engine=system.engine,
        seed=seed,
        requested=injections,
        seconds=time.monotonic() - started,
        injections=injector.done,
        extra_starts=injector.extra_starts,
        journeys=walked,
        tally=tally,
        verdict=verdict,
    )


# --- the command ----------------------------------------------------------------------------


def summary_tables(report: ChaosReport) -> list[Table]:
    by_target = Table(title=f"Injections ({report.engine} engine, seed {report.seed})")
    by_target.add_column("target")
    by_target.add_column("fault")
    by_target.add_column("count", justify="right")
    counted = Counter((i.target, i.kind) for i in report.injections)
    for (target, kind), count in sorted(counted.items()):
        fault = "SIGKILL + restart" if kind == "kill" else "SIGKILL with relay mid-batch"
        if kind == "relay":
            caught = sum(
                1
                for i in report.injections
                if (i.target, i.kind) == (target, kind) and "mid-batch" in i.detail
            )
            fault += f" ({caught} with rows in hand)"
        by_target.add_row(target, fault, str(count))
    stopped = (
        f"stopped early: {report.requested} asked for"
        if len(report.injections) < report.requested
        else ""
    )
    by_target.add_row("all", stopped, str(len(report.injections)))

    run = Table(title="The run")
    run.add_column("what")
    run.add_column("figure", justify="right")
    complete = sum(1 for w in report.journeys if w.stage == "complete")
    rows = [
        ("seconds", f"{report.seconds:.0f}"),
        ("journeys walked / complete", f"{len(report.journeys)} / {complete}"),
        ("acknowledged changes", str(len(report.tally.acks))),
        ("service starts beyond one per kill", str(report.extra_starts)),
    ]
    rows += [(f"client: {what}", str(n)) for what, n in sorted(report.tally.retries.items())]
    figures = report.verdict.figures
    rows += [(what, str(n)) for what, n in figures.items() if "pence" not in what]
    rows += [
        ("released", f"£{figures.get('released pence', 0) / 100:,.2f}"),
        ("due", f"£{figures.get('due pence', 0) / 100:,.2f}"),
        ("oracle checks run", str(sum(report.verdict.checks.values()))),
        ("oracle failures", str(len(report.verdict.failures))),
    ]
    for what, figure in rows:
        run.add_row(what, figure)
    return [by_target, run]


def chaos(
    engine: Annotated[
        str, typer.Option(help="embedded (SQLite + embedded log) or kafka (+ PostgreSQL).")
    ] = "embedded",
    injections: Annotated[int, typer.Option(min=1, help="How many faults to inject.")] = 100,
    people: Annotated[int, typer.Option(min=1, help="People walking at once.")] = 6,
    seed: Annotated[int, typer.Option(help="Seeds the choice and timing of faults.")] = 1,
    gap: Annotated[float, typer.Option(help="Mean seconds between faults.")] = 0.5,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the run's data and logs in this directory.")
    ] = None,
) -> None:
    """Kill services, relays, broker and PostgreSQL at random during journeys; then check."""
    console = Console()
    if engine not in ("embedded", "kafka"):
        console.print(f"[red]--engine must be embedded or kafka, not {engine!r}[/red]")
        raise typer.Exit(2)
    root = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="pbj-chaos-"))
    console.print(f"Starting the system on the {engine} engine in {root} ...")
    report = None
    try:
        with (
            ChaosSystem.running(engine, root) as system,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            faults = progress.add_task("faults injected", total=injections)
            journeys = progress.add_task("journeys complete", total=None)
            lock = threading.Lock()

            def injected(injection: Injection) -> None:
                progress.advance(faults)
                progress.console.log(
                    f"#{injection.number} {injection.target}: {injection.detail} "
                    f"({injection.seconds:.1f}s)"
                )

            def journeyed(walked: Walked) -> None:
                with lock:
                    progress.advance(journeys)
                if walked.error:
                    progress.console.log(f"[red]{walked.person_id} failed: {walked.error}[/red]")

            async def judged() -> ChaosReport:
                # Ctrl-C or SIGTERM: no more faults; the journeys finish and are judged.
                enough = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, enough.set)
                return await run_chaos(
                    system,
                    injections=injections,
                    people=people,
                    seed=seed,
                    mean_gap=gap,
                    on_injection=injected,
                    on_journey=journeyed,
                    enough=enough,
                )

            report = asyncio.run(judged())
    finally:
        if keep is None and report is not None and report.ok:
            shutil.rmtree(root, ignore_errors=True)
    for table in summary_tables(report):
        console.print(table)
    for walked in report.journeys:
        if walked.stage != "complete":
            console.print(f"[red]{walked.person_id} stopped at {walked.stage}: {walked.error}")
    for failure in report.verdict.failures[:50]:
        console.print(f"[red]{failure}[/red]")
    if not report.ok:
        console.print(f"[red]The oracle failed; data and service logs kept in {root}[/red]")
        raise typer.Exit(1)
    console.print("[green]Nothing acknowledged was lost, nothing was applied twice, and the "
                  "money released is the money due.[/green]")  # fmt: skip
