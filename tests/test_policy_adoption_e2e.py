"""A council adopts a policy end to end: what-if, adoption, new budgets, review, bulk revision.

The five services run as real processes, on SQLite and the embedded log, and on
PostgreSQL and Kafka. People go through the whole
journey under Lancashire's policy in force (lancashire/2009.1); an officer runs the what-if
on a proposal with `pbj whatif run`, adopts it with `pbj policy adopt`, and revises the
existing budgets with `pbj policy revise`. The figures the what-if promised are the
budgets allocation then holds, to the penny.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contracts.policy import Policy, PolicyBook, load_policy, policy_document, today
from contracts.vocabulary import Role
from pbj.journey import JourneyResult, Staff, walk_journey
from pbj.processes import Supervisor
from servicekit.testing import POLICIES_DIR
from tests.systems import run_pbj, supervised_system

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)
IN_FORCE = BOOK.current("lancashire")
PEOPLE_BEFORE = 6


system = supervised_system("adoption", "adopt")


def pbj(system: Supervisor, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pbj(system, *args, with_data_dir=False, timeout=300, env={"COLUMNS": "200"})


def write_proposal(path: Path, version: str, prices: dict[str, int]) -> Policy:
    """Lancashire's policy with a new version and new prices per point, saved as YAML."""
    document = policy_document(IN_FORCE)
    document["version"] = version
    document["effective_from"] = today().isoformat()
    document["ras"]["price_per_point_weekly_pence"].update(prices)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_policy(path)


async def journeys(system: Supervisor, policy: Policy, numbers: range) -> list[JourneyResult]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    walk_journey(
                        client,
                        system.urls(),
                        Staff(system.data_dir, "lancashire"),
                        policy,
                        person_number=n,
                    )
                    for n in numbers
                )
            )
        )


def staff(system: Supervisor, role: Role) -> dict[str, str]:
    return Staff(system.data_dir, "lancashire")(role)


