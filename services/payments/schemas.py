"""Payments' wire models and their mappers: what the HTTP API takes and answers.

Requests forbid unknown fields; every money field is whole pence within the request limit
(servicekit.app.RequestPence) and every date is YYYY-MM-DD. The mappers shape the domain's
entities into answers; the routes in api.py stay thin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from contracts.events import (
    ChallengeOutcome,
    DeploymentOption,
    FinancialAssessmentOutcome,
    RecoupResponse,
)
from contracts.money import Frequency, Pence, SignedPence
from contracts.policy import Policy, UnspentRule
from rules.receipts import ReturnItem
from servicekit.app import RequestPence
from servicekit.bulk import ConversionRef
from servicekit.csvfile import ImportReportOut
from services.payments.cards import CardAccount
from services.payments.cards_handlers import CardImportReport
from services.payments.db import PaymentView
from services.payments.domain import Deployment
from services.payments.export import ExportBatch
from services.payments.handlers import ConfirmationReport, ReleasedPayment
from services.payments.lifecycle import Status
from services.payments.monitoring import (
    AccountStatement,
    MonitoringReturn,
    UnspentAction,
    UnspentCheck,
)
from services.payments.reconciliation import Outcome
from services.payments.schedules import (
    Instalment,
    InstalmentStatus,
    PartRequest,
    PaymentFrequency,
    ScheduleKind,
)
from services.payments.statements import BudgetStatement, StatementChallenge

ExpectedVersion = Annotated[
    int | None, Field(default=None, ge=1, description="409 if the deployment has moved on.")
]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
ArrearsReason = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Why instalments already past due are scheduled (arrears); required "
        "when first_due_on is before today, with a role whose limit covers them.",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class PartIn(_Request):
    option: DeploymentOption
    annual_pence: RequestPence | None = Field(
        default=None,
        description="This option's share of the gross annual; the parts must add up to it "
        "exactly. A single part may leave it out to take the whole budget.",
    )


class ArrangementIn(_Request):
    parts: list[PartIn] = Field(min_length=1, max_length=4)
    frequency: PaymentFrequency = Field(description="annual = the whole year up front.")
    first_due_on: date | None = Field(
        default=None,
        description="The first payment (YYYY-MM-DD), from a year before today to two years "
        "after; default today. Before today schedules arrears (see arrears_reason).",
    )
    assessed_max_weekly_contribution_pence: RequestPence | None = Field(
        default=None,
        description="The most the financial assessment says the person can pay a week (0 if "
        "none). Required the first time; on a switch, leave it out to keep the last figure.",
    )
    arrears_reason: ArrearsReason = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="On a switch of a signed deployment dated back: why the instalments "
        "already past due are paid (arrears). Before the agreement, give it with the "
        "agreement instead, which schedules the money.",
    )
    expected_version: ExpectedVersion = None


class AgreementIn(_Request):
    signed_on: date | None = Field(
        default=None,
        description="The day the person signed (YYYY-MM-DD): not after today, not before the "
        "plan was signed off; default today.",
    )
    arrears_reason: ArrearsReason = None
    expected_version: ExpectedVersion = None


AsOf = Annotated[
    date | None,
    Field(
        default=None,
        description="Release what is due up to this day (YYYY-MM-DD): not after today; "
        "default today. An earlier day catches up to it only.",
    ),
]


class ReleaseDueIn(_Request):
    as_of: AsOf = None


class ReleaseIn(_Request):
    as_of: AsOf = None
    expected_version: ExpectedVersion = None


class ReturnItemIn(_Request):
    description: str = Field(min_length=1, max_length=200)
    amount_pence: RequestPence
    receipt: StrictBool


class ReturnIn(_Request):
    period_start: date
    period_end: date
    items: list[ReturnItemIn] = Field(max_length=500)
    balance_pence: RequestPence = Field(description="The account balance the person reports.")
    option: DeploymentOption | None = Field(
        default=None,
        description="The account the return covers; default the direct payment part if "
        "any, else the first part.",
    )
    expected_version: ExpectedVersion = None


class UnspentCheckIn(_Request):
    as_of: date
    balance_pence: RequestPence | None = Field(
        default=None, description="Default: the balance the last return reported."
    )
    action: UnspentAction | None = Field(
        default=None,
        description="hold_or_clawback councils only: clawback (default) or hold releases.",
    )
    expected_version: ExpectedVersion = None


class HoldIn(_Request):
    reason: Reason
    expected_version: ExpectedVersion = None


class ExportIn(_Request):
    up_to: date


# --- responses -----------------------------------------------------------------------------


class PartOut(BaseModel):
    option: DeploymentOption
    annual_pence: Pence
    net_annual_pence: Pence


class AgreementOut(BaseModel):
    signed_on: date
    recorded_by: str


class ScheduleOut(BaseModel):
    schedule_id: UUID
    option: DeploymentOption
    frequency: Frequency
    kind: ScheduleKind
    first_due_on: date
    total_pence: Pence
    instalments: int
    scheduled_pence: Pence
    released_pence: Pence
    cancelled_pence: Pence


class BalanceOut(BaseModel):
    released_pence: Pence
    to_release_pence: Pence
    cancelled_pence: Pence
    clawed_back_pence: Pence
    last_reported_balance_pence: Pence | None


class MonitoringOut(BaseModel):
    audit_tier: str | None
    returns_every_months: int | None
    next_return_due_on: date | None
    receipts_required_from_pence: Pence
    unspent_rule: UnspentRule
    returns_submitted: int


class DeploymentSummaryOut(BaseModel):
    deployment_id: UUID
    person_id: str
    council: str
    plan_id: UUID
    plan_version: int
    status: Status
    suspended: bool
    version: int
    policy_version: str
    gross_annual_pence: Pence
    contribution_annual_pence: Pence | None
    net_annual_pence: Pence | None
    one_off_pence: Pence
    parts: list[PartOut]
    frequency: PaymentFrequency | None
    first_due_on: date | None
    audit_tier: str | None
    agreement_signed_on: date | None


class DeploymentOut(DeploymentSummaryOut):
    contingency_weekly_pence: Pence
    assessed_max_weekly_contribution_pence: Pence | None
    suspended_reason: str | None
    agreement: AgreementOut | None
    plan_year_starts_on: date | None
    schedules: list[ScheduleOut]
    balance: BalanceOut
    monitoring: MonitoringOut
    predecessor_id: UUID | None
    successor_id: UUID | None
    superseded_by: UUID | None
    updated_by: str


class InstalmentOut(BaseModel):
    instalment_id: UUID
    schedule_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    amount_pence: Pence
    status: InstalmentStatus
    payment_id: UUID | None
    released_on: date | None


class ReleasedOut(BaseModel):
    payment_id: UUID
    deployment_id: UUID
    schedule_id: UUID
    person_id: str
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date = Field(description="The service's today when it was released.")
    amount_pence: Pence


class ReleaseResultOut(BaseModel):
    as_of: date
    released: list[ReleasedOut]
    count: int
    total_pence: Pence


class MissingReceiptOut(BaseModel):
    index: int
    description: str
    amount_pence: Pence


class ReturnOut(BaseModel):
    return_id: UUID
    deployment_id: UUID
    option: DeploymentOption
    period_start: date
    period_end: date
    spent_pence: Pence
    balance_pence: Pence
    items: int
    receipts_required_from_pence: Pence
    missing_receipts: list[MissingReceiptOut]
    next_return_due_on: date | None
    version: int


class UnspentCheckOut(BaseModel):
    check_id: UUID
    deployment_id: UUID
    as_of: date
    rule: UnspentRule
    balance_pence: Pence
    allowance_pence: Pence | None
    clawback_pence: Pence
    clawback_id: UUID | None
    action: UnspentAction | None
    held: bool
    suspended: bool
    version: int


class AccountOut(BaseModel):
    option: DeploymentOption
    paid_in_pence: Pence
    spent_pence: Pence
    balance_left_pence: SignedPence
    last_reported_balance_pence: Pence | None
    failed_pence: Pence = Field(
        description="Released but reported failed by finance: not in paid_in_pence."
    )


class StatementOut(BaseModel):
    deployment_id: UUID
    accounts: list[AccountOut]
    paid_in_pence: Pence
    spent_pence: Pence
    balance_left_pence: SignedPence
    failed_pence: Pence


class ExportBatchOut(BaseModel):
    batch_id: UUID
    up_to: date
    created_at: datetime
    created_by: str
    rows: int
    control_total_pence: Pence


class ConfirmationReportOut(ImportReportOut):
    recorded_paid: int
    recorded_failed: int
    unchanged: int = Field(description="Lines already recorded exactly so: a re-import.")


class PaymentOutcomeOut(BaseModel):
    payment_id: UUID
    person_id: str
    deployment_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: Pence
    status: Outcome
    status_on: date | None = Field(description="The date finance paid it, or it failed.")
    reason: str | None = Field(description="Why it failed, in the finance system's words.")
    finance_reference: str | None


class FeedItemOut(BaseModel):
    position: str = Field(description="Pass as `after` to read on from this item.")
    payment_id: UUID
    person_id: str
    council: str
    deployment_id: UUID
    schedule_id: UUID
    option: DeploymentOption
    instalment_number: int
    due_on: date
    released_on: date
    amount_pence: Pence
    status: str = Field(description="released, paid or failed (as finance last reported).")


class FeedPageOut(BaseModel):
    items: list[FeedItemOut]
    next_after: str = Field(
        description="Where to read on from next time; the same `after` again when empty."
    )


class DeploymentConversionRow(_Request):
    """One converted person's payment set-up: the arrangement and the signed agreement."""

    ref: ConversionRef
    person_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    plan_id: UUID = Field(description="The signed-off plan whose deployment this sets up.")
    arrangement: ArrangementIn
    signed_on: date | None = Field(default=None, description="Default today.")
    arrears_reason: ArrearsReason = None


