"""`pbj`: the operations command line (start, tokens, demo, replay, verify, export)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from contracts import cld
from contracts.money import format_pounds
from contracts.vocabulary import Role
from pbj.chaos import chaos as chaos_command
from pbj.idp import DEFAULT_PORT as IDP_PORT
from pbj.idp import (
    JwksServer,
    LocalIdentityProvider,
    idp_directory,
    mint_for,
    trusted_jwks_url,
)
from pbj.journey import JourneyError, Staff, load_policies, walk_journey
from pbj.operations_cli import dead_letters_app, events_app
from pbj.policy_cli import app as policy_app
from pbj.processes import (
    KAFKA_BOOTSTRAP,
    PORTAL,
    REPO_ROOT,
    SERVICES,
    Supervisor,
    postgres_database_urls,
    service_urls,
)
from servicekit.files import keep_files_private
from whatif.cli import app as whatif_app

app = typer.Typer(
    help="PB Journey operations: run, demo, replay, verify, export, erase.", no_args_is_help=True
)


@app.callback()
def _private_files() -> None:
    """Whatever a command writes (keys, exports, what-if reports, logs) is the owner's only."""
    keep_files_private()


export_app = typer.Typer(
    help="Exports: payments for finance systems, a person's data for subject access.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")
idp_app = typer.Typer(
    help="A local identity provider (JWKS over HTTP on 127.0.0.1) for trials and tests only.",
    no_args_is_help=True,
)
app.add_typer(idp_app, name="idp")
import_app = typer.Typer(
    help="Imports from legacy and finance systems (all or nothing; every refusal reported).",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")
returns_app = typer.Typer(help="Statutory returns: CLD, NI130, Lancashire.", no_args_is_help=True)
app.add_typer(returns_app, name="returns")
app.add_typer(whatif_app, name="whatif")
app.add_typer(policy_app, name="policy")
app.add_typer(events_app, name="events")
app.add_typer(dead_letters_app, name="dead-letters")
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
    token = mint_for(data_dir, user_id=f"pbj-{role.value}", role=role, council=council)
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
    idp_port: Annotated[
        int, typer.Option(help="Port of the local identity provider (kafka engine only).")
    ] = IDP_PORT,
) -> None:
    """Start the five services and the portal here and keep them running (Ctrl-C stops)."""
    supervisor = Supervisor(data_dir=data_dir.resolve(), idp_port=idp_port)
    if engine is Engine.KAFKA:
        _start_server("postgres/postgres.sh")
        _start_server("kafka/kafka.sh")
        supervisor.event_log_url = f"kafka://{KAFKA_BOOTSTRAP}"
        supervisor.database_urls = postgres_database_urls()
    console.print(
        f"Starting the five services and the portal on the {engine.value} engine "
        f"(data in {data_dir}/, logs in {data_dir}/logs/)"
    )
    try:
        supervisor.start()
    except OSError as err:
        _fail(f"could not start: {err} (is port {idp_port} taken? try --idp-port)")
    if supervisor.identity is not None:
        console.print(
            f"Tokens are checked against the local identity provider's key set at "
            f"{supervisor.identity.jwks_url} (trials only; `pbj idp rotate` rotates it)"
        )
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
            table.add_row(name, url, "—" if name == PORTAL else f"{url}/docs")
        console.print(table)
        if PORTAL in supervisor.ports:
            console.print(
                f"The portal: [bold]{supervisor.urls()[PORTAL]}/[/bold] "
                "(development sign-in: choose a council, a role and a user name)."
            )
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
    hours: Annotated[
        int, typer.Option(min=1, max=12, help="How long it lives; services refuse over 12.")
    ] = 8,
    data_dir: DataDir = Path("var"),
) -> None:
    """Mint a bearer token for trials: signed with the development key on the embedded
    default, or by the local identity provider when `pbj up --engine kafka` started it."""
    if role in (Role.PERSON, Role.REPRESENTATIVE) and not person:
        _fail("a person's or representative's token needs --person PERSON_ID")
    typer.echo(
        mint_for(
            data_dir,
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
def convert(
    file: Annotated[
        Path, typer.Argument(help="Legacy clients, JSON Lines (see `pbj convert-sample`).")
    ],
    council: CouncilOpt = "lancashire",
    batch: Annotated[int, typer.Option(help="Rows per request.", min=1, max=500)] = 250,
    data_dir: DataDir = Path("var"),
) -> None:
    """Convert a council's existing clients from assessment to payment set-up, in bulk."""
    from pbj.convert import STAGES, convert_clients, read_clients

    book = load_policies(REPO_ROOT / "policies")
    if council not in book.councils:
        _fail(f"unknown council {council}; known: {', '.join(book.councils)}")
    try:
        rows = read_clients(file)
    except (OSError, ValueError) as err:
        _fail(str(err))
    policy = book.current(council)
    staff = Staff(data_dir, council)

    async def run() -> Any:
        with Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            tasks = [progress.add_task(stage, total=len(rows)) for stage in STAGES]
            async with httpx.AsyncClient(timeout=120) as client:
                return await convert_clients(
                    client,
                    service_urls(),
                    staff,
                    policy,
                    rows,
                    batch=batch,
                    advance=lambda stage, n: progress.advance(tasks[stage], n),
                )

    report = asyncio.run(run())
    console.print(
        f"Converted {report.converted:,} of {report.total:,} clients in {report.seconds:.1f} s "
        f"({report.requests:,} requests)."
    )
    if report.failures:
        table = Table(title=f"{len(report.failures):,} clients not converted")
        table.add_column("ref")
        table.add_column("stage: reason")
        for ref, why in list(report.failures.items())[:50]:
            table.add_row(ref, why)
        console.print(table)
        raise typer.Exit(1)


@app.command("convert-sample")
def convert_sample(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON Lines file.")],
    people: Annotated[int, typer.Option(min=1, help="How many clients.")] = 100,
    council: CouncilOpt = "lancashire",
    prefix: Annotated[str, typer.Option(help="Prefix of refs and person ids.")] = "LEG",
) -> None:
    """Write a sample file of legacy clients in the format `pbj convert` reads."""
    from pbj.convert import sample_clients, write_clients

    book = load_policies(REPO_ROOT / "policies")
    if council not in book.councils:
        _fail(f"unknown council {council}; known: {', '.join(book.councils)}")
    write_clients(file, sample_clients(book.current(council), people, prefix=prefix))
    console.print(f"Wrote {people:,} clients to {file}")


@app.command()
def replay(
    since: Annotated[
        datetime | None, typer.Option(help="Replay from this time (ISO); default the start.")
    ] = None,
    council: CouncilOpt = "lancashire",
    all_councils: Annotated[
        bool,
        typer.Option(
            "--all-councils",
            help="Every council the deployment serves, one after another (each replay is "
            "recorded as requested by --user of that council's operations).",
        ),
    ] = False,
    user: Annotated[str, typer.Option(help="Who asks, recorded with each replay.")] = (
        "pbj-operations"
    ),
    data_dir: DataDir = Path("var"),
) -> None:
    """Drop and rebuild one council's audit projections from the event log, with a progress
    bar (a replay is of one council: ADR 16).

    Exits 2 when a replay found stored chains altered: it prints each finding (the chain,
    the first bad event, the kind of difference); the altered rows are kept in quarantine
    and the chains rebuilt from the log (ADR 17).
    """
    councils = load_policies(REPO_ROOT / "policies").councils if all_councils else [council]
    url = service_urls()["audit"]
    body = {"since": since.isoformat()} if since else {}
    findings: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as client:
        for each in councils:
            token = mint_for(data_dir, user_id=user, role=Role.OPERATIONS, council=each)
            headers = {"Authorization": f"Bearer {token}"}
            state = _replay_council(client, url, body, headers, each)
            if state["status"] != "done":
                _fail(f"replay of {each} {state['status']}: {state.get('error', '')}")
            console.print(
                f"Rebuilt {each} from the log ({state['processed']} events read), as "
                f"{state.get('requested_by')} asked; digest {state.get('digest')}",
                soft_wrap=True,  # one line per council, for scripts reading it
            )
            findings += state.get("tamper_findings") or []
    if findings:
        _print_tamper_findings(findings, "Stored chains found altered, rebuilt from the log")
        console.print(
            f"[red]{len(findings)} tamper finding(s) recorded; the altered rows are kept in "
            "quarantine. An auditor acknowledges each: POST /v1/tamper-findings/ID/acknowledge"
            "[/red]"
        )
        raise typer.Exit(2)


def _replay_council(
    client: httpx.Client, url: str, body: dict[str, str], headers: dict[str, str], council: str
) -> dict[str, Any]:
    """Start one council's replay and follow it to its end with a progress bar."""
    started = client.post(f"{url}/v1/replay", json=body, headers=headers)
    if started.status_code not in (200, 202):
        _fail(f"replay of {council} refused: HTTP {started.status_code}: {started.text}")
    replay_id = started.json()["replay_id"]
    with Progress(
        TextColumn(f"[bold]replaying {council}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("replay", total=None)
        while True:
            state: dict[str, Any] = client.get(
                f"{url}/v1/replay/{replay_id}", headers=headers
            ).json()
            progress.update(
                task, completed=state.get("processed", 0), total=state.get("total") or None
            )
            if state["status"] != "running":
                return state
            time.sleep(0.2)


def _print_tamper_findings(findings: list[dict[str, Any]], title: str) -> None:
    console.print(f"[bold]{title}[/bold]")
    for f in findings:
        event = f.get("first_bad_event_id") or "none stored there"
        console.print(
            f"  {f['chain']}: seq {f['first_bad_seq']} (event {event}) {f['difference']}: "
            f"{f['reason']} [finding {f['finding_id']}]",
            soft_wrap=True,
            markup=False,
        )


def _open_tamper_findings(url: str, headers: dict[str, str], person: str | None) -> list[Any]:
    """Tamper findings no auditor has acknowledged yet (of one chain, if named)."""
    params = {"acknowledged": "false", "limit": "200"} | ({"chain": person} if person else {})
    response = httpx.get(f"{url}/v1/tamper-findings", params=params, headers=headers, timeout=60)
    if response.status_code != 200:
        _fail(f"listing tamper findings failed: HTTP {response.status_code}: {response.text}")
    items: list[Any] = response.json().get("items", [])
    return items


@app.command()
def verify(
    person: Annotated[
        str | None, typer.Option(help="One person's chain; default everyone.")
    ] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Check the hash chains of the audit history; name the first bad event.

    Exits 2 when a chain fails, or while a tamper finding is not yet acknowledged.
    """
    url = service_urls()["audit"]
    headers = _operator(data_dir, council, Role.AUDITOR)
    path = f"/v1/people/{person}/verify" if person else "/v1/verify"
    response = httpx.get(f"{url}{path}", headers=headers, timeout=120)
    if response.status_code != 200:
        _fail(f"verify failed: HTTP {response.status_code}: {response.text}")
    report = response.json()
    console.print_json(data=report)
    findings = _open_tamper_findings(url, headers, person)
    if findings:
        _print_tamper_findings(findings, "Tamper findings not yet acknowledged")
    if not report.get("ok"):
        raise typer.Exit(2)
    if findings:
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


SUBJECT_ACCESS_SERVICES = ("assessment", "allocation", "planning", "payments", "audit")


@export_app.command("person")
def export_person(
    person_id: Annotated[str, typer.Argument(help="The person's opaque id.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the JSON here; default stdout.")
    ] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Subject access: everything the five services hold on one person, as one JSON document."""
    document = gather_subject_access(person_id, council=council, data_dir=data_dir)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    # The file holds the person's details in the clear: readable by its owner only.
    out.touch(mode=0o600, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    status = document["personal_details"]["status"]
    console.print(
        f"Subject access export for {person_id} ({council}) written to {out}: "
        f"{len(document['services'])} services, personal details {status}",
        style="green",
    )


def gather_subject_access(person_id: str, *, council: str, data_dir: Path) -> dict[str, Any]:
    """Ask each service for its holdings; a 404 means it holds nothing on the person."""
    urls = service_urls()
    headers = _operator(data_dir, council)
    answers: dict[str, Any] = {}
    with httpx.Client(timeout=60) as client:
        for name in SUBJECT_ACCESS_SERVICES:
            response = client.get(
                f"{urls[name]}/v1/people/{person_id}/subject-access", headers=headers
            )
            if response.status_code == 404:
                answers[name] = None
                continue
            if response.status_code != 200:
                _fail(f"{name} refused: HTTP {response.status_code}: {response.text[:300]}")
            answers[name] = response.json()
    if all(answer is None for answer in answers.values()):
        _fail(f"no service holds anything on person {person_id} in council {council}")
    assessment = answers.get("assessment") or {}
    personal = assessment.get("personal_details") or {"status": "none"}
    if personal.get("status") == "erased":
        personal = {
            **personal,
            "note": f"erased on {personal.get('erased_on')}: the person's data key was "
            "destroyed at the end of the retention period; sealed copies cannot be opened",
        }
    return {
        "person_id": person_id,
        "council": council,
        "generated_at": datetime.now(UTC).isoformat(),
        "personal_details": personal,
        "services": {
            name: (answer or {}).get("tables", {}) if answer is not None else {}
            for name, answer in answers.items()
        },
    }


@app.command()
def erase(
    person_id: Annotated[str, typer.Argument(help="The person's opaque id.")],
    council: CouncilOpt = "lancashire",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = Path("var"),
) -> None:
    """Erase a person's personal data after retention: destroys their data key for ever."""
    if not yes:
        typer.confirm(
            f"Erase the personal data of {person_id} ({council})? This cannot be undone.",
            abort=True,
        )
    url = service_urls()["assessment"]
    response = httpx.post(
        f"{url}/v1/people/{person_id}/erasure", headers=_operator(data_dir, council), timeout=60
    )
    if response.status_code != 200:
        reason = (
            response.json().get("detail")
            if response.headers.get("content-type", "").startswith("application/json")
            else response.text
        )
        _fail(f"erasure refused (HTTP {response.status_code}): {reason}")
    erased = response.json()
    console.print(
        f"Erased the personal data of {person_id} on {erased['erased_on']} "
        f"(last contact {erased['last_contact_on']}, {erased['retention_years']} years "
        f"under {erased['policy_version']})",
        style="green",
    )


@idp_app.command("serve")
def idp_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = IDP_PORT,
    data_dir: DataDir = Path("var"),
) -> None:
    """Serve the JWKS at http://127.0.0.1:PORT/.well-known/jwks.json until Ctrl-C.

    Give the services <SERVICE>_JWKS_URL=that URL, <SERVICE>_JWT_ISSUER=pb-journey-local-idp.
    """
    server = JwksServer(LocalIdentityProvider(idp_directory(data_dir)), port=port).start()
    console.print(f"JWKS at {server.jwks_url} (trials only: anyone here can mint tokens)")
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.2)
    server.stop()


@idp_app.command("rotate")
def idp_rotate(
    retire_others: Annotated[
        bool, typer.Option(help="Also take every older key out of the set.")
    ] = False,
    data_dir: DataDir = Path("var"),
) -> None:
    """Add a new signing key and sign with it from now on (services pick it up unrestarted)."""
    kid = LocalIdentityProvider(idp_directory(data_dir)).rotate(retire_others=retire_others)
    console.print(f"New tokens are signed with {kid}")


@idp_app.command("retire")
def idp_retire(
    kid: Annotated[str, typer.Argument(help="The key id to take out of the set.")],
    data_dir: DataDir = Path("var"),
) -> None:
    """Take a key out of the set: tokens signed with it are refused once services refetch."""
    try:
        LocalIdentityProvider(idp_directory(data_dir)).retire(kid)
    except ValueError as err:
        _fail(str(err))
    console.print(f"{kid} retired")


@idp_app.command("keys")
def idp_keys(data_dir: DataDir = Path("var")) -> None:
    """List the key ids in the set, the current one marked."""
    provider = LocalIdentityProvider(idp_directory(data_dir))
    current = provider.ensure()
    for kid in provider.kids():
        typer.echo(f"{kid}{'  (current)' if kid == current else ''}")
    url = trusted_jwks_url(data_dir)
    if url:
        typer.echo(f"served at {url} by `pbj up`")


# --- imports and returns -------------------------------------------------------------------

UPLOAD_CHUNK = 64 * 1024


def _upload(url: str, path: Path, headers: dict[str, str]) -> httpx.Response:
    """POST a file as text/csv with a progress bar while it goes and while it is checked."""
    if not path.is_file():
        _fail(f"{path} is not a file")
    size = path.stat().st_size
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as file:
                while chunk := file.read(UPLOAD_CHUNK):
                    progress.advance(task, len(chunk))
                    yield chunk
            progress.update(task, description="checking every row (all or nothing)")

        with httpx.Client(timeout=600) as client:
            return client.post(
                url,
                content=chunks(),
                headers={**headers, "Content-Type": "text/csv", "Content-Length": str(size)},
            )


def _report(response: httpx.Response, counts: dict[str, str]) -> None:
    """Print what an import did; exit 1 when anything was refused (then nothing was done)."""
    if response.status_code not in (200, 422):
        _fail(f"import refused: HTTP {response.status_code}: {response.text}")
    body = response.json()
    if "rejected" not in body:  # the file as a whole could not be read
        _fail(f"import refused: {body.get('detail', response.text)}")
    if body["rejected"]:
        table = Table(title=f"{len(body['rejected'])} problem(s): nothing was imported")
        for column in ("line", "column", "id", "reason"):
            table.add_column(column)
        for r in body["rejected"]:
            table.add_row(str(r["line"]), r["column"] or "(row)", r.get("key") or "", r["reason"])
        console.print(table)
        raise typer.Exit(1)
    summary = ", ".join(f"{label}: {body.get(key, 0)}" for key, label in counts.items())
    console.print(f"Imported {body['lines']} line(s). {summary}", style="green")


@import_app.command("people")
def import_people(
    file: Annotated[Path, typer.Argument(help="A CareFirst-style client extract (CSV).")],
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Start an assessment for every new person in a legacy extract (docs/integrations.md)."""
    url = service_urls()["assessment"]
    response = _upload(f"{url}/v1/imports/people", file, _operator(data_dir, council))
    _report(response, {"already_imported": "already imported"})
    body = response.json()
    console.print(f"New people: {len(body['imported'])}")


@import_app.command("confirmations")
def import_confirmations(
    file: Annotated[Path, typer.Argument(help="The finance system's confirmation file (CSV).")],
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """Record which released payments finance paid and which failed (docs/integrations.md)."""
    url = service_urls()["payments"]
    headers = _operator(data_dir, council, Role.FINANCE)
    response = _upload(f"{url}/v1/payments/confirmations", file, headers)
    _report(
        response,
        {"recorded_paid": "paid", "recorded_failed": "failed", "unchanged": "already recorded"},
    )


def _write(text: str, out: Path | None, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8", newline="")
        console.print(f"{what} written to {out}", style="green")


@returns_app.command("cld")
def returns_cld(
    quarter: Annotated[str, typer.Option(help="A calendar quarter, e.g. 2026-Q3.")],
    la_code: Annotated[
        str | None, typer.Option(help="The council's three-digit CASSR code, if not known.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here; default stdout.")] = None,
    identities: Annotated[
        bool,
        typer.Option(
            help="Fill NHS number, date of birth and postcode from assessment's sealed "
            "details (--no-identities leaves them blank)."
        ),
    ] = True,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """The Client Level Data extract for a quarter, checked first (docs/returns.md)."""
    url = service_urls()["audit"]
    headers = _operator(data_dir, council, Role.AUDITOR)
    params = {"quarter": quarter, **({"la_code": la_code} if la_code else {})}
    with httpx.Client(timeout=300) as client:
        report = client.get(f"{url}/v1/returns/cld", params=params, headers=headers)
        if report.status_code != 200:
            _fail(f"CLD refused: HTTP {report.status_code}: {report.text}")
        checked = report.json()
        if not checked["valid"]:
            table = Table(title="The extract breaks the specification's rules")
            for column in ("row", "field", "rule"):
                table.add_column(column)
            for v in checked["violations"][:50]:
                table.add_row(str(v["row"]), v["field"], v["rule"])
            console.print(table)
            raise typer.Exit(2)
        extract = client.get(f"{url}/v1/returns/cld.csv", params=params, headers=headers)
        if extract.status_code != 200:
            _fail(f"CLD refused: HTTP {extract.status_code}: {extract.text}")
        text = extract.text
        if identities:
            text = _with_identities(client, text, headers)
    if out is not None:  # stdout carries the CSV alone
        console.print(
            f"{checked['specification']}: {checked['rows']} event row(s) for "
            f"{checked['quarter']} ({checked['reporting_period_start']} to "
            f"{checked['reporting_period_end']}), valid",
            style="green",
        )
    _write(text, out, "CLD extract")


def _with_identities(client: httpx.Client, extract: str, headers: dict[str, str]) -> str:
    """The extract with NHS number, date of birth and postcode from assessment (contracts.cld)."""
    url = service_urls()["assessment"]
    people = cld.people_in(extract)
    identities: dict[str, dict[str, str | None]] = {}
    for start in range(0, len(people), cld.MAX_PEOPLE_PER_REQUEST):
        batch = people[start : start + cld.MAX_PEOPLE_PER_REQUEST]
        answer = client.post(
            f"{url}/v1/people/identities", json={"person_ids": batch}, headers=headers
        )
        if answer.status_code != 200:
            _fail(
                f"assessment refused the people's details: HTTP {answer.status_code}: {answer.text}"
            )
        identities.update({item["person_id"]: item for item in answer.json()["items"]})
    return cld.with_identities(extract, identities)


@returns_app.command("kpis")
def returns_kpis(
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD; default today.")] = None,
    by: Annotated[str, typer.Option(help="council, team or key_worker.")] = "council",
    out: Annotated[Path | None, typer.Option(help="Write the CSV here; default stdout.")] = None,
    council: CouncilOpt = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """NI130 and the Lancashire measure as CSV."""
    url = service_urls()["audit"]
    params = {"by": by, **({"as_of": as_of} if as_of else {})}
    response = httpx.get(
        f"{url}/v1/returns/kpis.csv",
        params=params,
        headers=_operator(data_dir, council, Role.AUDITOR),
        timeout=120,
    )
    if response.status_code != 200:
        _fail(f"KPIs refused: HTTP {response.status_code}: {response.text}")
    _write(response.text, out, "KPIs")


@app.command()
def services() -> None:
    """List the services and their default ports."""
    for name, port in SERVICES.items():
        typer.echo(f"{name}\t127.0.0.1:{port}")


if __name__ == "__main__":
    app()
