"""`pbj whatif`: see a proposed RAS or charging change on the real cohort before adopting it.

    pbj whatif run PROPOSED_POLICY [--log URL] [--council SLUG] [--out DIR]
                                   [--format json,csv,html]
    pbj whatif generate LOG_FILE [--council SLUG] [--people N] [--seed N]

`run` only reads the event log (a throwaway consumer group that never commits) and writes
only into --out. `generate` writes a synthetic cohort into a new log file, for trying the
what-if without real data; it refuses an existing file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contracts.money import format_pounds
from contracts.policy import PolicyBook, PolicyError
from whatif.cohort import DEFAULT_LOG_URL
from whatif.compare import Comparison, share
from whatif.errors import UnknownCouncil, WhatIfError
from whatif.generate import write_cohort
from whatif.html import compact, label
from whatif.report import FORMATS
from whatif.runner import POLICIES_DIR, run_whatif

app = typer.Typer(
    help="Policy what-if: a proposed RAS or charging change on the real cohort, read-only.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


@app.callback()
def main() -> None:
    """Policy what-if: a proposed RAS or charging change on the real cohort, read-only."""


def _fail(message: str) -> None:
    errors.print(message, style="bold red", markup=False, highlight=False)
    raise typer.Exit(1)


def _formats(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}",
            param_hint="--format",
        )
    return chosen


def summary_table(c: Comparison) -> Table:
    t = c.total
    table = Table(title=f"What-if: {c.current.policy_version} \u2192 {c.proposed.policy_version}")
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("People", justify="right")
    table.add_column("A year now", justify="right")
    table.add_column("A year proposed", justify="right")
    table.add_column("Change", justify="right")
    table.add_column("More", justify="right")
    table.add_column("Less", justify="right")
    table.add_column("Same", justify="right")
    shown = [row for row in c.by_client_group if row.people]
    for row in [*shown, t]:
        table.add_row(
            "All" if row is t else label(row.key),
            f"{row.people:,}",
            compact(row.annual_now),
            compact(row.annual_proposed),
            ("+" if row.change_annual > 0 else "") + compact(row.change_annual),
            f"{row.winners:,}",
            f"{row.losers:,}",
            f"{row.unchanged:,}",
            end_section=bool(shown) and row is shown[-1],
        )
    return table


@app.command()
def run(
    proposed_policy: Annotated[
        Path, typer.Argument(help="The proposed policy file (YAML, the format of policies/).")
    ],
    log: Annotated[
        str,
        typer.Option(
            "--log", envvar="PBJ_EVENT_LOG_URL", help="Event log: sqlite:///PATH or kafka://..."
        ),
    ] = DEFAULT_LOG_URL,
    council: Annotated[
        str | None,
        typer.Option("--council", help="Council slug; default the proposed policy's council."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the reports.")] = Path(
        "whatif-out"
    ),
    format: Annotated[
        str, typer.Option("--format", help="Comma-separated: json, csv, html.")
    ] = "json,csv,html",
    policies: Annotated[
        Path, typer.Option("--policies", help="The policies in force (a directory of YAML).")
    ] = POLICIES_DIR,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while reading.")] = True,
) -> None:
    """Compare everyone's budget under the policy in force and under PROPOSED_POLICY."""
    formats = _formats(format)
    try:
        result = asyncio.run(
            run_whatif(
                proposed_policy,
                log_url=log,
                council=council,
                out_dir=out,
                formats=formats,
                policies_dir=policies,
                console=errors,
                show_progress=progress and errors.is_terminal,
            )
        )
    except PolicyError as err:
        # An out-of-law figure (a review schedule beyond the guidance or the regulation) is
        # refused here, with the field and the law it breaks, before the log is read.
        _fail(f"Bad policy file: {err}")
        return
    except WhatIfError as err:
        _fail(str(err))
        return
    c = result.comparison
    t = c.total
    console.print(summary_table(c))
    console.print(
        f"{t.winners:,} people ({share(t.winners, t.people)}) would get more, "
        f"{t.losers:,} ({share(t.losers, t.people)}) less; "
        f"{t.crosses_ceiling:,} would newly be above a ceiling; "
        f"{t.plan_exceeds_proposed:,} signed-off plans would cost more than the new budget; "
        f"{t.approver_changes:,} would need a different approver.",
        highlight=False,
    )
    if c.excluded:
        console.print(f"{len(c.excluded):,} people could not be compared (see the reports).")
    charges = c.charging
    if charges.modelled and (charges.people or charges.not_compared):
        console.print(
            f"Weekly charges: {charges.pays_more:,} of {len(charges.people):,} people with a "
            f"financial assessment would pay more, {charges.pays_less:,} less, "
            f"{charges.same:,} the same; {format_pounds(charges.weekly_now_total)} a week now, "
            f"{format_pounds(charges.weekly_proposed_total)} proposed"
            + (
                f" ({len(charges.not_compared):,} could not be worked out again)."
                if charges.not_compared
                else "."
            ),
            highlight=False,
        )
    reviews = c.reviews
    if reviews.reviews:
        console.print(
            f"Reviews: of {len(reviews.reviews):,} next reviews, {reviews.brought_forward:,} "
            f"would be brought forward, {reviews.pushed_back:,} pushed back, "
            f"{reviews.same:,} the same; {len(reviews.newly_overdue):,} would newly be overdue.",
            highlight=False,
        )
    if c.recoups.modelled:
        console.print(c.recoups.in_words, highlight=False)
    for kind, path in result.written.items():
        console.print(f"Wrote {kind.upper()}: {path}", highlight=False)


@app.command()
def generate(
    log_file: Annotated[Path, typer.Argument(help="A new embedded event log file to create.")],
    council: Annotated[str, typer.Option(help="Council slug.")] = "lancashire",
    people: Annotated[int, typer.Option(min=1, help="How many people.")] = 1_000,
    seed: Annotated[int, typer.Option(help="Same seed, same cohort.")] = 2009,
    policies: Annotated[Path, typer.Option("--policies", help="Policies directory.")] = (
        POLICIES_DIR
    ),
) -> None:
    """Write a synthetic cohort into a NEW event log file, to try the what-if on."""
    try:
        book = PolicyBook.from_directory(policies)
        try:
            policy = book.current(council)
        except KeyError as err:
            raise UnknownCouncil(council, book.councils, str(policies)) from err
        done = asyncio.run(write_cohort(log_file, policy, people, seed))
    except (PolicyError, WhatIfError) as err:
        _fail(str(err))
        return
    console.print(
        f"Wrote {done.events:,} events for {done.people:,} people ({policy.policy_version}) "
        f"to sqlite:///{log_file} in {done.seconds:.1f}s",
        highlight=False,
    )


if __name__ == "__main__":
    app()
