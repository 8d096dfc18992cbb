"""What the pages show, gathered from the services and shaped for templates."""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from starlette.datastructures import FormData

from contracts.events import DeploymentOption, ProviderKind, ReviewOutcome
from servicekit import clock
from services.portal.chart import Series, line_chart
from services.portal.clients import ServiceError, Services
from services.portal.formatting import money, pence_from_pounds
from services.portal.identity import SignedIn

STAGES = ("assessment", "support_planning", "setting_up_payments", "receiving_payments")
PROVIDER_KINDS = [k.value for k in ProviderKind]
LINE_FREQUENCIES = ("weekly", "four_weekly", "annual", "one_off")
PAYMENT_FREQUENCIES = ("four_weekly", "weekly", "annual")
DEPLOYMENT_OPTIONS = [o.value for o in DeploymentOption]
PLAN_FORM_LINES = 3
REVIEW_OUTCOMES = [o.value for o in ReviewOutcome]


@dataclass
class Case:
    """Everything the services know about one person that the caller may see."""

    person_id: str
    assessment: dict[str, Any] | None = None
    questionnaire: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    statement: dict[str, Any] | None = None
    instalments: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    failed_payments: list[dict[str, Any]] = field(default_factory=list)
    history_refused: str | None = None
    """Why audit would not serve the history: the stored chain fails verification."""
    tamper_findings: list[dict[str, Any]] = field(default_factory=list)
    """Tamper findings on the person's chain no auditor has acknowledged (auditors and
    operations see them; other roles may not list findings)."""

    @property
    def failure_reasons(self) -> dict[str, str]:
        """Why each failed payment failed, by payment id (to mark it in the schedule)."""
        return {p["payment_id"]: p["reason"] or "" for p in self.failed_payments}

    @property
    def domains(self) -> list[dict[str, Any]]:
        """Each domain's validated level and points beside the plan lines that meet it."""
        if self.questionnaire is None or self.assessment is None:
            return []
        validation = self.assessment.get("validation")
        levels = (validation or {}).get("domain_levels") or self.assessment["answers"]["domains"]
        lines = (self.plan or {}).get("lines", [])
        rows = []
        for domain in self.questionnaire["domains"]:
            level = levels.get(domain["key"])
            chosen = next((lv for lv in domain["levels"] if lv["level"] == level), None)
            rows.append(
                {
                    "name": domain["name"],
                    "level": level,
                    "statement": chosen["statement"] if chosen else None,
                    "points": chosen["points"] if chosen else None,
                    "lines": [ln for ln in lines if domain["key"] in ln["domains"]],
                }
            )
        return rows

    @property
    def waiting_for_budget(self) -> bool:
        validated = (self.assessment or {}).get("status") == "validated"
        return validated and self.budget is None

    @property
    def waiting_for_deployment(self) -> bool:
        signed = (self.plan or {}).get("status") == "signed_off"
        return signed and self.deployment is None


async def _optional(call: Any) -> Any:
    try:
        return await call
    except ServiceError as err:
        if err.status in (403, 404):
            return None
        raise


