"""The five services as real processes on the embedded log: the whole journey, end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from contracts import generate
from contracts.policy import PolicyBook
from contracts.registry import ALL_TOPICS, EVENT_CLASSES
from contracts.vocabulary import Role
from pbj.idp import mint_for
from pbj.journey import Staff, walk_journey
from pbj.processes import Supervisor
from servicekit.eventlog import OutgoingRecord, open_event_log
from servicekit.testing import POLICIES_DIR

# free_ports is imported from this module by others that start services of their own.
from tests.systems import free_ports, run_pbj, supervised_system  # noqa: F401

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)


system = supervised_system("journey", "e2e")


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


def _duplicates_seen_by_audit(system: Supervisor) -> float:
    metrics = httpx.get(f"{system.urls()['audit']}/metrics", timeout=10).text
    for line in metrics.splitlines():
        if line.startswith("pbj_events_consumed_total{") and 'outcome="duplicate"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_redelivering_every_event_changes_nothing(system: Supervisor):
    result = await journey(system, "lancashire", 7)
    before = await _released_and_history(system, result.person_id)
    duplicates_before = _duplicates_seen_by_audit(system)
    log = open_event_log(system.log_url)
    await log.start()
    reader = log.consumer(f"redelivery-{uuid.uuid4()}", list(ALL_TOPICS))
    expected = sum((await reader.end_offsets()).values())
    records = []
    while len(records) < expected:
        records.extend(await reader.poll(timeout_ms=1000))
    await reader.close()
    await log.publish([OutgoingRecord(r.topic, r.key, r.value) for r in records])
    await log.close()
    deadline = time.monotonic() + 60
    while _duplicates_seen_by_audit(system) < duplicates_before + len(records):
        assert time.monotonic() < deadline, "audit never saw the redelivered events"
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # the other services consume the same copies alongside
    assert await _released_and_history(system, result.person_id) == before


def test_pbj_events_redeliver_changes_nothing_and_the_audit_records_who_and_why(
    system: Supervisor,
):
    result = asyncio.run(journey(system, "lancashire", 13))
    before = asyncio.run(_released_and_history(system, result.person_id))
    duplicates_before = _duplicates_seen_by_audit(system)
    reason = f"INC-{uuid.uuid4().hex[:6]}: is payments whole after the restart?"
    done = run_pbj(
        system,
        *("events", "redeliver", "--person", result.person_id, "--council", "lancashire"),
        *("--reason", reason, "--user", "ops-e2e"),
        env={"PBJ_EVENT_LOG_URL": system.log_url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{before[1]} record(s) re-published" in done.stdout
    deadline = time.monotonic() + 60
    while _duplicates_seen_by_audit(system) < duplicates_before + before[1]:
        assert time.monotonic() < deadline, "audit never saw the redelivered events"
        time.sleep(0.2)
    time.sleep(0.5)  # the other services consume the same copies alongside
    assert asyncio.run(_released_and_history(system, result.person_id)) == before
    while True:
        actions = httpx.get(
            f"{system.urls()['audit']}/v1/people/operations:lancashire/history",
            params={"limit": 200},
            headers=auditor(system),
            timeout=30,
        ).json()
        recorded = [a for a in actions.get("items", []) if a["data"]["reason"] == reason]
        if recorded or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [action] = recorded
    assert action["actor"] == "operations:ops-e2e"
    assert action["data"]["action"] == "events_redelivered"
    assert len(action["data"]["event_ids"]) == before[1]


async def _replay(system: Supervisor, body: dict[str, str]) -> dict[str, str]:
    url = system.urls()["audit"]
    operations = Staff(system.data_dir, "lancashire")(Role.OPERATIONS)
    async with httpx.AsyncClient(timeout=30) as client:
        started = await client.post(f"{url}/v1/replay", json=body, headers=operations)
        assert started.status_code in (200, 202), started.text
        replay_id = started.json()["replay_id"]
        deadline = time.monotonic() + 120
        while True:
            state = (await client.get(f"{url}/v1/replay/{replay_id}", headers=operations)).json()
            if state["status"] != "running" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert state["status"] == "done", state
    assert state["processed"] > 0
    return state


async def _digest(system: Supervisor) -> str:
    operations = Staff(system.data_dir, "lancashire")(Role.OPERATIONS)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{system.urls()['audit']}/v1/projections/digest", headers=operations
        )
    return str(response.json()["digest"])


async def test_replay_rebuilds_byte_identical_projections(system: Supervisor):
    await journey(system, "lancashire", 3)
    live = await _digest(system)
    state = await _replay(system, {})
    assert await _digest(system) == live
    # A replay is Lancashire's: another council's operations cannot see it.
    async with httpx.AsyncClient(timeout=30) as client:
        elsewhere = await client.get(
            f"{system.urls()['audit']}/v1/replay/{state['replay_id']}",
            headers=Staff(system.data_dir, "council_a")(Role.OPERATIONS),
        )
    assert elsewhere.status_code == 404, elsewhere.text


async def test_replay_from_a_time_rebuilds_the_same_projections(system: Supervisor):
    await journey(system, "lancashire", 4)
    before_second_journey = datetime.now(UTC)
    await journey(system, "lancashire", 6)
    live = await _digest(system)
    partial = await _replay(system, {"since": before_second_journey.isoformat()})
    assert await _digest(system) == live
    full = await _replay(system, {})
    assert 0 < partial["processed"] < full["processed"], "offsets for times skipped the past"


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


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: str
) -> httpx.Response:
    return await client.get(url, headers=headers, params={"limit": 200, **params})


def _person(system: Supervisor, council: str, person_id: str) -> dict[str, str]:
    token = mint_for(
        system.data_dir, user_id=person_id, role=Role.PERSON, council=council, person_id=person_id
    )
    return {"Authorization": f"Bearer {token}"}


async def _ni130_cohort(client: httpx.AsyncClient, system: Supervisor, council: str) -> int:
    url = f"{system.urls()['audit']}/v1/kpis/ni130"
    response = await _get(client, url, Staff(system.data_dir, council)(Role.TEAM_MANAGER))
    assert response.status_code == 200, response.text
    return int(response.json()["total"]["denominator"])


async def _on_caseload(
    client: httpx.AsyncClient, system: Supervisor, council: str, person_id: str
) -> list[str]:
    """The stages the council's caseload lists this person id at (once, or not at all)."""
    url = f"{system.urls()['audit']}/v1/caseload"
    headers = Staff(system.data_dir, council)(Role.CARE_MANAGER)
    stages: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, headers=headers, params=params)).json()
        stages += [i["stage"] for i in page["items"] if i["person_id"] == person_id]
        cursor = page["next_cursor"]
        if cursor is None:
            return stages


