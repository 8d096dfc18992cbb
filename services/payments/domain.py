"""Payments: how a signed-off plan's money is held, scheduled, released and monitored.

Pure and synchronous: rules and entities only, no I/O. Steps 4 and 5 of In Control's
seven (seed 003 ch.2): hand over the budget, organise support. The rules, by seed:

- **Deployment options** (seed 000; seed 004 §6.1): direct payment, council-managed
  account, third-party managed account, individual service fund, or a mix split by
  amount. Moving between options needs no reassessment: released instalments stay, the
  unreleased ones are replaced (:meth:`Deployment.arrange` on a signed deployment).
- **Client contribution** (seed 004 App.1 Council C): the person pays from their income
  up to a share of the plan's annual value (75% in Council C), capped at what their means
  test allows (the assessed maximum weekly charge x 52). The council pays the rest.
- **Agreement first** (seed 003 ch.4, contracts table): "Funding released once agreement
  signed and returned". Nothing is scheduled or released before the agreement is signed.
  The agreement is not signed after today nor before the plan it funds was signed off.
- **Money leaves only when it is due**: a release runs up to a day no later than today by
  the service's clock (servicekit.clock), never a date the caller chooses, and is dated
  today. Instalments already past due when they are scheduled (arrears) need a reason and
  an approver whose limit covers them (rules/arrears.py); ArrearsApproved records them.
  Every date the API takes has a plausible range (*plausible dates* below).
- **Exact money** (seed 003 ch.5 §5): instalments are `split_evenly` of each part's net
  annual, so a schedule adds up to its total to the penny.
- **Monitoring** (seed 004 App.1, §6.6): audit tier by annual value, returns every N
  months, receipts from a threshold, and the council's unspent-funds rule.
- **Revised plans**: a newer PlanSignedOff for the same person opens a new deployment
  that *replaces the old one's future instalments*. The handover happens when the new
  deployment's agreement is signed: every unreleased instalment of the old deployment due
  on or after the new first payment is cancelled, and the handover is refused while any
  old instalment due on or after that date has already been released, or while a plan
  superseded before pays (or will still pay) a week from that date, so the same weeks
  are never paid twice. Until then the old deployment goes on paying, so support does not
  stop while the revised plan is arranged. A deployment that never had a signed agreement
  is superseded at once (it has nothing scheduled).

A plan year is 52 weeks (364 days) from the first payment when the agreement is signed;
weekly pays 52 instalments, four-weekly 13, annual one up front (contracts/money.py).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid4

from contracts import events as ev
from contracts.events import DeploymentOption, DeploymentPart
from contracts.money import (
    FOUR_WEEK_PERIODS_PER_YEAR,
    WEEKS_PER_YEAR,
    Frequency,
    apply_basis_points,
    div_round_half_up,
    split_evenly,
)
from contracts.policy import Contribution, ContributionKind, Monitoring, Policy, UnspentRule
from contracts.vocabulary import Role
from rules import arrears as arrears_rule
from rules import authority
from servicekit.csvexport import Cell, csv_text
from servicekit.dates import EARLIEST_RECORD
from servicekit.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

PLAN_YEAR_DAYS = 364
MAX_PARTS = len(DeploymentOption)
QUARTER_WEEKS = FOUR_WEEK_PERIODS_PER_YEAR  # 13 weeks: a quarter of a 52-week year
MANAGED_OPTIONS = frozenset(
    {
        DeploymentOption.COUNCIL_MANAGED,
        DeploymentOption.THIRD_PARTY_MANAGED,
        DeploymentOption.INDIVIDUAL_SERVICE_FUND,
    }
)


# --- errors --------------------------------------------------------------------------------


class PaymentsError(DomainError):
    """Base of every refusal the payments service makes."""


class DeploymentNotFound(PaymentsError, NotFound):
    def __init__(self, deployment_id: UUID | str) -> None:
        super().__init__(f"deployment {deployment_id} not found")


class BatchNotFound(PaymentsError, NotFound):
    def __init__(self, batch_id: UUID | str) -> None:
        super().__init__(f"export batch {batch_id} not found")


class StaleVersion(PaymentsError, Conflict):
    def __init__(self, expected: int, actual: int | None = None) -> None:
        now = f" (it is now at version {actual})" if actual is not None else ""
        super().__init__(
            f"the deployment was changed by someone else since version {expected}{now}; "
            "reload it and try again"
        )


class AgreementNotSigned(PaymentsError, Conflict):
    """Seed 003 ch.4: funding is released only once the agreement is signed and returned."""


class AgreementAlreadySigned(PaymentsError, Conflict):
    pass


class ArrangementMissing(PaymentsError, Conflict):
    pass


class DeploymentIsSuperseded(PaymentsError, Conflict):
    pass


class PaymentsAreSuspended(PaymentsError, Conflict):
    pass


class AlreadySuspended(PaymentsError, Conflict):
    pass


class NotSuspended(PaymentsError, Conflict):
    pass


class HandoverBlocked(PaymentsError, Conflict):
    pass


class OverReleased(PaymentsError, Conflict):
    pass


class NothingToExport(PaymentsError, Conflict):
    pass


class ConcurrentExport(PaymentsError, Conflict):
    def __init__(self) -> None:
        super().__init__("another export took some of these payments meanwhile; try again")


class InvalidArrangement(PaymentsError, Invalid):
    pass


class PartsDoNotAddUp(PaymentsError, Invalid):
    pass


class InvalidReturn(PaymentsError, Invalid):
    pass


class InvalidUnspentCheck(PaymentsError, Invalid):
    pass


class UnknownCouncil(PaymentsError, Invalid):
    pass


class DateOutOfRange(PaymentsError, Invalid):
    pass


class ReleaseDateInFuture(PaymentsError, Invalid):
    """Nothing is released before it is due by the service's own clock."""