async def load_case(api: Services, user: SignedIn, person_id: str) -> Case:
    """One person's records from all five services (what the caller may see of them)."""
    token = user.token
    by_person = {"person_id": person_id, "limit": 50}
    (
        assessments,
        budgets,
        plans,
        deployments,
        reviews,
        (history, history_refused),
        timeline,
        failed,
        findings,
    ) = await asyncio.gather(
        _optional(api.get("assessment", "/v1/assessments", token, by_person)),
        _optional(api.get("allocation", "/v1/budgets", token, by_person)),
        _optional(api.get("planning", "/v1/plans", token, by_person)),
        _optional(api.get("payments", "/v1/deployments", token, by_person)),
        _optional(api.get("planning", "/v1/reviews", token, by_person)),
        _audit_history(api.get("audit", f"/v1/people/{person_id}/budget", token)),
        _optional(api.get("audit", f"/v1/people/{person_id}/timeline", token, {"limit": 200})),
        _optional(api.get("payments", "/v1/payments", token, {"status": "failed", **by_person})),
        _optional(
            api.get(
                "audit", "/v1/tamper-findings", token, {"chain": person_id, "acknowledged": "false"}
            )
        ),
    )
    case = Case(person_id=person_id, history=history, history_refused=history_refused)
    case.tamper_findings = (findings or {}).get("items", [])
    case.failed_payments = (failed or {}).get("items", [])
    case.timeline = (timeline or {}).get("items", [])
    case.reviews = (reviews or {}).get("items", [])
    first_assessment = _first((assessments or {}).get("items"))
    first_budget = _first((budgets or {}).get("items"))
    first_plan = _first((plans or {}).get("items"))
    live = [d for d in (deployments or {}).get("items", []) if d["status"] != "superseded"]
    first_deployment = _first(live)
    calls: dict[str, Any] = {}
    if first_assessment:
        calls["assessment"] = api.get(
            "assessment", f"/v1/assessments/{first_assessment['assessment_id']}", token
        )
        calls["questionnaire"] = api.get(
            "assessment", f"/v1/questionnaires/{first_assessment['council']}", token
        )
    if first_budget:
        budget_path = f"/v1/budgets/{first_budget['budget_id']}"
        calls["budget"] = api.get("allocation", budget_path, token)
        calls["explanation"] = api.get("allocation", f"{budget_path}/explanation", token)
    if first_plan:
        calls["plan"] = api.get("planning", f"/v1/plans/{first_plan['plan_id']}", token)
    if first_deployment:
        path = f"/v1/deployments/{first_deployment['deployment_id']}"
        calls["deployment"] = api.get("payments", path, token)
        calls["statement"] = api.get("payments", f"{path}/statement", token)
        calls["instalments"] = api.get("payments", f"{path}/schedule", token, {"limit": 200})
    found = await asyncio.gather(*(_optional(c) for c in calls.values()))
    for name, value in zip(calls, found, strict=True):
        if name == "instalments":
            case.instalments = (value or {}).get("items", [])
        else:
            setattr(case, name, value)
    return case


async def _audit_history(call: Any) -> tuple[Any, str | None]:
    """The person's audit history, or why audit refused it: a chain that fails verification
    is not served (services/audit/tamper.py), and the page says so instead of failing."""
    try:
        return await _optional(call), None
    except ServiceError as err:
        if err.error == "HistoryFailsVerification":
            return None, err.detail
        raise


