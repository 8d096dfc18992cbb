"""The what-if's outputs: JSON (the summary), CSV (one row per person) and HTML (html.py).

Money is integer pence in JSON and CSV, as in every API here; the HTML shows pounds.
Everything is written into the output directory and nowhere else.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from contracts.policy import Policy
from servicekit.csvexport import Cell, CsvExport
from whatif.charging import ChargeImpact, ChargingComparison
from whatif.compare import Comparison, PersonImpact
from whatif.errors import WhatIfError
from whatif.reviews import RecoupComparison, ReviewDue, ReviewsComparison

FORMATS = ("json", "csv", "html")

ASSUMPTIONS = (
    "Both budgets are the indicative budget allocation's RAS (calculate_budget) gives from "
    "each person's latest validated assessment, under the policy in force and under the "
    "proposed policy; the difference is the policy's effect alone.",
    "Support added when a budget is revised (for example 2-to-1 support, seed 003 ch.2 §iii) "
    "is not part of the assessment and is left out of both figures. The budget issued now and "
    "the signed-off plan are shown beside them.",
    "Annual figures are the weekly figure × 52 (a year of 52 weeks, as in payments).",
    "Approver: the first role in the policy's agreement-in-principle list whose weekly limit "
    "covers the budget and, above a ceiling, who may agree ceiling exceptions (the rule "
    "allocation enforces). 'nobody' means no role's limit covers it.",
    "Contribution: the policy's charging rule applied to the budget's annual value, as if the "
    "support plan were costed at the budget. The means test caps it; where a person's current "
    "deployment charges less than the rule's share, that charge is taken as their means-test "
    "cap, otherwise the rule's maximum is reported, which overstates what people pay.",
    "Weekly charge: each person's latest financial assessment (capital, income, the Minimum "
    "Income Guarantee's circumstance, children and premiums, housing costs, disability-related "
    "expenditure, the cost of the support) worked out again by the rulebook's financial "
    "assessment under each policy's charging figures, as if each policy's figures were in "
    "force; a light-touch charge does not depend on them. Deferred or refused assessments, "
    "ones recorded before assessments carried the guarantee's children and premiums, and "
    "full-cost payers without an income assessment who would fall below a new upper limit "
    "are not compared (the reason is given).",
    "Reviews: each signed-off plan's next review (the first, counted from the day the sign-off "
    "was recorded, or the next after the latest completed review), each direct payment's next "
    "review (counted from the deployment's set-up or the latest completed direct payment "
    "review) and each booked unscheduled review not yet completed, dated by the rulebook under "
    "each policy's review schedule. 'Newly overdue' means the proposed date is before the day of "
    "the run while the date now is not.",
    "Recoups: the earliest day each recoup notice not yet acted on could be acted on (the day "
    "after the last day to respond) under each policy's notice period; a surplus flagged with "
    "no notice yet is counted as if its notice were sent on the day of the run (notice_id "
    "empty); with neither in the cohort the change is given from the figures alone.",
    "Equality: the events hold client group and age band only (never a date of birth, sex, "
    "ethnicity or other protected characteristics); an equality impact assessment needs those "
    "from other sources.",
    "Read-only: the event log is read with a throwaway consumer group that never commits; the "
    "only files written are these reports.",
)


@dataclass(frozen=True)
class RunInfo:
    """Where the figures came from: shown in every output."""

    log_url: str
    records_read: int
    invalid_records: int
    people_in_log: int
    generated_at: datetime

    @classmethod
    def now(
        cls, log_url: str, records_read: int, invalid_records: int, people_in_log: int
    ) -> RunInfo:
        return cls(log_url, records_read, invalid_records, people_in_log, datetime.now(UTC))


def _policy(policy: Policy) -> dict[str, Any]:
    return {
        "council": policy.council,
        "name": policy.name,
        "version": policy.version,
        "policy_version": policy.policy_version,
        "effective_from": policy.effective_from.isoformat(),
    }


def person_row(p: PersonImpact) -> dict[str, Any]:
    return {
        "person_id": p.person_id,
        "client_group": p.client_group.value,
        "team": p.team,
        "age_band": p.age_band.value,
        "points_now": p.points_now,
        "points_proposed": p.points_proposed,
        "scale_now": p.scale_now,
        "scale_proposed": p.scale_proposed,
        "weekly_now_pence": p.weekly_now,
        "weekly_proposed_pence": p.weekly_proposed,
        "change_weekly_pence": p.change_weekly,
        "annual_now_pence": p.annual_now,
        "annual_proposed_pence": p.annual_proposed,
        "outcome": p.outcome.value,
        "ceiling_now_pence": p.ceiling_now,
        "ceiling_proposed_pence": p.ceiling_proposed,
        "above_ceiling_now": p.above_ceiling_now,
        "above_ceiling_proposed": p.above_ceiling_proposed,
        "crosses_ceiling": p.crosses_ceiling,
        "issued_weekly_pence": p.issued_weekly,
        "issued_stage": p.issued_stage,
        "issued_policy_version": p.issued_policy_version,
        "plan_weekly_pence": p.plan_weekly,
        "plan_exceeds_now": p.plan_exceeds_now,
        "plan_exceeds_proposed": p.plan_exceeds_proposed,
        "approver_now": p.approver_now.value if p.approver_now else "nobody",
        "approver_proposed": p.approver_proposed.value if p.approver_proposed else "nobody",
        "approver_changes": p.approver_changes,
        "contribution_basis": p.contribution_basis.value,
        "contribution_annual_now_pence": p.contribution_now,
        "contribution_annual_proposed_pence": p.contribution_proposed,
    }


PERSON_COLUMNS = (
    "person_id",
    "client_group",
    "team",
    "age_band",
    "points_now",
    "points_proposed",
    "scale_now",
    "scale_proposed",
    "weekly_now_pence",
    "weekly_proposed_pence",
    "change_weekly_pence",
    "annual_now_pence",
    "annual_proposed_pence",
    "outcome",
    "ceiling_now_pence",
    "ceiling_proposed_pence",
    "above_ceiling_now",
    "above_ceiling_proposed",
    "crosses_ceiling",
    "issued_weekly_pence",
    "issued_stage",
    "issued_policy_version",
    "plan_weekly_pence",
    "plan_exceeds_now",
    "plan_exceeds_proposed",
    "approver_now",
    "approver_proposed",
    "approver_changes",
    "contribution_basis",
    "contribution_annual_now_pence",
    "contribution_annual_proposed_pence",
)  # the keys of person_row, in order
CHARGE_COLUMNS = (
    "charge_weekly_now_pence",
    "charge_weekly_proposed_pence",
    "charge_change_weekly_pence",
    "charge_change",
    "charge_not_compared_reason",
)
"""The weekly charge under each policy, for people with a financial assessment."""
REVIEW_COLUMNS = (
    "plan_review_kind",
    "plan_review_due_now",
    "plan_review_due_proposed",
    "plan_review_change_days",
)
"""The next plan review under each policy, for people with a signed-off plan."""
CSV_COLUMNS = (
    *PERSON_COLUMNS,
    "compared",
    "not_compared_reason",
    *CHARGE_COLUMNS,
    *REVIEW_COLUMNS,
)


def review_row(r: ReviewDue) -> dict[str, Any]:
    return {
        "person_id": r.person_id,
        "kind": r.kind,
        "counted_from": r.counted_from.isoformat(),
        "due_now": r.now.isoformat(),
        "due_proposed": r.proposed.isoformat(),
        "change_days": r.change_days,
        "change": r.change.value,
        "newly_overdue": r.newly_overdue,
    }


def reviews_summary(c: ReviewsComparison) -> dict[str, Any]:
    """Whose next review would come sooner or later, by how many days, and who'd be late."""
    return {
        "as_of": c.as_of.isoformat() if c.as_of else None,
        "people": c.people,
        "reviews_compared": len(c.reviews),
        "brought_forward": c.brought_forward,
        "pushed_back": c.pushed_back,
        "same": c.same,
        "newly_overdue": len(c.newly_overdue),
        "by_kind": [
            {
                "kind": kind,
                "reviews": n,
                "brought_forward": earlier,
                "pushed_back": later,
                "fewest_days_moved": low,
                "most_days_moved": high,
            }
            for kind, n, earlier, later, low, high in c.by_kind()
        ],
        "reviews": [review_row(r) for r in c.reviews],
    }


