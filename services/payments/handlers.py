"""Payments use cases: each opens the unit of work, loads, lets the domain decide, commits.

State and the events it causes are written in one transaction (servicekit.uow); nothing
is published from here. Every state change records the actor (Caller.as_record()).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from contracts.events import (
    ChallengeOutcome,
    DeploymentOption,
    FinancialAssessmentCompleted,
    PaymentConfirmed,
    PaymentFailed,
    PaymentReleased,
    PlanSignedOff,
)
from contracts.policy import Policy, PolicyBook
from rules.receipts import ReturnItem
from rules.statement import BudgetFigures
from servicekit import clock
from servicekit.bulk import Pending
from servicekit.caller import Caller, asks_for_another_person, may_see, person_listed
from servicekit.csvfile import FileRefused, Rejection, read_rows
from servicekit.policies import policy_for
from services.payments.arrears_approval import ArrearsDecision
from services.payments.charges import AssessedCharge, recalculate
from services.payments.db import PaymentsUnitOfWork, PaymentView
from services.payments.domain import Deployment
from services.payments.errors import BatchNotFound, DeploymentNotFound
from services.payments.export import ExportBatch, export_csv, new_export_batch
from services.payments.lifecycle import Status
from services.payments.monitoring import (
    AccountStatement,
    MonitoringReturn,
    UnspentAction,
    UnspentCheck,
)
from services.payments.plausible_dates import release_date
from services.payments.reconciliation import (
    CONFIRMATION_COLUMNS,
    CONFIRMATION_OPTIONAL,
    MAX_FILE_LINES,
    ConcurrentConfirmation,
    ConfirmationFileRefused,
    ConfirmationLine,
    Decision,
    Outcome,
    ReleasedPaymentRecord,
    decide,
    parse_line,
)
from services.payments.schedules import Instalment, PartRequest, PaymentFrequency
from services.payments.statements import (
    BudgetStatement,
    ChallengeNotFound,
    PersonHasNoStatement,
    StatementChallenge,
    StatementNotFound,
)


def deployment_policy(policies: PolicyBook, dep: Deployment) -> Policy:
    """The policy version the deployment was set up under (the council's current one if that
    version is no longer known): its figures are judged by it."""
    return policy_for(policies, dep.council, version=dep.policy_version)


async def _save(uow: PaymentsUnitOfWork, *deps: Deployment) -> None:
    """Write the deployments back; the unit of work collects the events they recorded."""
    for dep in deps:
        await uow.deployments.save(dep)


async def _save_releases(uow: PaymentsUnitOfWork, dep: Deployment) -> None:
    """Write a deployment back and number the payments it released for the feed, in the
    transaction that releases them."""
    await uow.deployments.save(dep)
    await uow.ledger.append_to_feed([e for e in dep.events if isinstance(e, PaymentReleased)])


async def _visible(uow: PaymentsUnitOfWork, actor: Caller, deployment_id: UUID) -> Deployment:
    """Another council's deployment, or for a person someone else's, is not found."""
    dep = await uow.deployments.get(deployment_id)
    if dep is None or not may_see(actor, dep.council, dep.person_id):
        raise DeploymentNotFound(deployment_id)
    return dep


# --- events in -----------------------------------------------------------------------------


async def open_deployment_for_plan(
    *, plan: PlanSignedOff, uow: PaymentsUnitOfWork, policies: PolicyBook, recorded_by: str
) -> Deployment | None:
    """Open a deployment for a signed-off plan, in the consumer's open unit of work.

    A plan version already seen (or older than one seen) changes nothing. A revised plan
    supersedes the person's earlier deployment: one never agreed is superseded at once;
    one that is paying goes on paying until the new deployment's agreement is signed,
    which then cancels its instalments from the new first payment on (see domain.py).
    """
    policy = policy_for(policies, plan.council, version=plan.policy_version)
    if await uow.deployments.plan_seen(plan.plan_id, plan.plan_version):
        return None
    return await _open_deployment(plan=plan, uow=uow, policy=policy, recorded_by=recorded_by)


async def open_deployments_for_plans(
    *,
    plans: Sequence[tuple[PlanSignedOff, str, AbstractContextManager[None]]],
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
) -> None:
    """`open_deployment_for_plan` for many signed-off plans in log order (each with who
    records it and the context its events are recorded in), reading the plans seen and the
    people's deployments once for all of them: a plan version seen earlier in the batch
    changes nothing, as it would one after another."""
    seen = await uow.deployments.latest_plan_versions(plan.plan_id for plan, _, _ in plans)
    people: dict[str, set[str]] = {}
    for plan, _, _ in plans:
        people.setdefault(plan.council, set()).add(plan.person_id)
    for council, person_ids in people.items():
        await uow.deployments.prefetch_people(council, person_ids)
    for plan, recorded_by, applying in plans:
        with applying:
            policy = policy_for(policies, plan.council, version=plan.policy_version)
            if seen.get(plan.plan_id, 0) >= plan.plan_version:
                continue
            await _open_deployment(plan=plan, uow=uow, policy=policy, recorded_by=recorded_by)
            seen[plan.plan_id] = max(seen.get(plan.plan_id, 0), plan.plan_version)
            uow.collect_new_events()  # recorded in this event's span and causation
    await uow.commit()


async def _open_deployment(
    *, plan: PlanSignedOff, uow: PaymentsUnitOfWork, policy: Policy, recorded_by: str
) -> Deployment:
    live = await uow.deployments.live_for_person(plan.council, plan.person_id)
    dep = Deployment.for_signed_plan(plan, policy=policy, recorded_by=recorded_by)
    for other in live:
        if other.agreement is None:
            other.supersede_unstarted(dep, actor=recorded_by)
        else:
            other.await_successor(dep, actor=recorded_by)
    await _save(uow, dep, *live)
    return dep


async def apply_financial_assessment(
    *,
    assessment: FinancialAssessmentCompleted,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    recorded_by: str,
) -> AssessedCharge | None:
    """Keep the charge a financial assessment set and recalculate the person's arranged
    deployments from the day it applies, in the consumer's open unit of work.

    A deferred assessment is kept but keeps the charge before it in force (nothing
    changes); an assessment seen before changes nothing either. A changed contribution
    issues a budget statement.
    """
    charge = AssessedCharge.from_event(assessment)
    if not await uow.statements.add_charge(charge) or not charge.sets_a_charge:
        return None
    for dep in await uow.deployments.live_for_person(charge.council, charge.person_id):
        changed = recalculate(dep, charge, deployment_policy(policies, dep), recorded_by)
        await _save(uow, dep)
        # A deployment paying until a revised plan's takes over is not the person's budget
        # any more: the statement follows the revised plan's.
        if changed and dep.successor_id is None:
            await issue_statement_if_due(uow, dep, applies_from=charge.applies_from, charge=charge)
    return charge


async def issue_statement_if_due(
    uow: PaymentsUnitOfWork,
    dep: Deployment,
    *,
    applies_from: date,
    charge: AssessedCharge | None,
) -> BudgetStatement | None:
    """Issue the person's budget statement when its cost, their part or the council's
    changed since the last one (rules/statement.py)."""
    if dep.contribution_annual_pence is None:
        return None
    statement = BudgetStatement.due(
        await uow.statements.latest_statement(dep.council, dep.person_id),
        council=dep.council,
        person_id=dep.person_id,
        deployment_id=dep.deployment_id,
        figures=BudgetFigures(dep.gross_annual_pence, dep.contribution_annual_pence),
        issued_on=clock.today(),
        applies_from=applies_from,
        charge_outcome=charge.outcome if charge is not None else None,
        financial_assessment_id=charge.financial_assessment_id if charge is not None else None,
        policy_version=dep.policy_version,
    )
    if statement is not None:
        await uow.statements.add_statement(statement)
    return statement


# --- deployments ---------------------------------------------------------------------------


async def get_deployment(
    *, uow: PaymentsUnitOfWork, actor: Caller, deployment_id: UUID
) -> Deployment:
    """One deployment with its schedules, returns and checks, if the actor may see it."""
    async with uow:
        return await _visible(uow, actor, deployment_id)


async def get_statement(
    *, uow: PaymentsUnitOfWork, actor: Caller, deployment_id: UUID
) -> tuple[Deployment, list[AccountStatement]]:
    """A deployment's managed accounts, net of payments finance reported failed."""
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        failed = await uow.ledger.failed_pence_by_option(deployment_id)
        return dep, dep.statement(failed)