def _first(items: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return items[0] if items else None


def _day(value: str) -> date:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date()


def chart_points(case: Case) -> dict[str, list[tuple[date, float]]]:
    """The budget and the plan's cost (both a year), the running totals paid and due, by date."""
    history = case.history or {}
    budget = [(_day(b["issued_at"]), float(b["annual_pence"])) for b in history.get("budgets", [])]
    plan: list[tuple[date, float]] = []
    signed = history.get("plan") or {}
    if signed.get("signed_off_at") and signed.get("annual_pence") is not None:
        plan.append((_day(signed["signed_off_at"]), float(signed["annual_pence"])))
    paid: list[tuple[date, float]] = []
    running = 0
    payments = sorted(
        (history.get("payments") or {}).get("items", []), key=lambda p: p["released_at"]
    )
    for payment in payments:
        running += int(payment["amount_pence"])
        day = _day(payment["released_at"])
        if paid and paid[-1][0] == day:
            paid[-1] = (day, float(running))
        else:
            paid.append((day, float(running)))
    scheduled: list[tuple[date, float]] = []
    due_total = 0
    for instalment in sorted(case.instalments, key=lambda i: i["due_on"]):
        if instalment["status"] == "cancelled":
            continue
        due_total += int(instalment["amount_pence"])
        day = date.fromisoformat(instalment["due_on"])
        if scheduled and scheduled[-1][0] == day:
            scheduled[-1] = (day, float(due_total))
        else:
            scheduled.append((day, float(due_total)))
    return {"budget": budget, "plan": plan, "paid": paid, "scheduled": scheduled}


def chart_table(case: Case) -> list[dict[str, Any]]:
    """The chart's figures as rows, one per date something changed."""
    points = chart_points(case)
    days = sorted({d for series in points.values() for d, _ in series})
    rows = []
    for day in days:
        row: dict[str, Any] = {"day": day}
        for name, series in points.items():
            known = [v for d, v in series if d <= day]
            row[name] = int(known[-1]) if known else None
        rows.append(row)
    return rows


def budget_chart(case: Case) -> Any:
    """The person's budget, plan cost and payments over time; None while there is nothing."""
    points = chart_points(case)
    if not any(points.values()):
        return None
    today = clock.today()
    last_due = max((d for d, _ in points["scheduled"]), default=today)
    return line_chart(
        [
            Series("Budget (a year)", points["budget"]),
            Series("Plan cost (a year)", points["plan"]),
            Series("Paid so far", points["paid"], holds_until=today),
            Series("Payments due so far (the schedule)", points["scheduled"]),
        ],
        chart_id="budget-chart",
        title="Budget, plan cost and payments over time",
        description="The yearly budget, the yearly cost of the signed-off plan, the running "
        "total paid and the running total the payment schedule pays, by date. The table "
        "below has the same figures.",
        value_label=lambda v: money(round(v)),
        until=max(today, last_due),
    )


def next_review(case: Case) -> dict[str, Any] | None:
    waiting = [r for r in case.reviews if r["status"] != "completed"]
    return min(waiting, key=lambda r: r["due_on"]) if waiting else None


def plan_body(form: FormData, person_id: str) -> dict[str, Any]:
    """The support plan form as planning's PlanIn; money typed in pounds becomes pence."""

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    lines = []
    for n in range(1, PLAN_FORM_LINES + 1):
        description = text(f"line{n}_description")
        if not description:
            continue
        line: dict[str, Any] = {
            "description": description,
            "provider_kind": text(f"line{n}_provider_kind"),
            "frequency": text(f"line{n}_frequency"),
            "amount_pence": pence_from_pounds(text(f"line{n}_amount"), f"Line {n} cost"),
            "domains": [
                v for v in form.getlist(f"line{n}_domains") if isinstance(v, str) and v.strip()
            ],
            "provider_holds_funds": form.get(f"line{n}_provider_holds_funds") == "yes",
        }
        if text(f"line{n}_provider_name"):
            line["provider_name"] = text(f"line{n}_provider_name")
        lines.append(line)
    mitigations = []
    for key, value in form.multi_items():
        if key.startswith("mitigation_") and isinstance(value, str) and value.strip():
            mitigations.append({"risk_id": key.removeprefix("mitigation_"), "mitigation": value})
    return {
        "person_id": person_id,
        "budget_id": text("budget_id"),
        "outcomes": [o.strip() for o in text("outcomes").splitlines() if o.strip()],
        "lines": lines,
        "contingency_weekly_pence": pence_from_pounds(text("contingency_weekly"), "Contingency"),
        "risk_mitigations": mitigations,
    }


def month_ends(today: date, months: int) -> list[str]:
    """The last day of each of the previous months, then today: the performance dates."""
    days = []
    year, month = today.year, today.month
    for _ in range(months):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        days.append(date(year, month, calendar.monthrange(year, month)[1]))
    return [d.isoformat() for d in [*reversed(days), today]]


def measure(
    title: str, key: str, days: list[str], pages: list[dict[str, Any]], target: float
) -> dict[str, Any]:
    """One KPI over time: per team and for the council, each point a percentage."""
    series: dict[str, list[tuple[date, float]]] = {"Whole council": []}
    rows = []
    for day, page in zip(days, pages, strict=True):
        on = date.fromisoformat(day)
        total = page["total"]
        series["Whole council"].append((on, float(total["percentage"])))
        for item in page["items"]:
            series.setdefault(f"Team {item['key']}", []).append((on, float(item["percentage"])))
        rows.append({"day": on, "total": total, "teams": page["items"]})
    latest = pages[-1]["total"] if pages else None
    return {
        "title": title,
        "key": key,
        "series": series,
        "rows": rows,
        "latest": latest,
        "meets_target": latest is not None and float(latest["percentage"]) >= target,
        "teams": sorted({t["key"] for page in pages for t in page["items"]}),
    }
