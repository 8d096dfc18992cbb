"""Policy what-if: a proposed RAS or charging change replayed over the cohort, read-only.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009): ch.2 Step 1 §ii gives the
six domains' maximum and minimum points (70 and 12 in all). Seed 004 = SCIE "Keeping
personal budgets personal" (2011): generic RASs disadvantaged older people (exec summary),
which is what the equality table must make visible. Seed 001 §5.2: a RAS change comes
with an equality impact assessment.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.money import WEEKS_PER_YEAR, apply_basis_points
from contracts.policy import Policy, load_policy
from contracts.vocabulary import AgeBand, ClientGroup, Role
from servicekit.eventlog.embedded import EmbeddedEventLog, stored_records
from whatif.cli import app
from whatif.cohort import Cohort, apply_record, fold
from whatif.compare import (
    ContributionBasis,
    Excluded,
    Outcome,
    PersonImpact,
    compare,
    compare_person,
)
from whatif.diff import policy_changes
from whatif.errors import DifferentCouncil
from whatif.generate import generate_cohort, outgoing, person_events, write_cohort
from whatif.report import CSV_COLUMNS, PERSON_COLUMNS, person_row

POLICIES = Path(__file__).resolve().parents[1] / "policies"
LANCASHIRE_GROUPS = ["Older people", "Physical disability", "Learning disability", "Mental health"]
# Seed 003 ch.2 Step 1 §ii: every domain at its maximum is 70 points, at its minimum 12.
SEED_MAX_POINTS = 30 + 5 + 5 + 10 + 10 + 10
SEED_MIN_POINTS = 5 + 1 + 1 + 2 + 1 + 2
LEVEL_3_POINTS = 16 + 3 + 3 + 6 + 5 + 6  # our levels 3 (policies/lancashire.yaml, assumed)

runner = CliRunner()


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lancashire() -> Policy:
    return load_policy(POLICIES / "lancashire.yaml")


def raw_lancashire() -> dict[str, Any]:
    raw = yaml.safe_load((POLICIES / "lancashire.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def proposal(
    directory: Path,
    *,
    prices: dict[str, int] | None = None,
    ceilings: dict[str, int] | None = None,
    lower_scale: int | None = None,
    contribution_share: int | None = None,
    name: str = "proposed.yaml",
) -> Path:
    """Lancashire's policy with some changes, saved as a proposed policy file."""
    raw = copy.deepcopy(raw_lancashire())
    raw["version"] = "2026.1-proposed"
    raw["effective_from"] = "2026-04-01"
    if prices:
        raw["ras"]["price_per_point_weekly_pence"].update(prices)
    if ceilings is not None:
        raw["ras"]["ceilings_weekly_pence"] = ceilings
    if lower_scale is not None:
        raw["ras"]["lower_scale_basis_points"] = lower_scale
    if contribution_share is not None:
        raw["contribution"]["share_of_plan_basis_points"] = contribution_share
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def levels(policy: Policy, level: int) -> dict[str, int]:
    return {d.key: level for d in policy.questionnaire.domains}


def impacts_by_id(people: list[PersonImpact]) -> dict[str, PersonImpact]:
    return {p.person_id: p for p in people}


def expected_weekly(
    points: int, price: int, lower: bool, deductions: int, lower_bp: int = 8_000
) -> int:
    """An independent oracle for the RAS: points x price, scaled, less deductions, >= 0."""
    standard = points * price
    scaled = apply_basis_points(standard, lower_bp) if lower else standard
    return max(0, scaled - deductions)


def output(result: Any) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def cohort_400(lancashire: Policy) -> Cohort:
    """400 plausible Lancashire people, folded straight from the generator (no log)."""
    return fold(generate_cohort(lancashire, 400, seed=3))


# --- the fold -------------------------------------------------------------------------------


