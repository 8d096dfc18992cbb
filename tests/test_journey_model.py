"""A model of the whole journey, run against the real services.

A Hypothesis state machine drives the five services through their HTTP APIs (in-process,
one embedded event log, tests/journey_harness.py) with random people in six councils,
callers in the right and the wrong roles, amounts at and around the policies' limits,
dates in the past, today and the future, clock moves, retries with the same and with
fresh Idempotency-Keys, redelivered events, service restarts, switches, suspensions,
clawbacks, policy adoptions, audit tampering and legacy clients converted in bulk (the
four conversion routes, a row each). After each step it checks what the services
answered against a small reference model (the council's policy files, read by this test's
own reading of the seeds' rules, and what the model saw succeed):

- money: nothing is released before it is due, nor for an as_of after today, and what a
  person has been released never exceeds what their signed schedules made due by today;
- authority: a budget agreed, an exception approved, a plan signed off or arrears approved
  only by a role the council's policy allows for that amount and client group (Council C
  mental health: the panel only; Council B above £300 a week: not the ordinary sitting);
- dates: no agreement signed in the future or before its plan's sign-off; no arrears
  without a reason;
- record: tampering with a stored audit row never vanishes in a replay;
- history: the budget as known at an instant is what the record held then, to the
  microsecond;
- isolation: a person id used by two councils never shows one council's records to the
  other, and the owner can always read its own;
- idempotency: an Idempotency-Key never replays one identity's answer to another;
- operations: redelivering an event with the operator command changes nothing;
- errors: every refusal is RFC 9457 problem details with our error code;
- eligibility: an assessment whose needs were not found eligible, with no recorded reason
  to go ahead, is refused validation and gets no budget;
- and no call answers 5xx.

A refusal is any 4xx; a violation is a 2xx where the model says refuse, or a 5xx. A
failure prints the shortest sequence of calls Hypothesis found (the rules are named after
the calls). docs/invariants.md lists which rule or check proves each invariant.

Steps: PBJ_MODEL_STEPS (default 1,200, in PBJ_MODEL_SHARDS=2 runs of their own seeds, which
`make test` spreads over its workers; `make soak` runs 50,000 so, side by side).
PBJ_MODEL_INVARIANTS checks only some families (e.g. `money,dates`), to chase one kind of
failure at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)

from contracts.policy import Policy, PolicyBook, policy_document
from contracts.vocabulary import Role
from pbj import log_operations
from pbj.journey import ELIGIBLE_NEEDS, demo_answers
from servicekit import clock
from servicekit.clock import SettableClock
from servicekit.testing import POLICIES_DIR
from tests.journey_harness import Identity, Journey, citizen, iso, staff

FAMILIES = (
    "eligibility",
    "money",
    "authority",
    "dates",
    "record",
    "history",
    "isolation",
    "idempotency",
    "errors",
    "operations",
)
CHECKED = {f.strip() for f in os.environ.get("PBJ_MODEL_INVARIANTS", ",".join(FAMILIES)).split(",")}
STEPS = int(os.environ.get("PBJ_MODEL_STEPS", "1200"))
STEPS_PER_RUN = 50
SHARDS = int(os.environ.get("PBJ_MODEL_SHARDS", "2"))

FILE_POLICIES = PolicyBook.from_directory(POLICIES_DIR)
COUNCILS = ("lancashire", "council_a", "council_b", "council_c", "council_d", "council_e")
PERSON_IDS = ("P1", "P2", "P3")
"""Few ids, so the same id turns up in more than one council."""
ELIGIBILITY_CASES = ("eligible", "eligible", "eligible", "urgent_need", "not_eligible", "none")
GATE_REFUSALS = {"not_eligible": "NeedsNotEligible", "none": "NoEligibilityDetermination"}
"""What validating answers when the needs were not found eligible and no reason was given."""
NOT_ELIGIBLE_NEEDS = {**ELIGIBLE_NEEDS, "outcomes": ELIGIBLE_NEEDS["outcomes"][:1]}
STAFF_USERS = ("ann", "raj")
"""Few user names, so one user acts in more than one role."""
PRACTITIONERS = (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL)
ANY_STAFF = (*PRACTITIONERS, Role.FINANCE, Role.AUDITOR, Role.OPERATIONS)
APPROVERS = st.sampled_from((Role.TEAM_MANAGER, Role.PANEL, Role.CARE_MANAGER) * 3 + ANY_STAFF[3:])
"""Mostly a role that may approve something, sometimes one that never may."""
A_NEW_PERSON: dict[str, st.SearchStrategy[Any]] = {
    "council": st.sampled_from(COUNCILS),
    "person_id": st.sampled_from(PERSON_IDS),
    "group": st.integers(0, 4),
    # Few needs often: small budgets are where a team manager's limit is not what stops
    # them (Council C's mental health budgets go to the panel whatever the amount).
    "answers": st.one_of(st.sampled_from((0, 1)), st.integers(0, 12)),
}
"""What a rule that brings a person into the model draws: council, id, client group, needs."""
NEARBY = (-1, 0, 1)
DAYS = st.sampled_from((-400, -30, -1, 0, 1, 30))


class Violation(AssertionError):
    """The services did what the reference model says they must not."""


def violation(family: str, message: str) -> None:
    if family in CHECKED:
        raise Violation(f"[{family}] {message}")


@dataclass
class Deployment:
    deployment_id: str
    plan_id: str
    signed: bool = False
    arranged: bool = False
    first_due_on: date | None = None
    """As last arranged: instalments from it that are past when the agreement is signed are
    arrears, which the agreement (or the arrangement before it) must give a reason for."""
    arrears_reason: bool = False
    """The arrangement gave a reason for arrears."""


@dataclass
class Person:
    council: str
    person_id: str
    client_group: str
    budget_id: str | None = None
    base_weekly: int = 0
    weekly: int = 0
    policy_version: str = ""
    above_ceiling: bool = False
    agreed: bool = False
    plan_id: str | None = None
    plan_weekly: int = 0
    plans_signed_on: dict[str, date] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    released: dict[str, int] = field(default_factory=dict)
    """payment_id -> pence, from every release the services answered."""
    budget_changes: list[tuple[datetime, int]] = field(default_factory=list)
    """(the instant it was recorded, weekly pence) of each budget revision issued."""
    issued_revisions: set[tuple[str, int]] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str]:
        return (self.council, self.person_id)

    def __repr__(self) -> str:
        return f"{self.council}/{self.person_id}"

    @property
    def live_deployment(self) -> Deployment | None:
        return next(reversed(self.deployments.values()), None)


def _limits(policy: Policy, client_group: str) -> dict[str, int]:
    """The amounts the council's policy turns on, by name: where to aim amounts."""
    found: dict[str, int] = {}
    for lim in policy.approvals.agreement_in_principle:
        if lim.max_weekly_pence is not None:
            found[f"agreement:{lim.role.value}"] = lim.max_weekly_pence
    for lim in policy.approvals.plan_sign_off:
        if lim.max_weekly_pence is not None:
            found[f"sign_off:{lim.role.value}"] = lim.max_weekly_pence
    ceiling = policy.ras.ceilings_weekly_pence.get(client_group)  # type: ignore[call-overload]
    if ceiling is not None:
        found["ceiling"] = ceiling
    if policy.approvals.panel_sits_separately_above_weekly_pence is not None:
        found["panel_sits_apart"] = policy.approvals.panel_sits_separately_above_weekly_pence
    return found