async def list_deployments(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    person_id: str | None,
    status: Status | None,
    after_seq: int | None,
    limit: int,
) -> list[tuple[int, Deployment]]:
    """A page of the council's deployments; a person sees only their own."""
    if asks_for_another_person(actor, person_id):
        return []
    async with uow:
        return await uow.deployments.page(
            council=actor.council,
            person_id=person_listed(actor, person_id),
            status=status,
            after_seq=after_seq,
            limit=limit,
        )


async def arrange_deployment(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    deployment_id: UUID,
    parts: Sequence[PartRequest],
    frequency: PaymentFrequency,
    first_due_on: date | None,
    assessed_max_weekly_contribution_pence: int | None,
    expected_version: int | None,
    arrears_reason: str | None = None,
) -> Deployment:
    """Set or switch how the budget is held and paid; emits DeploymentSetUp.

    first_due_on None: today. A switch dated back needs arrears_reason and an approver
    whose limit covers the arrears (the caller)."""
    today = clock.today()
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        charge = None
        if assessed_max_weekly_contribution_pence is None:
            charge = await uow.statements.charge_in_force(dep.council, dep.person_id, today)
        starts_on = first_due_on or today
        dep.arrange(
            parts=parts,
            frequency=frequency,
            first_due_on=starts_on,
            assessed_max_weekly_contribution_pence=(
                charge.max_weekly_for(dep.gross_annual_pence)
                if charge is not None
                else assessed_max_weekly_contribution_pence
            ),
            policy=deployment_policy(policies, dep),
            actor=actor.as_record(),
            today=today,
            approver=actor.role,
            arrears_reason=arrears_reason,
            expected_version=expected_version,
        )
        await _save(uow, dep)
        await issue_statement_if_due(uow, dep, applies_from=starts_on, charge=charge)
        await uow.commit()
        return dep


