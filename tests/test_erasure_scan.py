"""After erasure, no file under the data directory holds any of the person's details.

Everything a person's details pass through is planted with values found nowhere else: an
assessment started with details, answers and a correction sent with an Idempotency-Key, a
client import, subject access and the CLD identities, the exports staff save beside the
data (KPIs, the CLD return, the what-if report). The person is then erased and every byte
of every file under the data directory (each service's database and write-ahead log, the
event log with its dead letters, the idempotency tables, the saved exports) is searched
for each value, as UTF-8 and as JSON would encode it. The services' log lines are
searched with the services as real processes, in tests/test_privacy_e2e.py.

The subject access export and a CLD return with its identities filled in hold details in
the clear by design; the operator saves them outside the data directory and deletes them
under the council's own procedure (docs/privacy.md), so they are not planted here.
Dead letters cannot carry details: no event has a field for them (test_privacy_contracts).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.policy import load_policy, policy_document
from contracts.vocabulary import Role
from pbj.journey import ELIGIBLE_NEEDS
from servicekit.testing import POLICIES_DIR, Tokens, running

SERVICES = ("assessment", "allocation", "planning", "payments", "audit")
RETENTION_TODAY = date(2200, 1, 1)
"""Erasure waits for the end of the retention period: the check takes a day far ahead."""

# Seed 003 ch.2 Step 1 §ii: Lancashire's six domains.
LANCASHIRE_ANSWERS = {
    "staying_safe": 4,
    "communication": 2,
    "work_leisure_learning": 3,
    "essential_living_tasks": 4,
    "personal_care": 3,
    "health": 3,
}


def valid_nhs_number(rng: random.Random) -> str:
    """Nine random digits and their modulus 11 check digit (NHS Data Dictionary)."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def someone(rng: random.Random) -> dict[str, str]:
    """Made-up details that appear nowhere else; the name is not ASCII, so JSON escapes it."""
    tag = uuid.uuid4().hex[:8]
    return {
        "name": f"Winifred Åshworth-{tag}",
        "date_of_birth": f"19{rng.randrange(30, 50)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
        "nhs_number": valid_nhs_number(rng),
        "address": f"{rng.randrange(2, 99)} Moor Lane {tag}, Clitheroe",
        "postcode": f"BB{rng.randrange(1, 10)} {rng.randrange(1, 10)}QZ",
        "phone": f"01200 {rng.randrange(100000, 999999)}",
        "email": f"winifred.{tag}@example.org",
    }


def forms_of(value: str) -> set[bytes]:
    """How a value could sit in a file: as UTF-8 text, and as JSON would encode it."""
    return {value.encode(), json.dumps(value)[1:-1].encode()}


@dataclass
class Deployment:
    data_dir: Path
    clients: dict[str, httpx.AsyncClient]
    tokens: Tokens

    def headers(self, role: Role, key: str | None = None) -> dict[str, str]:
        headers = self.tokens.headers(role, "lancashire", user_id=f"{role.value}-1")
        return {**headers, "Idempotency-Key": key} if key else headers

    async def ok(self, service: str, method: str, path: str, role: Role, **kwargs: Any) -> Any:
        key = f"{method} {path} {uuid.uuid4()}"
        r = await self.clients[service].request(
            method, path, headers=self.headers(role, key), **kwargs
        )
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r


@pytest.fixture
async def deployment(data_dir: Path, tokens: Tokens) -> AsyncIterator[Deployment]:
    """The five services in-process on one data directory and the embedded event log."""
    import importlib

    async with AsyncExitStack() as stack:
        clients = {}
        for name in SERVICES:
            api = importlib.import_module(f"services.{name}.api")
            settings = importlib.import_module(f"services.{name}.settings")
            extra = {"retention_today": RETENTION_TODAY} if name == "assessment" else {}
            app = api.create_app(
                settings.Settings(data_dir=data_dir, policies_dir=POLICIES_DIR, **extra)
            )
            clients[name] = await stack.enter_async_context(running(app))
        yield Deployment(data_dir, clients, tokens)


async def start_with_details(d: Deployment, person_id: str, details: dict[str, str]) -> None:
    r = await d.ok(
        "assessment",
        "POST",
        "/v1/assessments",
        Role.CARE_MANAGER,
        json={
            "person_id": person_id,
            "client_group": "older_people",
            "completed_by": "supported",
            "team": "Ribble Valley OP team",
            "key_worker_id": "kw-3",
            "personal_details": details,
        },
    )
    url = f"/v1/assessments/{r.json()['assessment_id']}"
    answers = {
        "domains": LANCASHIRE_ANSWERS,
        "significant_informal_support": False,
        "needs_24_7": False,
        "outcomes": ["Stay in my own home"],
        "risks": [],
    }
    await d.ok("assessment", "PUT", f"{url}/answers", Role.CARE_MANAGER, json=answers)
    await d.ok("assessment", "POST", f"{url}/submit", Role.CARE_MANAGER)
    await d.ok("assessment", "POST", f"{url}/eligibility", Role.CARE_MANAGER, json=ELIGIBLE_NEEDS)
    validation = {"adjustments": [], "risks": []}
    await d.ok("assessment", "POST", f"{url}/validate", Role.CARE_MANAGER, json=validation)


