"""People walked through the journey over HTTP, as a portal that retries properly would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from contracts.policy import Policy
from contracts.vocabulary import Role
from pbj.journey import Staff, demo_answers
from rules.authority import lowest_sign_off_role, who_may_agree
from testkit.chaos.names import RELEASED


class JourneyFailed(RuntimeError):
    """A step went wrong in a way no retry mends; the message says which and why."""


@dataclass
class Ack:
    """A 2xx answer the client received: the service promised this change."""

    person_id: str
    step: str
    body: dict[str, Any]


@dataclass
class ClientTally:
    acks: list[Ack] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)


STILL_RUNNING = "still running"


class PortalClient:
    """Sends each change with an Idempotency-Key and retries it with the same key.

    A connection refused or cut, a 5xx, or a 503: the same request again with the same
    key, so a change the service made before dying is answered from the stored response,
    never made twice. A 409 "still running" for the key means the process that claimed
    it died between claiming and storing the answer (ADR 0007): the key is stuck for
    good. Once the claim is old enough that no live process can be working on it, the
    client reads the state: if the change is there it carries on (the change was made but
    never acknowledged); if not, it sends the change again under a fresh key.
    """

    def __init__(self, http: httpx.AsyncClient, staff: Staff, tally: ClientTally) -> None:
        self.http = http
        self.staff = staff
        self.tally = tally
        self.patience = 900.0

    async def read(
        self, url: str, role: Role = Role.CARE_MANAGER, *, missing_ok: bool = False, **params: Any
    ) -> dict[str, Any]:
        """GET, retried through crashes; with missing_ok a 404 reads as {} (not there yet)."""
        deadline = time.monotonic() + self.patience
        delay = 0.05
        while True:
            try:
                response = await self.http.get(url, params=params, headers=self.staff(role))
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                if response.status_code == 404 and missing_ok:
                    return {}
                if response.status_code < 500:
                    raise JourneyFailed(f"GET {url}: HTTP {response.status_code} {response.text}")
                self.tally.retries["read 5xx"] += 1
            except httpx.TransportError:
                self.tally.retries["read transport error"] += 1
            if time.monotonic() > deadline:
                raise JourneyFailed(f"GET {url}: no answer for {self.patience:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def change(
        self,
        person_id: str,
        step: str,
        method: str,
        url: str,
        body: dict[str, Any],
        *,
        role: Role = Role.CARE_MANAGER,
        expect: int = 200,
        reconcile: Callable[[], Awaitable[dict[str, Any] | None]],
        not_yet: Callable[[httpx.Response], bool] = lambda _: False,
    ) -> dict[str, Any]:
        """Make one change; returns the answer, or the state read back when reconciled."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self.patience
        stuck_since: float | None = None
        delay = 0.05
        while True:
            if time.monotonic() > deadline:
                raise JourneyFailed(f"{step}: not done after {self.patience:.0f}s")
            headers = {**self.staff(role), "Idempotency-Key": key}
            try:
                response = await self.http.request(method, url, json=body, headers=headers)
            except httpx.TransportError:
                self.tally.retries["write transport error"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            status = response.status_code
            if status == expect:
                answer: dict[str, Any] = response.json()
                self.tally.acks.append(Ack(person_id, step, answer))
                if response.headers.get("Idempotent-Replayed") == "true":
                    self.tally.retries["answered from the stored response"] += 1
                return answer
            if status == 409 and STILL_RUNNING in response.text:
                now = time.monotonic()
                if stuck_since is None:
                    stuck_since = now
                    self.tally.retries["key still running"] += 1
                if now - stuck_since > 3.0:
                    # Nothing lives that could finish it: the claimant died with the process.
                    found = await reconcile()
                    if found is not None:
                        self.tally.retries["stuck key: change found made"] += 1
                        return found
                    self.tally.retries["stuck key: sent again with a new key"] += 1
                    key, stuck_since = str(uuid.uuid4()), None
                    continue
            elif status >= 500:
                self.tally.retries["write 5xx"] += 1
            elif not_yet(response):
                self.tally.retries["not there yet"] += 1
            else:
                raise JourneyFailed(f"{step}: HTTP {status}: {response.text[:500]}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def eventually(
        self, what: str, attempt: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience
        delay = 0.05
        while True:
            found = await attempt()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise JourneyFailed(f"waited {self.patience:.0f}s for {what}")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)


@dataclass
class Walked:
    person_id: str
    number: int
    stage: str = "started"
    error: str | None = None


async def walk(
    client: PortalClient, urls: dict[str, str], policy: Policy, walked: Walked, today: date
) -> None:
    """One person's journey, self-assessment to a released payment in the audit history."""
    person_id, number = walked.person_id, walked.number
    assessment_url = f"{urls['assessment']}/v1/assessments"

    async def first(url: str, role: Role = Role.CARE_MANAGER, **params: Any) -> dict[str, Any]:
        items: list[dict[str, Any]] = (await client.read(url, role, **params))["items"]
        return items[0] if items else {}

    async def my_assessment() -> dict[str, Any] | None:
        return await first(assessment_url, person_id=person_id) or None

    group = policy.client_groups[number % len(policy.client_groups)]
    created = await client.change(
        person_id, "start the self-assessment", "POST", assessment_url,
        {
            "person_id": person_id, "client_group": group.value, "completed_by": "supported",
            "team": f"Team {1 + number % 3}", "key_worker_id": f"KW{1 + number % 5}",
            "age_band": ["18-64", "65-74", "75-84", "85+"][number % 4], "community_based": True,
        },
        expect=201, reconcile=my_assessment,
    )  # fmt: skip
    assessment_id = created["assessment_id"]
    one = f"{assessment_url}/{assessment_id}"

    def assessment_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(one)
            return found if found["status"] in states else None

        return check

    async def answers_saved() -> dict[str, Any] | None:
        found = await client.read(one)
        return found if found["answers"].get("domains") or found["status"] != "draft" else None

    await client.change(
        person_id, "answer the questionnaire", "PUT", f"{one}/answers",
        {
            "domains": demo_answers(policy, number),
            "significant_informal_support": number % 2 == 0, "needs_24_7": False,
            "carer_support_weekly_pence": 0, "other_funding": [],
            "outcomes": ["Stay living in my own home"],
            "risks": [{"risk_id": "falls", "description": "Has fallen at home twice",
                       "persons_view": "I manage if someone checks on me"}],
        },
        reconcile=answers_saved,
    )  # fmt: skip
    await client.change(
        person_id, "submit the self-assessment", "POST", f"{one}/submit", {},
        reconcile=assessment_reached("submitted", "validated"),
    )  # fmt: skip

    async def determination_unreadable() -> dict[str, Any] | None:
        return None  # no route reads one back: a stuck key is sent again, a second is harmless

    await client.change(
        person_id, "determine eligibility", "POST", f"{one}/eligibility",
        {"needs_from_impairment_or_illness": True, "significant_impact_on_wellbeing": True,
         "outcomes": [
             {"outcome": "managing_and_maintaining_nutrition",
              "difficulties": ["only_with_assistance"]},
             {"outcome": "using_the_home_safely", "difficulties": ["endangers_health_or_safety"]},
         ]},
        expect=201, reconcile=determination_unreadable,
    )  # fmt: skip
    await client.change(
        person_id, "validate the self-assessment", "POST", f"{one}/validate",
        {"adjustments": [], "risks": [{"risk_id": "falls", "flagged": True,
                                       "practitioners_view": "Needs a pendant alarm"}]},
        reconcile=assessment_reached("validated"),
    )  # fmt: skip
    walked.stage = "assessment validated"

    budgets_url = f"{urls['allocation']}/v1/budgets"

    async def budget_listed() -> dict[str, Any] | None:
        return await first(budgets_url, person_id=person_id) or None

    listed = await client.eventually("allocation to issue the indicative budget", budget_listed)
    budget_id = listed["budget_id"]
    budget = await client.read(f"{budgets_url}/{budget_id}")
    weekly = int(budget["current_revision"]["weekly_pence"])
    above = bool(budget["current_revision"]["above_ceiling"])
    agreeing_role = (
        who_may_agree(policy, weekly, group) or policy.approvals.ceiling_exception_roles[0]
    )

    async def budget_agreed() -> dict[str, Any] | None:
        found = await client.read(f"{budgets_url}/{budget_id}")
        return found if found["status"] != "awaiting_agreement" else None

    await client.change(
        person_id, "agree the budget", "POST", f"{budgets_url}/{budget_id}/agree",
        {"ceiling_exception_reason": "Agreed at panel"} if above else {},
        role=agreeing_role, reconcile=budget_agreed,
    )  # fmt: skip
    walked.stage = "budget agreed"

    plans_url = f"{urls['planning']}/v1/plans"
    contingency = weekly // 20

    async def my_plan() -> dict[str, Any] | None:
        summary = await first(plans_url, person_id=person_id)
        return await client.read(f"{plans_url}/{summary['plan_id']}") if summary else None

    plan = await client.change(
        person_id, "draft the support plan", "POST", plans_url,
        {
            "person_id": person_id, "budget_id": budget_id,
            "outcomes": ["Stay living in my own home"],
            "lines": [{"description": "Personal assistant", "provider_kind": "personal_assistant",
                       "frequency": "weekly", "amount_pence": max(weekly - contingency, 0),
                       "domains": [d.key for d in policy.questionnaire.domains],
                       "outcomes": ["Stay living in my own home"],
                       "provider_holds_funds": False}],
            "contingency_weekly_pence": contingency,
            "risk_mitigations": [{"risk_id": "falls", "mitigation": "Pendant alarm",
                                  "referred_to_risk_panel": False}],
        },
        expect=201, reconcile=my_plan,
        # planning has not yet read the BudgetIssued event
        not_yet=lambda r: r.status_code == 422 and "budget" in r.text.lower(),
    )  # fmt: skip
    plan_id = plan["plan_id"]

    def plan_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(f"{plans_url}/{plan_id}")
            return found if found["status"] in states else None

        return check

    await client.change(
        person_id, "submit the support plan", "POST", f"{plans_url}/{plan_id}/submit", {},
        reconcile=plan_reached("submitted", "signed_off"),
    )  # fmt: skip
    signing_role = lowest_sign_off_role(policy, int(plan["costing"]["weekly_pence"]), group)
    if signing_role is None:
        raise JourneyFailed(f"no role may sign off {plan['costing']['weekly_pence']}p a week")
    await client.change(
        person_id, "sign off the support plan", "POST", f"{plans_url}/{plan_id}/sign-off", {},
        role=signing_role, reconcile=plan_reached("signed_off"),
    )  # fmt: skip
    walked.stage = "plan signed off"

    deployments_url = f"{urls['payments']}/v1/deployments"

    async def deployment_listed() -> dict[str, Any] | None:
        return await first(deployments_url, person_id=person_id) or None

    deployment = await client.eventually("payments to set up the deployment", deployment_listed)
    deployment_id = deployment["deployment_id"]
    one_deployment = f"{deployments_url}/{deployment_id}"

    def deployment_reached(*states: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
        async def check() -> dict[str, Any] | None:
            found = await client.read(one_deployment, Role.FINANCE)
            return found if found["status"] in states else None

        return check

    await client.change(
        person_id, "arrange a direct payment", "PUT", f"{one_deployment}/arrangement",
        {
            "parts": [{"option": "direct_payment",
                       "annual_pence": int(deployment["gross_annual_pence"])}],
            "frequency": "four_weekly", "first_due_on": today.isoformat(),
            "assessed_max_weekly_contribution_pence": 0,
        },
        reconcile=deployment_reached("awaiting_agreement", "active"),
    )  # fmt: skip
    await client.change(
        person_id, "record the signed agreement", "POST", f"{one_deployment}/agreement",
        {"signed_on": today.isoformat()},
        reconcile=deployment_reached("active"),
    )  # fmt: skip

    async def first_released() -> dict[str, Any] | None:
        schedule = await client.read(f"{one_deployment}/schedule", Role.FINANCE, limit=200)
        done = [i for i in schedule["items"] if i["status"] == "released"]
        return {"released": done} if done else None

    await client.change(
        person_id, "release the first payment", "POST", f"{one_deployment}/release",
        {"as_of": today.isoformat()}, role=Role.FINANCE, reconcile=first_released,
    )  # fmt: skip
    walked.stage = "payment released"

    history_url = f"{urls['audit']}/v1/people/{person_id}/history"

    async def audited() -> dict[str, Any] | None:
        # audit answers 404 for a person until the first of their events reaches it
        page = await client.read(history_url, Role.AUDITOR, missing_ok=True, limit=200)
        types = {event["type"] for event in page.get("items", [])}
        return page if RELEASED in types else None

    await client.eventually("the audit history to show the payment", audited)
    walked.stage = "complete"


# --- the injector ---------------------------------------------------------------------------