def test_the_fold_keeps_each_persons_latest_assessment_budget_and_plan(lancashire: Policy):
    council_a = load_policy(POLICIES / "council_a.yaml")
    first = person_events(
        lancashire,
        "amy",
        client_group=ClientGroup.OLDER_PEOPLE,
        domain_levels=levels(lancashire, 3),
        plan_basis_points=9_000,
        assessed_max_weekly_contribution_pence=5_000,
    )
    reassessed = person_events(
        lancashire,
        "amy",
        client_group=ClientGroup.OLDER_PEOPLE,
        team="Preston",
        age_band=AgeBand.AGE_85_PLUS,
        domain_levels=levels(lancashire, 4),
        needs_24_7=True,
        plan_weekly_pence=50_000,
    )
    elsewhere = person_events(
        council_a,
        "ben",
        client_group=ClientGroup.MENTAL_HEALTH,
        domain_levels=levels(council_a, 2),
    )
    budget_only = person_events(
        lancashire,
        "cal",
        client_group=ClientGroup.MENTAL_HEALTH,
        domain_levels=levels(lancashire, 2),
    )[1:]  # the assessment is missing from the log
    due = Envelope(
        ev.ReviewDue(
            person_id="amy",
            council="lancashire",
            review_id=uuid.uuid4(),
            plan_id=uuid.uuid4(),
            kind=ev.ReviewKind.FIRST,
            due_on=lancashire.effective_from,
        )
    )

    cohort = fold([*first, *elsewhere, *reassessed, due, *budget_only])

    amy = cohort.people[("lancashire", "amy")]
    assert amy.assessment is not None
    assert dict(amy.assessment.domain_levels) == levels(lancashire, 4)
    assert amy.assessment.needs_24_7 and amy.assessment.age_band is AgeBand.AGE_85_PLUS
    assert amy.budget is not None and amy.budget.stage is ev.BudgetStage.FINAL
    assert amy.budget.weekly_pence == 50_000 and amy.budget.revision == 2
    assert amy.plan is not None and amy.plan.weekly_pence == 50_000
    assert amy.deployment is not None
    assert amy.deployment.gross_annual_pence == 50_000 * WEEKS_PER_YEAR
    assert ("council_a", "ben") in cohort.people
    assert cohort.records_read == len(first) + len(elsewhere) + len(reassessed) + 1 + 1
    assert cohort.assessed_by_council() == {"lancashire": 1, "council_a": 1}

    only_lancashire = fold([*first, *elsewhere], council="lancashire")
    assert list(only_lancashire.people) == [("lancashire", "amy")]
    assert only_lancashire.skipped_other_councils == len(elsewhere)

    cal = cohort.people[("lancashire", "cal")]
    assert cal.assessment is None and cal.budget is not None
    excluded = compare_person(cal, lancashire, lancashire)
    assert isinstance(excluded, Excluded) and excluded.stage == "log"


def test_raw_records_are_decoded_only_when_they_may_hold_a_wanted_event(lancashire: Policy):
    cohort = Cohort()
    events = person_events(
        lancashire,
        "dot",
        client_group=ClientGroup.LEARNING_DISABILITY,
        domain_levels=levels(lancashire, 2),
    )
    for envelope in events:
        apply_record(cohort, outgoing(envelope).value)
    apply_record(cohort, b'{"type": "pb.assessment.assessment-validated.v1", "broken": ')
    apply_record(cohort, b'{"specversion": "1.0", "type": "pb.planning.review-due.v1"}')

    assert cohort.records_read == len(events) + 2
    assert cohort.invalid_records == 1  # the review-due record was never decoded
    assert cohort.people[("lancashire", "dot")].budget is not None


# --- the comparison -------------------------------------------------------------------------


