"""One what-if run: load both policies, read the cohort, compare, write the reports.

The order is the order of the checks an officer meets: a bad proposed file first (naming
the field), then an unknown council, then a proposal for another council, then an empty
cohort; only then is anything written, and only into the output directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from contracts import events as ev
from contracts.policy import Policy, PolicyBook, PolicyError, load_policy, today
from servicekit.policies import InvalidPolicyDocument, adopted_policy
from whatif.cohort import DEFAULT_LOG_URL, Cohort, read_cohort
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


def policies_in_force(
    proposed_path: Path, policies_dir: Path = POLICIES_DIR
) -> tuple[Policy, list[Policy]]:
    """(proposed policy, the versions in policies/), all validated."""
    proposed = load_policy(proposed_path)
    files = sorted(policies_dir.glob("*.yaml"))
    if not files:
        raise PolicyError(f"{policies_dir}: no policy files (*.yaml)")
    loaded = [(path, load_policy(path)) for path in files]
    # A draft saved among the policies in force must not be taken for the one in force
    # (unless it is the council's only file there: then it is the one in force).
    others = [p for path, p in loaded if path.resolve() != proposed_path.resolve()]
    if any(p.council == (proposed.council) for p in others):
        return proposed, others
    return proposed, [p for _, p in loaded]


def current_policy(
    book: PolicyBook, slug: str, policies_dir: Path, adoptions: list[ev.PolicyAdopted]
) -> Policy:
    """The council's policy in force today: the files, then every adoption the log holds."""
    for adoption in adoptions:
        try:
            book.add(adopted_policy(adoption.policy, adoption.effective_from))
        except (PolicyError, InvalidPolicyDocument):
            continue  # the services refused it too (dead-lettered): it is not in force
    try:
        return book.current(slug, on=today())
    except KeyError as err:
        raise UnknownCouncil(slug, book.councils, str(policies_dir)) from err


def load_policies(
    proposed_path: Path, policies_dir: Path = POLICIES_DIR, council: str | None = None
) -> tuple[Policy, Policy]:
    """(policy in force today by the files, proposed policy), both validated, same council."""
    proposed, known = policies_in_force(proposed_path, policies_dir)
    current = current_policy(PolicyBook(known), council or proposed.council, policies_dir, [])
    check_same_council(current, proposed)
    return current, proposed


async def compare_on_log(
    current: Policy,
    proposed: Policy,
    cohort: Cohort,
    *,
    log_url: str,
    seconds: dict[str, float] | None = None,
) -> tuple[Comparison, RunInfo]:
    """Compare the council's people in a cohort already read; refuse an empty cohort."""
    people = cohort.council_people(current.council)
    if not any(p.assessment is not None for p in people):
        others = {c: n for c, n in cohort.assessed_by_council().items() if c != current.council}
        raise EmptyCohort(current.council, log_url, cohort.records_read, others)
    started = time.perf_counter()
    comparison = compare(people, current, proposed)
    if seconds is not None:
        seconds["compare"] = time.perf_counter() - started
    info = RunInfo.now(log_url, cohort.records_read, cohort.invalid_records, len(people))
    return comparison, info


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
    # Checks that need no log come first: a bad file, an unknown council, another council.
    proposed, known = policies_in_force(proposed_path, policies_dir)
    slug = council or proposed.council
    check_same_council(current_policy(PolicyBook(known), slug, policies_dir, []), proposed)
    started = time.perf_counter()
    cohort = await read_cohort(log_url, console=console, show_progress=show_progress)
    seconds["read"] = time.perf_counter() - started
    current = current_policy(PolicyBook(known), slug, policies_dir, cohort.adoptions)
    comparison, info = await compare_on_log(
        current, proposed, cohort, log_url=log_url, seconds=seconds
    )
    started = time.perf_counter()
    written = write_reports(comparison, info, out_dir, formats)
    seconds["write"] = time.perf_counter() - started
    return WhatIfRun(comparison, info, written, seconds)