def recoups_summary(c: RecoupComparison) -> dict[str, Any]:
    """The notice periods, the shift in words and each open notice's earliest recoup day."""
    return {
        "modelled": c.modelled,
        "respond_within_days_now": c.days_now,
        "respond_within_days_proposed": c.days_proposed,
        "shift_days": c.shift_days,
        "words": c.in_words,
        "notices": [
            {
                "person_id": n.person_id,
                "surplus_id": n.surplus_id,
                "notice_id": n.notice_id,
                "sent_on": n.sent_on.isoformat(),
                "amount_pence": n.amount_pence,
                "earliest_recoup_now": n.now.isoformat(),
                "earliest_recoup_proposed": n.proposed.isoformat(),
                "change_days": n.change_days,
            }
            for n in c.notices
        ],
    }


def _review_cells(person_id: str, plan_reviews: dict[str, ReviewDue]) -> list[Cell]:
    r = plan_reviews.get(person_id)
    if r is None:
        return [None, None, None, None]
    return [r.kind, r.now.isoformat(), r.proposed.isoformat(), r.change_days]


def charge_row(p: ChargeImpact) -> dict[str, Any]:
    return {
        "person_id": p.person_id,
        "financial_assessment": p.outcome.value,
        "assessed_on": p.assessed_on.isoformat(),
        "charge_weekly_recorded_pence": p.recorded_weekly_pence,
        "charge_weekly_now_pence": p.now.weekly_charge_pence,
        "charge_weekly_proposed_pence": p.proposed.weekly_charge_pence,
        "charge_change_weekly_pence": p.change_weekly,
        "charge_change": p.change.value,
        "full_cost_payer_now": p.now.full_cost_payer,
        "full_cost_payer_proposed": p.proposed.full_cost_payer,
        "tariff_income_weekly_now_pence": p.now.tariff_income_weekly_pence,
        "tariff_income_weekly_proposed_pence": p.proposed.tariff_income_weekly_pence,
        "minimum_income_guarantee_weekly_now_pence": p.now.minimum_income_guarantee_weekly_pence,
        "minimum_income_guarantee_weekly_proposed_pence": (
            p.proposed.minimum_income_guarantee_weekly_pence
        ),
    }