def test_a_higher_price_per_point_makes_everyone_a_winner_by_the_exact_pence(
    lancashire: Policy, cohort_400: Cohort, tmp_path: Path
):
    proposed = load_policy(
        proposal(tmp_path, prices={g.value: 1_100 for g in lancashire.client_groups})
    )
    op = ClientGroup.OLDER_PEOPLE
    people = fold(
        [
            # Seed maximum, standard scale: 70 points x £1 more = £70.00 a week more.
            *person_events(lancashire, "max", client_group=op, domain_levels=levels(lancashire, 5)),
            # Seed minimum on the 80% lower scale: 12 x £11 x 80% - 12 x £10 x 80% = £9.60.
            *person_events(
                lancashire,
                "min",
                client_group=op,
                domain_levels=levels(lancashire, 1),
                significant_informal_support=True,
            ),
            # Level 3 everywhere less £20 carer support: carer support is netted off both.
            *person_events(
                lancashire,
                "mid",
                client_group=op,
                domain_levels=levels(lancashire, 3),
                carer_support_weekly_pence=2_000,
            ),
        ]
    ).council_people("lancashire")

    result = compare(people, lancashire, proposed)

    by_id = impacts_by_id(result.people)
    assert by_id["max"].points_now == SEED_MAX_POINTS == 70
    assert by_id["min"].points_now == SEED_MIN_POINTS == 12
    assert by_id["mid"].points_now == LEVEL_3_POINTS
    assert by_id["max"].change_weekly == 70 * 100 == 7_000
    assert by_id["min"].change_weekly == 10_560 - 9_600 == 960
    assert (
        by_id["mid"].change_weekly
        == (LEVEL_3_POINTS * 1_100 - 2_000) - (LEVEL_3_POINTS * 1_000 - 2_000)
        == 3_900
    )
    assert result.total.winners == 3 and result.total.losers == result.total.unchanged == 0
    assert result.total.change_annual == (7_000 + 960 + 3_900) * WEEKS_PER_YEAR

    # And over a plausible cohort: every person gains exactly what the oracle says.
    everyone = compare(cohort_400.council_people("lancashire"), lancashire, proposed)
    assert everyone.total.people == 400 and not everyone.excluded
    assert everyone.total.losers == 0
    for impact in everyone.people:
        assessed = cohort_400.people[("lancashire", impact.person_id)].assessment
        assert assessed is not None
        lower = assessed.significant_informal_support and not assessed.needs_24_7
        deductions = assessed.carer_support_weekly_pence + sum(p for _, p in assessed.other_funding)
        old = expected_weekly(impact.points_now, 1_000, lower, deductions)
        new = expected_weekly(impact.points_now, 1_100, lower, deductions)
        assert (impact.weekly_now, impact.weekly_proposed) == (old, new), impact.person_id
        assert impact.outcome is (Outcome.WINNER if new > old else Outcome.UNCHANGED)
    assert everyone.total.winners >= 390  # only a budget netted down to £0 could stay put


def test_a_lower_price_for_older_people_makes_losers_in_that_group_only(
    lancashire: Policy, cohort_400: Cohort, tmp_path: Path
):
    proposed = load_policy(proposal(tmp_path, prices={"older_people": 900}))

    result = compare(cohort_400.council_people("lancashire"), lancashire, proposed)

    rows = {row.key: row for row in result.by_client_group}
    assert list(rows) == [g.value for g in lancashire.client_groups]
    older = rows["older_people"]
    assert older.people > 150 and older.losers >= older.people - 2 and older.winners == 0
    for group in ("physical_disability", "learning_disability", "mental_health"):
        assert rows[group].people > 0
        assert rows[group].losers == rows[group].winners == 0
        assert rows[group].unchanged == rows[group].people
    assert result.total.losers == older.losers
    assert "By client group, every loss falls on: older people." in result.findings
    assert any(f.startswith("A larger share of older people would lose") for f in result.findings)
    bands = {row.key: row for row in result.by_age_band}
    assert bands["85+"].losers == bands["85+"].people  # the generator's 85+ are older people
    assert all(p.change_weekly < 0 for p in result.most_affected)
    assert result.changes[0].words == (
        "The price of a point for older people falls from £10.00 to £9.00 a week (\u221210.0%)."
    )


