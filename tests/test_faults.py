"""Faults the architecture promises to survive (architecture §4), with real processes.

A batch of people walks through the five services while the broker stops and comes
back, or while one service is SIGKILLed and restarted. Afterwards an oracle that trusts
nothing the journeys saw reads each service's own HTTP API: every journey completed,
every person has one budget, one plan and one deployment, each instalment was released
at most once and exactly as often as the audit history recorded a PaymentReleased, the
amounts agree, no event was recorded twice, and the audit chains verify.

The broker is one of the test's own (deploy/kafka/kafka.sh on free ports), never the
shared one. A kill is timed to land inside a consumer's batch, after it applied an event
and before it committed the offsets (see crash_mid_batch), and between a client's writes:
a portal resends only what the dead service cannot have received (PatientTransport).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from pbj.journey import JourneyResult, Staff, walk_journey
from pbj.processes import SERVICES, Supervisor, postgres_database_urls
from servicekit.eventlog.embedded import stored_records
from servicekit.testing import POLICIES_DIR
from testkit.chaos.processes import PrivateBroker, free_ports
from tests.systems import admin

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

COUNCIL = "lancashire"
POLICY = PolicyBook.from_directory(POLICIES_DIR).current(COUNCIL)
# The eventual steps wait this long: a broker restart under load can take 20 s and more.
BROKER_OUTAGE_TIMEOUT = 300.0
# A restarted service is back within seconds (on Kafka its group rejoins in 10-20 s).
RESTART_TIMEOUT = 120.0
# A request the service never received (it is down) is sent again for this long.
PATIENCE = 180.0
RELEASED = "pb.payments.payment-released.v1"
BUDGET_ISSUED = "pb.allocation.budget-issued.v1"
# The journey causes each of these once per person: a second copy is an event applied twice.
# (BudgetIssued comes twice, the indicative budget and the final one after sign-off.)
ONCE_PER_PERSON = (
    "pb.assessment.assessment-validated.v2",
    "pb.planning.plan-signed-off.v1",
    "pb.payments.deployment-set-up.v1",
    "pb.payments.agreement-signed.v1",
)


# --- a portal that rides out a restart ------------------------------------------------------


class PatientTransport(httpx.AsyncBaseTransport):
    """Sends a request again while its service is down, as a portal's retry would.

    Only requests that cannot have been applied are resent: any request refused at
    connect (the service is not listening), and reads whatever went wrong. A mutating
    request that reached the service is never resent, since without an idempotency key
    that could act twice; instead `quiet(url)` holds new mutating requests to a service
    and waits out those in flight, so a kill lands between a client's writes while the
    service's own relay and consumers are busy.
    """

    def __init__(self, patience: float = PATIENCE) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._patience = patience
        self._held: dict[int | None, asyncio.Event] = {}
        self._writing: Counter[int | None] = Counter()
        self.resent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port
        mutating = request.method not in ("GET", "HEAD", "OPTIONS")
        deadline = time.monotonic() + self._patience
        delay = 0.05
        while True:
            if mutating:
                while (gate := self._held.get(port)) is not None:
                    await gate.wait()
                self._writing[port] += 1
            try:
                response = await self._inner.handle_async_request(request)
                try:
                    # Read the body here, so a read cut short by a kill is retried too.
                    content = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    content=content,
                    extensions=response.extensions,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Refused at connect: the service never saw it, so any method may go again.
                if time.monotonic() > deadline:
                    raise
                self.resent += 1
            except httpx.TransportError:
                if mutating or time.monotonic() > deadline:
                    raise
                self.resent += 1
            finally:
                if mutating:
                    self._writing[port] -= 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    @contextlib.asynccontextmanager
    async def quiet(self, url: str) -> AsyncIterator[None]:
        """Hold new writes to the service at url and wait until none is in flight."""
        port = httpx.URL(url).port
        gate = asyncio.Event()
        self._held[port] = gate
        try:
            while self._writing[port]:
                await asyncio.sleep(0.005)
            yield
        finally:
            del self._held[port]
            gate.set()

    async def aclose(self) -> None:
        await self._inner.aclose()


# --- the system under test ------------------------------------------------------------------


@contextlib.contextmanager
def running(supervisor: Supervisor) -> Iterator[Supervisor]:
    supervisor.start()
    try:
        supervisor.wait_ready(timeout=120)
        yield supervisor
    finally:
        supervisor.stop()


@contextlib.asynccontextmanager
async def postgres_databases(admin_url: str, run_id: str) -> AsyncIterator[dict[str, str]]:
    """Five fresh databases, one per service, dropped afterwards whatever happened."""
    await admin(admin_url, *(f"CREATE DATABASE {run_id}_{name}" for name in SERVICES))
    try:
        yield postgres_database_urls(prefix=run_id)
    finally:
        await admin(admin_url, *(f"DROP DATABASE {run_id}_{n} WITH (FORCE)" for n in SERVICES))


def new_supervisor(data_dir: Path, **options: Any) -> Supervisor:
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    return Supervisor(data_dir=data_dir, ports=ports, **options)


def start_journeys(
    client: httpx.AsyncClient, system: Supervisor, count: int, stagger: float, timeout: float
) -> list[asyncio.Task[JourneyResult]]:
    """count people set off stagger seconds apart, so a fault finds them at every step."""
    staff = Staff(system.data_dir, COUNCIL)

    async def one(number: int) -> JourneyResult:
        await asyncio.sleep(number * stagger)
        return await walk_journey(
            client,
            system.urls(),
            staff,
            POLICY,
            person_number=number,
            timeout=timeout,
        )

    return [asyncio.create_task(one(number)) for number in range(count)]


@contextlib.asynccontextmanager
async def journeys_in_flight(
    client: httpx.AsyncClient, system: Supervisor, count: int, stagger: float, timeout: float
) -> AsyncIterator[list[asyncio.Task[JourneyResult]]]:
    """start_journeys, and cancel whichever are left if the test fails part way."""
    journeys = start_journeys(client, system, count, stagger, timeout)
    try:
        yield journeys
    finally:
        for journey in journeys:
            journey.cancel()
        await asyncio.gather(*journeys, return_exceptions=True)


async def listed(
    client: httpx.AsyncClient, system: Supervisor, service: str, path: str, **params: str
) -> int:
    """How many records a service lists for the council (one page is plenty here)."""
    response = await client.get(
        f"{system.urls()[service]}{path}",
        params={"limit": 200, **params},
        headers=Staff(system.data_dir, COUNCIL)(Role.CARE_MANAGER),
    )
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def under_way(
    client: httpx.AsyncClient,
    system: Supervisor,
    journeys: Sequence[asyncio.Task[JourneyResult]],
    *,
    service: str,
    path: str,
    at_least: int,
) -> None:
    """Wait until service lists at least that many records, with journeys still going."""
    deadline = time.monotonic() + 120
    while True:
        for journey in journeys:
            if journey.done():
                journey.result()  # a journey that failed before the fault: say why
        if await listed(client, system, service, path) >= at_least:
            break
        assert time.monotonic() < deadline, f"{service} never listed {at_least} on {path}"
        await asyncio.sleep(0.05)
    assert not all(j.done() for j in journeys), "the batch finished before the fault came"


# --- the oracle -----------------------------------------------------------------------------


async def ledger(client: httpx.AsyncClient, system: Supervisor, person_id: str) -> dict[str, Any]:
    """What each service's own API says about one person, in a comparable form."""
    urls = system.urls()
    staff = Staff(system.data_dir, COUNCIL)

    async def items(url: str, role: Role, **params: str) -> list[dict[str, Any]]:
        response = await client.get(url, params={"limit": 200, **params}, headers=staff(role))
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        page = response.json()
        assert page["next_cursor"] is None, f"GET {url}: more than one page"
        found: list[dict[str, Any]] = page["items"]
        return found

    budgets = await items(
        f"{urls['allocation']}/v1/budgets", Role.CARE_MANAGER, person_id=person_id
    )
    plans = await items(f"{urls['planning']}/v1/plans", Role.CARE_MANAGER, person_id=person_id)
    deployments = await items(
        f"{urls['payments']}/v1/deployments", Role.FINANCE, person_id=person_id
    )
    instalments = [
        instalment
        for deployment in deployments
        for instalment in await items(
            f"{urls['payments']}/v1/deployments/{deployment['deployment_id']}/schedule",
            Role.FINANCE,
        )
    ]
    history = await items(f"{urls['audit']}/v1/people/{person_id}/history", Role.AUDITOR)
    return {
        "budgets": sorted(b["budget_id"] for b in budgets),
        "plans": sorted(p["plan_id"] for p in plans),
        "deployments": sorted(d["deployment_id"] for d in deployments),
        "instalments": sorted(
            (i["schedule_id"], i["instalment_number"], i["instalment_id"]) for i in instalments
        ),
        "released": sorted(
            (i["payment_id"], i["schedule_id"], i["instalment_number"], i["amount_pence"])
            for i in instalments
            if i["status"] == "released"
        ),
        "history": [(e["event_id"], e["type"], e["data"]) for e in history],
    }


