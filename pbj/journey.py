"""One person's whole journey through the five services' public APIs.

`pbj demo`, the end-to-end tests and the bulk-conversion benchmark all walk people
through this, so it uses nothing but HTTP: what a council portal would do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx

from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import Role
from pbj.idp import mint_for
from rules.authority import lowest_sign_off_role, who_may_agree

DEFAULT_TIMEOUT = 30.0

ELIGIBLE_NEEDS: dict[str, Any] = {
    "needs_from_impairment_or_illness": True,
    "outcomes": [
        {"outcome": "managing_and_maintaining_nutrition", "difficulties": ["only_with_assistance"]},
        {"outcome": "using_the_home_safely", "difficulties": ["endangers_health_or_safety"]},
    ],
    "significant_impact_on_wellbeing": True,
}
"""A determination that finds the needs eligible (two outcomes of reg. 2(2), a significant
impact on wellbeing): a budget is calculated only for eligible needs."""

T = TypeVar("T")


class JourneyError(RuntimeError):
    """A step did not go as a council would expect; the message says which and why."""


@dataclass
class JourneyResult:
    person_id: str
    council: str
    stage: str = "not started"
    assessment_id: str | None = None
    budget_id: str | None = None
    weekly_budget_pence: int | None = None
    plan_id: str | None = None
    deployment_id: str | None = None
    released_pence: int = 0
    audit_events: int = 0
    steps: list[str] = field(default_factory=list)


class Staff:
    """Bearer headers for each role of one council, signed by whichever key the services
    started from `data_dir` trust (the local identity provider's, or the development key)."""

    def __init__(self, data_dir: Path, council: str) -> None:
        self._data_dir = data_dir
        self.council = council
        self._cache: dict[Role, dict[str, str]] = {}

    def __call__(self, role: Role) -> dict[str, str]:
        if role not in self._cache:
            token = mint_for(
                self._data_dir, user_id=f"demo-{role.value}", role=role, council=self.council
            )
            self._cache[role] = {"Authorization": f"Bearer {token}"}
        return self._cache[role]


async def _eventually(what: str, attempt: Callable[[], Awaitable[T | None]], timeout: float) -> T:
    """Retry until the other service has applied the event (it arrives through the log)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = await attempt()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise JourneyError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _expect(response: httpx.Response, status: int, step: str) -> dict[str, Any]:
    if response.status_code != status:
        raise JourneyError(f"{step}: HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def demo_answers(policy: Policy, person_number: int) -> dict[str, int]:
    """A spread of answers: different people land at different levels in each domain."""
    answers = {}
    for index, domain in enumerate(policy.questionnaire.domains):
        levels = [lvl.level for lvl in domain.levels]
        answers[domain.key] = levels[(person_number + index) % len(levels)]
    return answers


async def walk_journey(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    staff: Staff,
    policy: Policy,
    *,
    person_id: str | None = None,
    person_number: int = 0,
    today: date | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    personal_details: dict[str, Any] | None = None,
) -> JourneyResult:
    """Take one person from self-assessment to a released payment and their audit history."""
    today = today or date.today()
    person_id = person_id or f"P{uuid.uuid4().hex[:12]}"
    result = JourneyResult(person_id=person_id, council=policy.council)
    care_manager = staff(Role.CARE_MANAGER)
    client_group = policy.client_groups[person_number % len(policy.client_groups)]

    start: dict[str, Any] = {
        "person_id": person_id,
        "client_group": client_group.value,
        "completed_by": "supported",
        "team": f"Team {1 + person_number % 3}",
        "key_worker_id": f"KW{1 + person_number % 5}",
        "age_band": ["18-64", "65-74", "75-84", "85+"][person_number % 4],
        "community_based": True,
    }
    if personal_details is not None:  # the age band then comes from the date of birth
        start["personal_details"] = personal_details
        if "date_of_birth" in personal_details:
            del start["age_band"]
    created = _expect(
        await client.post(f"{urls['assessment']}/v1/assessments", json=start, headers=care_manager),
        201,
        "start the self-assessment",
    )
    assessment_id = created["assessment_id"]
    result.assessment_id = assessment_id
    answers = demo_answers(policy, person_number)
    _expect(
        await client.put(
            f"{urls['assessment']}/v1/assessments/{assessment_id}/answers",
            json={
                "domains": answers,
                "significant_informal_support": person_number % 2 == 0,
                "needs_24_7": False,
                "carer_support_weekly_pence": 0,
                "other_funding": [],
                "outcomes": ["Stay living in my own home", "Get out to the allotment weekly"],
                "risks": [
                    {
                        "risk_id": "falls",
                        "description": "Has fallen at home twice this year",
                        "persons_view": "I manage if someone checks on me",
                    }
                ],
            },
            headers=care_manager,
        ),
        200,
        "answer the questionnaire",
    )
    _expect(
        await client.post(
            f"{urls['assessment']}/v1/assessments/{assessment_id}/submit",
            json={},
            headers=care_manager,
        ),
        200,
        "submit the self-assessment",
    )
    _expect(
        await client.post(
            f"{urls['assessment']}/v1/assessments/{assessment_id}/eligibility",
            json=ELIGIBLE_NEEDS,
            headers=care_manager,
        ),
        201,
        "determine eligibility",
    )
    _expect(
        await client.post(
            f"{urls['assessment']}/v1/assessments/{assessment_id}/validate",
            json={
                "adjustments": [],
                "risks": [
                    {
                        "risk_id": "falls",
                        "practitioners_view": "Falls risk is real; needs a pendant alarm",
                        "flagged": True,
                    }
                ],
            },
            headers=care_manager,
        ),
        200,
        "validate the self-assessment",
    )
    result.stage = "assessment validated"

    async def budget_calculated() -> dict[str, Any] | None:
        response = await client.get(
            f"{urls['allocation']}/v1/budgets",
            params={"person_id": person_id},
            headers=care_manager,
        )
        items = _expect(response, 200, "list budgets")["items"]
        return items[0] if items else None

    listed = await _eventually("the indicative budget to be calculated", budget_calculated, timeout)
    budget_id = listed["budget_id"]
    result.budget_id = budget_id
    budget = _expect(
        await client.get(f"{urls['allocation']}/v1/budgets/{budget_id}", headers=care_manager),
        200,
        "read the budget",
    )
    current = budget["current_revision"]
    weekly = int(current["weekly_pence"])
    ceiling_exceeded = bool(current["above_ceiling"])
    agreeing_role = (
        who_may_agree(policy, weekly, client_group) or policy.approvals.ceiling_exception_roles[0]
    )
    agree_body: dict[str, Any] = {}
    if ceiling_exceeded:
        agree_body["ceiling_exception_reason"] = "Needs above the ceiling agreed at panel"
    _expect(
        await client.post(
            f"{urls['allocation']}/v1/budgets/{budget_id}/agree",
            json=agree_body,
            headers=staff(agreeing_role),
        ),
        200,
        "agree the budget in principle",
    )
    result.weekly_budget_pence = weekly
    result.stage = "indicative budget issued"

    contingency = weekly // 20
    support_weekly = max(weekly - contingency, 0)
    plan_body = {
        "person_id": person_id,
        "budget_id": budget_id,
        "outcomes": ["Stay living in my own home"],
        "lines": [
            {
                "description": "Personal assistant, mornings and evenings",
                "provider_kind": "personal_assistant",
                "frequency": "weekly",
                "amount_pence": support_weekly,
                "domains": [d.key for d in policy.questionnaire.domains],
                "outcomes": ["Stay living in my own home"],
                "provider_holds_funds": False,
            }
        ],
        "contingency_weekly_pence": contingency,
        "risk_mitigations": [
            {
                "risk_id": "falls",
                "mitigation": "Pendant alarm and daily check-in call",
                "referred_to_risk_panel": False,
            }
        ],
    }

    async def plan_created() -> dict[str, Any] | None:
        response = await client.post(
            f"{urls['planning']}/v1/plans", json=plan_body, headers=care_manager
        )
        if response.status_code == 422 and "budget" in response.text.lower():
            return None  # planning has not seen the BudgetIssued event yet
        return _expect(response, 201, "draft the support plan")

    plan = await _eventually("planning to learn of the budget", plan_created, timeout)
    plan_id = plan["plan_id"]
    result.plan_id = plan_id
    _expect(
        await client.post(
            f"{urls['planning']}/v1/plans/{plan_id}/submit", json={}, headers=care_manager
        ),
        200,
        "submit the support plan",
    )
    plan_weekly = int(plan["costing"]["weekly_pence"])
    signing_role = lowest_sign_off_role(policy, plan_weekly, client_group)
    if signing_role is None:
        raise JourneyError(f"no role in {policy.policy_version} may sign off {plan_weekly}p")
    _expect(
        await client.post(
            f"{urls['planning']}/v1/plans/{plan_id}/sign-off",
            json={},
            headers=staff(signing_role),
        ),
        200,
        "sign off the support plan",
    )
    result.stage = "plan signed off"

    async def deployment_ready() -> dict[str, Any] | None:
        response = await client.get(
            f"{urls['payments']}/v1/deployments",
            params={"person_id": person_id},
            headers=care_manager,
        )
        items = _expect(response, 200, "list deployments")["items"]
        return items[0] if items else None

    deployment = await _eventually("payments to set up the deployment", deployment_ready, timeout)
    deployment_id = deployment["deployment_id"]
    result.deployment_id = deployment_id
    _expect(
        await client.put(
            f"{urls['payments']}/v1/deployments/{deployment_id}/arrangement",
            json={
                "parts": [
                    {
                        "option": "direct_payment",
                        "annual_pence": int(deployment["gross_annual_pence"]),
                    }
                ],
                "frequency": "four_weekly",
                "first_due_on": today.isoformat(),
                "assessed_max_weekly_contribution_pence": 0,
            },
            headers=care_manager,
        ),
        200,
        "arrange a direct payment",
    )
    _expect(
        await client.post(
            f"{urls['payments']}/v1/deployments/{deployment_id}/agreement",
            json={"signed_on": today.isoformat()},
            headers=care_manager,
        ),
        200,
        "record the signed agreement",
    )
    released = _expect(
        await client.post(
            f"{urls['payments']}/v1/deployments/{deployment_id}/release",
            json={"as_of": today.isoformat()},
            headers=staff(Role.FINANCE),
        ),
        200,
        "release the first payment",
    )
    result.released_pence = int(released["total_pence"])
    result.stage = "payment released"

    auditor = staff(Role.AUDITOR)

    async def history_complete() -> list[dict[str, Any]] | None:
        response = await client.get(
            f"{urls['audit']}/v1/people/{person_id}/history",
            params={"limit": 200},
            headers=auditor,
        )
        if response.status_code == 404 and response.json().get("error") == "PersonNotFound":
            return None  # the audit has not applied this person's first event yet (a lag)
        events = _expect(response, 200, "read the audit history")["items"]
        types = {e["type"] for e in events}
        # Planning books the direct payment's review when it learns of the deployment: wait
        # for it too, so the history counted here is the whole journey's.
        reviewed = any(e["data"].get("kind") == "direct_payment" for e in events)
        return events if "pb.payments.payment-released.v1" in types and reviewed else None

    history = await _eventually(
        "the audit history to show the payment and the direct payment's review",
        history_complete,
        timeout,
    )
    result.audit_events = len(history)
    result.stage = "complete"
    return result


def load_policies(policies_dir: Path) -> PolicyBook:
    return PolicyBook.from_directory(policies_dir)