# --- the reference: the seeds' rules read straight off the policy data --------------------
# Written here, apart from rules/authority.py, so that the model checks the services against
# the seeds rather than against the code under test.


def _ladder_allows(ladder: Any, role: Role, weekly: int) -> bool:
    limit = next((lim for lim in ladder if lim.role == role), None)
    return limit is not None and (
        limit.max_weekly_pence is None or weekly <= limit.max_weekly_pence
    )


def _panel_only(policy: Policy, client_group: str) -> bool:
    """Seed 004 App.1 Council C: 'All mental health requests go to a panel'."""
    return client_group in {g.value for g in policy.approvals.panel_only_client_groups}


def expected_may_agree(
    policy: Policy, role: Role, weekly: int, client_group: str, above_ceiling: bool
) -> bool:
    """Agreement in principle (seed 003 ch.2 §iv; seed 004 App.1): within the role's limit;
    above the client group's ceiling only by an exception role; panel-only groups: panel."""
    if _panel_only(policy, client_group) and role is not Role.PANEL:
        return False
    if above_ceiling and role not in policy.approvals.ceiling_exception_roles:
        return False
    return _ladder_allows(policy.approvals.agreement_in_principle, role, weekly)


def expected_may_sign_off(
    policy: Policy, role: Role, weekly: int, client_group: str, sitting: str | None
) -> bool:
    """Plan sign-off (seed 004 App.1): within the role's limit; panel-only groups: panel;
    Council B: above £300 a week at the panel's separate sitting, never at the ordinary one
    (a sign-off that names no sitting is recorded at the sitting due)."""
    if _panel_only(policy, client_group) and role is not Role.PANEL:
        return False
    if not _ladder_allows(policy.approvals.plan_sign_off, role, weekly):
        return False
    apart = policy.approvals.panel_sits_separately_above_weekly_pence
    return not (
        role is Role.PANEL and apart is not None and weekly > apart and sitting == "ordinary"
    )


def lowest_role_to_sign_off(policy: Policy, weekly: int, client_group: str) -> Role | None:
    return next(
        (
            lim.role
            for lim in policy.approvals.plan_sign_off
            if expected_may_sign_off(policy, lim.role, weekly, client_group, None)
        ),
        None,
    )


def sitting_for(policy: Policy, weekly: int) -> str | None:
    apart = policy.approvals.panel_sits_separately_above_weekly_pence
    if apart is None:
        return None
    return "separate" if weekly > apart else "ordinary"


def expected_may_approve_arrears(policy: Policy, role: Role, arrears_pence: int) -> bool:
    """No seed sets an arrears limit; the product's documented rule (docs/rules.md): a role
    may approve arrears whose total is within its plan sign-off limit."""
    return _ladder_allows(policy.approvals.plan_sign_off, role, arrears_pence)


def start_request(person_id: str, client_group: str) -> dict[str, Any]:
    """An assessment's start as the model sends it, by its own call or in a conversion row."""
    return {
        "person_id": person_id,
        "client_group": client_group,
        "completed_by": "supported",
        "team": "North",
        "key_worker_id": "KW1",
        "age_band": "65-74",
        "community_based": True,
    }


def answers_request(policy: Policy, answers: int, informal_support: bool) -> dict[str, Any]:
    """An assessment's answers: `answers` of the policy's questions answered with a need."""
    return {
        "domains": demo_answers(policy, answers),
        "significant_informal_support": informal_support,
        "needs_24_7": False,
        "carer_support_weekly_pence": 0,
        "other_funding": [],
        "outcomes": ["Stay living in my own home"],
        "risks": [],
    }


PROBLEM_FIELDS = ("type", "title", "status", "detail", "error")


LIMIT_NAMES = st.sampled_from(
    (
        "agreement:team_manager",
        "sign_off:team_manager",
        "agreement:care_manager",
        "sign_off:care_manager",
        "ceiling",
        "panel_sits_apart",
        "the budget",
    )
)


