"""`pbj`: the operations command line (start, tokens, demo, replay, verify, export)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from contracts.money import format_pounds
from contracts.vocabulary import Role
from pbj.chaos import chaos as chaos_command
from pbj.journey import JourneyError, Staff, load_policies, walk_journey
from pbj.processes import (
    KAFKA_BOOTSTRAP,
    REPO_ROOT,
    SERVICES,
    Supervisor,
    postgres_database_urls,
    service_urls,
)
from servicekit.auth import ensure_dev_keys, mint_token
from whatif.cli import app as whatif_app

app = typer.Typer(
    help="PB Journey operations: run, demo, replay, verify, export.", no_args_is_help=True
)
export_app = typer.Typer(help="Exports for finance systems.", no_args_is_help=True)
app.add_typer(export_app, name="export")
app.add_typer(whatif_app, name="whatif")
app.command("chaos")(chaos_command)
console = Console()

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="PBJ_DATA_DIR",
        help="Where the SQLite files, logs and the local signing key live.",
    ),
]
CouncilOpt = Annotated[str, typer.Option("--council", help="The council's policy slug.")]


def _operator(data_dir: Path, council: str, role: Role = Role.OPERATIONS) -> dict[str, str]:
    private_path, _ = ensure_dev_keys(data_dir)
    token = mint_token(
        private_path.read_bytes(), user_id=f"pbj-{role.value}", role=role, council=council
    )
    return {"Authorization": f"Bearer {token}"}


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


class Engine(StrEnum):
    EMBEDDED = "embedded"
    KAFKA = "kafka"


def _start_server(script: str) -> None:
    """Run deploy/<script> start (idempotent; quick when the server already runs)."""
    console.print(f"Starting {script.split('/')[0]} (deploy/{script} start) ...")
    done = subprocess.run(["bash", str(REPO_ROOT / "deploy" / script), "start"], check=False)
    if done.returncode != 0:
        _fail(f"deploy/{script} start failed (exit {done.returncode}); see its output above")


@app.command()
def up(
    data_dir: DataDir = Path("var"),
    engine: Annotated[
        Engine,
        typer.Option(help="embedded: SQLite + embedded log; kafka: PostgreSQL + Apache Kafka."),
    ] = Engine.EMBEDDED,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 90,
) -> None:
    """Start the five services on this machine and keep them running (Ctrl-C stops them)."""
    supervisor = Supervisor(data_dir=data_dir.resolve())
    if engine is Engine.KAFKA:
        _start_server("postgres/postgres.sh")
        _start_server("kafka/kafka.sh")
        supervisor.event_log_url = f"kafka://{KAFKA_BOOTSTRAP}"
        supervisor.database_urls = postgres_database_urls()
    console.print(
        f"Starting the five services on the {engine.value} engine "
        f"(data in {data_dir}/, logs in {data_dir}/logs/)"
    )
    supervisor.start()
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        supervisor.wait_ready(timeout=ready_timeout)
        table = Table(title="PB Journey is running")
        table.add_column("service")
        table.add_column("URL")
        table.add_column("API docs")
        for name, url in supervisor.urls().items():
            table.add_row(name, url, f"{url}/docs")
        console.print(table)
        console.print("Try: [bold]pbj demo[/bold] in another terminal. Ctrl-C stops.")
        while not stopping:
            for name, process in supervisor.processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{name} exited ({process.returncode}); stopping[/red]")
                    stopping = True
                    break
            time.sleep(0.5)
    except (TimeoutError, RuntimeError) as err:
        console.print(f"[red]{err}[/red]")
        supervisor.stop()
        raise typer.Exit(1) from err
    finally:
        supervisor.stop()
        console.print("Stopped.")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="The caller's role.")],
    council: CouncilOpt = "lancashire",
    user: Annotated[str, typer.Option(help="The user id recorded as the actor.")] = "dev-user",
    person: Annotated[str | None, typer.Option(help="For a person or representative.")] = None,
    hours: Annotated[int, typer.Option(min=1, max=24)] = 8,
    data_dir: DataDir = Path("var"),
) -> None:
    """Mint a development bearer token (embedded default only)."""
    if role in (Role.PERSON, Role.REPRESENTATIVE) and not person:
        _fail("a person's or representative's token needs --person PERSON_ID")
    private_path, _ = ensure_dev_keys(data_dir)
    typer.echo(
        mint_token(
            private_path.read_bytes(),
            user_id=user,
            role=role,
            council=council,
            person_id=person,
            ttl_seconds=hours * 3600,
        )
    )


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="People per council.", min=1, max=50)] = 2,
    councils: Annotated[str, typer.Option(help="Comma-separated council slugs, or 'all'.")] = "all",
    data_dir: DataDir = Path("var"),
) -> None:
    """Take a few people per council through the whole journey via the APIs."""
    book = load_policies(REPO_ROOT / "policies")
    chosen = book.councils if councils == "all" else [c.strip() for c in councils.split(",")]
    unknown = [c for c in chosen if c not in book.councils]
    if unknown:
        _fail(f"unknown council(s): {', '.join(unknown)}; known: {', '.join(book.councils)}")
    results = asyncio.run(_run_demo(book, chosen, people, data_dir))
    table = Table(title="Where each person ended")
    for column in ("council", "person", "stage", "weekly budget", "released", "audit events"):
        table.add_column(column)
    failed = 0
    for result in results:
        if isinstance(result, tuple):
            council, person_id, error = result
            failed += 1
            table.add_row(council, person_id, f"[red]{error}[/red]", "", "", "")
            continue
        table.add_row(
            result.council,
            result.person_id,
            result.stage,
            format_pounds(result.weekly_budget_pence or 0),
            format_pounds(result.released_pence),
            str(result.audit_events),
        )
    console.print(table)
    if failed:
        raise typer.Exit(1)


async def _run_demo(book: Any, councils: list[str], people: int, data_dir: Path) -> list[Any]:
    urls = service_urls()
    results: list[Any] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for council in councils:
            policy = book.current(council)
            staff = Staff(data_dir, council)
            for number in range(people):
                person_id = f"{council[:4].upper()}{int(time.time() * 1000) % 10**8:08d}{number}"
                try:
                    results.append(
                        await walk_journey(
                            client, urls, staff, policy, person_id=person_id, person_number=number
                        )
                    )
                except (JourneyError, httpx.HTTPError) as err:
                    results.append((council, person_id, str(err)))
    return results


@app.command()
def replay(
    since: Annotated[
        datetime | None, typer.Option(help="Replay from this time (ISO); default the start.")
    ] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Drop and rebuild the audit projections from the event log, with a progress bar."""
    url = service_urls()["audit"]
    headers = _operator(data_dir, council)
    body = {"since": since.isoformat()} if since else {}
    with httpx.Client(timeout=30) as client:
        started = client.post(f"{url}/v1/replay", json=body, headers=headers)
        if started.status_code not in (200, 202):
            _fail(f"replay refused: HTTP {started.status_code}: {started.text}")
        replay_id = started.json()["replay_id"]
        with Progress(
            TextColumn("[bold]replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("replay", total=None)
            while True:
                state = client.get(f"{url}/v1/replay/{replay_id}", headers=headers).json()
                progress.update(
                    task, completed=state.get("processed", 0), total=state.get("total") or None
                )
                if state["status"] != "running":
                    break
                time.sleep(0.2)
    if state["status"] != "done":
        _fail(f"replay {state['status']}: {state.get('error', '')}")
    console.print(f"Rebuilt from {state['processed']} events; digest {state.get('digest')}")


@app.command()
def verify(
    person: Annotated[
        str | None, typer.Option(help="One person's chain; default everyone.")
    ] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Check the hash chains of the audit history; name the first bad event."""
    url = service_urls()["audit"]
    headers = _operator(data_dir, council, Role.AUDITOR)
    path = f"/v1/people/{person}/verify" if person else "/v1/verify"
    response = httpx.get(f"{url}{path}", headers=headers, timeout=120)
    if response.status_code != 200:
        _fail(f"verify failed: HTTP {response.status_code}: {response.text}")
    report = response.json()
    console.print_json(data=report)
    if not report.get("ok"):
        raise typer.Exit(2)


@export_app.command("payments")
def export_payments(
    up_to: Annotated[str, typer.Option(help="Include payments released up to this date.")] = (
        date.today().isoformat()
    ),
    out: Annotated[Path | None, typer.Option(help="Write the CSV here; default stdout.")] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Export released payments as a CSV batch for the finance system."""
    try:
        up_to_date = date.fromisoformat(up_to)
    except ValueError:
        _fail(f"--up-to must be a date like 2026-03-31, not {up_to!r}")
        return
    url = service_urls()["payments"]
    headers = _operator(data_dir, council, Role.FINANCE)
    with httpx.Client(timeout=60) as client:
        batch = client.post(
            f"{url}/v1/exports/payments", json={"up_to": up_to_date.isoformat()}, headers=headers
        )
        if batch.status_code not in (200, 201):
            _fail(f"export refused: HTTP {batch.status_code}: {batch.text}")
        batch_id = batch.json()["batch_id"]
        csv = client.get(f"{url}/v1/exports/payments/{batch_id}.csv", headers=headers)
        if csv.status_code != 200:
            _fail(f"could not fetch batch {batch_id}: HTTP {csv.status_code}")
    if out is None:
        sys.stdout.write(csv.text)
    else:
        out.write_text(csv.text)
        console.print(f"Batch {batch_id} written to {out}", style="green")


@app.command()
def services() -> None:
    """List the services and their default ports."""
    for name, port in SERVICES.items():
        typer.echo(f"{name}\t127.0.0.1:{port}")


if __name__ == "__main__":
    app()
