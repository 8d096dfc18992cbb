"""The what-if over reviews and recoups: a proposed review schedule or recoup notice period
replayed over the cohort's signed-off plans and open notices.

Lancashire reviews a plan 42 days after sign-off (the Care and Support Statutory Guidance,
para. 13.32, allows 6 to 8 weeks), then every 12 months; a direct payment within 6 months
of its set-up, then every 12 (the Direct Payments Regulations 2014, reg. 7(1)(a), allow no
more); a person has 28 days to answer a recoup notice.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.policy import Policy, load_policy
from contracts.registry import ALL_TOPICS
from contracts.vocabulary import ClientGroup
from servicekit.eventlog.embedded import EmbeddedEventLog
from servicekit.policies import InvalidPolicyDocument, parse_policy
from whatif.cli import app
from whatif.cohort import fold
from whatif.compare import compare
from whatif.generate import person_events, publish_envelopes
from whatif.reviews import DueChange

POLICIES = Path(__file__).resolve().parents[1] / "policies"
SENT_ON = date(2026, 11, 2)

runner = CliRunner()


def raw_lancashire() -> dict[str, Any]:
    raw = yaml.safe_load((POLICIES / "lancashire.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def lancashire_with(**changes: Any) -> dict[str, Any]:
    """Lancashire's policy with some review or monitoring figures changed (dotted keys)."""
    raw = copy.deepcopy(raw_lancashire())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return raw