# --- from requests -------------------------------------------------------------------------


def part_requests(parts: Sequence[PartIn]) -> list[PartRequest]:
    return [PartRequest(option=p.option, annual_pence=p.annual_pence) for p in parts]


def return_items(items: Sequence[ReturnItemIn]) -> list[ReturnItem]:
    return [
        ReturnItem(description=i.description, amount_pence=i.amount_pence, receipt=i.receipt)
        for i in items
    ]


# --- to answers ----------------------------------------------------------------------------


def deployment_summary_out(dep: Deployment) -> DeploymentSummaryOut:
    return DeploymentSummaryOut(**_summary_fields(dep))


def _summary_fields(dep: Deployment) -> dict[str, Any]:
    return {
        "deployment_id": dep.deployment_id,
        "person_id": dep.person_id,
        "council": dep.council,
        "plan_id": dep.plan_id,
        "plan_version": dep.plan_version,
        "status": dep.status,
        "suspended": dep.suspended,
        "version": dep.version,
        "policy_version": dep.policy_version,
        "gross_annual_pence": dep.gross_annual_pence,
        "contribution_annual_pence": dep.contribution_annual_pence,
        "net_annual_pence": dep.net_annual_pence,
        "one_off_pence": dep.one_off_pence,
        "parts": [PartOut(**p.__dict__) for p in dep.parts],
        "frequency": dep.frequency,
        "first_due_on": dep.first_due_on,
        "audit_tier": dep.audit_tier,
        "agreement_signed_on": dep.agreement.signed_on if dep.agreement else None,
    }


