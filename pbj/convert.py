"""Bulk conversion of a council's existing clients, through the services' conversion routes.

A file of legacy clients (JSON Lines, one client a line; `sample_clients` writes one)
goes through four stages, each a `POST /v1/conversions/...` route of one service taking
up to `batch` rows at a time:

1. assessment: start, answer, submit and validate (a care manager) -> AssessmentValidated
2. allocation: agree the budget the RAS calculated from that event (the lowest role whose
   agreement limit covers it; above the ceiling, a ceiling-exception role) -> BudgetIssued
3. planning: write, submit and sign off the support plan (the lowest role allowed to sign
   off its cost) -> PlanSignedOff, which makes the budget final and opens the deployment
4. payments: the arrangement and the signed agreement (a care manager) -> DeploymentSetUp,
   AgreementSigned, PaymentScheduled

The stages run at the same time: a person moves on as soon as their row is done, and a row
whose input is still on its way through the log comes back `pending` and is sent again
shortly. A row refused by a rule is reported with its reason; a refusal for the caller's
role or limit is retried once by the next role up the council's approval ladder. Rows are
keyed by the client's `ref`, so running the same file again changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.policy import Policy
from contracts.vocabulary import Role
from pbj.journey import Staff, demo_answers
from rules.authority import lowest_sign_off_role
from servicekit.csvfile import control_character_in

STAGES = ("assessed", "budget agreed", "plan signed off", "payments set up")
PENDING_RETRY_SECONDS = 0.3
LEAD_IN_BATCHES = 6
"""How many batches of clients may be between the first stage and the last at once.

The stages share the machine's cores with one another (and with the broker and the
database). Left to run ahead, the first stages finished a full-size conversion 40-90 s
before payments, which then worked alone on one core; the stages run at the pace of the
slowest instead, and use the cores together until the end."""


@dataclass
class Client:
    """One legacy client on their way through the stages."""

    row: dict[str, Any]
    stage: int = 0
    role_step: int = 0
    budget: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None

    @property
    def ref(self) -> str:
        return str(self.row["ref"])

    @property
    def person_id(self) -> str:
        return str(self.row["person_id"])


@dataclass
class ConversionReport:
    total: int
    converted: int
    failures: dict[str, str]
    seconds: float
    requests: int


def sample_clients(
    policy: Policy, count: int, *, prefix: str = "LEG", start: int = 0
) -> list[dict[str, Any]]:
    """`count` plausible legacy clients for the council (a spread of needs and groups)."""
    today = datetime.now(UTC).date().isoformat()
    clients = []
    for number in range(start, start + count):
        client_group = policy.client_groups[number % len(policy.client_groups)]
        clients.append(
            {
                "ref": f"{prefix}-{number:06d}",
                "person_id": f"{prefix}{number:08d}",
                "client_group": client_group.value,
                "completed_by": "supported",
                "team": f"Team {1 + number % 3}",
                "key_worker_id": f"KW{1 + number % 5}",
                "age_band": ["18-64", "65-74", "75-84", "85+"][number % 4],
                "community_based": True,
                "answers": {
                    "domains": demo_answers(policy, number),
                    "significant_informal_support": number % 2 == 0,
                    "needs_24_7": False,
                    "carer_support_weekly_pence": 0,
                    "other_funding": [],
                    "outcomes": ["Stay living in my own home"],
                    "risks": [
                        {
                            "risk_id": "falls",
                            "description": "Has fallen at home this year",
                            "persons_view": "I manage if someone checks on me",
                        }
                    ],
                },
                "validation": {
                    "adjustments": [],
                    "risks": [
                        {
                            "risk_id": "falls",
                            "practitioners_view": "Falls risk is real; pendant alarm in place",
                            "flagged": True,
                        }
                    ],
                },
                "ceiling_exception_reason": "Existing package agreed at panel before conversion",
                "plan": {
                    "outcomes": ["Stay living in my own home"],
                    "line": {
                        "description": "Personal assistant, as before conversion",
                        "provider_kind": "personal_assistant",
                    },
                    "risk_mitigations": [
                        {
                            "risk_id": "falls",
                            "mitigation": "Pendant alarm and daily check-in call",
                            "referred_to_risk_panel": False,
                        }
                    ],
                    "contingency_share_basis_points": 500,
                },
                "payment": {
                    "option": "direct_payment",
                    "frequency": "four_weekly",
                    "first_due_on": today,
                    "assessed_max_weekly_contribution_pence": 0,
                    "signed_on": today,
                },
            }
        )
    return clients


def read_clients(path: Path) -> list[dict[str, Any]]:
    """A JSON Lines file of legacy clients (blank lines skipped); a value holding a control
    character (NUL, a line break) is refused with its line and field."""
    clients = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                client = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON: {err}") from err
            for where, value in _text_values(client):
                found = control_character_in(value)
                if found is not None:
                    raise ValueError(
                        f"{path}:{number}: {where} holds a control character ({found}); remove it"
                    )
            clients.append(client)
    return clients


def _text_values(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every text value in a JSON document, with where it is (`plan.lines.0.description`)."""
    if isinstance(value, str):
        yield where or "(the line)", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _text_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_values(item, f"{where}.{index}")


