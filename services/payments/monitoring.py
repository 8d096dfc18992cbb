"""Monitoring (seed 004 App.1, §6.6): returns of what was spent, receipts, the council's
unspent-funds rule with its clawback or hold, and managed accounts' statements.

Which items need a receipt is `rules/receipts.py`; how much of a balance a person may
keep and what is clawed back is `rules/clawback.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from contracts import events as ev
from contracts.events import DeploymentOption
from contracts.policy import Monitoring, Policy, UnspentRule
from rules.clawback import clawback_amount, unspent_allowance
from rules.receipts import ReturnItem, missing_receipts
from services.payments.errors import AgreementNotSigned, InvalidReturn, InvalidUnspentCheck
from services.payments.plausible_dates import RECORD, check_date
from services.payments.schedules import InstalmentStatus

if TYPE_CHECKING:
    from services.payments.domain import Deployment

MANAGED_OPTIONS = frozenset(
    {
        DeploymentOption.COUNCIL_MANAGED,
        DeploymentOption.THIRD_PARTY_MANAGED,
        DeploymentOption.INDIVIDUAL_SERVICE_FUND,
    }
)


class UnspentAction(StrEnum):
    """What a hold_or_clawback council does with a build-up (seed 004 App.1 Council D)."""

    CLAWBACK = "clawback"
    HOLD = "hold"


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


def record_return(
    dep: Deployment,
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
    dep.check_version(expected_version)
    if dep.agreement is None:
        raise AgreementNotSigned("returns start once the agreement is signed")
    check_date("period_start", period_start, RECORD, today)
    check_date("period_end", period_end, RECORD, today)
    if period_end < period_start:
        raise InvalidReturn("period_end must not be before period_start")
    accounts = [p.option for p in dep.parts]
    if option is None:
        option = (
            DeploymentOption.DIRECT_PAYMENT
            if DeploymentOption.DIRECT_PAYMENT in accounts
            else accounts[0]
        )
    elif option not in accounts and option not in {s.option for s in dep.schedules}:
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
    dep.returns.append(record)
    dep.events.append(
        ev.ReturnSubmitted(
            person_id=dep.person_id,
            council=dep.council,
            return_id=record.return_id,
            deployment_id=dep.deployment_id,
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
    dep.touch(actor)
    return record


def weekly_basis_annual_pence(dep: Deployment) -> int:
    """The net annual of the direct payment parts; the whole net when there is none."""
    dp = [p.net_annual_pence for p in dep.parts if p.option is DeploymentOption.DIRECT_PAYMENT]
    return sum(dp) if dp else dep.net_annual_pence or 0


def check_unspent(
    dep: Deployment,
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
    dep.check_version(expected_version)
    check_date("as_of", as_of, RECORD, today)
    if dep.agreement is None:
        raise AgreementNotSigned("nothing has been paid: the agreement is not signed")
    rule = policy.monitoring.unspent_rule
    if action is not None and rule is not UnspentRule.HOLD_OR_CLAWBACK:
        raise InvalidUnspentCheck(
            f"action applies only to the hold_or_clawback rule; this council's rule is {rule.value}"
        )
    balance = balance_pence if balance_pence is not None else dep.last_reported_balance_pence
    if balance is None:
        raise InvalidUnspentCheck("balance_pence is required: no return has reported a balance yet")
    allowance = unspent_allowance(
        rule,
        policy.monitoring,
        weekly_basis_annual_pence=dep.weekly_basis_annual_pence(),
        contingency_weekly_pence=dep.contingency_weekly_pence,
    )
    hold = action is UnspentAction.HOLD
    clawback = 0 if hold else clawback_amount(balance, allowance)
    held = False
    if hold and balance > 0 and not dep.suspended:
        dep.suspend(
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
    dep.unspent_checks.append(check)
    if check.clawback_id is not None:
        dep.events.append(
            ev.ClawbackRaised(
                person_id=dep.person_id,
                council=dep.council,
                clawback_id=check.clawback_id,
                deployment_id=dep.deployment_id,
                amount_pence=clawback,
                unspent_balance_pence=balance,
                rule=rule.value,
                policy_version=policy.policy_version,
            )
        )
    if not held:
        dep.touch(actor)
    return check


def statement(
    dep: Deployment, failed_pence: Mapping[DeploymentOption, int] | None = None
) -> list[AccountStatement]:
    """Paid in, spent and left for each managed account (seed 004 §6.2).

    `failed_pence`: by option, what finance reported failed among the released
    payments (the ledger holds the outcomes, not the deployment).
    """
    failed = failed_pence or {}
    options = [p.option for p in dep.parts if p.option in MANAGED_OPTIONS]
    options += sorted(
        {s.option for s in dep.schedules if s.option in MANAGED_OPTIONS} - set(options)
    )
    accounts = []
    for option in options:
        returns = [r for r in dep.returns if r.option is option]
        accounts.append(
            AccountStatement(
                option=option,
                paid_in_pence=sum(
                    s.pence(InstalmentStatus.RELEASED) for s in dep.schedules if s.option is option
                )
                - failed.get(option, 0),
                spent_pence=sum(r.spent_pence for r in returns),
                last_reported_balance_pence=returns[-1].balance_pence if returns else None,
                failed_pence=failed.get(option, 0),
            )
        )
    return accounts