@seed(20261123)
class JourneyModel(RuleBasedStateMachine):
    people = Bundle("people")
    template: Path

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.tmp = tempfile.TemporaryDirectory(prefix="pbj-model-")
        shutil.copytree(self.template, self.tmp.name, dirs_exist_ok=True)
        start = datetime.combine(datetime.now(UTC).date(), time(9), tzinfo=UTC)
        self.clock = SettableClock(start)
        self._clock_context = clock.using(self.clock)
        self._clock_context.__enter__()
        self.journey = Journey(Path(self.tmp.name))
        self.model: dict[tuple[str, str], Person] = {}
        self.adopted: dict[str, list[Policy]] = {}
        self.adoptions = 0
        self.conversions = 0

    # --- plumbing ------------------------------------------------------------------------

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    @property
    def today(self) -> date:
        return clock.today()

    def day(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def call(
        self,
        service: str,
        method: str,
        path: str,
        who: Identity,
        body: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> Any:
        if method != "GET" and key is None:
            key = self.journey.fresh_key()
        # Each call a millisecond after the one before: every event has an instant of its
        # own, so the history can be asked about the moment between two of them.
        self.clock.advance(timedelta(milliseconds=1))
        response = self.run(self.journey.call(service, method, path, who, body, key=key))
        if response.status_code >= 400:
            self._check_problem_shape(f"{method} {service}{path} as {who}", response)
        return response

    def _check_problem_shape(self, what: str, response: Any) -> None:
        """Every refusal is RFC 9457 problem details with our error code, and no library
        message reaches the caller."""
        kind = response.headers.get("content-type", "")
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not kind.startswith("application/problem+json") or not isinstance(problem, dict):
            violation(
                "errors",
                f"{what} answered {response.status_code} as {kind!r}, not "
                f"problem details: {response.text[:200]}",
            )
            return
        missing = [f for f in PROBLEM_FIELDS if f not in problem]
        if missing or problem.get("status") != response.status_code:
            violation(
                "errors",
                f"{what} answered {response.status_code} without "
                f"{', '.join(missing) or 'the same status'}: {response.text[:300]}",
            )

    def settle(self) -> None:
        self.run(self.journey.settle())

    def teardown(self) -> None:
        try:
            self.run(self.journey.close())
        finally:
            self.runner.close()
            self._clock_context.__exit__(None, None, None)
            self.tmp.cleanup()

    def versions(self, council: str) -> list[Policy]:
        return [*FILE_POLICIES.versions(council), *self.adopted.get(council, [])]

    def in_force(self, council: str, on: date) -> Policy:
        book = PolicyBook(self.versions(council))
        return book.current(council, on)

    def recorded(self, policy_version: str) -> Policy | None:
        council = policy_version.partition("/")[0]
        book = PolicyBook(self.versions(council))
        try:
            return book.version(policy_version)
        except KeyError:
            return None

    @initialize()
    def start_the_five_services(self) -> None:
        self.run(self.journey.start())

    # --- assessment and budget -------------------------------------------------------------

    @rule(
        target=people,
        **A_NEW_PERSON,
        informal_support=st.booleans(),
        # Mostly eligible; sometimes needs found not eligible, none determined, or urgent.
        eligibility=st.sampled_from(ELIGIBILITY_CASES),
    )
    def assess_person(
        self,
        council: str,
        person_id: str,
        group: int,
        answers: int,
        informal_support: bool,
        eligibility: str = "eligible",
    ) -> Any:
        """POST /v1/assessments, PUT answers, submit, determine eligibility, validate; then
        read the budget. Needs not found eligible, without a recorded reason, are refused
        validation and get no budget."""
        if (council, person_id) in self.model:
            return multiple()
        policy = self.in_force(council, self.today)
        client_group = policy.client_groups[group % len(policy.client_groups)].value
        cm = staff(council, Role.CARE_MANAGER)
        r = self.call(
            "assessment", "POST", "/v1/assessments", cm, start_request(person_id, client_group)
        )
        if r.status_code != 201:
            return multiple()
        aid = r.json()["assessment_id"]
        steps = [
            (
                "PUT",
                f"/v1/assessments/{aid}/answers",
                answers_request(policy, answers, informal_support),
            ),
            ("POST", f"/v1/assessments/{aid}/submit", {}),
        ]
        if eligibility != "none":
            found = ELIGIBLE_NEEDS if eligibility != "not_eligible" else NOT_ELIGIBLE_NEEDS
            steps.append(("POST", f"/v1/assessments/{aid}/eligibility", found))
        for method, path, body in steps:
            if self.call("assessment", method, path, cm, body).status_code >= 300:
                return multiple()
        validation: dict[str, Any] = {"adjustments": [], "risks": []}
        if eligibility == "urgent_need":
            validation["going_ahead_without_eligibility"] = {
                "reason": "urgent_need",
                "explanation": "Carer taken into hospital; support cannot wait",
            }
        validated = self.call(
            "assessment", "POST", f"/v1/assessments/{aid}/validate", cm, validation
        )
        if eligibility in GATE_REFUSALS:
            self._check_refused_validation(council, person_id, validated, eligibility)
            return multiple()
        if validated.status_code >= 300:
            return multiple()
        self.settle()
        person = Person(council, person_id, client_group)
        self._learn_calculated_budget(person)
        self.model[person.key] = person
        # Every council holding this id reads its own person, and only its own, at once.
        for holder in self.model.values():
            if holder.person_id == person_id:
                self._read_history_as(holder, holder.council, as_person=False)
        return person.key

    def _learn_calculated_budget(self, p: Person) -> None:
        """Learn the budget allocation calculated from the person's validated assessment;
        one agreed already counts as issued now."""
        issued_at = clock.now()
        cm = staff(p.council, Role.CARE_MANAGER)
        listed = self.call("allocation", "GET", f"/v1/budgets?person_id={p.person_id}", cm)
        for item in listed.json().get("items", []):
            budget = self.call("allocation", "GET", f"/v1/budgets/{item['budget_id']}", cm)
            if budget.status_code == 200 and budget.json()["council"] == p.council:
                self._learn_budget(p, budget.json(), issued_at)
                p.base_weekly = p.weekly

    def _check_refused_validation(
        self, council: str, person_id: str, validated: Any, eligibility: str
    ) -> None:
        """A budget is calculated only for eligible needs (docs/charging.md)."""
        if (
            validated.status_code != 409
            or validated.json().get("error") != GATE_REFUSALS[eligibility]
        ):
            violation(
                "eligibility",
                f"validating {council}/{person_id} with {eligibility} answered "
                f"{validated.status_code}, not 409 {GATE_REFUSALS[eligibility]}: "
                f"{validated.text[:200]}",
            )
        self.settle()
        cm = staff(council, Role.CARE_MANAGER)
        listed = self.call("allocation", "GET", f"/v1/budgets?person_id={person_id}", cm)
        if listed.json().get("items"):
            violation("eligibility", f"{council}/{person_id} got a budget without eligible needs")

    def _learn_budget(
        self, person: Person, budget: dict[str, Any], issued_at: datetime | None = None
    ) -> None:
        """What allocation answered; a revision newly agreed was issued `issued_at` (by
        default now: the call that agreed it)."""
        current = budget["current_revision"]
        person.budget_id = str(budget["budget_id"])
        person.weekly = int(current["weekly_pence"])
        person.policy_version = current["policy_version"]
        person.above_ceiling = bool(current["above_ceiling"])
        person.agreed = current["state"] != "awaiting_agreement"
        revision = (person.budget_id, int(current["revision"]))
        if person.agreed and revision not in person.issued_revisions:
            person.issued_revisions.add(revision)
            person.budget_changes.append((issued_at or clock.now(), person.weekly))

    @rule(person=people, around=LIMIT_NAMES, by=st.sampled_from(NEARBY))
    def revise_budget(self, person: tuple[str, str], around: str, by: int) -> None:
        """POST /v1/budgets/{id}/revisions: aim the weekly amount at a limit, give or take 1p."""
        p = self.model[person]
        if p.budget_id is None:
            return
        limits = _limits(self.in_force(p.council, self.today), p.client_group)
        target = p.weekly if around == "the budget" else limits.get(around)
        if target is None or target + by < p.base_weekly:
            return
        r = self.call(
            "allocation",
            "POST",
            f"/v1/budgets/{p.budget_id}/revisions",
            staff(p.council, Role.TEAM_MANAGER),
            {
                "reason": "Two-to-one support the points miss",
                "additional_weekly_pence": target + by - p.base_weekly,
            },
        )
        if r.status_code < 300:
            self._learn_budget(p, r.json())
        self.settle()

    @rule(person=people, index=st.integers(0, 100), just_before=st.booleans())
    def read_budget_as_known_at(
        self, person: tuple[str, str], index: int, just_before: bool
    ) -> None:
        """GET /v1/people/{id}/budget?as_of=<instant>: the budget the record held at the
        instant a revision was issued, or a microsecond before it."""
        p = self.model[person]
        if not p.budget_changes:
            return
        at, _ = p.budget_changes[index % len(p.budget_changes)]
        if just_before:
            at -= timedelta(microseconds=1)
        expected = next((w for t, w in reversed(p.budget_changes) if t <= at), None)
        instant = at.isoformat().replace("+00:00", "Z")
        r = self.call(
            "audit",
            "GET",
            f"/v1/people/{p.person_id}/budget?as_of={instant}",
            staff(p.council, Role.AUDITOR),
        )
        if r.status_code == 409:
            return  # the history is under a tamper finding: refused, not served altered
        if r.status_code != 200:
            violation(
                "history",
                f"{p}'s budget as of the instant {instant} answered {r.status_code}: "
                f"{r.text[:200]}",
            )
            return
        current = r.json()["current_budget"]
        served = None if current is None else current["weekly_pence"]
        if served != expected:
            violation(
                "history",
                f"{p}'s budget as of {instant} is {served}p a week; the record then held "
                f"{expected}p",
            )

    @rule(
        person=people, role=APPROVERS, user=st.sampled_from(STAFF_USERS), with_reason=st.booleans()
    )
    def agree_budget(
        self, person: tuple[str, str], role: Role, user: str, with_reason: bool
    ) -> None:
        """POST /v1/budgets/{id}/agree: agreement in principle; above the ceiling, an exception."""
        p = self.model[person]
        if p.budget_id is not None:
            self._agree(p, role, user, with_reason)

    def _agree(self, p: Person, role: Role, user: str, with_reason: bool) -> None:
        body = {"ceiling_exception_reason": "Agreed at panel"} if with_reason else {}
        weekly, version, above_ceiling = p.weekly, p.policy_version, p.above_ceiling
        r = self.call(
            "allocation",
            "POST",
            f"/v1/budgets/{p.budget_id}/agree",
            staff(p.council, role, user),
            body,
        )
        if r.status_code < 300:
            self._check_agreed(p, role, weekly, version, above_ceiling)
            self._learn_budget(p, r.json())
        self.settle()

    def _check_agreed(
        self, p: Person, role: Role, weekly: int, version: str, above_ceiling: bool
    ) -> None:
        """A budget agreed in principle by `role`: allowed by the policy in force or the one
        the budget was calculated under."""
        candidates = [self.in_force(p.council, self.today)]
        if (recorded := self.recorded(version)) is not None:
            candidates.append(recorded)
        if not any(
            expected_may_agree(c, role, weekly, p.client_group, above_ceiling) for c in candidates
        ):
            violation(
                "authority",
                f"{role.value} agreed {p}'s budget of {weekly}p a week ({p.client_group}"
                f"{', above the ceiling' if above_ceiling else ''}); "
                f"{' and '.join(c.policy_version for c in candidates)} does not allow it",
            )

    # What a rule needs done first is done the ordinary way: by the lowest role the policy
    # allows, dated today, so that every rule can reach the stage it exercises.

    def _agreed_ordinarily(self, p: Person) -> bool:
        if p.agreed or p.budget_id is None:
            return p.agreed
        policy = self.recorded(p.policy_version) or self.in_force(p.council, self.today)
        approvals = policy.approvals
        role = next(
            (
                lim.role
                for lim in approvals.agreement_in_principle
                if expected_may_agree(policy, lim.role, p.weekly, p.client_group, p.above_ceiling)
            ),
            None,
        )
        if role is not None:
            self._agree(p, role, STAFF_USERS[0], with_reason=p.above_ceiling)
        return p.agreed

    def _write_plan(self, p: Person, weekly: int) -> bool:
        """POST /v1/plans and POST /v1/plans/{id}/submit: one weekly line of `weekly` pence."""
        policy = self.in_force(p.council, self.today)
        cm = staff(p.council, Role.CARE_MANAGER)
        r = self.call(
            "planning",
            "POST",
            "/v1/plans",
            cm,
            {
                "person_id": p.person_id,
                "budget_id": p.budget_id,
                "outcomes": ["Stay living in my own home"],
                "lines": [
                    {
                        "description": "Personal assistant",
                        "provider_kind": "personal_assistant",
                        "frequency": "weekly",
                        "amount_pence": weekly,
                        "domains": [d.key for d in policy.questionnaire.domains],
                        "outcomes": ["Stay living in my own home"],
                    }
                ],
                "contingency_weekly_pence": 0,
                "risk_mitigations": [],
            },
        )
        if r.status_code != 201:
            return False
        plan_id = r.json()["plan_id"]
        submitted = self.call("planning", "POST", f"/v1/plans/{plan_id}/submit", cm, {})
        if submitted.status_code >= 300:
            return False
        p.plan_id = str(plan_id)
        p.plan_weekly = int(submitted.json()["costing"]["weekly_pence"])
        return True

    def _sign_off(
        self, p: Person, role: Role, user: str, signed_on: date, sitting: str | None
    ) -> None:
        body: dict[str, Any] = {"on": iso(signed_on)}
        if sitting is not None:
            body["panel_sitting"] = sitting
        r = self.call(
            "planning",
            "POST",
            f"/v1/plans/{p.plan_id}/sign-off",
            staff(p.council, role, user),
            body,
        )
        if r.status_code < 300:
            assert p.plan_id is not None
            self._check_signed_off(p, p.plan_id, role, signed_on, sitting)
            p.plan_id = None
        self.settle()
        self._learn_deployments(p)

    def _check_signed_off(
        self, p: Person, plan_id: str, role: Role, signed_on: date, sitting: str | None
    ) -> None:
        """A plan of p.plan_weekly signed off by `role` dated `signed_on`: within the role's
        authority, and not dated after today."""
        candidates = [self.in_force(p.council, signed_on), self.in_force(p.council, self.today)]
        if not any(
            expected_may_sign_off(c, role, p.plan_weekly, p.client_group, sitting)
            for c in candidates
        ):
            at = f" at the panel's {sitting} sitting" if sitting else ""
            violation(
                "authority",
                f"{role.value} signed off {p}'s plan of {p.plan_weekly}p a week "
                f"({p.client_group}){at}; {candidates[0].policy_version} does not allow it",
            )
        if signed_on > self.today:
            violation(
                "dates",
                f"{p}'s plan was signed off dated {signed_on}, after today ({self.today})",
            )
        p.plans_signed_on[plan_id] = signed_on

    def _signed_off_ordinarily(self, p: Person) -> bool:
        if p.live_deployment is not None:
            return True
        if not self._agreed_ordinarily(p) or not self._write_plan(p, p.weekly):
            return False
        policy = self.in_force(p.council, self.today)
        role = lowest_role_to_sign_off(policy, p.plan_weekly, p.client_group)
        if role is not None:
            sitting = sitting_for(policy, p.plan_weekly) if role is Role.PANEL else None
            self._sign_off(p, role, STAFF_USERS[0], self.today, sitting)
        return p.live_deployment is not None

    def _arranged_ordinarily(self, p: Person) -> Deployment | None:
        if not self._signed_off_ordinarily(p):
            return None
        dep = p.live_deployment
        assert dep is not None
        if not dep.arranged:
            self._arrange(p, dep, False, "four_weekly", self.today, False)
        return dep if dep.arranged else None

    def _paying_ordinarily(self, p: Person) -> Deployment | None:
        dep = self._arranged_ordinarily(p)
        if dep is not None and not dep.signed:
            self._sign_agreement(p, dep, self.today, Role.CARE_MANAGER)
        return dep if dep is not None and dep.signed else None

    # --- the plan --------------------------------------------------------------------------

    @rule(
        person=people,
        around=LIMIT_NAMES,
        by=st.sampled_from(NEARBY),
        role=APPROVERS,
        user=st.sampled_from(STAFF_USERS),
        on=DAYS,
        sitting=st.sampled_from(("the right one", None, "ordinary", "separate")),
    )
    def sign_off_plan(
        self,
        person: tuple[str, str],
        around: str,
        by: int,
        role: Role,
        user: str,
        on: int,
        sitting: str | None,
    ) -> None:
        """POST /v1/plans (costed near a limit), submit, then POST /v1/plans/{id}/sign-off."""
        p = self.model[person]
        if not self._agreed_ordinarily(p):
            return
        limits = _limits(self.in_force(p.council, self.today), p.client_group)
        target = p.weekly if around == "the budget" else limits.get(around)
        if target is None or target + by <= 0 or not self._write_plan(p, target + by):
            return
        if sitting == "the right one":
            sitting = sitting_for(self.in_force(p.council, self.today), p.plan_weekly)
        self._sign_off(p, role, user, self.day(on), sitting)

    def _learn_deployments(self, p: Person) -> None:
        listed = self.call(
            "payments",
            "GET",
            f"/v1/deployments?person_id={p.person_id}",
            staff(p.council, Role.CARE_MANAGER),
        )
        for item in listed.json().get("items", []):
            if item["council"] != p.council or item["person_id"] != p.person_id:
                violation(
                    "isolation",
                    f"{p.council}'s deployments of {p.person_id} list {item['council']}'s "
                    f"deployment {item['deployment_id']}",
                )
                continue
            dep_id = str(item["deployment_id"])
            if item["status"] == "superseded":
                p.deployments.pop(dep_id, None)
                continue
            dep = p.deployments.setdefault(dep_id, Deployment(dep_id, str(item["plan_id"])))
            dep.signed = item["agreement_signed_on"] is not None
            dep.arranged = item["frequency"] is not None

    # --- payments --------------------------------------------------------------------------

    @rule(
        person=people,
        mix=st.booleans(),
        frequency=st.sampled_from(("four_weekly", "weekly", "annual")),
        first_due=st.sampled_from((0, -30, -1, 1, 7)),
        arrears_reason=st.booleans(),
    )
    def arrange_or_switch_deployment(
        self, person: tuple[str, str], mix: bool, frequency: str, first_due: int,
        arrears_reason: bool,
    ) -> None:  # fmt: skip
        """PUT /v1/deployments/{id}/arrangement (on a signed deployment: a switch)."""
        p = self.model[person]
        if self._signed_off_ordinarily(p):
            dep = p.live_deployment
            assert dep is not None
            self._arrange(p, dep, mix, frequency, self.day(first_due), arrears_reason)

    def _arrange(
        self, p: Person, dep: Deployment, mix: bool, frequency: str, first_due_on: date,
        arrears_reason: bool,
    ) -> None:  # fmt: skip
        cm = staff(p.council, Role.CARE_MANAGER)
        current = self.call("payments", "GET", f"/v1/deployments/{dep.deployment_id}", cm)
        if current.status_code != 200:
            return
        gross = int(current.json()["gross_annual_pence"])
        parts: list[dict[str, Any]] = [{"option": "direct_payment"}]
        if mix and gross > 1:
            half = gross // 2
            parts = [
                {"option": "direct_payment", "annual_pence": gross - half},
                {"option": "individual_service_fund", "annual_pence": half},
            ]
        body: dict[str, Any] = {
            "parts": parts,
            "frequency": frequency,
            "first_due_on": iso(first_due_on),
            "assessed_max_weekly_contribution_pence": 0,
        }
        if arrears_reason:
            body["arrears_reason"] = "Support started before the agreement came back"
        r = self.call(
            "payments", "PUT", f"/v1/deployments/{dep.deployment_id}/arrangement", cm, body
        )
        if r.status_code < 300:
            dep.arranged = True
            dep.first_due_on = first_due_on
            dep.arrears_reason = arrears_reason
            # Before the agreement an arrangement schedules nothing: arrears are the
            # agreement's to justify (_sign_agreement). A switch schedules at once.
            if dep.signed and first_due_on < self.today and not arrears_reason:
                violation(
                    "dates",
                    f"a switch for {p} with a first payment due {first_due_on}, before "
                    f"today ({self.today}), was accepted without an arrears reason",
                )
        self.settle()

    @rule(
        person=people,
        signed=DAYS,
        role=st.sampled_from(
            (Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL, Role.FINANCE, Role.AUDITOR)
        ),
        with_reason=st.booleans(),
    )
    def record_signed_agreement(
        self, person: tuple[str, str], signed: int, role: Role, with_reason: bool
    ) -> None:
        """POST /v1/deployments/{id}/agreement with the date it was signed."""
        p = self.model[person]
        dep = self._arranged_ordinarily(p)
        if dep is not None:
            self._sign_agreement(p, dep, self.day(signed), role, with_reason)

    def _sign_agreement(
        self, p: Person, dep: Deployment, signed_on: date, role: Role, with_reason: bool = False
    ) -> None:
        body: dict[str, Any] = {"signed_on": iso(signed_on)}
        if with_reason:
            body["arrears_reason"] = "The agreement came back after support had started"
        r = self.call(
            "payments",
            "POST",
            f"/v1/deployments/{dep.deployment_id}/agreement",
            staff(p.council, role),
            body,
        )
        if r.status_code < 300:
            self._check_signed_agreement(p, dep, signed_on, role, with_reason or dep.arrears_reason)
        self.settle()
        self._learn_deployments(p)

    def _check_signed_agreement(
        self, p: Person, dep: Deployment, signed_on: date, role: Role, reason: bool
    ) -> None:
        """An agreement recorded as signed on `signed_on`: not after today, not before its
        plan's sign-off, and its arrears (if any) with a reason and within `role`'s limit."""
        dep.signed = True
        plan_signed_on = p.plans_signed_on.get(dep.plan_id)
        if signed_on > self.today:
            violation(
                "dates",
                f"an agreement for {p} signed on {signed_on}, after today ({self.today}), "
                "was accepted",
            )
        if plan_signed_on is not None and signed_on < plan_signed_on:
            violation(
                "dates",
                f"an agreement for {p} signed on {signed_on}, before its plan was signed "
                f"off on {plan_signed_on}, was accepted",
            )
        self._check_arrears(p, dep, role, reason)

    def _check_arrears(self, p: Person, dep: Deployment, role: Role, reason: bool) -> None:
        """Instalments scheduled already past due are arrears: they need a reason and a role
        whose limit covers their total."""
        r = self.call(
            "payments",
            "GET",
            f"/v1/deployments/{dep.deployment_id}/schedule",
            staff(p.council, Role.FINANCE),
        )
        if r.status_code != 200:
            return
        arrears = sum(
            i["amount_pence"]
            for i in r.json()["items"]
            if i["status"] != "cancelled" and date.fromisoformat(i["due_on"]) < self.today
        )
        if not arrears:
            return
        if not reason:
            violation(
                "dates",
                f"an agreement for {p} scheduling {arrears}p of arrears (due before today, "
                f"{self.today}) was accepted without an arrears reason",
            )
        policy = self.in_force(p.council, self.today)
        if not expected_may_approve_arrears(policy, role, arrears):
            violation(
                "authority",
                f"{role.value} approved {arrears}p of arrears for {p}; "
                f"{policy.policy_version} does not allow it",
            )

    # --- bulk conversion ---------------------------------------------------------------------

    @rule(
        target=people,
        **A_NEW_PERSON,
        agree_as=APPROVERS,
        with_reason=st.booleans(),
        sign_off_as=APPROVERS,
        sign_off_on=DAYS,
        arrange_as=st.sampled_from(
            (Role.CARE_MANAGER, Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.FINANCE, Role.AUDITOR)
        ),
        first_due=st.sampled_from((0, -30, -1, 1, 7)),
        signed=DAYS,
        arrears_reason=st.booleans(),
    )
    def convert_client(
        self, council: str, person_id: str, group: int, answers: int, agree_as: Role,
        with_reason: bool, sign_off_as: Role, sign_off_on: int, arrange_as: Role,
        first_due: int, signed: int, arrears_reason: bool,
    ) -> Any:  # fmt: skip
        """A legacy client through the four conversion routes, a row each, as `pbj convert`
        sends them (POST /v1/conversions/assessments, budget-agreements, plans, deployments),
        by roles and on dates drawn as for the one-at-a-time calls. A row the routes convert
        is held to the same rules of authority and dates, and the person joins the model, so
        every later rule (releases, revisions, replays) reaches them too."""
        if (council, person_id) in self.model:
            return multiple()
        policy = self.in_force(council, self.today)
        client_group = policy.client_groups[group % len(policy.client_groups)].value
        self.conversions += 1
        ref = f"model-{self.conversions}"
        assessed = self._convert_row(
            "assessment",
            "assessments",
            staff(council, Role.CARE_MANAGER),
            {
                "ref": ref,
                "start": start_request(person_id, client_group),
                "answers": answers_request(policy, answers, informal_support=False),
                "validation": {"adjustments": [], "risks": []},
            },
        )
        if assessed is None:
            return multiple()
        self.settle()
        p = Person(council, person_id, client_group)
        self.model[p.key] = p
        self._learn_calculated_budget(p)
        # A stage whose row was refused is done the ordinary way, so that the later rows are
        # tried too.
        if p.budget_id is not None and not p.agreed:
            self._convert_agreement(p, ref, agree_as, with_reason)
        if self._agreed_ordinarily(p) and p.live_deployment is None:
            self._convert_plan(p, ref, sign_off_as, self.day(sign_off_on))
        if self._signed_off_ordinarily(p):
            dep = p.live_deployment
            assert dep is not None
            if not dep.signed:
                self._convert_deployment(
                    p, dep, ref, arrange_as, self.day(first_due), self.day(signed), arrears_reason
                )
        for holder in self.model.values():
            if holder.person_id == person_id:
                self._read_history_as(holder, holder.council, as_person=False)
        return p.key

    def _convert_row(
        self, service: str, route: str, who: Identity, row: dict[str, Any]
    ) -> dict[str, Any] | None:
        """POST /v1/conversions/{route} with one row: its result if it was converted. A
        refused row is refused as its own call would be: with a 4xx and a reason."""
        r = self.call(service, "POST", f"/v1/conversions/{route}", who, {"rows": [row]})
        if r.status_code >= 300:
            return None
        [answer] = r.json()["rows"]
        if answer["outcome"] == "rejected" and not (
            400 <= answer["status"] < 500 and answer.get("detail")
        ):
            violation(
                "errors",
                f"a {route} conversion row as {who} was refused with {answer['status']} "
                f"and no reason: {answer}",
            )
        done: dict[str, Any] | None = answer["result"] if answer["outcome"] == "done" else None
        return done

    def _convert_agreement(self, p: Person, ref: str, role: Role, with_reason: bool) -> None:
        row: dict[str, Any] = {"ref": ref, "person_id": p.person_id}
        if with_reason:
            row["ceiling_exception_reason"] = "Existing package agreed at panel before conversion"
        weekly, version, above_ceiling = p.weekly, p.policy_version, p.above_ceiling
        agreed = self._convert_row(
            "allocation", "budget-agreements", staff(p.council, role, STAFF_USERS[0]), row
        )
        if agreed is None:
            return
        agreed_at = clock.now()
        self._check_agreed(p, role, weekly, version, above_ceiling)
        budget = self.call(
            "allocation", "GET", f"/v1/budgets/{agreed['budget_id']}", staff(p.council, role)
        )
        if budget.status_code == 200:
            self._learn_budget(p, budget.json(), agreed_at)
        self.settle()

    def _convert_plan(self, p: Person, ref: str, role: Role, signed_on: date) -> None:
        policy = self.in_force(p.council, self.today)
        row = {
            "ref": ref,
            "sign_off_on": iso(signed_on),
            "plan": {
                "person_id": p.person_id,
                "budget_id": p.budget_id,
                "outcomes": ["Stay living in my own home"],
                "lines": [
                    {
                        "description": "Personal assistant, as before conversion",
                        "provider_kind": "personal_assistant",
                        "frequency": "weekly",
                        "amount_pence": p.weekly,
                        "domains": [d.key for d in policy.questionnaire.domains],
                        "outcomes": ["Stay living in my own home"],
                    }
                ],
                "contingency_weekly_pence": 0,
                "risk_mitigations": [],
            },
        }
        signed_off = self._convert_row("planning", "plans", staff(p.council, role), row)
        if signed_off is not None:
            p.plan_weekly = int(signed_off["weekly_pence"])
            self._check_signed_off(p, str(signed_off["plan_id"]), role, signed_on, None)
        self.settle()
        self._learn_deployments(p)

    def _convert_deployment(
        self, p: Person, dep: Deployment, ref: str, role: Role, first_due_on: date,
        signed_on: date, arrears_reason: bool,
    ) -> None:  # fmt: skip
        row: dict[str, Any] = {
            "ref": ref,
            "person_id": p.person_id,
            "plan_id": dep.plan_id,
            "arrangement": {
                "parts": [{"option": "direct_payment"}],
                "frequency": "four_weekly",
                "first_due_on": iso(first_due_on),
                "assessed_max_weekly_contribution_pence": 0,
            },
            "signed_on": iso(signed_on),
        }
        if arrears_reason:
            row["arrears_reason"] = "Support started before the records were converted"
        set_up = self._convert_row("payments", "deployments", staff(p.council, role), row)
        if set_up is not None:
            dep.arranged = True
            dep.first_due_on = first_due_on
            self._check_signed_agreement(p, dep, signed_on, role, arrears_reason)
        self.settle()
        self._learn_deployments(p)
        self._check_money(p)

    @rule(
        person=people,
        as_of=st.sampled_from((0, -1, 1, 28, 400)),
        role=st.sampled_from((Role.FINANCE, Role.OPERATIONS, Role.CARE_MANAGER)),
    )
    def release_payments(self, person: tuple[str, str], as_of: int, role: Role) -> None:
        """POST /v1/deployments/{id}/release as of a date."""
        p = self.model[person]
        dep = self._paying_ordinarily(p)
        if dep is None:
            return
        day = self.day(as_of)
        r = self.call(
            "payments",
            "POST",
            f"/v1/deployments/{dep.deployment_id}/release",
            staff(p.council, role),
            {"as_of": iso(day)},
        )
        self._check_release(r, day, f"releasing {p}'s deployment")
        self.settle()
        self._check_money(p)

    @rule(council=st.sampled_from(COUNCILS), as_of=st.sampled_from((0, 1, 28)))
    def release_everything_due(self, council: str, as_of: int) -> None:
        """POST /v1/payments/release-due for the council."""
        day = self.day(as_of)
        r = self.call(
            "payments",
            "POST",
            "/v1/payments/release-due",
            staff(council, Role.FINANCE),
            {"as_of": iso(day)},
        )
        self._check_release(r, day, f"{council}'s release of everything due")
        self.settle()
        for p in self.model.values():
            if p.council == council:
                self._check_money(p)

    def _check_release(self, r: Any, as_of: date, what: str) -> None:
        if r.status_code >= 300:
            return
        if as_of > self.today:
            violation(
                "money",
                f"{what} as of {as_of}, after today ({self.today}), answered {r.status_code} "
                f"and released {r.json().get('total_pence')}p",
            )
        for item in r.json().get("released", []):
            due_on = date.fromisoformat(item["due_on"])
            if due_on > self.today:
                violation(
                    "money",
                    f"{what}: payment {item['payment_id']} of {item['amount_pence']}p due on "
                    f"{due_on}, after today ({self.today}), was released",
                )

    def _check_money(self, p: Person) -> None:
        """Σ released ≤ Σ due by today under the person's signed schedules."""
        if "money" not in CHECKED:
            return
        released = due = 0
        late: list[str] = []
        viewer = staff(p.council, Role.FINANCE)
        for dep in p.deployments.values():
            if not dep.signed:
                continue
            r = self.call(
                "payments", "GET", f"/v1/deployments/{dep.deployment_id}/schedule", viewer
            )
            if r.status_code != 200:
                continue
            for i in r.json()["items"]:
                due_on = date.fromisoformat(i["due_on"])
                if i["status"] == "released":
                    released += i["amount_pence"]
                    if due_on > self.today:
                        late.append(f"{i['amount_pence']}p due {due_on}")
                if i["status"] != "cancelled" and due_on <= self.today:
                    due += i["amount_pence"]
        if late:
            violation("money", f"{p} has payments released before they are due: {late}")
        if released > due:
            violation(
                "money",
                f"{p} has been released {released}p but only {due}p is due by {self.today}",
            )

    @rule(
        person=people,
        role=st.sampled_from((Role.FINANCE, Role.TEAM_MANAGER)),
        resume=st.booleans(),
    )
    def suspend_or_resume(self, person: tuple[str, str], role: Role, resume: bool) -> None:
        """POST /v1/deployments/{id}/suspend or /resume."""
        p = self.model[person]
        dep = self._paying_ordinarily(p)
        if dep is None:
            return
        action = "resume" if resume else "suspend"
        self.call(
            "payments",
            "POST",
            f"/v1/deployments/{dep.deployment_id}/{action}",
            staff(p.council, role),
            {"reason": "Monitoring visit"},
        )
        self.settle()

    @rule(person=people, balance=st.sampled_from((0, 50_000, 5_000_000)))
    def check_unspent_funds(self, person: tuple[str, str], balance: int) -> None:
        """POST /v1/deployments/{id}/unspent-check (a clawback above the allowance)."""
        p = self.model[person]
        dep = self._paying_ordinarily(p)
        if dep is None:
            return
        self.call(
            "payments",
            "POST",
            f"/v1/deployments/{dep.deployment_id}/unspent-check",
            staff(p.council, Role.FINANCE),
            {"as_of": iso(self.today), "balance_pence": balance},
        )
        self.settle()
        self._check_money(p)

    # --- time, retries, redeliveries, restarts -------------------------------------------

    @rule(days=st.sampled_from((1, 7, 28, 90)))
    def move_clock_forward(self, days: int) -> None:
        """The council's clock moves on."""
        self.clock.advance(timedelta(days=days))

    @rule(index=st.integers(0, 10_000), fresh_key=st.booleans())
    def retry_call(self, index: int, fresh_key: bool) -> None:
        """Send an earlier call again: with its Idempotency-Key, or with a fresh one."""
        calls = [c for c in self.journey.calls if c.key is not None]
        if not calls:
            return
        earlier = calls[index % len(calls)]
        key = self.journey.fresh_key() if fresh_key else earlier.key
        self.call(
            earlier.service, earlier.method, earlier.path, earlier.identity, earlier.body, key
        )
        self.settle()
        self._check_everyones_money()

    @rule(
        index=st.integers(0, 10_000),
        as_role=st.sampled_from((*ANY_STAFF, Role.PERSON)),
        as_council=st.sampled_from(("same", *COUNCILS)),
    )
    def replay_key_as_someone_else(self, index: int, as_role: Role, as_council: str) -> None:
        """An earlier call's Idempotency-Key, path and body, sent by another identity."""
        calls = [c for c in self.journey.calls if c.key is not None and c.status < 300]
        if not calls:
            return
        earlier = calls[index % len(calls)]
        council = earlier.identity.council if as_council == "same" else as_council
        if as_role is Role.PERSON:
            who = citizen(council, PERSON_IDS[index % len(PERSON_IDS)])
        else:
            who = staff(council, as_role, earlier.identity.user)
        if who == earlier.identity:
            return
        # If this identity already succeeded with this key here, the answer is its own.
        answered_before = any(
            c.identity == who
            and c.key == earlier.key
            and (c.service, c.method, c.path) == (earlier.service, earlier.method, earlier.path)
            and c.status < 300
            for c in self.journey.calls
        )
        r = self.call(earlier.service, earlier.method, earlier.path, who, earlier.body, earlier.key)
        replayed = r.status_code < 300 and r.headers.get("Idempotent-Replayed") == "true"
        if replayed and not answered_before:
            violation(
                "idempotency",
                f"{who} sent {earlier.method} {earlier.service}{earlier.path} with the "
                f"Idempotency-Key {earlier.identity} used, and got {earlier.identity}'s "
                f"stored {r.status_code} answer back",
            )
        self.settle()

    @rule(index=st.integers(0, 10_000), by_operator=st.booleans())
    def redeliver_event(self, index: int, by_operator: bool) -> None:
        """The log delivers an already-published record once more: by itself, as an
        at-least-once log may, or because an operator ran `pbj events redeliver`."""
        records = self.journey.published_records()
        if by_operator:
            # An operator redelivers the journey's events; operator records are not among them.
            records = [r for r in records if r[0] in log_operations.EVENT_TOPICS]
        if not records:
            return
        topic, key, value = records[index % len(records)]
        if not by_operator:
            self.run(self.journey.redeliver(topic, key, value))
            self.settle()
            self._check_everyones_money()
            return
        document = json.loads(value)
        council = document.get("council") or document.get("data", {}).get("council")
        if not isinstance(council, str):
            return
        before = self._events_recorded(council, key)
        self.run(self.journey.redeliver_by_operator(document["id"], council))
        self.settle()
        after = self._events_recorded(council, key)
        if before is not None and after is not None and after != before:
            violation(
                "operations",
                f"redelivering event {document['id']} ({document['type']}) changed "
                f"{council}/{key}'s history from {before} to {after} events",
            )
        self._check_everyones_money()

    def _events_recorded(self, council: str, person_id: str) -> int | None:
        r = self.call(
            "audit", "GET", f"/v1/people/{person_id}/budget", staff(council, Role.AUDITOR)
        )
        return int(r.json()["events"]) if r.status_code == 200 else None

    @rule(service=st.sampled_from(("assessment", "allocation", "planning", "payments", "audit")))
    def restart_service(self, service: str) -> None:
        """Stop a service and start it again on the same database and log."""
        self.run(self.journey.restart_service(service))
        self.settle()

    def _check_everyones_money(self) -> None:
        for p in self.model.values():
            if p.deployments:
                self._check_money(p)

    # --- policy ----------------------------------------------------------------------------

    @rule(
        council=st.sampled_from(COUNCILS),
        team_manager_limit_change=st.sampled_from((-10_000, -1, 1, 10_000)),
        effective=st.sampled_from((-1, 0, 1, 28)),
    )
    def adopt_policy(self, council: str, team_manager_limit_change: int, effective: int) -> None:
        """POST /v1/policies: the council adopts a new version that moves its team
        manager's limits."""
        base = self.in_force(council, self.today)
        self.adoptions += 1
        document = policy_document(base)
        document["version"] = f"model.{self.adoptions}"
        effective_from = self.day(effective)
        document["effective_from"] = iso(effective_from)
        for ladder in ("plan_sign_off", "agreement_in_principle"):
            for lim in document["approvals"][ladder]:
                if lim["role"] == "team_manager" and lim["max_weekly_pence"] is not None:
                    lim["max_weekly_pence"] = max(
                        1, lim["max_weekly_pence"] + team_manager_limit_change
                    )
        r = self.call(
            "allocation",
            "POST",
            "/v1/policies",
            staff(council, Role.OPERATIONS),
            {"policy": document, "effective_from": iso(effective_from)},
        )
        if r.status_code < 300:
            self.adopted.setdefault(council, []).append(Policy.model_validate(document))
        self.settle()

    # --- the record ----------------------------------------------------------------------

    @rule(person=people)
    def alter_audit_row_then_replay(self, person: tuple[str, str]) -> None:
        """Someone with database access alters one of the person's stored audit rows; then
        POST /v1/replay (operations). The evidence must not vanish: verify still reports
        the chain, or a TamperDetected finding is listed."""
        p = self.model[person]
        # In a worker thread, with the event loop running: the audit service may hold a
        # write transaction that only the loop can finish.
        row = self.run(asyncio.to_thread(self._alter_first_audit_row, p))
        if row is None:
            return
        r = self.call("audit", "POST", "/v1/replay", staff(p.council, Role.OPERATIONS), {})
        if r.status_code >= 300:
            return
        self.run(self.journey.apps["audit"].state.replays.wait())
        self.settle()
        auditor = staff(p.council, Role.AUDITOR)
        verified = self.call("audit", "GET", f"/v1/people/{p.person_id}/verify", auditor)
        still_reported = verified.status_code == 200 and not verified.json()["ok"]
        findings = self.call("audit", "GET", "/v1/tamper-findings", auditor)
        listed = findings.status_code == 200 and p.person_id in findings.text
        if not (still_reported or listed):
            violation(
                "record",
                f"{p}'s audit row {row[0]} was altered; after a replay verify says ok and no "
                "TamperDetected finding is listed: the evidence vanished",
            )

    def _alter_first_audit_row(self, p: Person) -> tuple[int, str] | None:
        conn = sqlite3.connect(self.journey.data_dir / "audit.db", timeout=30)
        try:
            with conn:
                row = conn.execute(
                    "SELECT seq, canonical FROM audit_events WHERE person_id = ? "
                    "AND council = ? ORDER BY seq LIMIT 1",
                    (p.person_id, p.council),
                ).fetchone()
                if row is not None:
                    altered = re.sub(
                        r"\d", lambda m: str((int(m.group()) + 1) % 10), row[1], count=1
                    )
                    conn.execute(
                        "UPDATE audit_events SET canonical = ? WHERE person_id = ? AND seq = ?",
                        (altered, p.person_id, row[0]),
                    )
        finally:
            conn.close()
        return None if row is None else (int(row[0]), str(row[1]))

    # --- isolation -----------------------------------------------------------------------

    def _read_history_as(self, p: Person, council: str, as_person: bool) -> Identity:
        """GET the person's audit history with a token of `council`: never another council's
        event; the person's own council always gets it."""
        who = citizen(council, p.person_id) if as_person else staff(council, Role.TEAM_MANAGER)
        history = self.call("audit", "GET", f"/v1/people/{p.person_id}/history?limit=200", who)
        theirs = {
            q.budget_id: q for q in self.model.values() if q.council != council and q.budget_id
        }
        if history.status_code == 200:
            for item in history.json()["items"]:
                seen = item["data"].get("council")
                owner = theirs.get(str(item["data"].get("budget_id")))
                if (seen is not None and seen != council) or owner is not None:
                    violation(
                        "isolation",
                        f"{who} read {seen or owner}'s event {item['type']} in "
                        f"{p.person_id}'s history",
                    )
        elif council == p.council and history.status_code != 409:
            violation(
                "isolation",
                f"{who} could not read their own council's person {p}: "
                f"{history.status_code} {history.text[:200]}",
            )
        return who

    @rule(person=people, council=st.sampled_from(COUNCILS), as_person=st.booleans())
    def look_up_person_from_council(
        self, person: tuple[str, str], council: str, as_person: bool
    ) -> None:
        """GET the person's history, budgets and deployments with a token of `council`."""
        p = self.model[person]
        who = self._read_history_as(p, council, as_person)
        budgets = self.call("allocation", "GET", f"/v1/budgets?person_id={p.person_id}", who)
        if budgets.status_code == 200:
            for item in budgets.json()["items"]:
                one = self.call(
                    "allocation",
                    "GET",
                    f"/v1/budgets/{item['budget_id']}",
                    staff(council, Role.TEAM_MANAGER),
                )
                owner = one.json().get("council") if one.status_code == 200 else None
                mine = {q.budget_id for q in self.model.values() if q.council == council}
                if owner not in (None, council) or (
                    one.status_code != 200
                    and item["budget_id"] not in mine
                    and any(q.budget_id == item["budget_id"] for q in self.model.values())
                ):
                    violation(
                        "isolation",
                        f"{who} was listed budget {item['budget_id']} of another council",
                    )
        deployments = self.call("payments", "GET", f"/v1/deployments?person_id={p.person_id}", who)
        if deployments.status_code == 200:
            for item in deployments.json()["items"]:
                if item["council"] != council:
                    violation(
                        "isolation",
                        f"{who} was listed {item['council']}'s deployment of {p.person_id}",
                    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five databases migrated once; each run of the model starts from a copy."""
    template = tmp_path_factory.mktemp("journey-template")
    asyncio.run(_start_and_stop(template))
    return template


async def _start_and_stop(data_dir: Path) -> None:
    journey = Journey(data_dir)
    await journey.start()
    await journey.close()


@pytest.mark.parametrize("shard", range(SHARDS))
def test_the_journey_keeps_its_invariants(migrated: Path, shard: int) -> None:
    """STEPS in all, split over SHARDS runs with seeds of their own (`make soak` runs two
    side by side on two cores)."""
    JourneyModel.template = migrated
    model = (
        JourneyModel
        if shard == 0
        else seed(20261123 + shard)(type(f"JourneyModelShard{shard}", (JourneyModel,), {}))
    )
    run_state_machine_as_test(
        model,
        settings=settings(
            max_examples=max(1, STEPS // SHARDS // STEPS_PER_RUN),
            stateful_step_count=STEPS_PER_RUN,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
