"""The record is never silently rewritten: a replay that finds a stored chain altered keeps
the evidence, rebuilds from the log, records TamperDetected, and the finding stays open until
an auditor acknowledges it with a reason.

Done as an auditor did it: one byte of a stored event changed with SQL, then `pbj replay`
and `pbj verify` run against the service over HTTP (a real server on a free port).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from pbj import cli
from servicekit.testing import Tokens, running
from services.audit.api import create_app
from services.audit.domain import chain_hash
from services.audit.settings import Settings
from services.audit.tests.journey import Journey
from services.audit.tests.test_api import (
    AUDITOR,
    applied,
    digest,
    eventually,
    finished,
    log_ready,
    publish,
    replay,
    sql,
)
from services.audit.tests.test_council_keys import digest_of, replayed


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


EDIT_ONE_BYTE = (  # £250.00 a week becomes £950.00: one digit of the stored document
    "UPDATE audit_events SET canonical = replace(canonical, :old, :new) "
    "WHERE person_id='p-1' AND seq=3"
)


async def findings(
    client: httpx.AsyncClient, tokens: Tokens, query: str = "", role: str = "auditor"
) -> httpx.Response:
    return await client.get(
        f"/v1/tamper-findings{query}", headers=tokens.headers(role, "lancashire")
    )


async def acknowledge(
    client: httpx.AsyncClient,
    tokens: Tokens,
    finding_id: str,
    reason: str,
    who: tuple[str, str] = AUDITOR,
) -> httpx.Response:
    return await client.post(
        f"/v1/tamper-findings/{finding_id}/acknowledge",
        json={"reason": reason},
        headers=tokens.headers(*who),
    )


async def findings_chain(client: httpx.AsyncClient, tokens: Tokens) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/people/tamper:lancashire/history", headers=tokens.headers(*AUDITOR)
    )
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def a_tampered_person(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> list[Any]:
    await log_ready(app, client)
    events = Journey("p-1").full()
    await publish(app, events)
    await applied(client, tokens, 10)
    await sql(app, EDIT_ONE_BYTE, old='"weekly_pence":25000', new='"weekly_pence":95000')
    return events


async def test_the_altered_figure_is_not_served_while_the_chain_does_not_verify(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await a_tampered_person(app, client, tokens)
    headers = tokens.headers(*AUDITOR)
    budget = await client.get("/v1/people/p-1/budget", headers=headers)
    assert budget.status_code == 409 and budget.json()["error"] == "HistoryFailsVerification"
    assert "seq 3" in budget.json()["detail"] and "95000" not in budget.text
    history = await client.get("/v1/people/p-1/history", headers=headers)
    assert history.status_code == 409 and "95000" not in history.text


async def test_a_replay_quarantines_the_altered_rows_and_records_the_finding_until_acknowledged(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    events = await a_tampered_person(app, client, tokens)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done"
    [finding] = status["tamper_findings"]
    assert (finding["chain"], finding["first_bad_seq"]) == ("p-1", 3)
    assert finding["first_bad_event_id"] == events[2].id
    assert finding["difference"] == "altered" and "edited" in finding["reason"]
    assert finding["acknowledged"] is False and finding["quarantined_events"] == 10

    # The evidence is kept, byte for byte as it was found, and served by no read.
    kept = await sql(
        app,
        "SELECT seq, canonical FROM audit_quarantine WHERE finding_id = :f ORDER BY n",
        f=finding["finding_id"],
    )
    assert [row.seq for row in kept] == list(range(1, 11))
    assert '"weekly_pence":95000' in kept[2].canonical
    # The served history is the log's again.
    budget = await client.get("/v1/people/p-1/budget", headers=tokens.headers(*AUDITOR))
    assert budget.status_code == 200 and budget.json()["current_budget"]["weekly_pence"] == 25_000

    # TamperDetected travels the log and lands on the council's findings chain.
    async def detected() -> bool:
        return [i["name"] for i in await findings_chain(client, tokens)] == ["tamper-detected"]

    await eventually(detected)
    [recorded] = await findings_chain(client, tokens)
    assert recorded["data"]["finding_id"] == finding["finding_id"]
    assert recorded["data"]["first_bad_event_id"] == events[2].id
    assert recorded["actor"] == "operations:operations-1"

    listed = (await findings(client, tokens, "?acknowledged=false", role="operations")).json()
    assert [f["finding_id"] for f in listed["items"]] == [finding["finding_id"]]
    verify_all = (await client.get("/v1/verify", headers=tokens.headers(*AUDITOR))).json()
    assert verify_all["ok"] is True and verify_all["open_tamper_findings"] == 1

    # Only an auditor of the council closes it, with a reason, once.
    finding_id = finding["finding_id"]
    for role in ("operations", "care_manager", "team_manager"):
        refused = await acknowledge(client, tokens, finding_id, "seen", who=(role, "lancashire"))
        assert refused.status_code == 403, role
    elsewhere = await acknowledge(client, tokens, finding_id, "seen", who=("auditor", "council_a"))
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "FindingNotFound"
    blank = await acknowledge(client, tokens, finding_id, "   ")
    assert blank.status_code == 422
    reason = "A trial edit on a copy restored by mistake; write access to audit now revoked"
    closed = await acknowledge(client, tokens, finding_id, reason)
    assert closed.status_code == 200, closed.text
    assert closed.json()["acknowledged_by"] == "auditor:auditor-1"
    assert closed.json()["acknowledgement"] == reason
    again = await acknowledge(client, tokens, finding_id, reason)
    assert again.status_code == 409 and again.json()["error"] == "FindingAlreadyAcknowledged"

    async def acknowledged() -> bool:
        names = [i["name"] for i in await findings_chain(client, tokens)]
        return names == ["tamper-detected", "tamper-acknowledged"]

    await eventually(acknowledged)
    assert (await findings(client, tokens, "?acknowledged=false")).json()["items"] == []
    verify_all = (await client.get("/v1/verify", headers=tokens.headers(*AUDITOR))).json()
    assert verify_all["open_tamper_findings"] == 0 and verify_all["finding_chains"] == 1

    # A later replay keeps the findings chain (it is on the log) and finds nothing new.
    before = await digest(client, tokens)
    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done" and status["tamper_findings"] == []
    assert (await digest(client, tokens))["digest"] == before["digest"]
    assert len(await findings_chain(client, tokens)) == 2
    [kept_finding] = (await findings(client, tokens)).json()["items"]
    assert kept_finding["acknowledged"] is True and kept_finding["acknowledgement"] == reason


async def test_a_chain_rewritten_to_verify_is_caught_by_comparing_it_with_the_log(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    events = Journey("p-1").full()
    await publish(app, events)
    await applied(client, tokens, 10)
    live = await digest(client, tokens)
    # A careful insider: the edit, then every later link and the head re-hashed to match.
    rows = await sql(
        app, "SELECT seq, canonical, prev_hash FROM audit_events WHERE person_id='p-1' ORDER BY seq"
    )
    prev = rows[1].prev_hash
    for row in rows:
        if row.seq < 3:
            prev = chain_hash(row.prev_hash, row.canonical)
            continue
        canonical = row.canonical.replace('"weekly_pence":25000', '"weekly_pence":95000')
        new_hash = chain_hash(prev, canonical)
        await sql(
            app,
            "UPDATE audit_events SET canonical = :c, prev_hash = :p, hash = :h "
            "WHERE person_id='p-1' AND seq = :s",
            c=canonical,
            p=prev,
            h=new_hash,
            s=row.seq,
        )
        prev = new_hash
    await sql(app, "UPDATE audit_heads SET last_hash = :h WHERE person_id='p-1'", h=prev)
    report = await client.get("/v1/people/p-1/verify", headers=tokens.headers(*AUDITOR))
    assert report.json()["ok"] is True  # the chain alone cannot tell

    status = await finished(client, tokens, (await replay(client, tokens, {})).json()["replay_id"])
    assert status["status"] == "done" and status["changed_people"] == 1
    [finding] = status["tamper_findings"]
    assert (finding["chain"], finding["first_bad_seq"]) == ("p-1", 3)
    assert finding["first_bad_event_id"] == events[2].id and finding["difference"] == "rewritten"
    kept = await sql(
        app,
        "SELECT canonical FROM audit_quarantine WHERE finding_id = :f AND seq = 3",
        f=finding["finding_id"],
    )
    assert '"weekly_pence":95000' in kept[0].canonical
    assert (await digest(client, tokens))["digest"] == live["digest"]
    budget = await client.get("/v1/people/p-1/budget", headers=tokens.headers(*AUDITOR))
    assert budget.json()["current_budget"]["weekly_pence"] == 25_000


async def rewrite_to_verify(app: FastAPI, council: str, person_id: str) -> None:
    """A careful insider: £250.00 a week made £950.00 at seq 3, then every later link and
    the head re-hashed to match, so the chain alone still verifies."""
    rows = await sql(
        app,
        "SELECT seq, canonical, prev_hash FROM audit_events "
        "WHERE council = :c AND person_id = :p ORDER BY seq",
        c=council,
        p=person_id,
    )
    prev = rows[1].prev_hash
    for row in rows:
        if row.seq < 3:
            prev = chain_hash(row.prev_hash, row.canonical)
            continue
        canonical = row.canonical.replace('"weekly_pence":25000', '"weekly_pence":95000')
        new_hash = chain_hash(prev, canonical)
        await sql(
            app,
            "UPDATE audit_events SET canonical = :t, prev_hash = :b, hash = :h "
            "WHERE council = :c AND person_id = :p AND seq = :s",
            t=canonical,
            b=prev,
            h=new_hash,
            c=council,
            p=person_id,
            s=row.seq,
        )
        prev = new_hash
    await sql(
        app,
        "UPDATE audit_heads SET last_hash = :h WHERE council = :c AND person_id = :p",
        h=prev,
        c=council,
        p=person_id,
    )


async def test_a_councils_replay_judges_its_own_chains_and_its_finding_is_its_own(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_ready(app, client)
    # Council A's p-1 is another person than Lancashire's, under the same id.
    await publish(app, [*Journey("p-1").full(), *Journey("p-1", "council_a").full()])

    async def both_applied() -> bool:
        rows = [(await digest_of(client, tokens, c))["rows"] for c in ("lancashire", "council_a")]
        return [r["audit_events"] for r in rows] == [10, 10]

    await eventually(both_applied, seconds=60)
    council_a_before = await digest_of(client, tokens, "council_a")
    council_a_budget = await budget_of(client, tokens, "council_a")
    await rewrite_to_verify(app, "lancashire", "p-1")

    # Council A's replay compares Council A's chains with the log, and finds them sound.
    status = await replayed(client, tokens, "council_a")
    assert (status["status"], status["tamper_findings"]) == ("done", [])
    assert (await digest_of(client, tokens, "council_a"))["digest"] == council_a_before["digest"]
    assert (await budget_of(client, tokens, "lancashire"))["weekly_pence"] == 95_000

    # Lancashire's replay finds Lancashire's p-1 rewritten, and records it for Lancashire.
    status = await replayed(client, tokens, "lancashire")
    [finding] = status["tamper_findings"]
    assert (finding["council"], finding["chain"], finding["difference"]) == (
        "lancashire",
        "p-1",
        "rewritten",
    )
    assert (await budget_of(client, tokens, "lancashire"))["weekly_pence"] == 25_000
    assert await budget_of(client, tokens, "council_a") == council_a_budget
    assert (await digest_of(client, tokens, "council_a"))["digest"] == council_a_before["digest"]
    council_a_auditor = ("auditor", "council_a")
    seen = await client.get("/v1/tamper-findings", headers=tokens.headers(*council_a_auditor))
    assert seen.json()["items"] == []
    closed = await acknowledge(client, tokens, finding["finding_id"], "seen", council_a_auditor)
    assert closed.status_code == 404


async def budget_of(client: httpx.AsyncClient, tokens: Tokens, council: str) -> Any:
    response = await client.get("/v1/people/p-1/budget", headers=tokens.headers("auditor", council))
    assert response.status_code == 200, response.text
    return response.json()["current_budget"]


async def test_findings_are_for_auditors_and_operations_of_the_council(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await findings(client, tokens, role="care_manager")).status_code == 403
    assert (await findings(client, tokens, role="finance")).status_code == 403
    assert (await findings(client, tokens, role="operations")).json()["items"] == []
    unknown = await acknowledge(client, tokens, "7b0e9d55-8d8e-4b8f-9d62-0a4f6f2f4c11", "seen")
    assert unknown.status_code == 404


# --- the same, through `pbj replay` and `pbj verify` -----------------------------------------


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real HTTP server on a free port, for the command line to call."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def pbj(data_dir: Path, *args: str) -> tuple[int, str]:
    """Run a `pbj` command in a worker thread while the server answers on this loop."""
    result = await asyncio.to_thread(
        CliRunner().invoke, cli.app, [*args, "--data-dir", str(data_dir)]
    )
    return result.exit_code, result.output


async def test_pbj_replay_exits_2_on_a_finding_and_pbj_verify_reports_it_until_acknowledged(
    app: FastAPI, tokens: Tokens, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        monkeypatch.setenv("PBJ_AUDIT_URL", url)
        events = await a_tampered_person(app, client, tokens)

        code, output = await pbj(data_dir, "verify", "--person", "p-1")
        assert code == 2 and events[2].id in output  # verify names the edited event

        code, output = await pbj(data_dir, "replay")
        assert code == 2, output
        assert "p-1: seq 3" in output and events[2].id in output and "altered" in output

        code, output = await pbj(data_dir, "verify")
        assert code == 2 and "not yet acknowledged" in output and "p-1: seq 3" in output
        code, output = await pbj(data_dir, "verify", "--person", "p-1")
        assert code == 2 and "p-1: seq 3" in output

        [finding] = (await findings(client, tokens, "?acknowledged=false")).json()["items"]
        closed = await acknowledge(client, tokens, finding["finding_id"], "Reviewed with IT")
        assert closed.status_code == 200

        code, output = await pbj(data_dir, "verify")
        assert code == 0 and "not yet acknowledged" not in output, output
        code, output = await pbj(data_dir, "replay")
        assert code == 0, output