def test_a_new_ceiling_flags_the_budgets_that_cross_it(lancashire: Policy, tmp_path: Path):
    proposed = load_policy(proposal(tmp_path, ceilings={"older_people": 45_000}))
    op, pd = ClientGroup.OLDER_PEOPLE, ClientGroup.PHYSICAL_DISABILITY
    people = fold(
        [
            *person_events(
                lancashire, "high", client_group=op, domain_levels=levels(lancashire, 5)
            ),  # £700 > £450
            *person_events(
                lancashire,
                "edge",
                client_group=op,
                domain_levels={
                    **levels(lancashire, 3),
                    "essential_living_tasks": 4,
                    "personal_care": 4,
                    "health": 4,
                },
            ),  # 45 points: £450
            *person_events(
                lancashire, "low", client_group=op, domain_levels=levels(lancashire, 3)
            ),  # £390
            *person_events(
                lancashire, "pd", client_group=pd, domain_levels=levels(lancashire, 5)
            ),  # no ceiling for PD
        ]
    ).council_people("lancashire")

    result = compare(people, lancashire, proposed)

    by_id = impacts_by_id(result.people)
    assert by_id["edge"].weekly_proposed == 45_000  # at the ceiling is within it
    assert [p.person_id for p in result.people if p.crosses_ceiling] == ["high"]
    assert result.total.crosses_ceiling == result.total.above_ceiling_proposed == 1
    high = by_id["high"]
    assert (high.ceiling_now, high.ceiling_proposed) == (None, 45_000)
    # Seed 003 ch.2 §iv: the team manager agrees in principle; exceptions go to the panel.
    assert (high.approver_now, high.approver_proposed) == (Role.TEAM_MANAGER, Role.PANEL)
    assert result.approver_moves == [("team_manager", "panel", 1)]
    assert by_id["edge"].approver_proposed is Role.TEAM_MANAGER
    assert high.change_weekly == 0  # a ceiling flags; it does not cut the budget
    assert any(c.area == "ceilings" and c.after == "£450.00" for c in result.changes)


def test_a_signed_off_plan_above_the_new_budget_is_flagged(lancashire: Policy, tmp_path: Path):
    proposed = load_policy(proposal(tmp_path, prices={"older_people": 900}))
    op = ClientGroup.OLDER_PEOPLE
    people = fold(
        [
            *person_events(
                lancashire,
                "full",
                client_group=op,
                domain_levels=levels(lancashire, 3),
                plan_basis_points=10_000,
            ),
            *person_events(
                lancashire,
                "thrifty",
                client_group=op,
                domain_levels=levels(lancashire, 3),
                plan_basis_points=8_500,
            ),
            *person_events(
                lancashire, "noplan", client_group=op, domain_levels=levels(lancashire, 3)
            ),
        ]
    ).council_people("lancashire")

    result = compare(people, lancashire, proposed)

    by_id = impacts_by_id(result.people)
    full, thrifty, noplan = by_id["full"], by_id["thrifty"], by_id["noplan"]
    assert full.plan_weekly == 39_000 and full.weekly_proposed == 35_100
    assert full.plan_exceeds_proposed and not full.plan_exceeds_now
    assert thrifty.plan_weekly == 33_150 and not thrifty.plan_exceeds_proposed
    assert noplan.plan_weekly is None and not noplan.plan_exceeds_proposed
    assert full.issued_stage == "final" and full.issued_weekly == 39_000
    assert result.total.plan_exceeds_proposed == 1


def test_contributions_keep_a_revealed_means_test_cap_else_report_the_rule_maximum(
    lancashire: Policy, tmp_path: Path
):
    # Lancashire: up to 100% of the plan, capped by the means test (policies/lancashire.yaml).
    proposed = load_policy(proposal(tmp_path, contribution_share=7_500))
    op = ClientGroup.OLDER_PEOPLE
    people = fold(
        [
            *person_events(
                lancashire,
                "capped",
                client_group=op,
                domain_levels=levels(lancashire, 3),
                plan_basis_points=10_000,
                assessed_max_weekly_contribution_pence=5_000,
            ),
            *person_events(
                lancashire, "unknown", client_group=op, domain_levels=levels(lancashire, 3)
            ),
        ]
    ).council_people("lancashire")

    by_id = impacts_by_id(compare(people, lancashire, proposed).people)

    annual = 39_000 * WEEKS_PER_YEAR
    capped, unknown = by_id["capped"], by_id["unknown"]
    assert capped.contribution_basis is ContributionBasis.MEANS_TEST_CAP
    assert capped.contribution_now == capped.contribution_proposed == 5_000 * WEEKS_PER_YEAR
    assert unknown.contribution_basis is ContributionBasis.RULE_MAXIMUM
    assert unknown.contribution_now == annual
    assert unknown.contribution_proposed == apply_basis_points(annual, 7_500)


def test_a_proposal_for_another_council_is_refused(lancashire: Policy):
    council_a = load_policy(POLICIES / "council_a.yaml")
    with pytest.raises(DifferentCouncil, match="'council_a'"):
        compare([], lancashire, council_a)


