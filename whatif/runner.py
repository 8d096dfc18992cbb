"""One what-if run: load both policies, read the cohort, compare, write the reports.

The order is the order of the checks an officer meets: a bad proposed file first (naming
the field), then an unknown council, then a proposal for another council, then an empty
cohort; only then is anything written, and only into the output directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Console

from contracts.policy import Policy, PolicyBook, PolicyError, load_policy
from whatif.cohort import DEFAULT_LOG_URL, read_cohort
from whatif.compare import Comparison, check_same_council, compare
from whatif.errors import EmptyCohort, UnknownCouncil
from whatif.report import FORMATS, RunInfo, write_reports

POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"


@dataclass
class WhatIfRun:
    comparison: Comparison
    info: RunInfo
    written: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)


def load_policies(
    proposed_path: Path, policies_dir: Path = POLICIES_DIR, council: str | None = None
) -> tuple[Policy, Policy]:
    """(policy in force today, proposed policy), both validated and for the same council."""
    proposed = load_policy(proposed_path)
    files = sorted(policies_dir.glob("*.yaml"))
    if not files:
        raise PolicyError(f"{policies_dir}: no policy files (*.yaml)")
    loaded = [(path, load_policy(path)) for path in files]
    slug = council or proposed.council
    # A draft saved among the policies in force must not be taken for the one in force
    # (unless it is the council's only file there: then it is the one in force).
    others = [p for path, p in loaded if path.resolve() != proposed_path.resolve()]
    if any(p.council == slug for p in others):
        book = PolicyBook(others)
    else:
        book = PolicyBook([p for _, p in loaded])
    try:
        current = book.current(slug, on=date.today())
    except KeyError as err:
        raise UnknownCouncil(slug, book.councils, str(policies_dir)) from err
    check_same_council(current, proposed)
    return current, proposed


async def run_whatif(
    proposed_path: Path,
    *,
    log_url: str = DEFAULT_LOG_URL,
    council: str | None = None,
    out_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    policies_dir: Path = POLICIES_DIR,
    console: Console | None = None,
    show_progress: bool = True,
) -> WhatIfRun:
    seconds: dict[str, float] = {}
    current, proposed = load_policies(proposed_path, policies_dir, council)
    started = time.perf_counter()
    cohort = await read_cohort(log_url, console=console, show_progress=show_progress)
    seconds["read"] = time.perf_counter() - started
    people = cohort.council_people(current.council)
    if not any(p.assessment is not None for p in people):
        others = {c: n for c, n in cohort.assessed_by_council().items() if c != current.council}
        raise EmptyCohort(current.council, log_url, cohort.records_read, others)
    started = time.perf_counter()
    comparison = compare(people, current, proposed)
    seconds["compare"] = time.perf_counter() - started
    info = RunInfo.now(log_url, cohort.records_read, cohort.invalid_records, len(people))
    started = time.perf_counter()
    written = write_reports(comparison, info, out_dir, formats)
    seconds["write"] = time.perf_counter() - started
    return WhatIfRun(comparison, info, written, seconds)
