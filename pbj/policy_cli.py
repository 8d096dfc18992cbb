"""`pbj policy`: adopt a council's policy version from a date, list versions, revise budgets.

    pbj policy adopt FILE --effective YYYY-MM-DD
    pbj policy list [--council SLUG]
    pbj policy revise --council SLUG [--policy-version COUNCIL/VERSION]

Each calls allocation's /v1/policies API with an operations token for the council (the
embedded default's development key). The file is validated here first, exactly as the
services validate policies, so a bad file is refused before anything is sent; allocation
validates it again and records nothing it refuses.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from contracts.policy import PolicyError, load_policy, policy_document
from contracts.vocabulary import Role
from pbj.idp import mint_for
from pbj.processes import service_urls

app = typer.Typer(
    help="Council policy: adopt a version from a date, list versions, revise budgets.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="PBJ_DATA_DIR",
        help="Where the local signing key lives (the embedded default).",
    ),
]


def _fail(message: str) -> None:
    errors.print(message, style="bold red", markup=False, highlight=False)
    raise typer.Exit(1)


def _operations(data_dir: Path, council: str) -> dict[str, str]:
    token = mint_for(
        data_dir,
        user_id=f"pbj-{Role.OPERATIONS.value}",
        role=Role.OPERATIONS,
        council=council,
    )
    return {"Authorization": f"Bearer {token}"}


def _refusal(response: httpx.Response) -> str:
    try:
        detail: Any = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return f"HTTP {response.status_code}: {detail}"


@app.callback()
def main() -> None:
    """Council policy: adopt a version from a date, list versions, revise budgets."""


@app.command()
def adopt(
    policy_file: Annotated[Path, typer.Argument(help="The policy file (YAML, as in policies/).")],
    effective: Annotated[str, typer.Option("--effective", help="YYYY-MM-DD, today or later.")],
    data_dir: DataDir = Path("var"),
) -> None:
    """Adopt a policy version for its council, in force from a date (PolicyAdopted)."""
    try:
        effective_from = date.fromisoformat(effective)
    except ValueError:
        _fail(f"--effective must be a date like 2026-04-01 (YYYY-MM-DD), not {effective!r}")
        return
    try:
        policy = load_policy(policy_file)
    except PolicyError as err:
        _fail(f"Bad policy file: {err}")
        return
    if policy.effective_from != effective_from:
        console.print(
            f"The file says effective_from {policy.effective_from.isoformat()}; the adoption "
            f"records {effective_from.isoformat()}.",
            highlight=False,
        )
    url = service_urls()["allocation"]
    response = httpx.post(
        f"{url}/v1/policies",
        json={"policy": policy_document(policy), "effective_from": effective_from.isoformat()},
        headers=_operations(data_dir, policy.council),
        timeout=30,
    )
    if response.status_code not in (200, 201):
        _fail(f"Adoption refused: {_refusal(response)}")
    adopted = response.json()
    verb = "Adopted" if response.status_code == 201 else "Already adopted"
    console.print(
        f"{verb} {adopted['policy_version']} ({adopted['name']}), in force from "
        f"{adopted['effective_from']}. Budgets computed from then on use it; existing budgets "
        f"change at their next review, or now with: pbj policy revise --council "
        f"{adopted['council']}",
        highlight=False,
    )


@app.command("list")
def list_policies(
    council: Annotated[str, typer.Option("--council", help="Council slug.")] = "lancashire",
    data_dir: DataDir = Path("var"),
) -> None:
    """The council's policy versions, from files and adopted, and which is in force."""
    response = httpx.get(
        f"{service_urls()['allocation']}/v1/policies",
        headers=_operations(data_dir, council),
        timeout=30,
    )
    if response.status_code != 200:
        _fail(f"Could not list policies: {_refusal(response)}")
    table = Table(title=f"Policy versions of {council}")
    for column in ("version", "in force from", "source", "adopted by", "in force today"):
        table.add_column(column)
    for item in response.json()["items"]:
        table.add_row(
            item["policy_version"],
            item["effective_from"],
            item["source"],
            item["adopted_by"] or "",
            "yes" if item["in_force"] else "",
        )
    console.print(table)


@app.command()
def revise(
    council: Annotated[str, typer.Option("--council", help="Council slug.")],
    policy_version: Annotated[
        str | None,
        typer.Option(
            "--policy-version", help="Refuse unless this council/version is in force today."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=500, help="Budgets per request.")] = 200,
    data_dir: DataDir = Path("var"),
) -> None:
    """Revise every budget of the council under the policy in force today, with progress."""
    url = f"{service_urls()['allocation']}/v1/policies/revisions"
    headers = _operations(data_dir, council)
    body: dict[str, Any] = {"limit": batch}
    if policy_version:
        body["expected_policy_version"] = policy_version
    totals = dict.fromkeys(
        ("checked", "issued", "awaiting_agreement", "already_on_policy", "needs_reassessment"), 0
    )
    version = ""
    with (
        httpx.Client(timeout=120) as client,
        Progress(
            TextColumn("[bold]revising budgets"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("revise", total=None)
        while True:
            response = client.post(url, json=body, headers=headers)
            if response.status_code != 200:
                _fail(f"Revision refused: {_refusal(response)}")
            done = response.json()
            version = done["policy_version"]
            for key in totals:
                totals[key] += done[key]
            progress.update(task, completed=totals["checked"], total=done["total_budgets"])
            if done["next_cursor"] is None:
                break
            body["cursor"] = done["next_cursor"]
    console.print(
        f"Under {version}: {totals['checked']:,} budgets checked; {totals['issued']:,} revised "
        f"and issued; {totals['awaiting_agreement']:,} revised and awaiting agreement; "
        f"{totals['already_on_policy']:,} already on it."
        + (
            f" {totals['needs_reassessment']:,} need a reassessment: the policy's "
            "questionnaire cannot score their answers."
            if totals["needs_reassessment"]
            else ""
        ),
        highlight=False,
    )