class SignedInFuture(PaymentsError, Invalid):
    pass


class SignedBeforeSignOff(PaymentsError, Invalid):
    pass


class ArrearsNeedReason(PaymentsError, Invalid):
    pass


class AboveArrearsLimit(PaymentsError, Forbidden):
    pass


# --- vocabulary ----------------------------------------------------------------------------


class Status(StrEnum):
    AWAITING_ARRANGEMENT = "awaiting_arrangement"
    AWAITING_AGREEMENT = "awaiting_agreement"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class PaymentFrequency(StrEnum):
    """How the recurring money is paid (seed 004): weekly, 4-weekly, or annual up front."""

    WEEKLY = "weekly"
    FOUR_WEEKLY = "four_weekly"
    ANNUAL = "annual"

    @property
    def as_money(self) -> Frequency:
        return Frequency(self.value)


class InstalmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    RELEASED = "released"
    CANCELLED = "cancelled"


class ScheduleKind(StrEnum):
    RECURRING = "recurring"
    ONE_OFF = "one_off"


class UnspentAction(StrEnum):
    """What a hold_or_clawback council does with a build-up (seed 004 App.1 Council D)."""

    CLAWBACK = "clawback"
    HOLD = "hold"


_PERIOD_DAYS = {Frequency.WEEKLY: 7, Frequency.FOUR_WEEKLY: 28}


# --- plausible dates -----------------------------------------------------------------------
# Every date the payments API takes, and the range it must fall in, in one place
# (docs/api.md lists them). "today" is the service's clock (servicekit.clock), never the
# caller's. A date outside its range is refused with 422 DateOutOfRange, except a release
# date or a signing date after today, which have errors of their own.

EARLIEST_RECORD_DATE = EARLIEST_RECORD
"""No payment, agreement, return or check of this service predates personal budgets."""
FIRST_DUE_DAYS_BEFORE_TODAY = 365
"""A first payment may be dated back up to a year (arrears, which need approval)."""
FIRST_DUE_DAYS_AFTER_TODAY = 730
"""... and forward up to two years."""
RECORD_DAYS_AFTER_TODAY = 366
"""A return's period, an unspent check's date and an export's up_to: at most a year on."""


@dataclass(frozen=True)
class DateRange:
    earliest: date
    latest: date


def first_due_range(today: date) -> DateRange:
    """first_due_on: from a year before today to two years after."""
    return DateRange(
        today - timedelta(days=FIRST_DUE_DAYS_BEFORE_TODAY),
        today + timedelta(days=FIRST_DUE_DAYS_AFTER_TODAY),
    )


def up_to_today(today: date) -> DateRange:
    """signed_on and a release's as_of: from 2000-01-01 to today."""
    return DateRange(EARLIEST_RECORD_DATE, today)


def record_range(today: date) -> DateRange:
    """Return periods, an unspent check's as_of, an export's up_to: 2000-01-01 to a year on."""
    return DateRange(EARLIEST_RECORD_DATE, today + timedelta(days=RECORD_DAYS_AFTER_TODAY))


def check_date(field_name: str, value: date, allowed: DateRange) -> None:
    if not allowed.earliest <= value <= allowed.latest:
        raise DateOutOfRange(
            f"{field_name} must be a date (YYYY-MM-DD) from {allowed.earliest.isoformat()} "
            f"to {allowed.latest.isoformat()}; {value.isoformat()} is outside that range"
        )


def release_date(as_of: date, today: date) -> date:
    """The date a release runs up to: never after today, so nothing leaves before it is due."""
    if as_of > today:
        raise ReleaseDateInFuture(
            f"as_of {as_of.isoformat()} is after today ({today.isoformat()}): only "
            "instalments already due can be released; leave as_of out to release what is "
            "due today"
        )
    check_date("as_of", as_of, up_to_today(today))
    return as_of


def plan_signed_off_on(plan: ev.PlanSignedOff, policy: Policy) -> date:
    """The day the plan was signed off, as planning recorded it.

    PlanSignedOff (v1) carries the first review date and the policy version it was worked
    out with; planning books the first review `reviews.first_after_days` after sign-off
    under that policy, so the sign-off date is exactly that many days before it.
    """
    return plan.first_review_on - timedelta(days=policy.reviews.first_after_days)


# --- pure rules ----------------------------------------------------------------------------


def contribution_annual(
    gross_annual_pence: int, rule: Contribution, assessed_max_weekly_pence: int
) -> int:
    """The person's yearly charge (seed 004 App.1 Council C).

    share_of_plan_capped_by_means: the share of the plan's annual value, but never more
    than the means-tested maximum (weekly x 52); none: nothing.
    """
    if rule.kind is ContributionKind.NONE:
        return 0
    share = apply_basis_points(gross_annual_pence, rule.share_of_plan_basis_points)
    return min(share, assessed_max_weekly_pence * WEEKS_PER_YEAR, gross_annual_pence)


