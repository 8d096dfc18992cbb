"""The what-if over charging: a proposed capital limit, tariff or Minimum Income Guarantee
replayed over the cohort's financial assessments, and who would pay more or less a week.

Figures are the Care and Support (Charging and Assessment of Resources) Regulations 2014
as Lancashire's policy carries them: capital limits £14,250 and £23,250, tariff income £1
a week for every £250 or part of £250 between them, the Minimum Income Guarantee of
£214.35 a week for a single person over Pension Credit age (reg. 7, from 6 April 2023).
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import uuid
from datetime import UTC, date, datetime
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
from rules import charging
from servicekit.eventlog.embedded import EmbeddedEventLog
from whatif.charging import ChargeChange, charging_changes
from whatif.cli import app
from whatif.cohort import fold
from whatif.compare import compare
from whatif.generate import person_events, publish_envelopes
from whatif.report import charging_summary

POLICIES = Path(__file__).resolve().parents[1] / "policies"
ASSESSED_ON = date(2026, 5, 4)
PENSION = 23_000  # a state pension of £230 a week
COST = 46_500  # the support costs £465 a week
MIG_PENSION_AGE = 21_435

runner = CliRunner()


@pytest.fixture(scope="module")
def lancashire() -> Policy:
    return load_policy(POLICIES / "lancashire.yaml")


def raw_lancashire() -> dict[str, Any]:
    raw = yaml.safe_load((POLICIES / "lancashire.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    raw["version"] = "2027.1-proposed"
    raw["effective_from"] = "2027-04-01"
    return raw


def proposed_charging(directory: Path, change: dict[str, Any]) -> Path:
    """Lancashire's policy with some charging figures changed, saved as a proposal."""
    raw = copy.deepcopy(raw_lancashire())
    for dotted, pence in change.items():
        *parents, leaf = dotted.split(".")
        node = raw["charging"]
        for parent in parents:
            node = node[parent]
        node[leaf]["pence"] = pence
    path = directory / "proposed.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def assessed(
    policy: Policy,
    person_id: str,
    *,
    savings: int,
    pension: int | None = PENSION,
    v1: bool = False,
) -> Envelope:
    """A full financial assessment, worked out by the rulebook as assessment records it."""
    income = () if pension is None else (charging.Amount("state_pension", pension),)
    assert policy.charging is not None
    result = charging.assess(
        charging.FinancialCircumstances(
            cost_of_support_weekly_pence=COST,
            capital=(charging.Amount("savings", savings),),
            income_weekly=income,
            mig_circumstance="single_pension_credit_age",
            children=0,
            premiums=(),
            housing_costs_weekly_pence=0,
            disability_related_expenditure=(),
        ),
        policy.charging,
        ASSESSED_ON,
    )
    fields: dict[str, Any] = {
        "person_id": person_id,
        "council": policy.council,
        "financial_assessment_id": uuid.uuid4(),
        "assessment_id": uuid.uuid4(),
        "outcome": (
            ev.FinancialAssessmentOutcome.FULL_COST_PAYER
            if result.full_cost_payer
            else ev.FinancialAssessmentOutcome.ASSESSED
        ),
        "assessed_on": ASSESSED_ON,
        "cost_of_support_weekly_pence": COST,
        "capital": [
            ev.AssessedAmount(kind=a.kind, pence=a.pence, counted=a.counted) for a in result.capital
        ],
        "capital_counted_pence": result.capital_counted_pence,
        "tariff_income_weekly_pence": result.tariff_income_weekly_pence,
        "income_weekly": [
            ev.AssessedAmount(kind=a.kind, pence=a.pence, counted=a.counted)
            for a in result.income_weekly
        ],
        "income_counted_weekly_pence": result.income_counted_weekly_pence,
        "mig_circumstance": "single_pension_credit_age",
        "minimum_income_guarantee_weekly_pence": result.minimum_income_guarantee_weekly_pence,
        "housing_costs_weekly_pence": 0,
        "disability_related_expenditure": [],
        "disability_related_expenditure_weekly_pence": 0,
        "weekly_charge_pence": result.weekly_charge_pence,
        "lines": [],
        "figures_to_confirm": [],
        "assessed_by": "finance:fo-1",
        "policy_version": policy.policy_version,
    }
    event: ev.Event
    if v1:
        # Published before v2, read through the upcaster: the breakdown is unknown.
        event = ev.FinancialAssessmentCompleted(**fields)
    else:
        event = ev.FinancialAssessmentCompleted(**fields, mig_children=0, mig_premiums=[])
    return Envelope(event=event, time=datetime(2026, 5, 4, 10, tzinfo=UTC))