def write_clients(path: Path, clients: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for client in clients:
            out.write(json.dumps(client, separators=(",", ":")) + "\n")


# --- the rows each stage sends ----------------------------------------------------------------

_START_FIELDS = (
    "person_id",
    "client_group",
    "completed_by",
    "team",
    "key_worker_id",
    "age_band",
    "community_based",
)


def _assessment_row(client: Client) -> dict[str, Any]:
    row = client.row
    return {
        "ref": client.ref,
        "start": {k: row[k] for k in _START_FIELDS if k in row},
        "answers": row.get("answers"),
        "validation": row.get("validation"),
    }


def _agreement_row(client: Client) -> dict[str, Any]:
    row: dict[str, Any] = {"ref": client.ref, "person_id": client.person_id}
    if client.row.get("ceiling_exception_reason"):
        row["ceiling_exception_reason"] = client.row["ceiling_exception_reason"]
    return row


def _plan_row(client: Client, policy: Policy, run_day: date) -> dict[str, Any]:
    """The plan as planning converts it, signed off on the legacy record's date or, where
    it gives none, on the day the run began: a run that passes midnight must not sign off
    half its plans a day after the agreements the file dates (the agreement may not be
    signed before its plan's sign-off)."""
    plan = client.row.get("plan") or {}
    weekly = int(client.budget["weekly_pence"])
    contingency = weekly * int(plan.get("contingency_share_basis_points", 0)) // 10_000
    line = dict(plan.get("line") or {})
    line.setdefault("frequency", "weekly")
    line.setdefault("domains", [d.key for d in policy.questionnaire.domains])
    line.setdefault("outcomes", list(plan.get("outcomes", []))[:1])
    line["amount_pence"] = weekly - contingency
    return {
        "ref": client.ref,
        "sign_off_on": plan.get("signed_off_on") or run_day.isoformat(),
        "plan": {
            "person_id": client.person_id,
            "budget_id": client.budget["budget_id"],
            "outcomes": plan.get("outcomes", []),
            "lines": [line],
            "contingency_weekly_pence": contingency,
            "risk_mitigations": plan.get("risk_mitigations", []),
        },
    }


def _deployment_row(client: Client) -> dict[str, Any]:
    payment = client.row.get("payment") or {}
    return {
        "ref": client.ref,
        "person_id": client.person_id,
        "plan_id": client.plan["plan_id"],
        "arrangement": {
            "parts": [{"option": payment.get("option", "direct_payment")}],
            "frequency": payment.get("frequency", "four_weekly"),
            "first_due_on": payment.get("first_due_on"),
            "assessed_max_weekly_contribution_pence": payment.get(
                "assessed_max_weekly_contribution_pence", 0
            ),
        },
        "signed_on": payment.get("signed_on"),
        "arrears_reason": payment.get("arrears_reason"),
    }


# --- the pipeline -----------------------------------------------------------------------------


class _Stage:
    def __init__(
        self,
        *,
        index: int,
        url: str,
        roles: Callable[[Client], Sequence[Role]],
        row: Callable[[Client], dict[str, Any]],
        keep: Callable[[Client, dict[str, Any]], None],
    ) -> None:
        self.index = index
        self.url = url
        self.roles = roles
        self.row = row
        self.keep = keep
        self.waiting: list[Client] = []
        self.upstream_done = False


async def convert_clients(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    staff: Staff,
    policy: Policy,
    rows: Sequence[dict[str, Any]],
    *,
    batch: int = 250,
    lead: int | None = None,
    advance: Callable[[int, int], None] | None = None,
) -> ConversionReport:
    """Take every client through the four stages; `advance(stage, n)` reports progress.

    At most `lead` clients (LEAD_IN_BATCHES batches by default) are past the first stage
    and not yet through the last: the first stage waits while there are more."""
    lead = LEAD_IN_BATCHES * batch if lead is None else lead
    started = time.perf_counter()
    run_day = datetime.now(UTC).date()  # the services' day (they keep UTC), not this host's
    clients = [Client(row=dict(r)) for r in rows]
    failures: dict[str, str] = {}
    requests = 0
    approvals = policy.approvals
    agreeing = [lim.role for lim in approvals.agreement_in_principle]
    agreeing += [r for r in approvals.ceiling_exception_roles if r not in agreeing]
    signing = [lim.role for lim in approvals.plan_sign_off]

    def signing_roles(c: Client) -> Sequence[Role]:
        lowest = lowest_sign_off_role(
            policy, int(c.budget["weekly_pence"]), c.row.get("client_group")
        )
        return signing[signing.index(lowest) :] if lowest in signing else signing

    def keep_budget(c: Client, result: dict[str, Any]) -> None:
        c.budget = result

    def keep_plan(c: Client, result: dict[str, Any]) -> None:
        c.plan = result

    stages = [
        _Stage(
            index=0,
            url=f"{urls['assessment']}/v1/conversions/assessments",
            roles=lambda c: [Role.CARE_MANAGER],
            row=_assessment_row,
            keep=lambda c, r: None,
        ),
        _Stage(
            index=1,
            url=f"{urls['allocation']}/v1/conversions/budget-agreements",
            roles=lambda c: agreeing,
            row=_agreement_row,
            keep=keep_budget,
        ),
        _Stage(
            index=2,
            url=f"{urls['planning']}/v1/conversions/plans",
            roles=signing_roles,
            row=lambda c: _plan_row(c, policy, run_day),
            keep=keep_plan,
        ),
        _Stage(
            index=3,
            url=f"{urls['payments']}/v1/conversions/deployments",
            # a care manager sets the payments up; arrears above their limit go up the
            # plan sign-off ladder (rules/arrears.py)
            roles=lambda c: [Role.CARE_MANAGER, *(r for r in signing if r != Role.CARE_MANAGER)],
            row=_deployment_row,
            keep=lambda c, r: None,
        ),
    ]
    stages[0].waiting = list(clients)
    stages[0].upstream_done = True

    in_later_stages = 0  # clients past the first stage, not failed, not through the last

    def fail(c: Client, why: str) -> None:
        nonlocal in_later_stages
        if 0 < c.stage < len(stages):
            in_later_stages -= 1
        c.failure = why
        failures[c.ref] = f"{STAGES[c.stage] if c.stage < len(STAGES) else 'done'}: {why}"

    async def send(stage: _Stage, role: Role, chosen: list[Client]) -> list[Client]:
        """One request; returns the clients to send again (pending, or the next role)."""
        nonlocal requests, in_later_stages
        rows_out = []
        for c in chosen:
            try:
                rows_out.append(stage.row(c))
            except (KeyError, TypeError, ValueError) as err:
                fail(c, f"the file's row cannot be sent: {type(err).__name__}: {err}")
        sendable = [c for c in chosen if c.failure is None]
        if not sendable:
            return []
        response = await client.post(stage.url, json={"rows": rows_out}, headers=staff(role))
        requests += 1
        if response.status_code != 200:
            for c in sendable:
                fail(c, f"HTTP {response.status_code}: {response.text[:300]}")
            return []
        again: list[Client] = []
        moved = 0
        for c, result in zip(sendable, response.json()["rows"], strict=True):
            outcome = result["outcome"]
            if outcome in ("done", "already_done"):
                stage.keep(c, result["result"])
                c.stage = stage.index + 1
                if c.stage == 1:
                    in_later_stages += 1
                if c.stage == len(stages):
                    in_later_stages -= 1
                c.role_step = 0
                moved += 1
                if c.stage < len(stages):
                    stages[c.stage].waiting.append(c)
            elif outcome == "pending":
                again.append(c)
            elif result["status"] == 403 and c.role_step + 1 < len(stage.roles(c)):
                c.role_step += 1
                again.append(c)
            else:
                fail(c, f"HTTP {result['status']}: {result['detail']}")
        if advance is not None and moved:
            advance(stage.index, moved)
        return again

    async def run(stage: _Stage) -> None:
        while True:
            if not stage.waiting:
                if stage.upstream_done:
                    break
                await asyncio.sleep(0.05)
                continue
            taken, stage.waiting = stage.waiting, []
            by_role: dict[Role, list[Client]] = {}
            for c in taken:
                roles = stage.roles(c)
                by_role.setdefault(roles[min(c.role_step, len(roles) - 1)], []).append(c)
            retry: list[Client] = []
            progressed = False
            for role, group in by_role.items():
                for first in range(0, len(group), batch):
                    chunk = group[first : first + batch]
                    if stage.index == 0:
                        while in_later_stages + len(chunk) > max(lead, len(chunk)):
                            await asyncio.sleep(0.05)
                    again = await send(stage, role, chunk)
                    progressed = progressed or len(again) < len(chunk)
                    retry.extend(again)
            if retry:
                stage.waiting = retry + stage.waiting
                if not progressed:
                    await asyncio.sleep(PENDING_RETRY_SECONDS)
        if stage.index + 1 < len(stages):
            stages[stage.index + 1].upstream_done = True

    await asyncio.gather(*(run(stage) for stage in stages))
    return ConversionReport(
        total=len(clients),
        converted=sum(c.stage == len(stages) for c in clients),
        failures=failures,
        seconds=time.perf_counter() - started,
        requests=requests,
    )