async def settled_ledgers(system: Supervisor, people: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Every person's ledger once two readings a second apart agree (late copies included)."""
    async with httpx.AsyncClient(timeout=60) as client:
        previous: dict[str, dict[str, Any]] | None = None
        deadline = time.monotonic() + 30
        while True:
            books = await asyncio.gather(*(ledger(client, system, p) for p in people))
            current = dict(zip(people, books, strict=True))
            if current == previous or time.monotonic() > deadline:
                return current
            previous = current
            await asyncio.sleep(1.0)


async def check_every_journey(system: Supervisor, results: Sequence[JourneyResult]) -> None:
    """The oracle: nothing lost, nothing applied twice, each payment released once."""
    assert [r.stage for r in results] == ["complete"] * len(results)
    logs = system.log_dir or system.data_dir / "logs"
    ledgers = await settled_ledgers(system, [r.person_id for r in results])
    for result in results:
        book = ledgers[result.person_id]
        who = f"{result.person_id} (service logs in {logs})"
        assert book["budgets"] == [result.budget_id], f"{who}: budgets {book['budgets']}"
        assert book["plans"] == [result.plan_id], f"{who}: plans {book['plans']}"
        assert book["deployments"] == [result.deployment_id], f"{who}: {book['deployments']}"
        slots = [(schedule, number) for schedule, number, _ in book["instalments"]]
        assert len(slots) == len(set(slots)), f"{who}: an instalment scheduled twice: {slots}"

        history = book["history"]
        event_ids = [event_id for event_id, _, _ in history]
        assert len(event_ids) == len(set(event_ids)), f"{who}: audit recorded an event twice"
        types = Counter(kind for _, kind, _ in history)
        for kind in ONCE_PER_PERSON:
            assert types[kind] == 1, f"{who}: {types[kind]} x {kind} in the audit history {types}"
        stages = sorted(body["stage"] for _, kind, body in history if kind == BUDGET_ISSUED)
        assert stages == ["final", "indicative"], f"{who}: budgets issued {stages}"
        data = {kind: body for _, kind, body in history}
        assert data[BUDGET_ISSUED]["budget_id"] == result.budget_id
        assert data["pb.planning.plan-signed-off.v1"]["plan_id"] == result.plan_id
        assert data["pb.payments.deployment-set-up.v1"]["deployment_id"] == result.deployment_id

        released = book["released"]
        assert released, f"{who}: payments shows nothing released"
        payments = [payment_id for payment_id, _, _, _ in released]
        assert len(payments) == len(set(payments)), f"{who}: a payment id used twice"
        released_slots = [(schedule, number) for _, schedule, number, _ in released]
        assert len(released_slots) == len(set(released_slots)), f"{who}: released twice"
        audited = sorted(
            (
                body["payment_id"],
                body["schedule_id"],
                body["instalment_number"],
                body["amount_pence"],
            )
            for _, kind, body in history
            if kind == RELEASED
        )
        assert audited == released, (
            f"{who}: payments released {len(released)} instalment(s) but audit recorded "
            f"{len(audited)} PaymentReleased: {released} != {audited}"
        )
        assert sum(amount for *_, amount in released) == result.released_pence, who

    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.get(
            f"{system.urls()['audit']}/v1/verify",
            headers=Staff(system.data_dir, COUNCIL)(Role.AUDITOR),
        )
    report = response.json()
    assert response.status_code == 200 and report["ok"] is True, report
    assert report["people"] == len(results), report
    assert report["events"] == sum(len(book["history"]) for book in ledgers.values()), report


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.postgres
async def test_journeys_complete_with_each_payment_released_once_when_the_broker_stops_mid_batch(
    kafka_bootstrap: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    """Eight people on Kafka + PostgreSQL; the broker stops for a while and starts again."""
    # Asked for so that CI insists on Kafka's tooling; the outage is a broker of our own.
    del kafka_bootstrap
    broker = PrivateBroker(tmp_path / "kafka", kafka_start_timeout=180, start_timeout=240)
    await asyncio.to_thread(broker.start)
    try:
        async with postgres_databases(postgres_admin_url, f"faults{uuid.uuid4().hex[:10]}") as dbs:
            system = new_supervisor(
                tmp_path / "system", event_log_url=f"kafka://{broker.bootstrap}", database_urls=dbs
            )
            with running(system):
                async with (
                    httpx.AsyncClient(transport=PatientTransport(), timeout=60) as client,
                    journeys_in_flight(
                        # Spread wide enough that, however fast the services, the last
                        # people have not started when the first budgets are issued.
                        client,
                        system,
                        count=8,
                        stagger=1.5,
                        timeout=BROKER_OUTAGE_TIMEOUT,
                    ) as journeys,
                ):
                    # Events already travel through the broker when it goes: two budgets
                    # are issued from AssessmentValidated, most people are still on the way.
                    await under_way(
                        client,
                        system,
                        journeys,
                        service="allocation",
                        path="/v1/budgets",
                        at_least=2,
                    )
                    await asyncio.to_thread(broker.stop)
                    await asyncio.sleep(5)  # people carry on: events wait in the outboxes
                    issued = await listed(client, system, "allocation", "/v1/budgets")
                    assert issued < len(journeys), "no event had to wait for the broker"
                    await asyncio.to_thread(broker.start)
                    results = await asyncio.gather(*journeys)
                await check_every_journey(system, results)
    finally:
        await asyncio.to_thread(broker.stop)


KILLS = [
    pytest.param("embedded", "allocation", id="embedded-allocation"),
    pytest.param("embedded", "payments", id="embedded-payments"),
    pytest.param(
        "kafka-postgres",
        "payments",
        marks=[pytest.mark.kafka, pytest.mark.postgres],
        id="kafka-postgres-payments",
    ),
]
# What a victim consumes, as where its producer lists what it emitted, and where the
# victim lists what it made of those events: the difference is the victim's backlog.
FEEDS = {
    "allocation": (("assessment", "/v1/assessments", "validated"), "/v1/budgets"),
    "payments": (("planning", "/v1/plans", "signed_off"), "/v1/deployments"),
}


async def consumed(client: httpx.AsyncClient, system: Supervisor, name: str, outcome: str) -> float:
    """A service's count of events its consumer applied (or found to be duplicates)."""
    metrics = (await client.get(f"{system.urls()[name]}/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("pbj_events_consumed_total{") and (
            f'consumer="{name}"' in line and f'outcome="{outcome}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


LOCK_HELD_SECONDS = 3.0
"""How long the kill holds the embedded log's write lock, waiting for the victim to apply,
before it lets a commit of offsets that waits on it through."""
LOCK_LET_GO_SECONDS = 0.15
"""How long the kill lets go of the lock at most: longer than SQLite's busy handler sleeps
between tries (at most 100 ms), so a commit of offsets that waits on it gets through."""


def _let_a_waiting_commit_through(
    log: sqlite3.Connection, group: str, applied: Callable[[], bool]
) -> None:
    """Let go of the log's write lock until the group's offsets move (the commit that
    waited on it went through) or the victim has applied what the kill waits for; then
    take it again at once, asking without the busy handler's sleeps.

    Either way the victim, reading and applying on, finds the lock held again before it
    can commit the offsets of what it applied. A fixed 150 ms let go was long enough for
    the waiting commit, the next batch and that batch's commit too: a CI run saw the
    victim killed with nothing left to apply twice.
    """
    query = "SELECT topic, partition, next_offset FROM group_offsets WHERE group_id = ?"
    before = log.execute(query, (group,)).fetchall()
    log.execute("ROLLBACK")
    log.execute("PRAGMA busy_timeout = 0")
    try:
        given_up_at = time.monotonic() + LOCK_LET_GO_SECONDS
        while log.execute(query, (group,)).fetchall() == before and not applied():
            if time.monotonic() > given_up_at:
                break
            time.sleep(0.001)
        while True:
            try:
                log.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err):
                    raise
    finally:
        log.execute("PRAGMA busy_timeout = 10000")


async def _count_inbox_then_kill(system: Supervisor, victim: str, events: int) -> None:
    """Let the frozen victim go; SIGKILL it the moment its inbox holds `events` more rows
    (and, on the embedded log, one of the events it applied has its offset uncommitted).

    The inbox is read only to time the kill, never as evidence: the oracle reads the APIs.
    """
    process = system.processes[victim]
    url = system.database_urls.get(victim)
    if url is None:
        connection = sqlite3.connect(f"file:{system.data_dir / victim}.db?mode=ro", uri=True)

        def count() -> int:
            return int(connection.execute("SELECT count(*) FROM inbox").fetchone()[0])

        # Hold the embedded log's write lock while the victim runs: it reads and applies
        # its batch but cannot commit its offsets, so the kill lands between the two
        # however quickly batched consumption gets from one to the other.
        log = sqlite3.connect(system.data_dir / "eventlog.db", timeout=10.0)
        log.isolation_level = None
        log.execute("BEGIN IMMEDIATE")
        try:
            if applied_but_not_committed(connection, log, system.data_dir / "eventlog.db"):
                # Frozen between the two already: let go, it would wait on the lock held
                # here to commit, and never apply more. This is the crash wanted.
                os.kill(process.pid, signal.SIGKILL)
                return
            target = count() + events  # exact: the victim is frozen
            process.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 30
            let_go_at = time.monotonic() + LOCK_HELD_SECONDS
            while True:
                while count() < target:
                    assert time.monotonic() < deadline, f"{victim} applied nothing after the pause"
                    if time.monotonic() > let_go_at:
                        # Frozen after reading records that carry nothing for it (other
                        # events of its producer's topic), the victim first commits their
                        # offsets: let that commit through, then hold the lock again before
                        # it gets to the records it applies.
                        _let_a_waiting_commit_through(
                            log, group=victim, applied=lambda wanted=target: count() >= wanted
                        )
                        let_go_at = time.monotonic() + LOCK_HELD_SECONDS
                if applied_but_not_committed(connection, log, system.data_dir / "eventlog.db"):
                    break
                # It applied and committed its offsets while the lock was let go: with the
                # lock held again, wait for it to apply the next event.
                target = count() + 1
            os.kill(process.pid, signal.SIGKILL)
        finally:
            if log.in_transaction:  # a lock not taken again is not to be let go of
                log.execute("ROLLBACK")
            log.close()
            connection.close()
        return
    import asyncpg

    remote = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        query = "SELECT count(*) FROM inbox"
        target = int(await remote.fetchval(query)) + events
        process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while int(await remote.fetchval(query)) < target:
            assert time.monotonic() < deadline, f"{victim} applied nothing after the pause"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        await remote.close()


def applied_but_not_committed(
    victim_db: sqlite3.Connection, log: sqlite3.Connection, log_path: Path
) -> bool:
    """Whether the victim's inbox holds an event its consumer group has not committed past.
    `log` holds the log's write lock, so the records read from `log_path` are as it sees."""
    applied = {
        event_id: group
        for group, event_id in victim_db.execute("SELECT consumer, event_id FROM inbox")
    }
    committed = {
        (group, topic, partition): next_offset
        for group, topic, partition, next_offset in log.execute(
            "SELECT group_id, topic, partition, next_offset FROM group_offsets"
        )
    }
    for record in stored_records(log_path):
        topic, partition, offset = record.topic, record.partition, record.offset
        try:
            group = applied.get(json.loads(record.value).get("id"))
        except (ValueError, AttributeError):
            continue  # a dead letter's raw value: not an event the victim applied
        if group is not None and offset >= committed.get((group, topic, partition), 0):
            return True
    return False


def outbox_published(system: Supervisor, service: str) -> bool:
    """Whether everything the service committed is on the log. Listed by its API is not
    enough: its relay publishes a moment later, and on the embedded log not at all while
    the kill holds the log's write lock, which would leave the frozen victim nothing to
    apply."""
    if system.event_log_url is not None:
        return True  # the kill holds no lock on Kafka: a relay's lag only delays the victim
    connection = sqlite3.connect(f"file:{system.data_dir / service}.db?mode=ro", uri=True)
    try:
        query = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        return int(connection.execute(query).fetchone()[0]) == 0
    finally:
        connection.close()


def kill_after_applying(system: Supervisor, victim: str, events: int) -> None:
    """Kill the frozen victim once it applied `events` more, within a millisecond or so.

    The count runs on a loop and a thread of their own while the caller's loop is
    blocked: no journey's request in this process may delay the kill.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _count_inbox_then_kill(system, victim, events)).result()
    system.kill(victim)  # reap it


def log_lock_is_free(system: Supervisor) -> bool:
    """False when the embedded log's write lock stays taken: a frozen writer holds it.

    Every process writes to the one SQLite file, so a process frozen inside a write would
    stop the whole system, which a crash (the lock dies with the process) never does.
    """
    if system.event_log_url is not None:
        return True
    connection = sqlite3.connect(system.data_dir / "eventlog.db", timeout=2.0)
    connection.isolation_level = None
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


async def crash_mid_batch(
    client: httpx.AsyncClient,
    transport: PatientTransport,
    system: Supervisor,
    journeys: Sequence[asyncio.Task[JourneyResult]],
    victim: str,
) -> None:
    """SIGKILL the victim part way through a batch of events.

    It is frozen (SIGSTOP) until at least three events for it wait in the log, let go,
    and killed the moment its inbox shows it applied the first of them (on the embedded
    log: its first batch holds them all) or the second (on Kafka, whose first fetch after
    a pause may hold one record: a fetch that was waiting is answered as soon as one
    arrives). The rest of that batch is not applied and its offsets are not committed:
    the crash the inbox and at-least-once delivery exist for.
    """
    (producer, produced, status), made = FEEDS[victim]
    await under_way(client, system, journeys, service=victim, path=made, at_least=1)
    process = system.processes[victim]
    async with transport.quiet(system.urls()[victim]):
        for _ in range(10):
            # What the victim made may grow by one before it freezes: four to be sure of 3.
            done = await listed(client, system, victim, made)
            process.send_signal(signal.SIGSTOP)
            if await asyncio.to_thread(log_lock_is_free, system):
                break
            process.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{victim} froze inside a write to the log ten times")
        try:
            assert done + 4 <= len(journeys), f"{victim} got too far ahead: {done} made"
            deadline = time.monotonic() + 60
            while await listed(client, system, producer, produced, status=status) < done + 4:
                assert time.monotonic() < deadline, f"no backlog built up for {victim}"
                await asyncio.sleep(0.05)
            while not await asyncio.to_thread(outbox_published, system, producer):
                assert time.monotonic() < deadline, f"{producer}'s backlog never reached the log"
                await asyncio.sleep(0.05)
            kill_after_applying(system, victim, 1 if system.event_log_url is None else 2)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)


@contextlib.asynccontextmanager
async def system_on(
    engine: str, request: pytest.FixtureRequest, data_dir: Path
) -> AsyncIterator[Supervisor]:
    if engine == "embedded":
        with running(new_supervisor(data_dir)) as system:
            yield system
        return
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    admin_url = request.getfixturevalue("postgres_admin_url")
    run_id = f"faults{uuid.uuid4().hex[:10]}"
    async with postgres_databases(admin_url, run_id) as dbs:
        system = new_supervisor(
            data_dir,
            event_log_url=f"kafka://{bootstrap}?namespace={run_id}",
            database_urls=dbs,
            # Nothing here can hold Kafka's offset commit back as the embedded log's lock
            # is held: one event per transaction leaves a window between a victim's apply
            # and its offset commit for the kill to land in, wherever batching would not.
            extra_env={f"{name.upper()}_CONSUMER_BATCH": "1" for name in SERVICES},
        )
        with running(system):
            yield system


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine's name; Kafka and PostgreSQL are found (or started) here, outside the loop."""
    if request.param == "kafka-postgres":
        request.getfixturevalue("kafka_bootstrap")
        request.getfixturevalue("postgres_admin_url")
    name: str = request.param
    return name


@pytest.mark.parametrize(("engine", "victim"), KILLS, indirect=["engine"])
async def test_journeys_complete_when_a_service_is_killed_and_restarted(
    engine: str, victim: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Nine people (headroom for a victim that ran ahead before it froze); the victim is
    SIGKILLed inside a batch of events and started again."""
    async with system_on(engine, request, tmp_path) as system:
        transport = PatientTransport()
        async with (
            httpx.AsyncClient(transport=transport, timeout=60) as client,
            journeys_in_flight(
                client, system, count=9, stagger=0.4, timeout=RESTART_TIMEOUT
            ) as journeys,
        ):
            await crash_mid_batch(client, transport, system, journeys, victim)
            await asyncio.sleep(1.0)  # down a while: requests and events for it pile up
            await asyncio.to_thread(system.restart, victim)
            results = await asyncio.gather(*journeys)
            # The kill fell between applying and committing: the restarted victim was
            # handed again an event it had applied, and its inbox knew it.
            assert await consumed(client, system, victim, "duplicate") >= 1
        await check_every_journey(system, results)