def split_by_amount(total_pence: int, weights: Sequence[int]) -> list[int]:
    """Split a total in proportion to weights, to the penny (largest remainder first).

    The shares add up to the total exactly; the odd pence go to the largest remainders,
    the earlier part first on a tie.
    """
    whole = sum(weights)
    if whole == 0:
        if total_pence:
            raise ValueError("cannot split money over weights that add up to nothing")
        return [0 for _ in weights]
    shares = [total_pence * w // whole for w in weights]
    remainders = [total_pence * w % whole for w in weights]
    left = total_pence - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


@dataclass(frozen=True)
class PartRequest:
    """One option asked for; annual_pence None means the whole budget (one part only)."""

    option: DeploymentOption
    annual_pence: int | None = None


def resolve_parts(
    requests: Sequence[PartRequest], gross_annual_pence: int
) -> list[tuple[DeploymentOption, int]]:
    """Validate a mix: options once each; amounts add up exactly to the gross annual."""
    if not requests:
        raise InvalidArrangement("parts: give at least one deployment option")
    if len(requests) > MAX_PARTS:
        raise InvalidArrangement(f"parts: at most {MAX_PARTS} options")
    options = [r.option for r in requests]
    if len(set(options)) != len(options):
        raise InvalidArrangement("parts: each option may appear only once")
    if any(r.annual_pence is None for r in requests):
        if len(requests) > 1:
            index = next(i for i, r in enumerate(requests) if r.annual_pence is None)
            raise InvalidArrangement(
                f"parts[{index}].annual_pence is required when the budget is split "
                "between options (only a single part may leave it out to take it all)"
            )
        return [(requests[0].option, gross_annual_pence)]
    amounts = [r.annual_pence or 0 for r in requests]
    if gross_annual_pence > 0:
        for index, amount in enumerate(amounts):
            if amount <= 0:
                raise InvalidArrangement(f"parts[{index}].annual_pence must be more than 0")
    total = sum(amounts)
    if total != gross_annual_pence:
        raise PartsDoNotAddUp(
            f"parts: the annual_pence of the parts add up to {total} but the plan's gross "
            f"annual is {gross_annual_pence}; a mix is split by amount and must add up exactly"
        )
    return list(zip(options, amounts, strict=True))


def audit_basis_pence(parts: Sequence[Part], gross_annual_pence: int) -> int:
    """The annual value the audit tier is judged on (seed 004 App.1 Council A).

    The gross annual value of the direct payment part (the money the person accounts for,
    their own contribution included); the whole budget when there is no direct payment.
    Gross, so an auditor can recompute the tier from DeploymentSetUp's parts.
    """
    dp = [p.annual_pence for p in parts if p.option is DeploymentOption.DIRECT_PAYMENT]
    return sum(dp) if dp else gross_annual_pence


def audit_tier(parts: Sequence[Part], gross_annual_pence: int, monitoring: Monitoring) -> str:
    return monitoring.audit_tier(audit_basis_pence(parts, gross_annual_pence))


@dataclass(frozen=True)
class ReturnItem:
    description: str
    amount_pence: int
    receipt: bool


def missing_receipts(items: Sequence[ReturnItem], required_from_pence: int) -> list[int]:
    """Indexes of items at or above the threshold that have no receipt.

    Seed 004 App.1 Council D: "Anything under £50 does not require a receipt", so an
    item of exactly the threshold needs one.
    """
    return [
        index
        for index, item in enumerate(items)
        if item.amount_pence >= required_from_pence and not item.receipt
    ]


def unspent_allowance(
    rule: UnspentRule,
    monitoring: Monitoring,
    *,
    weekly_basis_annual_pence: int,
    contingency_weekly_pence: int,
) -> int | None:
    """How much of an unspent balance the person may keep (None: no limit).

    - above_weeks_of_payment (seed 004 App.1 Council A): the equivalent of N weeks of
      direct payments, computed exactly as annual x N / 52 rounded half up.
    - above_contingency (seed 004 App.1 Council B, recouped quarterly): the plan's agreed
      contingency for a quarter, contingency_weekly_pence x 13.
    - hold_or_clawback (seed 004 App.1 Council D): nothing; any build-up above zero may be
      held or clawed back.
    - none: no limit.
    """
    if rule is UnspentRule.ABOVE_WEEKS_OF_PAYMENT:
        weeks = monitoring.unspent_weeks_allowed or 0
        return div_round_half_up(weekly_basis_annual_pence * weeks, WEEKS_PER_YEAR)
    if rule is UnspentRule.ABOVE_CONTINGENCY:
        return contingency_weekly_pence * QUARTER_WEEKS
    if rule is UnspentRule.HOLD_OR_CLAWBACK:
        return 0
    return None


def clawback_amount(balance_pence: int, allowance_pence: int | None) -> int:
    if allowance_pence is None:
        return 0
    return max(0, balance_pence - allowance_pence)


def add_months(day: date, months: int) -> date:
    """The same day N months on, or the month's last day when it is shorter."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def instalments_until(frequency: Frequency, first_due_on: date, year_end: date) -> int:
    """How many instalments fall from the first due date to the end of the plan year.

    For a whole plan year: weekly 52, four-weekly 13, annual 1.
    """
    if frequency not in _PERIOD_DAYS:
        return 1
    days = (year_end - first_due_on).days
    return max(1, math.ceil(days / _PERIOD_DAYS[frequency]))


# --- entities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    option: DeploymentOption
    annual_pence: int
    net_annual_pence: int

    def as_event(self) -> DeploymentPart:
        return DeploymentPart(option=self.option, annual_pence=self.annual_pence)


@dataclass
class Instalment:
    instalment_id: UUID
    schedule_id: UUID
    number: int
    option: DeploymentOption
    due_on: date
    amount_pence: int
    status: InstalmentStatus = InstalmentStatus.SCHEDULED
    payment_id: UUID | None = None
    released_on: date | None = None
    released_by: str | None = None


@dataclass
class Schedule:
    schedule_id: UUID
    option: DeploymentOption
    frequency: Frequency
    kind: ScheduleKind
    first_due_on: date
    total_pence: int
    instalments: list[Instalment]
    created_by: str

    @classmethod
    def plan(
        cls,
        *,
        option: DeploymentOption,
        frequency: Frequency,
        kind: ScheduleKind,
        first_due_on: date,
        total_pence: int,
        count: int,
        created_by: str,
    ) -> Schedule:
        """Instalments of split_evenly(total, count), so they add up to the total exactly."""
        schedule_id = uuid4()
        step = timedelta(days=_PERIOD_DAYS.get(frequency, 0))
        instalments = [
            Instalment(
                instalment_id=uuid4(),
                schedule_id=schedule_id,
                number=index + 1,
                option=option,
                due_on=first_due_on + step * index,
                amount_pence=amount,
            )
            for index, amount in enumerate(split_evenly(total_pence, count))
        ]
        return cls(
            schedule_id=schedule_id,
            option=option,
            frequency=frequency,
            kind=kind,
            first_due_on=first_due_on,
            total_pence=total_pence,
            instalments=instalments,
            created_by=created_by,
        )

    def pence(self, status: InstalmentStatus) -> int:
        return sum(i.amount_pence for i in self.instalments if i.status is status)


@dataclass(frozen=True)
class Agreement:
    signed_on: date
    recorded_by: str


@dataclass(frozen=True)
class ArrearsDecision:
    """What deciding on arrears needs: today, who asks, why, and the council's limits."""

    today: date
    approver: Role | None
    reason: str | None
    policy: Policy


@dataclass
class MonitoringReturn:
    return_id: UUID
    option: DeploymentOption
    period_start: date
    period_end: date
    items: list[ReturnItem]
    balance_pence: int
    missing_receipts: list[int]
    recorded_by: str

    @property
    def spent_pence(self) -> int:
        return sum(item.amount_pence for item in self.items)


@dataclass
class UnspentCheck:
    check_id: UUID
    as_of: date
    balance_pence: int
    rule: UnspentRule
    allowance_pence: int | None
    clawback_pence: int
    action: UnspentAction | None
    clawback_id: UUID | None
    held: bool
    recorded_by: str


@dataclass(frozen=True)
class AccountStatement:
    """What a managed account has left (seed 004 §6.2: 'monthly statements')."""

    option: DeploymentOption
    paid_in_pence: int
    spent_pence: int
    last_reported_balance_pence: int | None
    # Released, but finance reported the payment failed: the money never reached the
    # account, so it is not paid in until finance reports it paid after all.
    failed_pence: int = 0

    @property
    def balance_left_pence(self) -> int:
        return self.paid_in_pence - self.spent_pence


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
        if every_months is None or self.plan_year_starts_on is None:
            return None
        if self.returns:
            start = max(r.period_end for r in self.returns) + timedelta(days=1)
        else:
            start = self.plan_year_starts_on
        return add_months(start, every_months)

    def statement(
        self, failed_pence: Mapping[DeploymentOption, int] | None = None
    ) -> list[AccountStatement]:
        """Paid in, spent and left for each managed account (seed 004 §6.2).

        `failed_pence`: by option, what finance reported failed among the released
        payments (the ledger holds the outcomes, not the deployment).
        """
        failed = failed_pence or {}
        options = [p.option for p in self.parts if p.option in MANAGED_OPTIONS]
        options += sorted(
            {s.option for s in self.schedules if s.option in MANAGED_OPTIONS} - set(options)
        )
        accounts = []
        for option in options:
            returns = [r for r in self.returns if r.option is option]
            accounts.append(
                AccountStatement(
                    option=option,
                    paid_in_pence=sum(
                        s.pence(InstalmentStatus.RELEASED)
                        for s in self.schedules
                        if s.option is option
                    )
                    - failed.get(option, 0),
                    spent_pence=sum(r.spent_pence for r in returns),
                    last_reported_balance_pence=returns[-1].balance_pence if returns else None,
                    failed_pence=failed.get(option, 0),
                )
            )
        return accounts

    def take_events(self) -> list[ev.Event]:
        taken, self.events = self.events, []
        return taken

    # --- changing --------------------------------------------------------------------------

    def check_version(self, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != self.version:
            raise StaleVersion(expected_version, self.version)

    def _touch(self, actor: str) -> None:
        self.version += 1
        self.updated_by = actor

    def _refuse_if_superseded(self) -> None:
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
        """Choose how the budget is held and paid; on a signed deployment, switch options.

        A switch needs no reassessment (seed 004 §6.1): the gross and, unless a new means
        figure is given, the contribution stay; released instalments stay; every unreleased
        instalment is cancelled and new schedules pay what is left of the net annual from
        first_due_on to the end of the plan year. A switch dated back schedules arrears,
        which need a reason and an approver (rules/arrears.py), as an agreement's do.
        """
        self.check_version(expected_version)
        self._refuse_if_superseded()
        check_date("first_due_on", first_due_on, first_due_range(today))
        resolved = resolve_parts(parts, self.gross_annual_pence)
        assessed = assessed_max_weekly_contribution_pence
        if assessed is None:
            assessed = self.assessed_max_weekly_contribution_pence
        if assessed is None:
            if policy.contribution.kind is not ContributionKind.NONE:
                raise InvalidArrangement(
                    "assessed_max_weekly_contribution_pence is required: the most the "
                    "financial assessment says the person can pay a week (0 if none)"
                )
            assessed = 0
        contribution = contribution_annual(self.gross_annual_pence, policy.contribution, assessed)
        net = self.gross_annual_pence - contribution
        nets = split_by_amount(net, [amount for _, amount in resolved])
        new_parts = [
            Part(option=option, annual_pence=amount, net_annual_pence=part_net)
            for (option, amount), part_net in zip(resolved, nets, strict=True)
        ]
        if self.agreement is not None:
            self._switch(
                new_parts,
                frequency,
                first_due_on,
                net,
                actor,
                arrears=ArrearsDecision(
                    today=today, approver=approver, reason=arrears_reason, policy=policy
                ),
            )
        else:
            self.status = Status.AWAITING_AGREEMENT
        self.parts = new_parts
        self.frequency = frequency
        self.first_due_on = first_due_on
        self.assessed_max_weekly_contribution_pence = assessed
        self.contribution_annual_pence = contribution
        self.net_annual_pence = net
        self.audit_tier = audit_tier(new_parts, self.gross_annual_pence, policy.monitoring)
        self.events.append(
            ev.DeploymentSetUp(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                plan_id=self.plan_id,
                parts=[p.as_event() for p in new_parts],
                gross_annual_pence=self.gross_annual_pence,
                contribution_annual_pence=contribution,
                net_annual_pence=net,
                audit_tier=self.audit_tier,
                policy_version=self.policy_version,
            )
        )
        self._touch(actor)

    def _switch(
        self,
        new_parts: list[Part],
        frequency: PaymentFrequency,
        first_due_on: date,
        net_annual_pence: int,
        actor: str,
        arrears: ArrearsDecision,
    ) -> None:
        assert self.plan_year_starts_on is not None
        year_start = self.plan_year_starts_on
        year_end = year_start + timedelta(days=PLAN_YEAR_DAYS)
        if not year_start <= first_due_on < year_end:
            raise InvalidArrangement(
                f"first_due_on must fall within the plan year, {year_start} to "
                f"{year_end - timedelta(days=1)}"
            )
        recurring = [s for s in self.schedules if s.kind is ScheduleKind.RECURRING]
        released = [
            i for s in recurring for i in s.instalments if i.status is InstalmentStatus.RELEASED
        ]
        last_released = max((i.due_on for i in released), default=None)
        if last_released is not None and first_due_on <= last_released:
            raise InvalidArrangement(
                f"first_due_on must fall after the last released instalment, due on "
                f"{last_released}: released payments stay as they are"
            )
        released_pence = sum(i.amount_pence for i in released)
        remaining = net_annual_pence - released_pence
        if remaining < 0:
            raise OverReleased(
                f"{released_pence} pence has already been released, more than the new net "
                f"annual of {net_annual_pence}"
            )
        cancelled = [i for i in self.instalments if i.status is InstalmentStatus.SCHEDULED]
        one_off_pending = any(
            i.status is InstalmentStatus.SCHEDULED
            for s in self.schedules
            if s.kind is ScheduleKind.ONE_OFF
            for i in s.instalments
        )
        count = instalments_until(frequency.as_money, first_due_on, year_end)
        remaining_by_part = split_by_amount(remaining, [p.annual_pence for p in new_parts])
        new_schedules = [
            Schedule.plan(
                option=part.option,
                frequency=frequency.as_money,
                kind=ScheduleKind.RECURRING,
                first_due_on=first_due_on,
                total_pence=amount,
                count=count,
                created_by=actor,
            )
            for part, amount in zip(new_parts, remaining_by_part, strict=True)
            if amount > 0
        ]
        if one_off_pending:
            new_schedules.append(self._one_off_schedule(new_parts, first_due_on, actor))
        arrears_approved = self._approve_arrears(new_schedules, arrears, actor)
        for instalment in cancelled:
            instalment.status = InstalmentStatus.CANCELLED
        previous_parts = [p.as_event() for p in self.parts]
        self.schedules.extend(new_schedules)
        self.events.append(
            ev.DeploymentSwitched(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                previous_parts=previous_parts,
                parts=[p.as_event() for p in new_parts],
                effective_from=first_due_on,
                cancelled_instalments=len(cancelled),
                cancelled_pence=sum(i.amount_pence for i in cancelled),
                released_pence=released_pence,
                remaining_net_pence=remaining,
            )
        )
        if arrears_approved is not None:
            self.events.append(arrears_approved)
        self.events.extend(self._scheduled_event(s) for s in new_schedules)

    def _approve_arrears(
        self, schedules: Sequence[Schedule], decision: ArrearsDecision, actor: str
    ) -> ev.ArrearsApproved | None:
        """Refuse arrears without a reason or above the approver's limit; else record them."""
        due = [
            arrears_rule.DueAmount(i.due_on, i.amount_pence)
            for s in schedules
            for i in s.instalments
        ]
        arrears = arrears_rule.arrears_among(due, decision.today)
        if not arrears:
            return None
        earliest = arrears.earliest_due_on
        assert earliest is not None
        what = (
            f"{len(arrears.instalments)} instalment(s) of {arrears.total_pence} pence were due "
            f"before today ({decision.today.isoformat()}), from {earliest.isoformat()}, and "
            "would be paid at once"
        )
        reason = (decision.reason or "").strip()
        if not reason:
            raise ArrearsNeedReason(f"{what}: give arrears_reason, or a first_due_on from today on")
        if decision.approver is None or not authority.may_approve_arrears(
            decision.policy, decision.approver, arrears.total_pence
        ):
            who = ", ".join(
                r.value
                for r in authority.who_may_approve_arrears(decision.policy, arrears.total_pence)
            )
            raise AboveArrearsLimit(
                f"{what}; arrears of that size are approved by: {who or 'no role'} "
                f"(policy {decision.policy.policy_version})"
            )
        return ev.ArrearsApproved(
            person_id=self.person_id,
            council=self.council,
            deployment_id=self.deployment_id,
            instalments=len(arrears.instalments),
            amount_pence=arrears.total_pence,
            earliest_due_on=earliest,
            recorded_on=decision.today,
            reason=reason,
            approved_by=actor[:200],
            approved_by_role=decision.approver,
            policy_version=decision.policy.policy_version,
        )

    def _one_off_schedule(self, parts: list[Part], due_on: date, actor: str) -> Schedule:
        """The plan's one-off cost, paid once with the first instalment, in full (no
        contribution is taken from it), to the direct payment if there is one, else to
        the first part."""
        options = [p.option for p in parts]
        option = (
            DeploymentOption.DIRECT_PAYMENT
            if DeploymentOption.DIRECT_PAYMENT in options
            else options[0]
        )
        return Schedule.plan(
            option=option,
            frequency=Frequency.ONE_OFF,
            kind=ScheduleKind.ONE_OFF,
            first_due_on=due_on,
            total_pence=self.one_off_pence,
            count=1,
            created_by=actor,
        )

    def _scheduled_event(self, schedule: Schedule) -> ev.PaymentScheduled:
        return ev.PaymentScheduled(
            person_id=self.person_id,
            council=self.council,
            schedule_id=schedule.schedule_id,
            deployment_id=self.deployment_id,
            option=schedule.option,
            frequency=schedule.frequency,
            total_pence=schedule.total_pence,
            instalments=len(schedule.instalments),
            first_due_on=schedule.first_due_on,
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
        """Record the signed agreement and schedule the money (seed 003 ch.4).

        One schedule per part (weekly 52, four-weekly 13, annual 1 instalment from
        first_due_on), plus a one-off instalment for the plan's one-off cost. If this
        deployment replaces an older one, the older one's instalments from first_due_on on
        are cancelled in the same step; `earlier`, the person's deployments superseded
        before, may still pay up to their own handover, so first_due_on must fall after
        every week they paid or will pay. The agreement is not signed in the future nor
        before the plan was signed off; instalments already past due are arrears
        (rules/arrears.py).
        """
        self.check_version(expected_version)
        self._refuse_if_superseded()
        today = arrears.today
        if signed_on > today:
            raise SignedInFuture(
                f"signed_on {signed_on.isoformat()} is after today ({today.isoformat()}): "
                "record the agreement once the person has signed it"
            )
        check_date("signed_on", signed_on, up_to_today(today))
        if self.plan_signed_off_on is not None and signed_on < self.plan_signed_off_on:
            raise SignedBeforeSignOff(
                f"signed_on {signed_on.isoformat()} is before the plan was signed off "
                f"({self.plan_signed_off_on.isoformat()}): the agreement funds that plan"
            )
        if self.agreement is not None:
            raise AgreementAlreadySigned(
                f"the agreement was already signed on {self.agreement.signed_on}"
            )
        if not self.parts or self.frequency is None or self.first_due_on is None:
            raise ArrangementMissing(
                "set the arrangement (options, frequency, first payment) before the agreement"
            )
        check_date("first_due_on", self.first_due_on, first_due_range(today))
        if predecessor is not None:
            predecessor.check_handover(self.first_due_on)
        for other in earlier:
            other.check_no_week_paid_twice(self.first_due_on)
        start = self.first_due_on
        year_end = start + timedelta(days=PLAN_YEAR_DAYS)
        count = instalments_until(self.frequency.as_money, start, year_end)
        schedules = [
            Schedule.plan(
                option=part.option,
                frequency=self.frequency.as_money,
                kind=ScheduleKind.RECURRING,
                first_due_on=start,
                total_pence=part.net_annual_pence,
                count=count,
                created_by=actor,
            )
            for part in self.parts
            if part.net_annual_pence > 0
        ]
        if self.one_off_pence > 0:
            schedules.append(self._one_off_schedule(self.parts, start, actor))
        arrears_approved = self._approve_arrears(schedules, arrears, actor)
        self.agreement = Agreement(signed_on=signed_on, recorded_by=actor)
        self.plan_year_starts_on = start
        self.status = Status.ACTIVE
        self.schedules.extend(schedules)
        self.events.append(
            ev.AgreementSigned(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                signed_on=signed_on,
                recorded_by=actor,
            )
        )
        if arrears_approved is not None:
            self.events.append(arrears_approved)
        self.events.extend(self._scheduled_event(s) for s in schedules)
        self._touch(actor)
        if predecessor is not None:
            predecessor.hand_over_to(self, effective_from=start, actor=actor)

    def check_handover(self, effective_from: date) -> None:
        released = [
            i
            for i in self.instalments
            if i.status is InstalmentStatus.RELEASED and i.due_on >= effective_from
        ]
        if released:
            last = max(i.due_on for i in released)
            raise HandoverBlocked(
                f"the previous plan's deployment {self.deployment_id} has already released "
                f"instalments due up to {last}; the revised plan's first_due_on must fall "
                "after that so the same weeks are not paid twice"
            )

    def check_no_week_paid_twice(self, first_due_on: date) -> None:
        """A superseded deployment still pays what it released and what was due before its
        handover; a later plan dated back must start after all of that."""
        paying = [i.due_on for i in self.instalments if i.status is not InstalmentStatus.CANCELLED]
        if paying and first_due_on <= max(paying):
            raise HandoverBlocked(
                f"an earlier plan's deployment {self.deployment_id} pays instalments due up "
                f"to {max(paying)}; the revised plan's first_due_on must fall after that so "
                "the same weeks are not paid twice"
            )

    def hand_over_to(self, successor: Deployment, *, effective_from: date, actor: str) -> None:
        """Cancel this deployment's instalments from the successor's first payment on."""
        self.check_handover(effective_from)
        cancelled = [
            i
            for i in self.instalments
            if i.status is InstalmentStatus.SCHEDULED and i.due_on >= effective_from
        ]
        for instalment in cancelled:
            instalment.status = InstalmentStatus.CANCELLED
        self._superseded(successor, effective_from, cancelled, actor)

    def supersede_unstarted(self, successor: Deployment, *, actor: str) -> None:
        """A deployment never agreed has nothing scheduled: the revised plan replaces it."""
        if self.agreement is not None:
            raise AgreementAlreadySigned("a signed deployment is handed over, not dropped")
        self._superseded(successor, None, [], actor)

    def await_successor(self, successor: Deployment, *, actor: str) -> None:
        """A revised plan is on its way: keep paying until its agreement is signed."""
        self.successor_id = successor.deployment_id
        successor.predecessor_id = self.deployment_id
        self._touch(actor)

    def _superseded(
        self,
        successor: Deployment,
        effective_from: date | None,
        cancelled: list[Instalment],
        actor: str,
    ) -> None:
        self.status = Status.SUPERSEDED
        self.superseded_by = successor.deployment_id
        self.successor_id = successor.deployment_id
        self.events.append(
            ev.DeploymentSuperseded(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                superseded_by=successor.deployment_id,
                plan_id=successor.plan_id,
                effective_from=effective_from,
                cancelled_instalments=len(cancelled),
                cancelled_pence=sum(i.amount_pence for i in cancelled),
            )
        )
        self._touch(actor)

    def release_due(
        self,
        *,
        as_of: date,
        today: date,
        actor: str,
        strict: bool = False,
        expected_version: int | None = None,
    ) -> list[Instalment]:
        """Release every scheduled instalment due on or before as_of, each exactly once.

        as_of is never after today by the service's clock, so nothing leaves before it
        is due; an earlier as_of catches up to that date only. Each release is dated
        today (released_on), the day the money actually leaves, whatever as_of was.
        Nothing is released before the agreement is signed (seed 003 ch.4) or while the
        deployment is suspended; strict (one deployment asked for by name) refuses then,
        otherwise (the council-wide run) the deployment is passed over.
        """
        as_of = release_date(as_of, today)
        self.check_version(expected_version)
        if self.agreement is None or as_of < self.agreement.signed_on:
            if strict:
                raise AgreementNotSigned(
                    "the agreement has not been signed"
                    + (
                        f" by {as_of} (it was signed on {self.agreement.signed_on})"
                        if self.agreement is not None
                        else ""
                    )
                    + ": funding is released only once the agreement is signed and returned"
                )
            return []
        if self.suspended:
            if strict:
                raise PaymentsAreSuspended(f"payments are suspended: {self.suspended_reason}")
            return []
        due = [
            i
            for i in self.ordered_instalments()
            if i.status is InstalmentStatus.SCHEDULED and i.due_on <= as_of
        ]
        for instalment in due:
            instalment.status = InstalmentStatus.RELEASED
            instalment.payment_id = uuid4()
            instalment.released_on = today
            instalment.released_by = actor
            self.events.append(
                ev.PaymentReleased(
                    person_id=self.person_id,
                    council=self.council,
                    payment_id=instalment.payment_id,
                    schedule_id=instalment.schedule_id,
                    deployment_id=self.deployment_id,
                    instalment_number=instalment.number,
                    option=instalment.option,
                    amount_pence=instalment.amount_pence,
                    due_on=instalment.due_on,
                )
            )
        if due:
            self._touch(actor)
        return due

    def suspend(self, *, reason: str, actor: str, expected_version: int | None = None) -> None:
        """Hold every release until resumed (seed 004 App.1 Council D: 'put a hold')."""
        self.check_version(expected_version)
        if self.suspended:
            raise AlreadySuspended(f"payments are already suspended: {self.suspended_reason}")
        self.suspended_reason = reason
        self.events.append(
            ev.PaymentsSuspended(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                reason=reason,
            )
        )
        self._touch(actor)

    def resume(self, *, reason: str, actor: str, expected_version: int | None = None) -> None:
        self.check_version(expected_version)
        if not self.suspended:
            raise NotSuspended("payments are not suspended")
        self.suspended_reason = None
        self.events.append(
            ev.PaymentsResumed(
                person_id=self.person_id,
                council=self.council,
                deployment_id=self.deployment_id,
                reason=reason,
            )
        )
        self._touch(actor)

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
        self.check_version(expected_version)
        if self.agreement is None:
            raise AgreementNotSigned("returns start once the agreement is signed")
        check_date("period_start", period_start, record_range(today))
        check_date("period_end", period_end, record_range(today))
        if period_end < period_start:
            raise InvalidReturn("period_end must not be before period_start")
        accounts = [p.option for p in self.parts]
        if option is None:
            option = (
                DeploymentOption.DIRECT_PAYMENT
                if DeploymentOption.DIRECT_PAYMENT in accounts
                else accounts[0]
            )
        elif option not in accounts and option not in {s.option for s in self.schedules}:
            raise InvalidReturn(f"option: {option.value} is not one of this deployment's accounts")
        record = MonitoringReturn(
            return_id=uuid4(),
            option=option,
            period_start=period_start,
            period_end=period_end,
            items=list(items),
            balance_pence=balance_pence,
            missing_receipts=missing_receipts(items, monitoring.receipts_required_from_pence),
            recorded_by=actor,
        )
        self.returns.append(record)
        self.events.append(
            ev.ReturnSubmitted(
                person_id=self.person_id,
                council=self.council,
                return_id=record.return_id,
                deployment_id=self.deployment_id,
                option=option,
                period_start=period_start,
                period_end=period_end,
                spent_pence=record.spent_pence,
                balance_pence=balance_pence,
                items=len(record.items),
                missing_receipts=len(record.missing_receipts),
                recorded_by=actor,
            )
        )
        self._touch(actor)
        return record

    def weekly_basis_annual_pence(self) -> int:
        """The net annual of the direct payment parts; the whole net when there is none."""
        dp = [p.net_annual_pence for p in self.parts if p.option is DeploymentOption.DIRECT_PAYMENT]
        return sum(dp) if dp else self.net_annual_pence or 0

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
        """Apply the council's unspent-funds rule to a balance; raise a clawback above it.

        The balance is the one given, else the last return's. hold_or_clawback (seed 004
        App.1 Council D: 'may put a hold on future release of funds or potentially claw
        back'): our reading is that any build-up above zero is in question; the default
        action claws back the whole balance, action 'hold' suspends releases instead.
        """
        self.check_version(expected_version)
        check_date("as_of", as_of, record_range(today))
        if self.agreement is None:
            raise AgreementNotSigned("nothing has been paid: the agreement is not signed")
        rule = policy.monitoring.unspent_rule
        if action is not None and rule is not UnspentRule.HOLD_OR_CLAWBACK:
            raise InvalidUnspentCheck(
                f"action applies only to the hold_or_clawback rule; this council's rule "
                f"is {rule.value}"
            )
        balance = balance_pence if balance_pence is not None else self.last_reported_balance_pence
        if balance is None:
            raise InvalidUnspentCheck(
                "balance_pence is required: no return has reported a balance yet"
            )
        allowance = unspent_allowance(
            rule,
            policy.monitoring,
            weekly_basis_annual_pence=self.weekly_basis_annual_pence(),
            contingency_weekly_pence=self.contingency_weekly_pence,
        )
        hold = action is UnspentAction.HOLD
        clawback = 0 if hold else clawback_amount(balance, allowance)
        held = False
        if hold and balance > 0 and not self.suspended:
            self.suspend(
                reason=f"unspent balance of {balance} pence on {as_of}: releases held",
                actor=actor,
            )
            held = True
        check = UnspentCheck(
            check_id=uuid4(),
            as_of=as_of,
            balance_pence=balance,
            rule=rule,
            allowance_pence=allowance,
            clawback_pence=clawback,
            action=action,
            clawback_id=uuid4() if clawback > 0 else None,
            held=held,
            recorded_by=actor,
        )
        self.unspent_checks.append(check)
        if check.clawback_id is not None:
            self.events.append(
                ev.ClawbackRaised(
                    person_id=self.person_id,
                    council=self.council,
                    clawback_id=check.clawback_id,
                    deployment_id=self.deployment_id,
                    amount_pence=clawback,
                    unspent_balance_pence=balance,
                    rule=rule.value,
                    policy_version=policy.policy_version,
                )
            )
        if not held:
            self._touch(actor)
        return check


# --- finance export ------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "batch_id",
    "line_number",
    "payment_id",
    "person_id",
    "council",
    "deployment_id",
    "option",
    "instalment_number",
    "due_on",
    "released_on",
    "amount_pence",
    "amount_gbp",
)


@dataclass(frozen=True)
class ExportRow:
    payment_id: UUID
    person_id: str
    council: str
    deployment_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: int

    def sort_key(self) -> tuple[date, date, str, str, str, int, str]:
        return (
            self.released_on,
            self.due_on,
            self.person_id,
            str(self.deployment_id),
            self.option.value,
            self.instalment_number,
            str(self.payment_id),
        )


@dataclass(frozen=True)
class ExportBatch:
    batch_id: UUID
    council: str
    up_to: date
    created_at: datetime
    created_by: str
    rows: int
    control_total_pence: int


def new_export_batch(
    *,
    council: str,
    up_to: date,
    rows: Sequence[ExportRow],
    created_at: datetime,
    created_by: str,
) -> ExportBatch:
    """A batch of released payments for the finance system (CareFirst, ContrOCC; seed 004)."""
    check_date("up_to", up_to, record_range(created_at.date()))
    if not rows:
        raise NothingToExport(f"no released payments up to {up_to} are waiting to be exported")
    return ExportBatch(
        batch_id=uuid4(),
        council=council,
        up_to=up_to,
        created_at=created_at,
        created_by=created_by,
        rows=len(rows),
        control_total_pence=sum(r.amount_pence for r in rows),
    )


def amount_gbp(amount_pence: int) -> Decimal:
    """123.45 from 12345, exactly: pence scaled by a power of ten, no floats."""
    return Decimal(amount_pence).scaleb(-2)


def export_csv(batch_id: UUID, rows: Sequence[ExportRow]) -> str:
    """The batch as CSV: the same batch gives the same bytes every time.

    A header row with the columns batch_id, line_number, payment_id, person_id, council,
    deployment_id, option, instalment_number, due_on, released_on, amount_pence,
    amount_gbp; one row per payment sorted by (released_on, due_on, person_id,
    deployment_id, option, instalment_number, payment_id) and numbered from 1; then a
    control row: CONTROL, the number of payment rows, the total in pence, the total in
    pounds, and empty fields to the same width. Dates are ISO 8601; lines end in CRLF
    (RFC 4180). No timestamp is written. Amounts are numbers (a negative one stays one).
    """
    ordered = sorted(rows, key=ExportRow.sort_key)
    lines: list[list[Cell]] = [
        [
            str(batch_id),
            line,
            str(row.payment_id),
            row.person_id,
            row.council,
            str(row.deployment_id),
            row.option.value,
            row.instalment_number,
            row.due_on.isoformat(),
            row.released_on.isoformat(),
            row.amount_pence,
            amount_gbp(row.amount_pence),
        ]
        for line, row in enumerate(ordered, start=1)
    ]
    total = sum(r.amount_pence for r in ordered)
    control: list[Cell] = ["CONTROL", len(ordered), total, amount_gbp(total)]
    lines.append(control + [""] * (len(EXPORT_COLUMNS) - len(control)))
    return csv_text(EXPORT_COLUMNS, lines)
