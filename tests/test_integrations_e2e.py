"""Finance and IT integrations and statutory returns through the real path: the five
services as processes, the `pbj` command line, events through the log into audit."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from pbj.journey import Staff, walk_journey
from pbj.processes import SERVICES, Supervisor
from servicekit.testing import POLICIES_DIR
from services.audit.returns import Quarter, validate_cld
from tests.systems import free_ports, run_pbj

pytestmark = pytest.mark.e2e

EXTRACT = (
    "legacy_client_id,forename,surname,date_of_birth,nhs_number,postcode,"
    "client_group,team,key_worker\r\n"
    "CF300001,Edith,Wolstenholme,12/03/1938,9434765919,PR1 8XJ,OP,Preston OP,KW17\r\n"
    "CF300002,Darren,Pilkington,1990-07-01,4010232137,BB2 1LX,LD,Blackburn LD,KW3\r\n"
)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    supervisor = Supervisor(
        data_dir=tmp_path_factory.mktemp("integrations"),
        ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
    )
    supervisor.start()
    try:
        supervisor.wait_ready(timeout=120)
        yield supervisor
    finally:
        supervisor.stop()


def pbj(system: Supervisor, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pbj(system, *args, env={"COLUMNS": "200"})


def staff(system: Supervisor, role: Role) -> dict[str, str]:
    return Staff(system.data_dir, "lancashire")(role)


def test_pbj_import_people_imports_once_and_reports_every_bad_row(
    system: Supervisor, tmp_path: Path
) -> None:
    extract = tmp_path / "carefirst.csv"
    extract.write_text(EXTRACT)
    first = pbj(system, "import", "people", str(extract))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "New people: 2" in first.stdout
    again = pbj(system, "import", "people", str(extract))
    assert again.returncode == 0 and "already imported: 2" in again.stdout
    assert "New people: 0" in again.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(EXTRACT + "CF300003,Ann,Other,31/02/1950,,NOWHERE,OP,North,KW1\r\n")
    refused = pbj(system, "import", "people", str(bad))
    assert refused.returncode == 1, refused.stdout
    assert "nothing was imported" in refused.stdout
    assert "date_of_birth" in refused.stdout and "postcode" in refused.stdout


def test_a_failed_payment_comes_back_from_finance_and_reaches_audit(
    system: Supervisor, tmp_path: Path
) -> None:
    book = PolicyBook.from_directory(POLICIES_DIR)

    async def walk() -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            return await walk_journey(
                client,
                system.urls(),
                Staff(system.data_dir, "lancashire"),
                book.current("lancashire"),
                person_number=3,
            )

    result = asyncio.run(walk())
    assert result.stage == "complete", result
    payments = system.urls()["payments"]
    feed = httpx.get(
        f"{payments}/v1/payments/feed", headers=staff(system, Role.FINANCE), timeout=30
    ).json()
    mine = [i for i in feed["items"] if i["person_id"] == result.person_id]
    assert mine and sum(i["amount_pence"] for i in mine) == result.released_pence

    failed, *paid = mine
    lines = [
        f"{failed['payment_id']},failed,{failed['amount_pence']},{failed['released_on']},"
        "account closed,BACS-1\r\n"
    ] + [f"{p['payment_id']},paid,{p['amount_pence']},{p['released_on']},,BACS-2\r\n" for p in paid]
    confirmations = tmp_path / "confirmations.csv"
    confirmations.write_text(
        "payment_id,outcome,amount_pence,processed_on,reason,finance_reference\r\n" + "".join(lines)
    )
    done = pbj(system, "import", "confirmations", str(confirmations))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed: 1" in done.stdout

    listed = httpx.get(
        f"{payments}/v1/payments",
        params={"status": "failed", "person_id": result.person_id},
        headers=staff(system, Role.CARE_MANAGER),
        timeout=30,
    ).json()
    assert [i["payment_id"] for i in listed["items"]] == [failed["payment_id"]]

    audit = system.urls()["audit"]
    deadline = time.monotonic() + 30
    while True:
        history = httpx.get(
            f"{audit}/v1/people/{result.person_id}/history",
            params={"type": "payment-failed"},
            headers=staff(system, Role.AUDITOR),
            timeout=30,
        ).json()
        if history["items"]:
            break
        assert time.monotonic() < deadline, "audit never received PaymentFailed"
        time.sleep(0.2)
    assert history["items"][0]["data"]["reason"] == "account closed"


def test_pbj_returns_write_a_valid_cld_extract_and_the_kpis(
    system: Supervisor, tmp_path: Path
) -> None:
    # Someone imported with their details: the return carries them, opened by assessment.
    extract = tmp_path / "one.csv"
    extract.write_text(
        EXTRACT.splitlines(keepends=True)[0]
        + "CF300077,Mary,Entwistle,1951-11-02,9434765005,LA1 4RD,OP,Lancaster OP,KW9\r\n"
    )
    assert pbj(system, "import", "people", str(extract)).returncode == 0
    today = date.today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    out = tmp_path / "cld.csv"
    deadline = time.monotonic() + 30
    while True:  # until the import's assessment reaches audit
        done = pbj(system, "returns", "cld", "--quarter", quarter, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        rows = list(csv.DictReader(io.StringIO(out.read_text(), newline="")))
        if any(row["NHS_Number"] == "9434765005" for row in rows):
            break
        assert time.monotonic() < deadline, "the imported person never reached the return"
        time.sleep(0.5)
    assert validate_cld(rows, Quarter.parse(quarter)) == []
    assert {"Assessment", "Service"} <= {row["Event_Type"] for row in rows}
    [mary] = [row for row in rows if row["NHS_Number"] == "9434765005"]
    assert (mary["Date_of_Birth"], mary["Postcode"]) == ("1951-11-02", "LA1 4RD")
    assert (mary["First_Name"], mary["Last_Name"]) == ("", "")

    blank = tmp_path / "cld-blank.csv"
    done = pbj(
        system, "returns", "cld", "--quarter", quarter, "--no-identities", "--out", str(blank)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    unopened = list(csv.DictReader(io.StringIO(blank.read_text(), newline="")))
    assert len(unopened) == len(rows) and not any(row["NHS_Number"] for row in unopened)

    kpis = tmp_path / "kpis.csv"
    done = pbj(system, "returns", "kpis", "--by", "team", "--out", str(kpis))
    assert done.returncode == 0, done.stdout + done.stderr
    table = list(csv.DictReader(io.StringIO(kpis.read_text(), newline="")))
    assert {row["measure"] for row in table} == {"ni130", "lancashire"}