def deployment_out(dep: Deployment, policy: Policy) -> DeploymentOut:
    """The whole deployment, judged by the policy it was set up under."""
    every = policy.monitoring.returns_every_months
    return DeploymentOut(
        **_summary_fields(dep),
        contingency_weekly_pence=dep.contingency_weekly_pence,
        assessed_max_weekly_contribution_pence=dep.assessed_max_weekly_contribution_pence,
        suspended_reason=dep.suspended_reason,
        agreement=(
            AgreementOut(signed_on=dep.agreement.signed_on, recorded_by=dep.agreement.recorded_by)
            if dep.agreement
            else None
        ),
        plan_year_starts_on=dep.plan_year_starts_on,
        schedules=[
            ScheduleOut(
                schedule_id=s.schedule_id,
                option=s.option,
                frequency=s.frequency,
                kind=s.kind,
                first_due_on=s.first_due_on,
                total_pence=s.total_pence,
                instalments=len(s.instalments),
                scheduled_pence=s.pence(InstalmentStatus.SCHEDULED),
                released_pence=s.pence(InstalmentStatus.RELEASED),
                cancelled_pence=s.pence(InstalmentStatus.CANCELLED),
            )
            for s in dep.schedules
        ],
        balance=BalanceOut(
            released_pence=dep.pence(InstalmentStatus.RELEASED),
            to_release_pence=dep.pence(InstalmentStatus.SCHEDULED),
            cancelled_pence=dep.pence(InstalmentStatus.CANCELLED),
            clawed_back_pence=dep.clawed_back_pence,
            last_reported_balance_pence=dep.last_reported_balance_pence,
        ),
        monitoring=MonitoringOut(
            audit_tier=dep.audit_tier,
            returns_every_months=every,
            next_return_due_on=dep.next_return_due_on(every),
            receipts_required_from_pence=policy.monitoring.receipts_required_from_pence,
            unspent_rule=policy.monitoring.unspent_rule,
            returns_submitted=len(dep.returns),
        ),
        predecessor_id=dep.predecessor_id,
        successor_id=dep.successor_id,
        superseded_by=dep.superseded_by,
        updated_by=dep.updated_by,
    )