async def test_two_councils_with_the_same_person_id_never_see_each_others_person(
    system: Supervisor,
):
    urls = system.urls()
    person_id = f"P1x{uuid.uuid4().hex[:6]}"  # "P1" of both councils, fresh in this system
    async with httpx.AsyncClient(timeout=30) as client:
        cohort_before = {
            c: await _ni130_cohort(client, system, c) for c in ("lancashire", "council_a")
        }
        lancashire = await walk_journey(
            client,
            urls,
            Staff(system.data_dir, "lancashire"),
            BOOK.current("lancashire"),
            person_id=person_id,
        )
        council_a = await walk_journey(
            client,
            urls,
            Staff(system.data_dir, "council_a"),
            BOOK.current("council_a"),
            person_id=person_id,
            person_number=1,
        )
        assert (lancashire.stage, council_a.stage) == ("complete", "complete")

        for council, result in (("lancashire", lancashire), ("council_a", council_a)):
            for headers in (
                Staff(system.data_dir, council)(Role.CARE_MANAGER),
                _person(system, council, person_id),
            ):
                history = await _get(
                    client, f"{urls['audit']}/v1/people/{person_id}/history", headers
                )
                assert {e["data"]["council"] for e in history.json()["items"]} == {council}
                assert len(history.json()["items"]) == result.audit_events
                budgets = await _get(
                    client, f"{urls['allocation']}/v1/budgets", headers, person_id=person_id
                )
                assert [b["budget_id"] for b in budgets.json()["items"]] == [result.budget_id]
            finance = Staff(system.data_dir, council)(Role.FINANCE)
            deployments = await _get(
                client, f"{urls['payments']}/v1/deployments", finance, person_id=person_id
            )
            assert [d["deployment_id"] for d in deployments.json()["items"]] == [
                result.deployment_id
            ]
            assert await _on_caseload(client, system, council, person_id) == ["receiving_payments"]
            assert await _ni130_cohort(client, system, council) == cohort_before[council] + 1

        # A citizen of Council B naming Lancashire's person id reads nothing of Lancashire's.
        impostor = _person(system, "council_b", person_id)
        for path in ("history", "budget", "timeline", "verify"):
            response = await _get(client, f"{urls['audit']}/v1/people/{person_id}/{path}", impostor)
            assert response.status_code == 404, (path, response.text)
        for service, path in (("allocation", "budgets"), ("payments", "deployments")):
            response = await _get(
                client, f"{urls[service]}/v1/{path}", impostor, person_id=person_id
            )
            assert response.status_code == 200 and response.json()["items"] == [], response.text


def test_pbj_demo_walks_people_through_and_prints_where_each_ended(system: Supervisor):
    completed = run_pbj(system, "demo", "--people", "1", "--councils", "lancashire,council_a")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("complete") == 2