def light_touch(policy: Policy, person_id: str, charge: int) -> Envelope:
    return Envelope(
        event=ev.FinancialAssessmentCompleted(
            person_id=person_id,
            council=policy.council,
            financial_assessment_id=uuid.uuid4(),
            assessment_id=uuid.uuid4(),
            outcome=ev.FinancialAssessmentOutcome.LIGHT_TOUCH,
            light_touch_basis=ev.LightTouchBasis.NOMINAL_CHARGE,
            assessed_on=ASSESSED_ON,
            cost_of_support_weekly_pence=COST,
            capital=[],
            capital_counted_pence=0,
            tariff_income_weekly_pence=0,
            income_weekly=[],
            income_counted_weekly_pence=0,
            mig_circumstance=None,
            minimum_income_guarantee_weekly_pence=0,
            housing_costs_weekly_pence=0,
            disability_related_expenditure=[],
            disability_related_expenditure_weekly_pence=0,
            weekly_charge_pence=charge,
            lines=[],
            figures_to_confirm=[],
            reason="A nominal charge the person can clearly meet",
            assessed_by="finance:fo-1",
            policy_version=policy.policy_version,
        ),
        time=datetime(2026, 5, 4, 11, tzinfo=UTC),
    )


def journey(policy: Policy, person_id: str, *finances: Envelope) -> list[Envelope]:
    levels = {d.key: 3 for d in policy.questionnaire.domains}
    return [
        *person_events(
            policy, person_id, client_group=ClientGroup.OLDER_PEOPLE, domain_levels=levels
        ),
        *finances,
    ]


def cohort(policy: Policy) -> list[Envelope]:
    return [
        # £15,000: £750 above the lower limit, three bands of £250: £3 a week tariff income.
        *journey(policy, "fifteen-k", assessed(policy, "fifteen-k", savings=1_500_000)),
        # At or below the lower limit: no tariff income under either policy.
        *journey(policy, "ten-k", assessed(policy, "ten-k", savings=1_000_000)),
        # At the upper limit: the full cost, £465 a week.
        *journey(policy, "upper", assessed(policy, "upper", savings=2_325_000)),
        *journey(policy, "nominal", light_touch(policy, "nominal", 1_000)),
        *journey(policy, "old-v1", assessed(policy, "old-v1", savings=1_500_000, v1=True)),
        # No finances: in the budget comparison only.
        *journey(policy, "no-finances"),
    ]


def test_raising_the_lower_capital_limit_takes_the_tariff_off_15000_pounds(
    lancashire: Policy, tmp_path: Path
) -> None:
    proposal = load_policy(
        proposed_charging(tmp_path, {"capital.lower_limit": 1_600_000})  # £16,000
    )
    result = compare(fold(cohort(lancashire)).council_people("lancashire"), lancashire, proposal)
    charges = {p.person_id: p for p in result.charging.people}

    fifteen = charges["fifteen-k"]
    assert fifteen.now.tariff_income_weekly_pence == 300
    assert fifteen.proposed.tariff_income_weekly_pence == 0
    # £230 pension + £3 tariff - £214.35 guarantee = £18.65 a week now; £15.65 proposed.
    assert fifteen.now.weekly_charge_pence == PENSION + 300 - MIG_PENSION_AGE == 1_865
    assert fifteen.proposed.weekly_charge_pence == 1_565
    assert fifteen.now.weekly_charge_pence == fifteen.recorded_weekly_pence
    assert fifteen.change is ChargeChange.PAYS_LESS and fifteen.change_weekly == -300

    assert charges["ten-k"].change is ChargeChange.SAME
    assert charges["upper"].now.weekly_charge_pence == COST
    assert charges["upper"].change is ChargeChange.SAME
    assert charges["nominal"].now.weekly_charge_pence == 1_000
    assert charges["nominal"].change is ChargeChange.SAME

    # A v1 assessment does not say which children and premiums its guarantee counted.
    [(who, why)] = [(n.person_id, n.reason) for n in result.charging.not_compared]
    assert who == "old-v1" and "children and premiums" in why
    assert "no-finances" not in charges

    c = result.charging
    assert (c.pays_more, c.pays_less, c.same) == (0, 1, 3)
    assert c.change_weekly_total == -300
    assert c.weekly_now_total == 1_865 + (PENSION - MIG_PENSION_AGE) + COST + 1_000
    assert any(
        change.words == "The lower capital limit rises from £14,250.00 to £16,000.00."
        for change in result.changes
    )


