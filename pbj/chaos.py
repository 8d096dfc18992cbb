"""`pbj chaos`: random crashes during a run of journeys, then the independent oracle.

The run and its oracle are test tooling, in `testkit.chaos` (docs/faults.md says what they
prove); this command starts a run, shows each fault as it lands and prints the verdict. The
image ships without the test tooling, so `pbj chaos` runs from a checkout.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from testkit.chaos.injector import Injection
    from testkit.chaos.run import ChaosReport
    from testkit.chaos.walkers import Walked


def summary_tables(report: ChaosReport) -> list[Table]:
    by_target = Table(title=f"Injections ({report.engine} engine, seed {report.seed})")
    by_target.add_column("target")
    by_target.add_column("fault")
    by_target.add_column("count", justify="right")
    counted = Counter((i.target, i.kind) for i in report.injections)
    for (target, kind), count in sorted(counted.items()):
        fault = "SIGKILL + restart" if kind == "kill" else "SIGKILL with relay mid-batch"
        if kind == "relay":
            caught = sum(
                1
                for i in report.injections
                if (i.target, i.kind) == (target, kind) and "mid-batch" in i.detail
            )
            fault += f" ({caught} with rows in hand)"
        by_target.add_row(target, fault, str(count))
    stopped = (
        f"stopped early: {report.requested} asked for"
        if len(report.injections) < report.requested
        else ""
    )
    by_target.add_row("all", stopped, str(len(report.injections)))

    run = Table(title="The run")
    run.add_column("what")
    run.add_column("figure", justify="right")
    complete = sum(1 for w in report.journeys if w.stage == "complete")
    rows = [
        ("seconds", f"{report.seconds:.0f}"),
        ("journeys walked / complete", f"{len(report.journeys)} / {complete}"),
        ("acknowledged changes", str(len(report.tally.acks))),
        ("service starts beyond one per kill", str(report.extra_starts)),
    ]
    rows += [(f"client: {what}", str(n)) for what, n in sorted(report.tally.retries.items())]
    figures = report.verdict.figures
    rows += [(what, str(n)) for what, n in figures.items() if "pence" not in what]
    rows += [
        ("released", f"£{figures.get('released pence', 0) / 100:,.2f}"),
        ("due", f"£{figures.get('due pence', 0) / 100:,.2f}"),
        ("oracle checks run", str(sum(report.verdict.checks.values()))),
        ("oracle failures", str(len(report.verdict.failures))),
    ]
    for what, figure in rows:
        run.add_row(what, figure)
    return [by_target, run]


def chaos(
    engine: Annotated[
        str, typer.Option(help="embedded (SQLite + embedded log) or kafka (+ PostgreSQL).")
    ] = "embedded",
    injections: Annotated[int, typer.Option(min=1, help="How many faults to inject.")] = 100,
    people: Annotated[int, typer.Option(min=1, help="People walking at once.")] = 6,
    seed: Annotated[int, typer.Option(help="Seeds the choice and timing of faults.")] = 1,
    gap: Annotated[float, typer.Option(help="Mean seconds between faults.")] = 0.5,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the run's data and logs in this directory.")
    ] = None,
) -> None:
    """Kill services, relays, broker and PostgreSQL at random during journeys; then check."""
    # Test tooling, loaded only when asked for: the operations CLI runs without it.
    from testkit.chaos.processes import ChaosSystem
    from testkit.chaos.run import run_chaos

    console = Console()
    if engine not in ("embedded", "kafka"):
        console.print(f"[red]--engine must be embedded or kafka, not {engine!r}[/red]")
        raise typer.Exit(2)
    root = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="pbj-chaos-"))
    console.print(f"Starting the system on the {engine} engine in {root} ...")
    report = None
    try:
        with (
            ChaosSystem.running(engine, root) as system,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            faults = progress.add_task("faults injected", total=injections)
            journeys = progress.add_task("journeys complete", total=None)
            lock = threading.Lock()

            def injected(injection: Injection) -> None:
                progress.advance(faults)
                progress.console.log(
                    f"#{injection.number} {injection.target}: {injection.detail} "
                    f"({injection.seconds:.1f}s)"
                )

            def journeyed(walked: Walked) -> None:
                with lock:
                    progress.advance(journeys)
                if walked.error:
                    progress.console.log(f"[red]{walked.person_id} failed: {walked.error}[/red]")

            async def judged() -> ChaosReport:
                # Ctrl-C or SIGTERM: no more faults; the journeys finish and are judged.
                enough = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, enough.set)
                return await run_chaos(
                    system,
                    injections=injections,
                    people=people,
                    seed=seed,
                    mean_gap=gap,
                    on_injection=injected,
                    on_journey=journeyed,
                    enough=enough,
                )

            report = asyncio.run(judged())
    finally:
        if keep is None and report is not None and report.ok:
            shutil.rmtree(root, ignore_errors=True)
    for table in summary_tables(report):
        console.print(table)
    for walked in report.journeys:
        if walked.stage != "complete":
            console.print(f"[red]{walked.person_id} stopped at {walked.stage}: {walked.error}")
    for failure in report.verdict.failures[:50]:
        console.print(f"[red]{failure}[/red]")
    if not report.ok:
        console.print(f"[red]The oracle failed; data and service logs kept in {root}[/red]")
        raise typer.Exit(1)
    console.print("[green]Nothing acknowledged was lost, nothing was applied twice, and the "
                  "money released is the money due.[/green]")  # fmt: skip
