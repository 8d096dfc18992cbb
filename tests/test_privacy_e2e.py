"""Personal data end to end, with the five services as real processes on both engines.

One person goes through the whole journey with their name, date of birth, NHS number and
address. The subject access export (`pbj export person`) gathers all five services and
shows the details; erasure (`pbj erase`) is refused inside the retention period and,
once past it, destroys the person's data key. Afterwards a full audit replay and
`pbj verify` still succeed, and the raw bytes of every store (SQLite files and the
embedded log, or PostgreSQL dumps and the Kafka topics read with kcat) and every log
line hold none of the person's details in the clear: nor did they before erasure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC
from contracts.vocabulary import Role
from pbj.journey import Staff, walk_journey
from pbj.processes import SERVICES, Supervisor
from servicekit.testing import POLICIES_DIR
from services.assessment.personal import add_years, age_band_on
from tests.systems import run_pbj, supervised_system

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)
COUNCIL = "lancashire"


system = supervised_system("privacy", "prv")


def valid_nhs_number(rng: random.Random) -> str:
    """Nine random digits and their modulus 11 check digit (NHS Data Dictionary)."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def someone() -> dict[str, str]:
    """A made-up person whose details appear nowhere else on this machine."""
    rng = random.Random()
    tag = uuid.uuid4().hex[:8]
    return {
        "name": f"Winifred Ashworth-{tag}",
        "date_of_birth": f"19{rng.randrange(30, 50)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
        "nhs_number": valid_nhs_number(rng),
        "address": f"{rng.randrange(2, 99)} Moor Lane {tag}, Clitheroe",
        "postcode": f"BB7 {rng.randrange(1, 10)}QZ",
    }


def secrets_of(details: dict[str, str]) -> dict[str, bytes]:
    """What must never be found in the clear: name, date of birth, NHS number, postcode."""
    surname = details["name"].split(" ", 1)[1]
    return {
        "name": details["name"].encode(),
        "surname": surname.encode(),
        "date_of_birth": details["date_of_birth"].encode(),
        "nhs_number": details["nhs_number"].encode(),
        "postcode": details["postcode"].encode(),
        "address": details["address"].split(",")[0].encode(),
    }


def _kafka_topics(system: Supervisor, kcat: str) -> bytes:
    """Every record's key and value on every topic of this run, as kcat reads them."""
    assert system.event_log_url is not None
    bootstrap, _, query = system.event_log_url.removeprefix("kafka://").partition("?")
    prefix = query.removeprefix("namespace=") + "."
    chunks = []
    for topic in (*ALL_TOPICS, DEAD_LETTER_TOPIC):
        done = subprocess.run(
            [
                *(kcat, "-C", "-b", bootstrap, "-t", prefix + topic, "-o", "beginning"),
                *("-e", "-q", "-f", "%k %s\n"),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        chunks.append(done.stdout)
    topics = b"".join(chunks)
    assert b"personal-details-recorded" in topics, "kcat read no records of this run"
    return topics


def _postgres_dumps(system: Supervisor) -> bytes:
    chunks = []
    for url in system.database_urls.values():
        database = url.rsplit("/", 1)[1]
        done = subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-U", "pbj", "--data-only", database],
            env={**os.environ, "PGPASSWORD": "pbj"},
            capture_output=True,
            timeout=120,
            check=True,
        )
        chunks.append(done.stdout)
    return b"".join(chunks)


def every_store(system: Supervisor, request: pytest.FixtureRequest) -> dict[str, bytes]:
    """Raw bytes of each store of this run, and of the services' logs."""
    files = sorted(p for p in system.data_dir.rglob("*") if p.is_file())
    stores = {
        "files under the data directory (SQLite, WAL, embedded log, keys, logs)": b"".join(
            p.read_bytes() for p in files
        )
    }
    if system.event_log_url is not None:
        stores["Kafka topics (kcat)"] = _kafka_topics(system, request.getfixturevalue("kcat"))
        stores["PostgreSQL (pg_dump)"] = _postgres_dumps(system)
    return stores


def assert_no_plaintext(stores: dict[str, bytes], details: dict[str, str]) -> None:
    for store, content in stores.items():
        for what, secret in secrets_of(details).items():
            assert secret not in content, f"the person's {what} is in the clear in {store}"


async def _eventually_in_audit(system: Supervisor, person_id: str, event: str) -> None:
    auditor = Staff(system.data_dir, COUNCIL)(Role.AUDITOR)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < deadline:
            history = await client.get(
                f"{system.urls()['audit']}/v1/people/{person_id}/history",
                params={"limit": 200},
                headers=auditor,
            )
            if any(event in item["type"] for item in history.json().get("items", [])):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"audit never recorded {event} for {person_id}")


def _wrapped_key_in_sqlite(system: Supervisor, person_id: str) -> bytes | None:
    if "assessment" in system.database_urls:
        return None
    with sqlite3.connect(system.data_dir / "assessment.db") as connection:
        row = connection.execute(
            "SELECT wrapped_key FROM person_keys WHERE person_id = ?", (person_id,)
        ).fetchone()
    return bytes(row[0])


