"""The five services as real processes on the embedded log: the whole journey, end to end."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.registry import ALL_TOPICS
from contracts.vocabulary import Role
from pbj.journey import Staff, walk_journey
from pbj.processes import REPO_ROOT, SERVICES, Supervisor
from servicekit.eventlog import OutgoingRecord
from servicekit.eventlog.embedded import EmbeddedEventLog
from servicekit.testing import POLICIES_DIR

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)


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


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    data_dir = tmp_path_factory.mktemp("journey")
    supervisor = Supervisor(
        data_dir=data_dir, ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    )
    supervisor.start()
    try:
        supervisor.wait_ready(timeout=90)
        yield supervisor
    finally:
        supervisor.stop()


def auditor(system: Supervisor, council: str = "lancashire") -> dict[str, str]:
    return Staff(system.data_dir, council)(Role.AUDITOR)


async def journey(system: Supervisor, council: str, number: int = 0):
    async with httpx.AsyncClient(timeout=30) as client:
        return await walk_journey(
            client,
            system.urls(),
            Staff(system.data_dir, council),
            BOOK.current(council),
            person_number=number,
        )


async def test_a_person_goes_from_self_assessment_to_a_released_payment_and_an_audit_history(
    system: Supervisor,
):
    result = await journey(system, "lancashire")
    assert result.stage == "complete"
    assert result.released_pence > 0
    async with httpx.AsyncClient(timeout=30) as client:
        history = (
            await client.get(
                f"{system.urls()['audit']}/v1/people/{result.person_id}/history",
                params={"limit": 200},
                headers=auditor(system),
            )
        ).json()["items"]
    types = [event["type"].split(".")[2] for event in history]
    for expected in (
        "assessment-validated",
        "budget-issued",
        "plan-signed-off",
        "deployment-set-up",
        "agreement-signed",
        "payment-released",
    ):
        assert expected in types, f"{expected} missing from {types}"
    assert types.index("assessment-validated") < types.index("budget-issued")
    assert types.index("plan-signed-off") < types.index("payment-released")


async def test_every_councils_policy_carries_a_person_through(system: Supervisor):
    results = await asyncio.gather(
        *(journey(system, council, number) for number, council in enumerate(BOOK.councils))
    )
    assert [r.stage for r in results] == ["complete"] * len(BOOK.councils)


async def _released_and_history(system: Supervisor, person_id: str) -> tuple[int, int]:
    urls = system.urls()
    async with httpx.AsyncClient(timeout=30) as client:
        staff = Staff(system.data_dir, "lancashire")
        deployments = (
            await client.get(
                f"{urls['payments']}/v1/deployments",
                params={"person_id": person_id},
                headers=staff(Role.FINANCE),
            )
        ).json()["items"]
        schedule = (
            await client.get(
                f"{urls['payments']}/v1/deployments/{deployments[0]['deployment_id']}/schedule",
                headers=staff(Role.FINANCE),
            )
        ).json()
        instalments = schedule["items"] if isinstance(schedule, dict) else schedule
        released = sum(1 for i in instalments if i["status"] == "released")
        history = (
            await client.get(
                f"{urls['audit']}/v1/people/{person_id}/history",
                params={"limit": 200},
                headers=auditor(system),
            )
        ).json()["items"]
    return released, len(history)


async def test_redelivering_every_event_changes_nothing(system: Supervisor):
    result = await journey(system, "lancashire", 7)
    before = await _released_and_history(system, result.person_id)
    log = EmbeddedEventLog(system.data_dir / "eventlog.db")
    await log.start()
    reader = log.consumer("redelivery-test", list(ALL_TOPICS))
    records = []
    while batch := await reader.poll(timeout_ms=200):
        records.extend(batch)
    await log.publish([OutgoingRecord(r.topic, r.key, r.value) for r in records])
    await log.close()
    await asyncio.sleep(2)  # every consumer has long since seen the copies by now
    assert await _released_and_history(system, result.person_id) == before


async def test_replay_rebuilds_byte_identical_projections(system: Supervisor):
    await journey(system, "lancashire", 3)
    url = system.urls()["audit"]
    operations = Staff(system.data_dir, "lancashire")(Role.OPERATIONS)
    async with httpx.AsyncClient(timeout=30) as client:
        live = (await client.get(f"{url}/v1/projections/digest", headers=operations)).json()
        started = await client.post(f"{url}/v1/replay", json={}, headers=operations)
        assert started.status_code in (200, 202), started.text
        replay_id = started.json()["replay_id"]
        deadline = time.monotonic() + 60
        while True:
            state = (await client.get(f"{url}/v1/replay/{replay_id}", headers=operations)).json()
            if state["status"] != "running" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert state["status"] == "done", state
        rebuilt = (await client.get(f"{url}/v1/projections/digest", headers=operations)).json()
    assert rebuilt["digest"] == live["digest"]


async def test_the_audit_chain_verifies_after_the_journeys(system: Supervisor):
    await journey(system, "lancashire", 5)
    async with httpx.AsyncClient(timeout=60) as client:
        report = (
            await client.get(
                f"{system.urls()['audit']}/v1/verify",
                headers=Staff(system.data_dir, "lancashire")(Role.AUDITOR),
            )
        ).json()
    assert report["ok"] is True, report


def test_pbj_demo_walks_people_through_and_prints_where_each_ended(system: Supervisor):
    env = dict(os.environ)
    for name, url in system.urls().items():
        env[f"PBJ_{name.upper()}_URL"] = url
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbj.cli",
            "demo",
            "--people",
            "1",
            "--councils",
            "lancashire,council_a",
            "--data-dir",
            str(system.data_dir),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("complete") == 2


def test_pbj_export_gives_the_same_batch_file_twice(system: Supervisor, tmp_path: Path):
    env = dict(os.environ)
    for name, url in system.urls().items():
        env[f"PBJ_{name.upper()}_URL"] = url
    asyncio.run(journey(system, "lancashire", 9))
    out = tmp_path / "batch.csv"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbj.cli",
            "export",
            "payments",
            "--out",
            str(out),
            "--data-dir",
            str(system.data_dir),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("batch_id")
    assert lines[-1].startswith("CONTROL")