async def sign_agreement(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    deployment_id: UUID,
    signed_on: date | None,
    expected_version: int | None,
    arrears_reason: str | None = None,
) -> Deployment:
    """Record the signed agreement, schedule the money, hand over from an older plan.

    signed_on None: today. Instalments already past due need arrears_reason and a caller
    whose limit covers them (rules/arrears.py); ArrearsApproved records them."""
    today = clock.today()
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        predecessor = None
        if dep.predecessor_id is not None:
            older = await uow.deployments.get(dep.predecessor_id)
            if (
                older is not None
                and older.status is not Status.SUPERSEDED
                and older.successor_id == dep.deployment_id
            ):
                predecessor = older
        earlier = [
            other
            for other in await uow.deployments.superseded_for_person(dep.council, dep.person_id)
            if other.deployment_id != dep.deployment_id
        ]
        dep.sign_agreement(
            signed_on=signed_on or today,
            actor=actor.as_record(),
            arrears=ArrearsDecision(
                today=today,
                approver=actor.role,
                reason=arrears_reason,
                policy=deployment_policy(policies, dep),
            ),
            expected_version=expected_version,
            predecessor=predecessor,
            earlier=earlier,
        )
        await _save(uow, dep, *([predecessor] if predecessor else []))
        await uow.commit()
        return dep


async def convert_deployment(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    person_id: str,
    plan_id: UUID,
    parts: Sequence[PartRequest],
    frequency: PaymentFrequency,
    first_due_on: date | None,
    assessed_max_weekly_contribution_pence: int | None,
    signed_on: date | None,
    arrears_reason: str | None,
) -> Deployment:
    """A converted client's payment set-up: the plan's deployment arranged and its agreement
    recorded, as the two routes would; pending until PlanSignedOff has opened it."""
    live = await uow.deployments.live_for_person(actor.council, person_id)
    found = next((d for d in live if d.plan_id == plan_id), None)
    if found is None:
        raise Pending("payments has not opened the deployment for this plan yet")
    await arrange_deployment(
        uow=uow,
        policies=policies,
        actor=actor,
        deployment_id=found.deployment_id,
        parts=parts,
        frequency=frequency,
        first_due_on=first_due_on,
        assessed_max_weekly_contribution_pence=assessed_max_weekly_contribution_pence,
        expected_version=None,
    )
    return await sign_agreement(
        uow=uow,
        policies=policies,
        actor=actor,
        deployment_id=found.deployment_id,
        signed_on=signed_on,
        expected_version=None,
        arrears_reason=arrears_reason,
    )


@dataclass(frozen=True)
class ReleasedPayment:
    deployment_id: UUID
    person_id: str
    instalment: Instalment