def test_the_policy_diff_reads_as_plain_english(lancashire: Policy, tmp_path: Path):
    proposed = load_policy(
        proposal(
            tmp_path,
            prices={"learning_disability": 1_050},
            lower_scale=7_500,
            ceilings={"mental_health": 40_000},
            contribution_share=7_500,
        )
    )
    words = [c.words for c in policy_changes(lancashire, proposed)]
    assert words == [
        "The price of a point for learning disability rises from £10.00 to £10.50 a week (+5.0%).",
        "The lower scale (for people with significant informal support and no need for support "
        "around the clock) changes from 80% to 75% of the standard scale.",
        "A new ceiling of £400.00 a week for mental health. Budgets above a ceiling need an "
        "exception approver.",
        "The client contribution changes from up to 100% of the plan, capped by the means test "
        "to up to 75% of the plan, capped by the means test.",
    ]
    assert policy_changes(lancashire, lancashire) == []


def test_the_generator_is_seeded(lancashire: Policy):
    first = [e.id for e in generate_cohort(lancashire, 30, seed=7)]
    again = [e.id for e in generate_cohort(lancashire, 30, seed=7)]
    other = [e.id for e in generate_cohort(lancashire, 30, seed=8)]
    assert first == again and first != other


# --- the command, against a real embedded log -----------------------------------------------


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the log's tables, read directly from the SQLite file."""
    conn = sqlite3.connect(db)
    try:
        return {
            "records": sorted(
                (r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers), r.timestamp_ms)
                for r in stored_records(db)
            ),
            "group_offsets": conn.execute(
                "SELECT group_id, topic, partition, next_offset FROM group_offsets "
                "ORDER BY group_id, topic, partition"
            ).fetchall(),
            "topics": conn.execute("SELECT name, partitions FROM topics ORDER BY name").fetchall(),
        }
    finally:
        conn.close()


async def _commit_some(db: Path, group: str, records: int) -> None:
    """A service's consumer group that has applied part of the log."""
    log = EmbeddedEventLog(db)
    await log.start()
    consumer = log.consumer(group, ["pb.assessment", "pb.allocation"])
    try:
        batch = await consumer.poll(max_records=records, timeout_ms=100)
        await consumer.commit(batch)
    finally:
        await consumer.close()
        await log.close()


@pytest.fixture(scope="module")
def live_log(tmp_path_factory: pytest.TempPathFactory, lancashire: Policy) -> Path:
    """An embedded log with 300 people and two consumer groups part-way through it."""
    db = tmp_path_factory.mktemp("log") / "eventlog.db"
    asyncio.run(write_cohort(db, lancashire, 300, seed=11))
    asyncio.run(_commit_some(db, "allocation-assessment", 200))
    asyncio.run(_commit_some(db, "audit", 40))
    return db