async def import_person(d: Deployment, details: dict[str, str]) -> str:
    forename, surname = details["name"].split(" ", 1)
    extract = (
        "legacy_client_id,forename,surname,date_of_birth,nhs_number,postcode,"
        "client_group,team,key_worker,community_based\r\n"
        f"CF{uuid.uuid4().hex[:8]},{forename},{surname},{details['date_of_birth']},"
        f"{details['nhs_number']},{details['postcode']},older_people,North,KW1,Y\r\n"
    )
    r = await d.clients["assessment"].post(
        "/v1/imports/people",
        content=extract.encode(),
        headers={
            **d.headers(Role.OPERATIONS, f"import-{uuid.uuid4()}"),
            "Content-Type": "text/csv",
        },
    )
    assert r.status_code == 200, r.text
    [imported] = r.json()["imported"]
    return str(imported["person_id"])


async def until_audit_holds(d: Deployment, person_id: str) -> None:
    """Audit follows the event log in the background."""
    for _ in range(400):
        r = await d.clients["audit"].get(
            f"/v1/people/{person_id}/history", headers=d.headers(Role.AUDITOR)
        )
        if r.status_code == 200 and r.json()["items"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit never recorded {person_id}")


async def save_exports(d: Deployment) -> None:
    """What staff save beside the data: KPI figures, the CLD return, the what-if report."""
    exports = d.data_dir / "exports"
    exports.mkdir()
    auditor = d.headers(Role.AUDITOR)
    today = datetime.now(UTC).date()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    audit = d.clients["audit"]
    for name, path, params in (
        ("kpis.csv", "/v1/returns/kpis.csv", {"by": "team"}),
        ("cld.csv", "/v1/returns/cld.csv", {"quarter": quarter}),
    ):
        r = await audit.get(path, params=params, headers=auditor)
        assert r.status_code == 200, r.text
        (exports / name).write_bytes(r.content)
    proposal = policy_document(load_policy(POLICIES_DIR / "lancashire.yaml"))
    proposal["version"] = "2099.1"
    for form in ("csv", "html", "json"):
        r = await d.clients["allocation"].post(
            "/v1/policies/whatif",
            params={"format": form},
            json={"policy": proposal},
            headers=auditor,
        )
        assert r.status_code == 200, r.text
        (exports / f"whatif.{form}").write_bytes(r.content)


def found_in(data_dir: Path, values: dict[str, str]) -> list[str]:
    """Where any planted value is in the clear: 'what in which file'."""
    places = {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }
    return [
        f"{what} in {place}"
        for what, value in values.items()
        for place, content in places.items()
        if any(form in content for form in forms_of(value))
    ]


async def test_after_erasure_no_file_under_the_data_directory_holds_any_of_the_details(
    deployment: Deployment,
):
    d = deployment
    rng = random.Random()
    started, corrected, imported = someone(rng), someone(rng), someone(rng)
    corrected = {**started, "address": corrected["address"], "phone": corrected["phone"]}
    await start_with_details(d, "P-erase-1", started)
    await d.ok(
        "assessment",
        "PUT",
        "/v1/people/P-erase-1/personal-details",
        Role.CARE_MANAGER,
        json=corrected,
    )
    imported_id = await import_person(d, imported)
    people = ["P-erase-1", imported_id]
    identities = await d.clients["assessment"].post(
        "/v1/people/identities", json={"person_ids": people}, headers=d.headers(Role.AUDITOR)
    )
    assert started["nhs_number"] in identities.text
    for person_id in people:
        access = await d.clients["assessment"].get(
            f"/v1/people/{person_id}/subject-access", headers=d.headers(Role.OPERATIONS)
        )
        assert access.status_code == 200, access.text
        await until_audit_holds(d, person_id)
    await save_exports(d)

    for person_id in people:
        await d.ok("assessment", "POST", f"/v1/people/{person_id}/erasure", Role.OPERATIONS)

    planted = {
        **{f"the started {k}": v for k, v in started.items()},
        **{f"the corrected {k}": v for k, v in corrected.items()},
        **{f"the imported {k}": v for k, v in imported.items() if k in ("date_of_birth",)},
        "the imported forename and surname": imported["name"].split(" ", 1)[1],
        "the imported NHS number": imported["nhs_number"],
        "the imported postcode": imported["postcode"],
    }
    assert found_in(d.data_dir, planted) == []


async def test_the_identities_answer_is_not_kept_for_a_retry(deployment: Deployment):
    d = deployment
    details = someone(random.Random())
    await start_with_details(d, "P-erase-2", details)
    r = await d.ok(
        "assessment",
        "POST",
        "/v1/people/identities",
        Role.AUDITOR,
        json={"person_ids": ["P-erase-2"]},
    )
    assert details["nhs_number"] in r.text
    await d.ok("assessment", "POST", "/v1/people/P-erase-2/erasure", Role.OPERATIONS)
    planted = {k: details[k] for k in ("nhs_number", "date_of_birth", "postcode")}
    assert found_in(d.data_dir, planted) == []