def test_pbj_replay_shows_progress_and_pbj_verify_reports_every_chain_intact(
    system: Supervisor,
):
    asyncio.run(journey(system, "lancashire", 8))
    replayed = run_pbj(system, "replay")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "Rebuilt lancashire from the log" in replayed.stdout
    everyone = run_pbj(system, "replay", "--all-councils", "--user", "ops-jo")
    assert everyone.returncode == 0, everyone.stdout + everyone.stderr
    for council in BOOK.councils:  # each council's replay, recorded as the one who asked
        assert f"Rebuilt {council} from the log" in everyone.stdout
    assert everyone.stdout.count("as operations:ops-jo asked") == len(BOOK.councils)
    verified = run_pbj(system, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert '"ok": true' in verified.stdout


def test_pbj_export_writes_a_batch_with_its_control_row(system: Supervisor, tmp_path: Path):
    asyncio.run(journey(system, "lancashire", 9))
    out = tmp_path / "batch.csv"
    completed = run_pbj(system, "export", "payments", "--out", str(out))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("batch_id")
    assert lines[-1].startswith("CONTROL")
    rows = [line.split(",") for line in lines[1:-1]]
    control = lines[-1].split(",")
    assert int(control[1]) == len(rows)
    assert int(control[2]) == sum(int(row[10]) for row in rows)


def test_kcat_reads_every_topic_as_cloudevents_valid_against_the_contracts(
    system: Supervisor, request: pytest.FixtureRequest
):
    """Software we did not write reads what we published: every record a valid CloudEvent."""
    if system.event_log_url is None:
        pytest.skip("kcat reads Kafka topics; this run is on the embedded log")
    kcat = request.getfixturevalue("kcat")
    asyncio.run(journey(system, "council_a", 11))
    bootstrap, _, query = system.event_log_url.removeprefix("kafka://").partition("?")
    prefix = query.removeprefix("namespace=") + "."
    validators = {
        cls.type: Draft202012Validator(json.loads(generate.schema_file(cls).read_text()))
        for cls in EVENT_CLASSES
    }
    seen: dict[str, int] = {}
    for topic in ALL_TOPICS:
        done = subprocess.run(
            [
                kcat,
                "-C",
                "-b",
                bootstrap,
                "-t",
                prefix + topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-J",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        for line in done.stdout.splitlines():
            message = json.loads(line)
            event = json.loads(message["payload"])
            assert event["specversion"] == "1.0"
            assert {"id", "source", "type", "time", "subject", "data"} <= set(event)
            assert message["key"] == event["subject"], "the key is the person's id"
            validators[event["type"]].validate(event["data"])
            seen[event["type"]] = seen.get(event["type"], 0) + 1
    for essential in (
        "assessment-validated",
        "budget-issued",
        "plan-signed-off",
        "payment-released",
    ):
        assert any(essential in t for t in seen), f"no {essential} on the topics: {seen}"


async def test_the_embedded_engine_builds_the_same_audit_from_the_same_events(
    system: Supervisor, data_dir: Path, tokens
):
    """Kafka's audit and an embedded audit fed the same events in the same order agree."""
    if system.event_log_url is None:
        pytest.skip("compares a Kafka run with the embedded engine; this run is embedded")
    import asyncpg

    from servicekit.eventlog.embedded import EmbeddedEventLog
    from servicekit.testing import running
    from services.audit.api import create_app
    from services.audit.settings import Settings

    await journey(system, "lancashire", 12)
    live = await _digest(system)
    connection = await asyncpg.connect(system.database_urls["audit"].replace("+asyncpg", ""))
    try:
        # Lancashire's chains: the digest is the council's (other councils' people may
        # share these ids, in chains of their own).
        chain = await connection.fetch(
            "SELECT person_id, seq, event_id FROM audit_events "
            "WHERE council = 'lancashire' ORDER BY person_id, seq"
        )
    finally:
        await connection.close()

    kafka = open_event_log(system.log_url)
    await kafka.start()
    reader = kafka.consumer(f"copy-{uuid.uuid4()}", list(ALL_TOPICS))
    expected = sum((await reader.end_offsets()).values())
    values: dict[str, bytes] = {}
    read = 0
    while read < expected:  # the redelivery test left copies: count records, not ids
        for record in await reader.poll(timeout_ms=1000):
            values[json.loads(record.value)["id"]] = record.value
            read += 1
    await reader.close()
    await kafka.close()

    # One topic keyed by person keeps each person's events in the order Kafka's audit
    # chained them; which topic an event came from does not enter the audit.
    embedded = EmbeddedEventLog(data_dir / "eventlog.db")
    await embedded.start()
    await embedded.publish(
        [
            OutgoingRecord("pb.assessment", row["person_id"], values[row["event_id"]])
            for row in chain
        ]
    )
    await embedded.close()
    app = create_app(Settings(data_dir=data_dir, policies_dir=POLICIES_DIR))
    async with running(app) as client:
        headers = tokens.headers("operations")
        deadline = time.monotonic() + 60
        while True:
            body = (await client.get("/v1/projections/digest", headers=headers)).json()
            if body["rows"]["audit_events"] >= len(chain) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert body["digest"] == live