@pytest.fixture(scope="module")
def report(live_log: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `pbj whatif run` over the live log: the log before and after, and the outputs."""
    work = tmp_path_factory.mktemp("run")
    proposed = proposal(work, prices={"older_people": 900})
    before = snapshot(live_log)
    files_before = sorted(p.name for p in live_log.parent.iterdir())
    out = work / "out"
    result = runner.invoke(
        app,
        [
            "run",
            str(proposed),
            "--log",
            f"sqlite:///{live_log}",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    return {
        "result": result,
        "before": before,
        "after": snapshot(live_log),
        "files_before": files_before,
        "files_after": sorted(p.name for p in live_log.parent.iterdir()),
        "out": out,
    }


def test_the_run_changes_nothing_in_the_event_log(report: dict[str, Any]):
    assert report["result"].exit_code == 0, report["result"].output
    before, after = report["before"], report["after"]
    assert len(before["records"]) > 1_000
    assert {g for g, *_ in before["group_offsets"]} == {"allocation-assessment", "audit"}
    assert after["records"] == before["records"]  # every byte of every record
    assert after["group_offsets"] == before["group_offsets"]  # no offset moved, no new group
    assert after["topics"] == before["topics"]
    assert report["files_after"] == report["files_before"]


def test_the_run_writes_json_csv_and_html_for_everyone(report: dict[str, Any], lancashire: Policy):
    out: Path = report["out"]
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"whatif-lancashire-2026.1-proposed.{x}" for x in ("csv", "html", "json")]
    assert "Older people" in output(report["result"])
    summary = json.loads((out / names[2]).read_text(encoding="utf-8"))
    assert summary["source"]["people_compared"] == 300
    assert summary["current_policy"]["policy_version"] == "lancashire/2009.1"
    with (out / names[0]).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 300
    losers = [r for r in rows if r["outcome"] == "loser"]
    assert losers and {r["client_group"] for r in losers} == {"older_people"}
    assert summary["totals"]["losers"] == len(losers)
    assert (
        sum(int(r["change_weekly_pence"]) for r in rows) * 52
        == (summary["totals"]["change_annual_pence"])
    )


def test_the_html_report_is_self_contained_accessible_and_names_every_client_group(
    report: dict[str, Any],
):
    html = next(report["out"].glob("*.html")).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert '<html lang="en-GB">' in html
    for group in LANCASHIRE_GROUPS:
        assert f">{group}<" in html, group
    assert html.count("<svg") == 2
    assert html.count('role="img"') == 2 and html.count("<desc id=") == 2
    assert html.count("<table>") == html.count("<caption>") > 5
    assert '<th scope="col"' in html and '<th scope="row"' in html
    assert "<h1>" in html and 'id="equality"' in html
    assert "every loss falls on: older people" in html


def _raw_with(tmp_path: Path, name: str, change: dict[str, Any]) -> Path:
    raw = copy.deepcopy(raw_lancashire())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_bad_proposed_policy_file_names_the_field(tmp_path: Path, live_log: Path):
    bad = _raw_with(tmp_path, "bad.yaml", {"ras.price_per_point_weekly_pence.older_people": "ten"})
    result = runner.invoke(
        app, ["run", str(bad), "--log", f"sqlite:///{live_log}", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert "Bad policy file" in output(result)
    assert "ras.price_per_point_weekly_pence.older_people" in output(result)
    assert not (tmp_path / "out").exists()

    broken = tmp_path / "broken.yaml"
    broken.write_text("council: lancashire\nras: [unclosed\n", encoding="utf-8")
    result = runner.invoke(app, ["run", str(broken), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "cannot read policy" in output(result)


def test_other_councils_empty_cohorts_and_missing_logs_get_clear_errors(
    tmp_path: Path, live_log: Path
):
    log = ["--log", f"sqlite:///{live_log}", "--out", str(tmp_path / "out"), "--no-progress"]
    lancs = proposal(tmp_path)

    unknown = runner.invoke(app, ["run", str(lancs), "--council", "atlantis", *log])
    assert unknown.exit_code == 1
    assert "council 'atlantis' has no policy in force" in output(unknown)
    assert "lancashire" in output(unknown)

    other = runner.invoke(
        app, ["run", str(POLICIES / "council_a.yaml"), "--council", "lancashire", *log]
    )
    assert other.exit_code == 1 and "is for 'council_a'" in output(other)

    empty = runner.invoke(app, ["run", str(POLICIES / "council_b.yaml"), *log])
    assert empty.exit_code == 1
    assert "empty cohort: no validated assessment for council 'council_b'" in output(empty)
    assert "lancashire (300 people)" in output(empty)

    missing = tmp_path / "nowhere" / "eventlog.db"
    gone = runner.invoke(
        app, ["run", str(lancs), "--log", f"sqlite:///{missing}", "--out", str(tmp_path / "out")]
    )
    assert gone.exit_code == 1 and "there is no event log" in output(gone)
    assert not missing.parent.exists()  # nothing was created looking for it
    assert not (tmp_path / "out").exists()


def test_generate_refuses_to_write_into_an_existing_log(live_log: Path):
    before = snapshot(live_log)
    result = runner.invoke(app, ["generate", str(live_log), "--people", "5"])
    assert result.exit_code == 1 and "already exists" in output(result)
    assert snapshot(live_log) == before


def test_every_person_row_has_every_csv_column(cohort_400: Cohort, lancashire: Policy):
    impact = compare(cohort_400.council_people("lancashire")[:1], lancashire, lancashire)
    assert tuple(person_row(impact.people[0])) == PERSON_COLUMNS