def _released(dep: Deployment, items: list[Instalment]) -> list[ReleasedPayment]:
    return [ReleasedPayment(dep.deployment_id, dep.person_id, i) for i in items]


async def release_due(
    *, uow: PaymentsUnitOfWork, actor: Caller, as_of: date | None
) -> list[ReleasedPayment]:
    """Release every due instalment of the council's signed, unsuspended deployments.

    as_of None: today; never after today."""
    today = clock.today()
    up_to = release_date(as_of or today, today)
    async with uow:
        released: list[ReleasedPayment] = []
        for deployment_id in await uow.deployments.with_due_instalments(actor.council, up_to):
            dep = await uow.deployments.get(deployment_id)
            if dep is None:
                continue
            items = dep.release_due(as_of=up_to, today=today, actor=actor.as_record())
            released += _released(dep, items)
            await _save_releases(uow, dep)
        await uow.commit()
        return released


async def release_for_deployment(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    deployment_id: UUID,
    as_of: date | None,
    expected_version: int | None,
) -> list[ReleasedPayment]:
    """Release one deployment's due instalments; 409 before the agreement is signed."""
    today = clock.today()
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        items = dep.release_due(
            as_of=as_of or today,
            today=today,
            actor=actor.as_record(),
            strict=True,
            expected_version=expected_version,
        )
        await _save_releases(uow, dep)
        await uow.commit()
        return _released(dep, items)


async def suspend_payments(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    deployment_id: UUID,
    reason: str,
    expected_version: int | None,
) -> Deployment:
    """Hold a deployment's releases; emits PaymentsSuspended."""
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        dep.suspend(reason=reason, actor=actor.as_record(), expected_version=expected_version)
        await _save(uow, dep)
        await uow.commit()
        return dep


async def resume_payments(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    deployment_id: UUID,
    reason: str,
    expected_version: int | None,
) -> Deployment:
    """Lift a hold on a deployment's releases; emits PaymentsResumed."""
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        dep.resume(reason=reason, actor=actor.as_record(), expected_version=expected_version)
        await _save(uow, dep)
        await uow.commit()
        return dep


# --- monitoring ----------------------------------------------------------------------------


async def submit_return(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    deployment_id: UUID,
    period_start: date,
    period_end: date,
    items: Sequence[ReturnItem],
    balance_pence: int,
    option: DeploymentOption | None,
    expected_version: int | None,
) -> tuple[Deployment, MonitoringReturn]:
    """Record a monitoring return; emits ReturnSubmitted."""
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        record = dep.record_return(
            period_start=period_start,
            period_end=period_end,
            items=items,
            balance_pence=balance_pence,
            option=option,
            monitoring=deployment_policy(policies, dep).monitoring,
            actor=actor.as_record(),
            today=clock.today(),
            expected_version=expected_version,
        )
        await _save(uow, dep)
        await uow.commit()
        return dep, record


async def check_unspent(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    deployment_id: UUID,
    as_of: date,
    balance_pence: int | None,
    action: UnspentAction | None,
    expected_version: int | None,
) -> tuple[Deployment, UnspentCheck]:
    """Apply the unspent-funds rule; emits ClawbackRaised (or PaymentsSuspended on hold)."""
    async with uow:
        dep = await _visible(uow, actor, deployment_id)
        check = dep.check_unspent(
            as_of=as_of,
            balance_pence=balance_pence,
            action=action,
            policy=deployment_policy(policies, dep),
            actor=actor.as_record(),
            today=clock.today(),
            expected_version=expected_version,
        )
        await _save(uow, dep)
        await uow.commit()
        return dep, check


# --- finance export ------------------------------------------------------------------------


async def create_export_batch(
    *, uow: PaymentsUnitOfWork, actor: Caller, up_to: date
) -> ExportBatch:
    """Put every released payment up to a date that is in no batch yet into a new batch."""
    async with uow:
        waiting = await uow.exports.waiting(actor.council, up_to)
        batch = new_export_batch(
            council=actor.council,
            up_to=up_to,
            rows=[row for _, row in waiting],
            created_at=clock.now(),
            created_by=actor.as_record(),
        )
        await uow.exports.add(batch, [instalment_id for instalment_id, _ in waiting])
        await uow.commit()
        return batch


