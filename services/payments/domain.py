"""Payments: how a signed-off plan's money is held, scheduled, released and monitored.

Pure and synchronous: rules and entities only, no I/O. Steps 4 and 5 of In Control's
seven (seed 003 ch.2): hand over the budget, organise support. `Deployment` is the
aggregate; each of its responsibilities lives in a module named for it, and the council's
arithmetic in `rules/`:

- **Arranging and agreeing** (`arrangement.py`): deployment options (seed 000; seed 004
  §6.1), a mix split by amount, switching options without a reassessment; nothing is
  scheduled before the agreement is signed (seed 003 ch.4), and the agreement is signed
  neither after today nor before the plan it funds was signed off. Client contribution:
  `rules/contribution.py`; instalment counts and exact splits: `rules/schedules.py`.
- **Arrears** (`arrears_approval.py`): instalments already past due when scheduled need a
  reason and an approver whose limit covers them (`rules/arrears.py`).
- **Releases and holds** (`releases.py`): money leaves only when it is due, by the
  service's clock, never while the agreement is unsigned or payments are suspended.
- **Revised plans** (`handover.py`): a newer plan's deployment replaces the old one's
  future instalments when its agreement is signed, never paying the same week twice.
- **Monitoring** (`monitoring.py`): returns and receipts (`rules/receipts.py`), audit tier
  (`rules/audit_tiers.py`), unspent funds and clawback (`rules/clawback.py`), statements.
- **Finance export** (`export.py`) and **plausible dates** (`plausible_dates.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID, uuid4

from contracts import events as ev
from contracts.events import DeploymentOption
from contracts.policy import Monitoring, Policy
from contracts.vocabulary import Role
from rules.audit_tiers import audit_tier
from rules.contribution import contribution_annual
from rules.receipts import ReturnItem, next_return_due_on
from servicekit.errors import require_version
from services.payments import arrangement, handover, releases
from services.payments import monitoring as returns_and_checks
from services.payments.arrears_approval import ArrearsDecision
from services.payments.errors import DeploymentIsSuperseded
from services.payments.lifecycle import Agreement, Status
from services.payments.monitoring import (
    AccountStatement,
    MonitoringReturn,
    UnspentAction,
    UnspentCheck,
)
from services.payments.plausible_dates import plan_signed_off_on
from services.payments.schedules import (
    Instalment,
    InstalmentStatus,
    Part,
    PartRequest,
    PaymentFrequency,
    Schedule,
)

__all__ = [
    "Deployment",
    # The what-if reads these here until it reads rules/ itself (contribution, audit tier)
    # and contracts' DeploymentPart.
    "Part",
    "audit_tier",
    "contribution_annual",
]


@dataclass
class Deployment:
    """How one signed-off plan's budget is held, paid and monitored."""

    deployment_id: UUID
    council: str
    person_id: str
    plan_id: UUID
    plan_version: int
    budget_id: UUID
    policy_version: str
    gross_annual_pence: int
    one_off_pence: int
    contingency_weekly_pence: int
    updated_by: str
    status: Status = Status.AWAITING_ARRANGEMENT
    version: int = 1
    parts: list[Part] = field(default_factory=list)
    frequency: PaymentFrequency | None = None
    first_due_on: date | None = None
    assessed_max_weekly_contribution_pence: int | None = None
    contribution_annual_pence: int | None = None
    net_annual_pence: int | None = None
    audit_tier: str | None = None
    agreement: Agreement | None = None
    plan_year_starts_on: date | None = None
    plan_signed_off_on: date | None = None
    suspended_reason: str | None = None
    predecessor_id: UUID | None = None
    successor_id: UUID | None = None
    superseded_by: UUID | None = None
    schedules: list[Schedule] = field(default_factory=list)
    returns: list[MonitoringReturn] = field(default_factory=list)
    unspent_checks: list[UnspentCheck] = field(default_factory=list)
    events: list[ev.Event] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def for_signed_plan(
        cls, plan: ev.PlanSignedOff, *, policy: Policy, recorded_by: str
    ) -> Deployment:
        """A deployment awaiting its arrangement: gross = the plan's annual cost."""
        return cls(
            deployment_id=uuid4(),
            council=plan.council,
            person_id=plan.person_id,
            plan_id=plan.plan_id,
            plan_version=plan.plan_version,
            budget_id=plan.budget_id,
            policy_version=policy.policy_version,
            gross_annual_pence=plan.annual_pence,
            one_off_pence=plan.one_off_pence,
            contingency_weekly_pence=plan.contingency_weekly_pence,
            updated_by=recorded_by,
            plan_signed_off_on=plan_signed_off_on(plan, policy),
        )

    # --- reading ---------------------------------------------------------------------------

    # --- reading ---------------------------------------------------------------------------

    @property
    def suspended(self) -> bool:
        return self.suspended_reason is not None

    @property
    def instalments(self) -> list[Instalment]:
        return [i for s in self.schedules for i in s.instalments]

    def ordered_instalments(self) -> list[Instalment]:
        return sorted(self.instalments, key=lambda i: (i.due_on, i.option.value, i.number))

    def pence(self, status: InstalmentStatus) -> int:
        return sum(s.pence(status) for s in self.schedules)

    @property
    def clawed_back_pence(self) -> int:
        return sum(c.clawback_pence for c in self.unspent_checks)

    @property
    def last_reported_balance_pence(self) -> int | None:
        return self.returns[-1].balance_pence if self.returns else None

    def next_return_due_on(self, every_months: int | None) -> date | None:
        """The end of the next period a return covers (seed 004 App.1 Council B: quarterly)."""
        last_period_end = max((r.period_end for r in self.returns), default=None)
        return next_return_due_on(every_months, self.plan_year_starts_on, last_period_end)

    def weekly_basis_annual_pence(self) -> int:
        """The net annual of the direct payment parts; the whole net when there is none."""
        return returns_and_checks.weekly_basis_annual_pence(self)

    def statement(
        self, failed_pence: Mapping[DeploymentOption, int] | None = None
    ) -> list[AccountStatement]:
        """Paid in, spent and left for each managed account (seed 004 §6.2)."""
        return returns_and_checks.statement(self, failed_pence)

    # --- changing --------------------------------------------------------------------------

    def check_version(self, expected_version: int | None) -> None:
        require_version(f"deployment {self.deployment_id}", expected_version, self.version)

    def touch(self, actor: str) -> None:
        """A change was made by `actor`: the next save must find this version."""
        self.version += 1
        self.updated_by = actor

    def refuse_if_superseded(self) -> None:
        if self.status is Status.SUPERSEDED:
            raise DeploymentIsSuperseded(
                f"deployment {self.deployment_id} was superseded by deployment "
                f"{self.superseded_by}, the revised plan's"
            )

    def arrange(
        self,
        *,
        parts: Sequence[PartRequest],
        frequency: PaymentFrequency,
        first_due_on: date,
        assessed_max_weekly_contribution_pence: int | None,
        policy: Policy,
        actor: str,
        today: date,
        approver: Role | None = None,
        arrears_reason: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        """Choose how the budget is held and paid; on a signed deployment, switch options."""
        arrangement.arrange(
            self,
            parts=parts,
            frequency=frequency,
            first_due_on=first_due_on,
            assessed_max_weekly_contribution_pence=assessed_max_weekly_contribution_pence,
            policy=policy,
            actor=actor,
            today=today,
            approver=approver,
            arrears_reason=arrears_reason,
            expected_version=expected_version,
        )

    def sign_agreement(
        self,
        *,
        signed_on: date,
        actor: str,
        arrears: ArrearsDecision,
        expected_version: int | None = None,
        predecessor: Deployment | None = None,
        earlier: Sequence[Deployment] = (),
    ) -> None:
        """Record the signed agreement and schedule the money (seed 003 ch.4)."""
        arrangement.sign_agreement(
            self,
            signed_on=signed_on,
            actor=actor,
            arrears=arrears,
            expected_version=expected_version,
            predecessor=predecessor,
            earlier=earlier,
        )

    def check_handover(self, effective_from: date) -> None:
        handover.check_handover(self, effective_from)

    def check_no_week_paid_twice(self, first_due_on: date) -> None:
        handover.check_no_week_paid_twice(self, first_due_on)

    def hand_over_to(self, successor: Deployment, *, effective_from: date, actor: str) -> None:
        """Cancel this deployment's instalments from the successor's first payment on."""
        handover.hand_over_to(self, successor, effective_from=effective_from, actor=actor)

    def supersede_unstarted(self, successor: Deployment, *, actor: str) -> None:
        """A deployment never agreed has nothing scheduled: the revised plan replaces it."""
        handover.supersede_unstarted(self, successor, actor=actor)

    def await_successor(self, successor: Deployment, *, actor: str) -> None:
        """A revised plan is on its way: keep paying until its agreement is signed."""
        handover.await_successor(self, successor, actor=actor)

    def release_due(
        self,
        *,
        as_of: date,
        today: date,
        actor: str,
        strict: bool = False,
        expected_version: int | None = None,
    ) -> list[Instalment]:
        """Release every scheduled instalment due on or before as_of, each exactly once."""
        return releases.release_due(
            self,
            as_of=as_of,
            today=today,
            actor=actor,
            strict=strict,
            expected_version=expected_version,
        )

    def suspend(self, *, reason: str, actor: str, expected_version: int | None = None) -> None:
        """Hold every release until resumed (seed 004 App.1 Council D: 'put a hold')."""
        releases.suspend(self, reason=reason, actor=actor, expected_version=expected_version)

    def resume(self, *, reason: str, actor: str, expected_version: int | None = None) -> None:
        releases.resume(self, reason=reason, actor=actor, expected_version=expected_version)

    def record_return(
        self,
        *,
        period_start: date,
        period_end: date,
        items: Sequence[ReturnItem],
        balance_pence: int,
        option: DeploymentOption | None,
        monitoring: Monitoring,
        actor: str,
        today: date,
        expected_version: int | None = None,
    ) -> MonitoringReturn:
        """A return of what was spent; items needing a receipt without one are listed."""
        return returns_and_checks.record_return(
            self,
            period_start=period_start,
            period_end=period_end,
            items=items,
            balance_pence=balance_pence,
            option=option,
            monitoring=monitoring,
            actor=actor,
            today=today,
            expected_version=expected_version,
        )

    def check_unspent(
        self,
        *,
        as_of: date,
        balance_pence: int | None,
        action: UnspentAction | None,
        policy: Policy,
        actor: str,
        today: date,
        expected_version: int | None = None,
    ) -> UnspentCheck:
        """Apply the council's unspent-funds rule to a balance; raise a clawback above it."""
        return returns_and_checks.check_unspent(
            self,
            as_of=as_of,
            balance_pence=balance_pence,
            action=action,
            policy=policy,
            actor=actor,
            today=today,
            expected_version=expected_version,
        )