def charging_summary(c: ChargingComparison) -> dict[str, Any]:
    """Who would pay more or less a week: counts, totals and each person (money in pence)."""
    return {
        "modelled": c.modelled,
        "people_compared": len(c.people),
        "pays_more": c.pays_more,
        "pays_less": c.pays_less,
        "same": c.same,
        "weekly_now_total_pence": c.weekly_now_total,
        "weekly_proposed_total_pence": c.weekly_proposed_total,
        "change_weekly_total_pence": c.change_weekly_total,
        "people": [charge_row(p) for p in c.people],
        "not_compared": [{"person_id": n.person_id, "reason": n.reason} for n in c.not_compared],
    }


def _charge_cells(
    person_id: str, charges: dict[str, ChargeImpact], refused: dict[str, str]
) -> list[Cell]:
    impact = charges.get(person_id)
    if impact is not None:
        row = charge_row(impact)
        return [*(_cell(row[k]) for k in CHARGE_COLUMNS[:-1]), ""]
    return [None, None, None, None, refused.get(person_id, "")]


def summary(c: Comparison, info: RunInfo) -> dict[str, Any]:
    """The JSON document: everything in the HTML report, as data (money in pence)."""
    t = c.total
    bases = Counter(p.contribution_basis.value for p in c.people)
    return {
        "what": "pb-journey policy what-if",
        "generated_at": info.generated_at.isoformat(),
        "council": c.council,
        "current_policy": _policy(c.current),
        "proposed_policy": _policy(c.proposed),
        "source": {
            "event_log": info.log_url,
            "records_read": info.records_read,
            "invalid_records": info.invalid_records,
            "people_in_log": info.people_in_log,
            "people_compared": t.people,
            "people_not_compared": len(c.excluded),
        },
        "assumptions": list(ASSUMPTIONS),
        "policy_changes": [change.as_dict() for change in c.changes],
        "totals": {
            **t.as_dict(),
            "issued_weekly_total_pence": c.issued_weekly_total,
            "issued_people": c.issued_people,
            "plan_weekly_total_pence": c.plan_weekly_total,
            "plan_people": c.plan_people,
            "contribution_basis": dict(sorted(bases.items())),
        },
        "by_client_group": [row.as_dict() for row in c.by_client_group],
        "by_team": [row.as_dict() for row in c.by_team],
        "by_age_band": [row.as_dict() for row in c.by_age_band],
        "histogram": [
            {
                "label": b.label,
                "low_pence": b.low_pence,
                "high_pence": b.high_pence,
                "count": b.count,
                "side": b.side.value,
            }
            for b in c.histogram
        ],
        "most_affected": [person_row(p) for p in c.most_affected],
        "approver_moves": [{"from": a, "to": b, "people": n} for a, b, n in c.approver_moves],
        "equality": {
            "findings": c.findings,
            "by_client_group": [_eia(row.as_dict()) for row in c.by_client_group],
            "by_age_band": [_eia(row.as_dict()) for row in c.by_age_band],
        },
        "charging": charging_summary(c.charging),
        "reviews": reviews_summary(c.reviews),
        "recoups": recoups_summary(c.recoups),
        "not_compared": {
            "by_reason": dict(sorted(Counter(e.reason for e in c.excluded).items())),
            "people": [
                {"person_id": e.person_id, "stage": e.stage, "reason": e.reason}
                for e in c.excluded[:1000]
            ],
            "listed_up_to": 1000,
        },
    }