async def list_export_batches(
    *, uow: PaymentsUnitOfWork, actor: Caller, after_seq: int | None, limit: int
) -> list[tuple[int, ExportBatch]]:
    """A page of the council's export batches, oldest first."""
    async with uow:
        return await uow.exports.page(council=actor.council, after_seq=after_seq, limit=limit)


async def export_batch_csv(
    *, uow: PaymentsUnitOfWork, actor: Caller, batch_id: UUID
) -> tuple[ExportBatch, str]:
    """A batch and its CSV; the same batch gives byte-identical CSV every time."""
    async with uow:
        batch = await uow.exports.get(batch_id)
        if batch is None or batch.council != actor.council:
            raise BatchNotFound(batch_id)
        return batch, export_csv(batch.batch_id, await uow.exports.rows_of(batch_id))


# --- reconciliation and the feed -------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmationReport:
    """What an imported confirmation file did: nothing at all when `rejected` is not empty."""

    lines: int
    recorded_paid: int
    recorded_failed: int
    unchanged: int
    rejected: list[Rejection]

    @property
    def accepted(self) -> bool:
        return not self.rejected


async def import_confirmations(
    *, uow: PaymentsUnitOfWork, actor: Caller, content: bytes
) -> ConfirmationReport:
    """Match the finance system's paid/failed file against released payments, all or nothing.

    Every line is checked first; one refused line and nothing is recorded (the report lists
    every refusal). A line already recorded with the same outcome and date changes nothing,
    so importing the same file again is harmless.
    """
    try:
        rows = list(
            read_rows(content, required=CONFIRMATION_COLUMNS, optional=CONFIRMATION_OPTIONAL)
        )
    except FileRefused as err:
        raise ConfirmationFileRefused(str(err)) from err
    if len(rows) > MAX_FILE_LINES:
        raise ConfirmationFileRefused(
            f"the file has {len(rows)} lines; split it into files of at most {MAX_FILE_LINES}"
        )
    rejected: list[Rejection] = []
    lines: list[ConfirmationLine] = []
    first_seen: dict[UUID, int] = {}
    for row in rows:
        parsed = parse_line(row)
        if isinstance(parsed, list):
            rejected += parsed
            continue
        if parsed.payment_id in first_seen:
            rejected.append(
                Rejection(
                    line=parsed.line,
                    column="payment_id",
                    reason=f"the payment is already on line {first_seen[parsed.payment_id]}",
                    key=str(parsed.payment_id),
                )
            )
            continue
        first_seen[parsed.payment_id] = parsed.line
        lines.append(parsed)
    for attempt in range(CONFIRMATION_ATTEMPTS):
        try:
            return await _record_confirmations(uow, actor, len(rows), lines, list(rejected))
        except (IntegrityError, ConcurrentConfirmation) as err:
            # Another import recorded some of these payments meanwhile. Decide again
            # against what it recorded: the same outcomes are then unchanged (the answer
            # a re-import gets), a contradicting one is refused line by line.
            if attempt + 1 == CONFIRMATION_ATTEMPTS:
                raise ConcurrentConfirmation(
                    "other imports kept recording these payments meanwhile; import the file again"
                ) from err
    raise AssertionError("unreachable")


CONFIRMATION_ATTEMPTS = 3


async def _record_confirmations(
    uow: PaymentsUnitOfWork,
    actor: Caller,
    row_count: int,
    lines: list[ConfirmationLine],
    rejected: list[Rejection],
) -> ConfirmationReport:
    """Decide every line against what is recorded now, and record them all or none."""
    async with uow:
        known = await uow.ledger.released(actor.council, [line.payment_id for line in lines])
        to_record: list[tuple[PaymentView, ConfirmationLine]] = []
        unchanged = 0
        for line in lines:
            payment = known.get(line.payment_id)
            decision = decide(line, _record(payment) if payment else None, clock.today())
            if isinstance(decision, Rejection):
                rejected.append(decision)
            elif decision is Decision.UNCHANGED:
                unchanged += 1
            else:
                assert payment is not None
                to_record.append((payment, line))
        rejected.sort(key=lambda r: r.line)
        if rejected:
            return ConfirmationReport(row_count, 0, 0, unchanged, rejected)
        recorded_by = actor.as_record()
        for payment, line in to_record:
            await uow.ledger.record_outcome(payment, line, recorded_by)
            uow.emit(_outcome_event(payment, line, recorded_by))
        await uow.commit()
    paid = sum(1 for _, line in to_record if line.outcome is Outcome.PAID)
    return ConfirmationReport(row_count, paid, len(to_record) - paid, unchanged, [])