def saved(path: Path, raw: dict[str, Any], version: str) -> Path:
    raw = {**raw, "version": version, "effective_from": "2027-04-01"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def policy(tmp_path: Path, name: str, **changes: Any) -> Policy:
    return load_policy(saved(tmp_path / f"{name}.yaml", lancashire_with(**changes), name))


def with_plans(lancashire: Policy, *people: str) -> list[Envelope]:
    levels = {d.key: 3 for d in lancashire.questionnaire.domains}
    envelopes: list[Envelope] = []
    for person_id in people:
        envelopes += person_events(
            lancashire,
            person_id,
            client_group=ClientGroup.OLDER_PEOPLE,
            domain_levels=levels,
            plan_basis_points=10_000,
        )
    return envelopes


def notice(person_id: str, sent_on: date = SENT_ON, days: int = 28) -> Envelope:
    event = ev.RecoupNoticeSent(
        person_id=person_id,
        council="lancashire",
        notice_id=uuid.uuid5(uuid.NAMESPACE_URL, f"notice-{person_id}"),
        account_id=uuid.uuid5(uuid.NAMESPACE_URL, f"account-{person_id}"),
        surplus_id=uuid.uuid5(uuid.NAMESPACE_URL, f"surplus-{person_id}"),
        amount_pence=120_000,
        reason="Balance above ten weeks of payments",
        sent_on=sent_on,
        respond_by=sent_on + timedelta(days=days),
        respond_within_days=days,
        policy_version="lancashire@2009.1",
        sent_by="finance_officer:fo-01",
    )
    return Envelope(event=event, time=datetime.combine(sent_on, datetime.min.time(), UTC))


def test_a_first_review_at_42_days_instead_of_56_brings_every_first_review_14_days_forward(
    tmp_path: Path,
) -> None:
    current = policy(tmp_path, "now", reviews__first_after_days=56)
    proposed = policy(tmp_path, "proposed", reviews__first_after_days=42)
    cohort = fold(with_plans(current, "p1", "p2", "p3"))

    reviews = compare(cohort.council_people("lancashire"), current, proposed).reviews

    first = [r for r in reviews.reviews if r.kind == "first"]
    assert [r.person_id for r in first] == ["p1", "p2", "p3"]
    assert all(r.change_days == -14 and r.change is DueChange.EARLIER for r in first)
    assert all(r.now == r.counted_from + timedelta(days=56) for r in first)
    # The direct payment's review does not depend on the plan's first review.
    direct = [r for r in reviews.reviews if r.kind == "direct_payment"]
    assert len(direct) == 3 and all(r.change_days == 0 for r in direct)
    assert (reviews.brought_forward, reviews.pushed_back, reviews.same) == (3, 0, 3)


def test_after_a_completed_review_the_next_is_counted_from_it_by_the_months_proposed(
    tmp_path: Path,
) -> None:
    current = policy(tmp_path, "now")
    proposed = policy(tmp_path, "proposed", reviews__then_every_months=9)
    envelopes = with_plans(current, "reviewed")
    signed = next(e.event for e in envelopes if isinstance(e.event, ev.PlanSignedOff))
    review_id = uuid.uuid4()
    common = {"person_id": "reviewed", "council": "lancashire", "plan_id": signed.plan_id}
    envelopes += [
        Envelope(
            event=ev.ReviewScheduled(
                **common,
                review_id=review_id,
                kind=ev.ReviewKind.FIRST,
                due_on=date(2026, 3, 1),
                scheduled_by="system",
            )
        ),
        Envelope(
            event=ev.ReviewCompleted(
                **common,
                review_id=review_id,
                outcome=ev.ReviewOutcome.NO_CHANGE,
                completed_on=date(2026, 3, 3),
                completed_by="social_worker:sw-01",
            )
        ),
    ]

    reviews = compare(fold(envelopes).council_people("lancashire"), current, proposed).reviews

    (annual,) = [r for r in reviews.reviews if r.kind == "annual"]
    assert (annual.now, annual.proposed) == (date(2027, 3, 3), date(2026, 12, 3))
    assert annual.change is DueChange.EARLIER


def test_a_review_brought_before_the_day_of_the_run_is_reported_newly_overdue(
    tmp_path: Path,
) -> None:
    current = policy(tmp_path, "now", reviews__first_after_days=56)
    proposed = policy(tmp_path, "proposed", reviews__first_after_days=42)
    people = fold(with_plans(current, "p1")).council_people("lancashire")
    history = people[0].reviews
    assert history is not None
    run_on = history.signed_off_on + timedelta(days=50)

    reviews = compare(people, current, proposed, on=run_on).reviews

    assert [(r.person_id, r.kind) for r in reviews.newly_overdue] == [("p1", "first")]


def test_a_direct_payment_reviewed_every_7_months_at_first_is_refused_naming_the_regulation(
    tmp_path: Path,
) -> None:
    proposed = saved(
        tmp_path / "proposed.yaml",
        lancashire_with(reviews__direct_payment__first_within_months=7),
        "2027.1-proposed",
    )
    db = tmp_path / "no-log-is-read.db"

    result = runner.invoke(
        app, ["run", str(proposed), "--log", f"sqlite:///{db}", "--out", str(tmp_path / "out")]
    )

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    said = " ".join(result.output.split())
    assert "Bad policy file" in said and "first_within_months" in said
    assert "Regulations 2014, reg. 7(1)(a)" in said and "first 6 months" in said
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_over_http_the_same_proposal_is_a_422_naming_the_regulation() -> None:
    document = lancashire_with(reviews__direct_payment__first_within_months=7)

    with pytest.raises(InvalidPolicyDocument) as refused:
        parse_policy(document)

    assert refused.value.status_code == 422
    assert "reviews.direct_payment.first_within_months is 7" in str(refused.value)
    assert "reg. 7(1)(a)" in str(refused.value)


def test_a_longer_notice_period_moves_each_open_notices_earliest_recoup_later(
    tmp_path: Path,
) -> None:
    current = policy(tmp_path, "now")
    proposed = policy(tmp_path, "proposed", monitoring__recoup_notice__respond_within_days=42)
    envelopes = [*with_plans(current, "p1", "p2"), notice("p1")]

    recoups = compare(fold(envelopes).council_people("lancashire"), current, proposed).recoups

    (only,) = recoups.notices
    # 28 days to respond: the last day is 30 November, so the first recoup is 1 December.
    assert (only.person_id, only.now, only.proposed) == (
        "p1",
        date(2026, 12, 1),
        date(2026, 12, 15),
    )
    assert recoups.shift_days == 14
    assert recoups.in_words.startswith("Recoups could be made 14 days later after each notice")


def surplus(person_id: str, pence: int = 80_000) -> Envelope:
    event = ev.CardSurplusFlagged(
        person_id=person_id,
        council="lancashire",
        surplus_id=uuid.uuid5(uuid.NAMESPACE_URL, f"surplus-{person_id}"),
        account_id=uuid.uuid5(uuid.NAMESPACE_URL, f"account-{person_id}"),
        deployment_id=uuid.uuid5(uuid.NAMESPACE_URL, f"deployment-{person_id}"),
        balance_pence=500_000,
        balance_on=SENT_ON,
        allowance_pence=500_000 - pence,
        surplus_pence=pence,
        rule="weeks_of_payments",
        policy_version="lancashire@2009.1",
    )
    return Envelope(event=event)


def test_a_flagged_surplus_without_a_notice_counts_its_notice_from_the_day_of_the_run(
    tmp_path: Path,
) -> None:
    current = policy(tmp_path, "now")
    proposed = policy(tmp_path, "proposed", monitoring__recoup_notice__respond_within_days=14)
    # p1's surplus has had its notice; p2's has not.
    envelopes = [*with_plans(current, "p1", "p2"), surplus("p1"), notice("p1"), surplus("p2")]
    run_on = date(2026, 12, 6)

    recoups = compare(
        fold(envelopes).council_people("lancashire"), current, proposed, on=run_on
    ).recoups

    assert [(n.person_id, n.notice_id is None, n.sent_on) for n in recoups.notices] == [
        ("p1", False, SENT_ON),
        ("p2", True, run_on),
    ]
    flagged = recoups.notices[1]
    assert (flagged.amount_pence, flagged.now, flagged.proposed) == (
        80_000,
        date(2027, 1, 4),
        date(2026, 12, 21),
    )


def test_with_no_open_notice_the_shift_is_said_from_the_figures_alone(tmp_path: Path) -> None:
    current = policy(tmp_path, "now")
    proposed = policy(tmp_path, "proposed", monitoring__recoup_notice__respond_within_days=21)

    comparison = compare(
        fold(with_plans(current, "p1")).council_people("lancashire"), current, proposed
    )

    assert comparison.recoups.notices == []
    assert comparison.recoups.in_words == (
        "Recoups could be made 7 days earlier after each notice (21 days to respond instead "
        "of 28); the cohort holds no open recoup notice or flagged surplus, so this is worked "
        "out from the figures alone."
    )
    said = {c.item: c.words for c in comparison.changes}
    assert said["recoup_notice.respond_within_days"] == (
        "A person would have 21 days to answer a recoup notice (now 28 days)."
    )
    assert "monitoring" not in said  # only the notice period changed: nothing unmodelled


def test_the_review_figures_changes_are_listed_in_words(tmp_path: Path) -> None:
    current = policy(tmp_path, "now")
    proposed = policy(
        tmp_path,
        "proposed",
        reviews__first_after_days=56,
        reviews__then_every_months=9,
        reviews__unscheduled__within_days={**current.reviews.unscheduled.within_days, "other": 21}
        if current.reviews.unscheduled
        else {},
    )

    said = [c.words for c in compare([], current, proposed).changes if c.area == "reviews"]

    assert said == [
        "The first review of a plan would be 56 days after sign-off (now 42).",
        "Plans would then be reviewed every 9 months (now 12 months).",
        "An unscheduled review after other would be due within 21 days (now 28 days).",
    ]


async def _write_log(path: Path, envelopes: list[Envelope]) -> None:
    log = EmbeddedEventLog(path)
    await log.start()
    try:
        await log.ensure_topics(ALL_TOPICS)
        await publish_envelopes(log, envelopes)
    finally:
        await log.close()


def test_the_cli_and_every_report_say_whose_review_moves_and_when_recoups_could_be_made(
    tmp_path: Path,
) -> None:
    in_force = tmp_path / "policies"
    saved(in_force / "lancashire.yaml", lancashire_with(reviews__first_after_days=56), "2026.1")
    current = load_policy(in_force / "lancashire.yaml")
    proposed = saved(
        tmp_path / "proposed.yaml",
        lancashire_with(
            reviews__first_after_days=42, monitoring__recoup_notice__respond_within_days=42
        ),
        "2027.1-proposed",
    )
    db = tmp_path / "eventlog.db"
    asyncio.run(_write_log(db, [*with_plans(current, "p1", "p2"), notice("p2")]))
    out = tmp_path / "out"

    result = runner.invoke(
        app,
        [
            "run",
            str(proposed),
            "--log",
            f"sqlite:///{db}",
            "--out",
            str(out),
            "--policies",
            str(in_force),
            "--no-progress",
        ],
    )

    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())
    assert "Reviews:of4nextreviews,2wouldbebroughtforward,0pushedback,2thesame" in said
    assert "Recoupscouldbemade14dayslateraftereachnotice" in said
    stem = "whatif-lancashire-2027.1-proposed"
    summary = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    assert summary["reviews"]["brought_forward"] == 2
    assert summary["recoups"]["notices"][0]["earliest_recoup_proposed"] == "2026-12-15"
    assert {c["item"] for c in summary["policy_changes"]} >= {
        "first_after_days",
        "recoup_notice.respond_within_days",
    }
    with (out / f"{stem}.csv").open(encoding="utf-8", newline="") as f:
        rows = {row["person_id"]: row for row in csv.DictReader(f)}
    assert (rows["p1"]["plan_review_kind"], rows["p1"]["plan_review_change_days"]) == (
        "first",
        "-14",
    )
    html = (out / f"{stem}.html").read_text(encoding="utf-8")
    assert 'id="reviews"' in html and "2 would be brought forward" in html
    assert "2026-12-15" in html
    assert "The first review of a plan would be 42 days after sign-off (now 56)." in html


@pytest.mark.parametrize("kind", ["first", "direct_payment"])
def test_each_signed_off_plan_has_its_kind_of_review_compared(tmp_path: Path, kind: str) -> None:
    current = policy(tmp_path, "now")
    people = fold(with_plans(current, "a", "b")).council_people("lancashire")

    reviews = compare(people, current, current).reviews

    assert sorted(r.person_id for r in reviews.reviews if r.kind == kind) == ["a", "b"]
    assert reviews.same == len(reviews.reviews) == 4