def _export(system: Supervisor, person_id: str, out: Path) -> dict[str, Any]:
    done = run_pbj(system, "export", "person", person_id, "--council", COUNCIL, "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_a_persons_data_is_exported_then_erased_and_the_history_still_replays(
    system: Supervisor, request: pytest.FixtureRequest, tmp_path: Path
):
    details = someone()
    today = datetime.now(UTC).date()
    result = asyncio.run(_journey_with(system, details))
    assert result.stage == "complete"
    person_id = result.person_id

    # Before erasure: one JSON document from the five services shows who the person is.
    before = _export(system, person_id, tmp_path / "before.json")
    assert before["personal_details"]["status"] == "held"
    current = before["personal_details"]["current"]
    assert current["name"] == details["name"]
    assert current["date_of_birth"] == details["date_of_birth"]
    assert current["nhs_number"] == details["nhs_number"]
    assert current["postcode"] == details["postcode"]
    assert set(before["services"]) == set(SERVICES)
    assert before["services"]["assessment"]["assessments"][0]["age_band"] == age_band_on(
        date.fromisoformat(details["date_of_birth"]), today
    )
    assert before["services"]["allocation"]["budgets"]
    assert before["services"]["planning"]["plans"]
    assert before["services"]["payments"]["deployments"]
    assert before["services"]["audit"]["audit_events"]
    assert_no_plaintext(every_store(system, request), details)
    wrapped_key = _wrapped_key_in_sqlite(system, person_id)

    # Inside the retention period: refused, with the day it ends.
    refused = run_pbj(system, "erase", person_id, "--council", COUNCIL, "--yes")
    assert refused.returncode == 1
    assert "retention period has not ended" in refused.stdout
    policy = BOOK.current(COUNCIL)
    ends = add_years(today, policy.retention_years)
    assert ends.isoformat() in refused.stdout.replace("\n", "")

    # The day after the period ends: the data key is destroyed.
    system.extra_env["ASSESSMENT_RETENTION_TODAY"] = (ends + timedelta(days=1)).isoformat()
    system.restart("assessment")
    erased = run_pbj(system, "erase", person_id, "--council", COUNCIL, "--yes")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert "Erased the personal data" in erased.stdout
    asyncio.run(_eventually_in_audit(system, person_id, "personal-data-erased"))

    after = _export(system, person_id, tmp_path / "after.json")
    assert after["personal_details"]["status"] == "erased"
    assert after["personal_details"]["erased_on"] == datetime.now(UTC).date().isoformat()
    assert "erased on" in after["personal_details"]["note"]
    assert after["services"]["payments"]["deployments"], "the care record itself stays"
    exported = (tmp_path / "after.json").read_bytes()
    for what, secret in secrets_of(details).items():
        assert secret not in exported, f"the export after erasure still shows the {what}"

    # The history is whole: a full replay rebuilds it and every chain verifies.
    replayed = run_pbj(system, "replay", "--council", COUNCIL)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    verified = run_pbj(system, "verify", "--council", COUNCIL)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert '"ok": true' in verified.stdout

    stores = every_store(system, request)
    assert_no_plaintext(stores, details)
    if wrapped_key is not None:
        for store, content in stores.items():
            assert wrapped_key not in content, f"the wrapped data key survived in {store}"


async def _journey_with(system: Supervisor, details: dict[str, str]) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        return await walk_journey(
            client,
            system.urls(),
            Staff(system.data_dir, COUNCIL),
            BOOK.current(COUNCIL),
            person_number=1,
            personal_details=details,
        )


def test_subject_access_is_for_the_person_and_operations_only(system: Supervisor):
    """Each service answers the person and operations; other staff 403, other councils 404."""
    details = someone()
    result = asyncio.run(_journey_with(system, details))
    person_id = result.person_id
    from pbj.idp import mint_for

    def bearer(role: Role, council: str = COUNCIL, person: str | None = None) -> dict[str, str]:
        token = mint_for(
            system.data_dir,
            user_id=f"t-{role.value}",
            role=role,
            council=council,
            person_id=person,
        )
        return {"Authorization": f"Bearer {token}"}

    with httpx.Client(timeout=30) as client:
        for name, url in system.urls().items():
            path = f"{url}/v1/people/{person_id}/subject-access"
            own = client.get(path, headers=bearer(Role.PERSON, person=person_id))
            assert own.status_code == 200, f"{name}: {own.text}"
            assert client.get(path, headers=bearer(Role.OPERATIONS)).status_code == 200
            assert client.get(path, headers=bearer(Role.CARE_MANAGER)).status_code == 403
            other = client.get(path, headers=bearer(Role.OPERATIONS, council="council_a"))
            assert other.status_code == 404, f"{name} answered another council"
            stranger = client.get(path, headers=bearer(Role.PERSON, person="P-stranger"))
            assert stranger.status_code == 404