def instalment_out(i: Instalment) -> InstalmentOut:
    return InstalmentOut(
        instalment_id=i.instalment_id,
        schedule_id=i.schedule_id,
        option=i.option,
        instalment_number=i.number,
        due_on=i.due_on,
        amount_pence=i.amount_pence,
        status=i.status,
        payment_id=i.payment_id,
        released_on=i.released_on,
    )


def release_result_out(as_of: date, released: list[ReleasedPayment]) -> ReleaseResultOut:
    items = [
        ReleasedOut(
            payment_id=r.instalment.payment_id,
            deployment_id=r.deployment_id,
            schedule_id=r.instalment.schedule_id,
            person_id=r.person_id,
            option=r.instalment.option,
            instalment_number=r.instalment.number,
            due_on=r.instalment.due_on,
            released_on=r.instalment.released_on,
            amount_pence=r.instalment.amount_pence,
        )
        for r in released
    ]
    return ReleaseResultOut(
        as_of=as_of,
        released=items,
        count=len(items),
        total_pence=sum(i.amount_pence for i in items),
    )


def return_out(dep: Deployment, record: MonitoringReturn, policy: Policy) -> ReturnOut:
    return ReturnOut(
        return_id=record.return_id,
        deployment_id=dep.deployment_id,
        option=record.option,
        period_start=record.period_start,
        period_end=record.period_end,
        spent_pence=record.spent_pence,
        balance_pence=record.balance_pence,
        items=len(record.items),
        receipts_required_from_pence=policy.monitoring.receipts_required_from_pence,
        missing_receipts=[
            MissingReceiptOut(
                index=index,
                description=record.items[index].description,
                amount_pence=record.items[index].amount_pence,
            )
            for index in record.missing_receipts
        ],
        next_return_due_on=dep.next_return_due_on(policy.monitoring.returns_every_months),
        version=dep.version,
    )


def unspent_check_out(dep: Deployment, check: UnspentCheck) -> UnspentCheckOut:
    return UnspentCheckOut(
        check_id=check.check_id,
        deployment_id=dep.deployment_id,
        as_of=check.as_of,
        rule=check.rule,
        balance_pence=check.balance_pence,
        allowance_pence=check.allowance_pence,
        clawback_pence=check.clawback_pence,
        clawback_id=check.clawback_id,
        action=check.action,
        held=check.held,
        suspended=dep.suspended,
        version=dep.version,
    )


def statement_out(dep: Deployment, accounts: list[AccountStatement]) -> StatementOut:
    return StatementOut(
        deployment_id=dep.deployment_id,
        accounts=[
            AccountOut(
                option=a.option,
                paid_in_pence=a.paid_in_pence,
                spent_pence=a.spent_pence,
                balance_left_pence=a.balance_left_pence,
                last_reported_balance_pence=a.last_reported_balance_pence,
                failed_pence=a.failed_pence,
            )
            for a in accounts
        ],
        paid_in_pence=sum(a.paid_in_pence for a in accounts),
        spent_pence=sum(a.spent_pence for a in accounts),
        balance_left_pence=sum(a.balance_left_pence for a in accounts),
        failed_pence=sum(a.failed_pence for a in accounts),
    )


def batch_out(batch: ExportBatch) -> ExportBatchOut:
    return ExportBatchOut(
        batch_id=batch.batch_id,
        up_to=batch.up_to,
        created_at=batch.created_at,
        created_by=batch.created_by,
        rows=batch.rows,
        control_total_pence=batch.control_total_pence,
    )