def current_revision(system: Supervisor, budget_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{system.urls()['allocation']}/v1/budgets/{budget_id}",
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    revision: dict[str, Any] = response.json()["current_revision"]
    return revision


def adopted_versions(system: Supervisor) -> list[str]:
    response = httpx.get(
        f"{system.urls()['allocation']}/v1/policies",
        headers=staff(system, Role.OPERATIONS),
        timeout=30,
    )
    return [i["policy_version"] for i in response.json()["items"] if i["source"] == "adopted"]


def eventually(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def whatif_rows(out_dir: Path, version: str) -> dict[str, dict[str, str]]:
    with (out_dir / f"whatif-lancashire-{version}.csv").open(encoding="utf-8") as f:
        return {row["person_id"]: row for row in csv.DictReader(f)}


def test_a_council_adopts_what_the_whatif_showed_and_budgets_follow_it(
    system: Supervisor, tmp_path: Path
) -> None:
    data_dir = ["--data-dir", str(system.data_dir)]
    log = ["--log", system.log_url]
    before = asyncio.run(journeys(system, IN_FORCE, range(PEOPLE_BEFORE)))
    assert [r.stage for r in before] == ["complete"] * PEOPLE_BEFORE

    # The what-if on the proposal: older people's point falls to £9, mental health's rises.
    proposal_file = tmp_path / "lancashire-2026.1.yaml"
    proposed = write_proposal(
        proposal_file, "2026.1", {"older_people": 900, "mental_health": 1_100}
    )
    out = tmp_path / "whatif"
    ran = pbj(system, "whatif", "run", str(proposal_file), *log, "--out", str(out))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    promised = whatif_rows(out, "2026.1")
    assert set(promised) >= {r.person_id for r in before}
    assert any(promised[r.person_id]["outcome"] == "loser" for r in before)
    assert any(promised[r.person_id]["outcome"] == "winner" for r in before)

    # Bad input: a clear message, exit 1, and nothing recorded anywhere.
    broken = tmp_path / "broken.yaml"
    broken.write_text(proposal_file.read_text().replace("older_people: 900", "older_people: -5"))
    refused = pbj(system, "policy", "adopt", str(broken), "--effective", str(today()), *data_dir)
    assert refused.returncode == 1
    assert "ras.price_per_point_weekly_pence.older_people" in refused.stderr
    bad_date = pbj(
        system, "policy", "adopt", str(proposal_file), "--effective", "23/11/2026", *data_dir
    )
    assert bad_date.returncode == 1 and "YYYY-MM-DD" in bad_date.stderr
    past = pbj(
        system,
        "policy",
        "adopt",
        str(proposal_file),
        "--effective",
        str(today() - timedelta(days=1)),
        *data_dir,
    )
    assert past.returncode == 1 and "before today" in past.stderr
    assert adopted_versions(system) == []

    # Adoption from today: PolicyAdopted reaches every service and the audit.
    adopted = pbj(
        system, "policy", "adopt", str(proposal_file), "--effective", str(today()), *data_dir
    )
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "Adopted lancashire/2026.1" in adopted.stdout
    again = pbj(
        system, "policy", "adopt", str(proposal_file), "--effective", str(today()), *data_dir
    )
    assert again.returncode == 0 and "Already adopted" in again.stdout
    # A later version in force from the day after tomorrow: until then, 2026.1 is the policy
    # in force, even for a run that goes on past midnight.
    later_file = tmp_path / "lancashire-2027.1.yaml"
    write_proposal(later_file, "2027.1", {"older_people": 500})
    in_two_days = str(today() + timedelta(days=2))
    later = pbj(system, "policy", "adopt", str(later_file), "--effective", in_two_days, *data_dir)
    assert later.returncode == 0, later.stdout + later.stderr
    listed = pbj(system, "policy", "list", "--council", "lancashire", *data_dir)
    assert listed.returncode == 0, listed.stderr
    assert "lancashire/2026.1" in listed.stdout and "lancashire/2027.1" in listed.stdout

    # (b) Existing budgets are unchanged by the adoption.
    for person in before:
        revision = current_revision(system, str(person.budget_id))
        assert revision["policy_version"] == IN_FORCE.policy_version
        assert revision["weekly_pence"] == person.weekly_budget_pence

    # (a) and (d): a new person's budget, plan and deployment use 2026.1 (not 2027.1 yet).
    # Planning and payments learnt the version from the event, not from a file.
    [new] = asyncio.run(journeys(system, proposed, range(PEOPLE_BEFORE, PEOPLE_BEFORE + 1)))
    assert new.stage == "complete"
    new_budget = current_revision(system, str(new.budget_id))
    assert new_budget["policy_version"] == "lancashire/2026.1"
    plan = httpx.get(
        f"{system.urls()['planning']}/v1/plans/{new.plan_id}",
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    ).json()
    assert plan["signed_off"]["policy_version"] == "lancashire/2026.1"
    deployment = httpx.get(
        f"{system.urls()['payments']}/v1/deployments/{new.deployment_id}",
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    ).json()
    assert deployment["policy_version"] == "lancashire/2026.1"

    # A completed review brings one existing budget under the policy in force.
    reviewed = before[0]
    reviews = httpx.get(
        f"{system.urls()['planning']}/v1/reviews",
        params={"person_id": reviewed.person_id},
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    ).json()["items"]
    completed = httpx.post(
        f"{system.urls()['planning']}/v1/reviews/{reviews[0]['review_id']}/complete",
        json={"outcome": "no_change", "notes": "Support still meets the outcomes"},
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    )
    assert completed.status_code == 200, completed.text
    eventually(
        "the review to revise the budget",
        lambda: (
            current_revision(system, str(reviewed.budget_id))["policy_version"]
            == "lancashire/2026.1"
        ),
    )
    for person in before[1:]:
        assert current_revision(system, str(person.budget_id))["policy_version"] == (
            IN_FORCE.policy_version
        )

    # (c) The bulk revision: every budget now equals the what-if's proposed figure.
    revised = pbj(system, "policy", "revise", "--council", "lancashire", *data_dir)
    assert revised.returncode == 0, revised.stdout + revised.stderr
    assert f"Under lancashire/2026.1: {PEOPLE_BEFORE + 1} budgets checked" in revised.stdout
    for person in before:
        revision = current_revision(system, str(person.budget_id))
        assert revision["policy_version"] == "lancashire/2026.1"
        assert revision["state"] == "agreed"
        assert revision["weekly_pence"] == int(promised[person.person_id]["weekly_proposed_pence"])
    assert current_revision(system, str(new.budget_id)) == new_budget  # already on 2026.1

    # Audit keeps the adoptions and every revision, each with its policy version.
    auditor = staff(system, Role.AUDITOR)

    def revisions_in_audit() -> list[str] | None:
        history = httpx.get(
            f"{system.urls()['audit']}/v1/people/{before[1].person_id}/history",
            params={"type": "budget-issued", "limit": 200},
            headers=auditor,
            timeout=30,
        ).json()["items"]
        versions = [e["policy_version"] for e in history]
        return versions if versions[-1:] == ["lancashire/2026.1"] else None

    versions = eventually("audit to hold the revision", revisions_in_audit)
    assert versions[0] == IN_FORCE.policy_version
    chain = httpx.get(
        f"{system.urls()['audit']}/v1/people/policy:lancashire/history",
        headers=auditor,
        timeout=30,
    )
    assert chain.status_code == 200, chain.text
    assert [e["policy_version"] for e in chain.json()["items"]] == [
        "lancashire/2026.1",
        "lancashire/2027.1",
    ]

    # The what-if now compares against the adopted policy: the same proposal changes nothing.
    rerun = pbj(system, "whatif", "run", str(proposal_file), *log, "--out", str(tmp_path / "2"))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((tmp_path / "2" / "whatif-lancashire-2026.1.json").read_text())
    assert summary["current_policy"]["policy_version"] == "lancashire/2026.1"
    assert summary["totals"]["change_annual_pence"] == 0