def test_a_higher_guarantee_and_tariff_move_each_charge_by_the_regulations_arithmetic(
    lancashire: Policy, tmp_path: Path
) -> None:
    proposal = load_policy(
        proposed_charging(
            tmp_path,
            {
                "minimum_income_guarantee.single_pension_credit_age": MIG_PENSION_AGE + 500,
                "capital.tariff_per_band_weekly": 200,  # £2 a band
            },
        )
    )
    result = compare(fold(cohort(lancashire)).council_people("lancashire"), lancashire, proposal)
    charges = {p.person_id: p for p in result.charging.people}
    # £15,000: tariff £3 -> £6, guarantee £5 more: £2 a week less in all.
    assert charges["fifteen-k"].change_weekly == 300 - 500
    # £10,000: no tariff either way; only the guarantee moves: £5 a week less.
    assert charges["ten-k"].change_weekly == -500
    # The full cost stays the full cost; a nominal charge does not depend on the figures.
    assert charges["upper"].change_weekly == 0 and charges["nominal"].change_weekly == 0
    sentences = [change.words for change in charging_changes(lancashire, proposal)]
    assert sentences == [
        "The tariff income a week for each band rises from £1.00 to £2.00.",
        "The Minimum Income Guarantee (single pension credit age) a week rises from £214.35 "
        "to £219.35.",
    ]


def test_a_higher_upper_limit_brings_a_full_cost_payer_into_the_means_test(
    lancashire: Policy, tmp_path: Path
) -> None:
    proposal = load_policy(
        proposed_charging(tmp_path, {"capital.upper_limit": 3_000_000})  # £30,000
    )
    people = [
        *journey(lancashire, "upper", assessed(lancashire, "upper", savings=2_325_000)),
        *journey(
            lancashire,
            "no-income",
            assessed(lancashire, "no-income", savings=2_500_000, pension=None),
        ),
    ]
    result = compare(fold(people).council_people("lancashire"), lancashire, proposal)
    [upper] = result.charging.people
    # £23,250 is £9,000 above £14,250: 36 bands, £36 a week, now below the upper limit.
    assert upper.now.full_cost_payer and not upper.proposed.full_cost_payer
    assert upper.proposed.weekly_charge_pence == PENSION + 3_600 - MIG_PENSION_AGE
    assert upper.change is ChargeChange.PAYS_LESS
    # Someone charged the full cost without an income assessment needs a full one.
    [not_compared] = result.charging.not_compared
    assert not_compared.person_id == "no-income"
    assert "full assessment" in not_compared.reason


def test_the_summary_lists_each_persons_charge_before_and_after(
    lancashire: Policy, tmp_path: Path
) -> None:
    proposal = load_policy(proposed_charging(tmp_path, {"capital.lower_limit": 1_600_000}))
    result = compare(fold(cohort(lancashire)).council_people("lancashire"), lancashire, proposal)
    summary = charging_summary(result.charging)
    assert (summary["pays_more"], summary["pays_less"], summary["same"]) == (0, 1, 3)
    by_id = {row["person_id"]: row for row in summary["people"]}
    assert (
        by_id["fifteen-k"]["charge_weekly_now_pence"],
        by_id["fifteen-k"]["charge_weekly_proposed_pence"],
    ) == (1_865, 1_565)
    assert summary["change_weekly_total_pence"] == -300


async def _write_log(path: Path, envelopes: list[Envelope]) -> None:
    log = EmbeddedEventLog(path)
    await log.start()
    try:
        await log.ensure_topics(ALL_TOPICS)
        await publish_envelopes(log, envelopes)
    finally:
        await log.close()


def test_the_cli_and_every_report_say_who_pays_more_or_less(
    lancashire: Policy, tmp_path: Path
) -> None:
    db = tmp_path / "eventlog.db"
    asyncio.run(_write_log(db, cohort(lancashire)))
    proposed = proposed_charging(tmp_path, {"capital.lower_limit": 1_600_000})
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(proposed), "--log", f"sqlite:///{db}", "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    # The terminal wraps the line where it likes: compare without the white space.
    said = "".join(result.output.split())
    line = (
        "Weekly charges: 0 of 4 people with a financial assessment would pay more, 1 less, 3 "
        "the same; £509.30 a week now, £506.30 proposed (1 could not be worked out again)."
    )
    assert line.replace(" ", "") in said

    stem = "whatif-lancashire-2027.1-proposed"
    summary = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    assert summary["charging"]["pays_less"] == 1
    with (out / f"{stem}.csv").open(encoding="utf-8", newline="") as f:
        rows = {row["person_id"]: row for row in csv.DictReader(f)}
    assert (
        rows["fifteen-k"]["charge_weekly_now_pence"],
        rows["fifteen-k"]["charge_weekly_proposed_pence"],
        rows["fifteen-k"]["charge_change"],
    ) == ("1865", "1565", "pays_less")
    assert rows["no-finances"]["charge_weekly_now_pence"] == ""
    assert "children and premiums" in rows["old-v1"]["charge_not_compared_reason"]

    html = (out / f"{stem}.html").read_text(encoding="utf-8")
    assert 'id="charges"' in html and "1 less and 3 the" in html
    assert "fifteen-k" in html and "£18.65" in html and "£15.65" in html