def confirmation_report_out(report: ConfirmationReport) -> ConfirmationReportOut:
    return ConfirmationReportOut(
        accepted=report.accepted,
        lines=report.lines,
        rejected=report.rejected,
        recorded_paid=report.recorded_paid,
        recorded_failed=report.recorded_failed,
        unchanged=report.unchanged,
    )


def payment_outcome_out(view: PaymentView, status: Outcome) -> PaymentOutcomeOut:
    """A payment as finance last reported it (a row of the payment ledger)."""
    return PaymentOutcomeOut(
        payment_id=view.payment_id,
        person_id=view.person_id,
        deployment_id=view.deployment_id,
        option=view.option,
        instalment_number=view.instalment_number,
        due_on=view.due_on,
        released_on=view.released_on,
        amount_pence=view.amount_pence,
        status=status,
        status_on=view.outcome_on,
        reason=view.reason,
        finance_reference=view.finance_reference,
    )


def feed_item_out(row: Any, position: str) -> FeedItemOut:
    """One row of the payment feed, found at `position`."""
    return FeedItemOut(
        position=position,
        payment_id=UUID(row.payment_id),
        person_id=row.person_id,
        council=row.council,
        deployment_id=UUID(row.deployment_id),
        schedule_id=UUID(row.schedule_id),
        option=DeploymentOption(row.option),
        instalment_number=row.instalment_number,
        due_on=row.due_on,
        released_on=row.released_on,
        amount_pence=row.amount_pence,
        status=row.outcome or "released",
    )


# --- prepaid card accounts -----------------------------------------------------------------


class CardImportReportOut(ImportReportOut):
    accounts: int = Field(description="Accounts the file added something to.")
    transactions: int = Field(description="New transactions recorded.")
    balances: int = Field(description="New balances recorded.")
    unchanged: int = Field(description="Rows already recorded exactly so: not counted twice.")
    surpluses_flagged: int


class RecoupNoticeIn(_Request):
    amount_pence: RequestPence = Field(description="More than 0, at most the surplus flagged.")
    reason: Reason = Field(description="Why, in words the person reads in the notice.")


class RecoupResponseIn(_Request):
    response: RecoupResponse
    comments: Reason | None = None


class RecoupIn(_Request):
    amount_pence: RequestPence = Field(description="At most the amount the notice named.")
    notice_id: UUID | None = Field(default=None, description="Default: the latest notice.")


class CategorySpendOut(BaseModel):
    category: str
    spent_pence: Pence


class SurplusOut(BaseModel):
    surplus_id: UUID
    deployment_id: UUID
    balance_pence: Pence
    balance_on: date
    allowance_pence: Pence
    surplus_pence: Pence
    rule: str
    policy_version: str


class RecoupNoticeOut(BaseModel):
    notice_id: UUID
    surplus_id: UUID
    amount_pence: Pence
    reason: str
    sent_on: date
    respond_by: date = Field(description="The last day to respond; a recoup comes after it.")
    respond_within_days: int
    policy_version: str
    sent_by: str


class RecoupResponseOut(BaseModel):
    notice_id: UUID
    response: RecoupResponse
    comments: str | None
    responded_on: date
    recorded_by: str


class RecoupOut(BaseModel):
    recoup_id: UUID
    notice_id: UUID
    amount_pence: Pence
    recouped_on: date
    recorded_by: str


class CardAccountOut(BaseModel):
    account_id: UUID
    person_id: str
    account_reference: str
    version: int
    balance_pence: Pence | None
    balance_on: date | None
    paid_in_pence: Pence
    spent_pence: Pence
    spent_by_category: list[CategorySpendOut]
    transactions: int
    surpluses: list[SurplusOut]
    notices: list[RecoupNoticeOut]
    responses: list[RecoupResponseOut]
    recoups: list[RecoupOut]


def card_import_report_out(report: CardImportReport) -> CardImportReportOut:
    return CardImportReportOut(
        accepted=report.accepted,
        lines=report.lines,
        rejected=report.rejected,
        accounts=report.accounts,
        transactions=report.transactions,
        balances=report.balances,
        unchanged=report.unchanged,
        surpluses_flagged=report.surpluses_flagged,
    )