def _eia(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "key",
        "people",
        "winners",
        "losers",
        "unchanged",
        "mean_change_weekly_pence",
        "mean_loss_weekly_pence",
        "largest_loss_weekly_pence",
        "not_compared",
    )
    return {k: row[k] for k in keys}


def _cell(value: Any) -> Cell:
    """Booleans as yes/no; everything else as the shared export writes it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    cell: Cell = value
    return cell


def write_csv_to(c: Comparison, out: TextIO) -> None:
    """One row per person (compared or not) into an open text stream."""
    export = CsvExport(out)
    export.row(CSV_COLUMNS)
    charges = {p.person_id: p for p in c.charging.people}
    refused = {n.person_id: n.reason for n in c.charging.not_compared}
    plan_reviews = {r.person_id: r for r in c.reviews.reviews if r.kind in ("first", "annual")}
    for p in c.people:
        row = person_row(p)
        export.row(
            [
                *(_cell(row[k]) for k in PERSON_COLUMNS),
                "yes",
                "",
                *_charge_cells(p.person_id, charges, refused),
                *_review_cells(p.person_id, plan_reviews),
            ]
        )
    for e in c.excluded:
        row = {
            "person_id": e.person_id,
            "client_group": e.client_group.value if e.client_group else None,
            "team": e.team,
            "age_band": e.age_band.value if e.age_band else None,
        }
        export.row(
            [
                *(_cell(row.get(k)) for k in PERSON_COLUMNS),
                "no",
                e.reason,
                *_charge_cells(e.person_id, charges, refused),
                *_review_cells(e.person_id, plan_reviews),
            ]
        )


def write_csv(c: Comparison, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        write_csv_to(c, out)


def write_reports(
    c: Comparison, info: RunInfo, out_dir: Path, formats: tuple[str, ...] = FORMATS
) -> dict[str, Path]:
    """Write the chosen formats into out_dir (created if missing); return what was written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise WhatIfError(
            f"--format: unknown format(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(FORMATS)}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"whatif-{c.council}-{c.proposed.version}"
    written: dict[str, Path] = {}
    if "json" in formats:
        path = out_dir / f"{stem}.json"
        path.write_text(
            json.dumps(summary(c, info), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        written["json"] = path
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        write_csv(c, path)
        written["csv"] = path
    if "html" in formats:
        from whatif.html import render_html

        path = out_dir / f"{stem}.html"
        path.write_text(render_html(c, info), encoding="utf-8")
        written["html"] = path
    return written