def _record(view: PaymentView) -> ReleasedPaymentRecord:
    return ReleasedPaymentRecord(
        payment_id=view.payment_id,
        council=view.council,
        person_id=view.person_id,
        deployment_id=view.deployment_id,
        amount_pence=view.amount_pence,
        released_on=view.released_on,
        outcome=view.outcome,
        outcome_on=view.outcome_on,
    )


def _outcome_event(
    payment: PaymentView, line: ConfirmationLine, recorded_by: str
) -> PaymentConfirmed | PaymentFailed:
    common = {
        "person_id": payment.person_id,
        "council": payment.council,
        "payment_id": payment.payment_id,
        "deployment_id": payment.deployment_id,
        "amount_pence": payment.amount_pence,
        "finance_reference": line.finance_reference,
        "recorded_by": recorded_by,
    }
    if line.outcome is Outcome.PAID:
        return PaymentConfirmed(**common, paid_on=line.processed_on)
    assert line.reason is not None
    return PaymentFailed(**common, failed_on=line.processed_on, reason=line.reason)


async def list_payments_by_outcome(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    outcome: Outcome,
    person_id: str | None,
    after_seq: int | None,
    limit: int,
) -> list[PaymentView]:
    """The council's payments finance reported paid (or failed), oldest report first."""
    if actor.is_citizen:
        person_id = actor.person_id
    async with uow:
        return await uow.ledger.outcomes_page(
            council=actor.council,
            outcome=outcome,
            person_id=person_id,
            after_seq=after_seq,
            limit=limit,
        )


async def payment_feed(
    *, uow: PaymentsUnitOfWork, actor: Caller, after_seq: int, limit: int
) -> list[Any]:
    """Released payments after a feed position, in the order they were released."""
    async with uow:
        return await uow.ledger.feed_page(council=actor.council, after_seq=after_seq, limit=limit)


# --- personal budget statements and challenges ------------------------------------------------


async def statements_of_person(
    *, uow: PaymentsUnitOfWork, actor: Caller, person_id: str
) -> tuple[list[BudgetStatement], list[StatementChallenge]]:
    """A person's budget statements (the newest first) and their challenges; a person with
    none, another council's or for a person someone else's, is not found."""
    if not may_see(actor, actor.council, person_id):
        raise PersonHasNoStatement(person_id)
    async with uow:
        statements = await uow.statements.statements_of(actor.council, person_id)
        if not statements:
            raise PersonHasNoStatement(person_id)
        return statements, await uow.statements.challenges_of(actor.council, person_id)


async def challenge_statement(
    *, uow: PaymentsUnitOfWork, actor: Caller, statement_id: UUID, reason: str
) -> StatementChallenge:
    """The person challenges the sufficiency of their statement in force; emits
    BudgetStatementChallenged."""
    async with uow:
        statement = await uow.statements.get_statement(statement_id)
        if statement is None or not may_see(actor, statement.council, statement.person_id):
            raise StatementNotFound(statement_id)
        latest = await uow.statements.latest_statement(statement.council, statement.person_id)
        assert latest is not None
        challenge = statement.challenge(
            reason=reason, by=actor.as_record(), on=clock.today(), latest=latest
        )
        await uow.statements.add_challenge(challenge)
        await uow.commit()
        return challenge


async def list_challenges(
    *, uow: PaymentsUnitOfWork, actor: Caller, open_only: bool, after_seq: int | None, limit: int
) -> list[tuple[int, StatementChallenge]]:
    """The council's challenges to budget statements, the oldest first."""
    async with uow:
        return await uow.statements.challenges_page(
            council=actor.council, open_only=open_only, after_seq=after_seq, limit=limit
        )


async def answer_challenge(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    challenge_id: UUID,
    outcome: ChallengeOutcome,
    response: str,
) -> StatementChallenge:
    """Record the answer to a challenge; emits StatementChallengeAnswered."""
    async with uow:
        challenge = await uow.statements.get_challenge(challenge_id)
        if challenge is None or challenge.council != actor.council:
            raise ChallengeNotFound(challenge_id)
        challenge.answer(
            outcome=outcome,
            response=response,
            by=actor.as_record(),
            role=actor.role,
            on=clock.today(),
        )
        await uow.statements.save_answer(challenge)
        await uow.commit()
        return challenge