def card_account_out(account: CardAccount) -> CardAccountOut:
    return CardAccountOut(
        account_id=account.account_id,
        person_id=account.person_id,
        account_reference=account.account_reference,
        version=account.version,
        balance_pence=account.balance_pence,
        balance_on=account.balance_on,
        paid_in_pence=account.paid_in_pence,
        spent_pence=account.spent_pence,
        spent_by_category=[
            CategorySpendOut(category=c, spent_pence=p)
            for c, p in sorted(account.spent_by_category.items(), key=lambda cp: (-cp[1], cp[0]))
        ],
        transactions=account.transactions,
        surpluses=[SurplusOut.model_validate(s, from_attributes=True) for s in account.surpluses],
        notices=[RecoupNoticeOut.model_validate(n, from_attributes=True) for n in account.notices],
        responses=[
            RecoupResponseOut.model_validate(r, from_attributes=True) for r in account.responses
        ],
        recoups=[RecoupOut.model_validate(r, from_attributes=True) for r in account.recoups],
    )


# --- personal budget statements and challenges ------------------------------------------------


Words = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ChallengeIn(_Request):
    reason: Words = Field(
        description="Why the budget is not enough to meet the person's needs, in their words."
    )


class ChallengeAnswerIn(_Request):
    outcome: ChallengeOutcome = Field(
        description="upheld: a review of the needs and budget is asked for; not_upheld: the "
        "response gives the reasons."
    )
    response: Words


class ChallengeOut(BaseModel):
    challenge_id: UUID
    statement_id: UUID
    person_id: str
    deployment_id: UUID
    reason: str
    challenged_on: date
    challenged_by: str
    status: str = Field(description="open, or answered")
    outcome: ChallengeOutcome | None
    response: str | None
    review_requested: bool
    answered_on: date | None
    answered_by: str | None
    answered_by_role: str | None


class BudgetStatementOut(BaseModel):
    statement_id: UUID
    deployment_id: UUID
    issued_on: date
    applies_from: date
    total_annual_pence: Pence
    person_pays_annual_pence: Pence
    council_pays_annual_pence: Pence
    total_weekly_pence: Pence
    person_pays_weekly_pence: Pence
    council_pays_weekly_pence: Pence
    charge_outcome: FinancialAssessmentOutcome | None
    financial_assessment_id: UUID | None
    text: str
    policy_version: str
    in_force: bool = Field(description="The latest statement: the one a challenge is made to.")
    challenges: list[ChallengeOut]


class BudgetStatementsOut(BaseModel):
    person_id: str
    items: list[BudgetStatementOut] = Field(description="The newest first.")


def challenge_out(c: StatementChallenge) -> ChallengeOut:
    return ChallengeOut(
        challenge_id=c.challenge_id,
        statement_id=c.statement_id,
        person_id=c.person_id,
        deployment_id=c.deployment_id,
        reason=c.reason,
        challenged_on=c.challenged_on,
        challenged_by=c.challenged_by,
        status="open" if c.open else "answered",
        outcome=c.outcome,
        response=c.response,
        review_requested=c.review_requested,
        answered_on=c.answered_on,
        answered_by=c.answered_by,
        answered_by_role=c.answered_by_role.value if c.answered_by_role else None,
    )


def statements_out(
    person_id: str, statements: list[BudgetStatement], challenges: list[StatementChallenge]
) -> BudgetStatementsOut:
    items = []
    for index, s in enumerate(statements):
        f = s.figures
        items.append(
            BudgetStatementOut(
                statement_id=s.statement_id,
                deployment_id=s.deployment_id,
                issued_on=s.issued_on,
                applies_from=s.applies_from,
                total_annual_pence=f.total_annual_pence,
                person_pays_annual_pence=f.person_pays_annual_pence,
                council_pays_annual_pence=f.council_pays_annual_pence,
                total_weekly_pence=f.total_weekly_pence,
                person_pays_weekly_pence=f.person_pays_weekly_pence,
                council_pays_weekly_pence=f.council_pays_weekly_pence,
                charge_outcome=s.charge_outcome,
                financial_assessment_id=s.financial_assessment_id,
                text=s.text,
                policy_version=s.policy_version,
                in_force=index == 0,
                challenges=[
                    challenge_out(c) for c in challenges if c.statement_id == s.statement_id
                ],
            )
        )
    return BudgetStatementsOut(person_id=person_id, items=items)
