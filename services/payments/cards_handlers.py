"""Card account use cases: import the provider's file, give notice, record a response,
recoup. Each opens the unit of work, loads, lets the domain (cards.py) decide, commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError

from contracts.events import DeploymentOption, RecoupResponse
from contracts.policy import PolicyBook
from servicekit import clock
from servicekit.caller import Caller, asks_for_another_person, may_see, person_listed
from servicekit.csvfile import FileRefused, Rejection, read_rows
from servicekit.errors import Conflict
from servicekit.policies import policy_for
from services.payments.cards import (
    CARD_COLUMNS,
    MAX_CARD_FILE_LINES,
    CardAccount,
    CardAccountNotFound,
    CardFileRefused,
    CardRow,
    DeploymentBasis,
    ImportSummary,
    Recoup,
    RecoupNotice,
    Response,
    RowType,
    balance_decision,
    parse_card_row,
    refuse,
    same_file_conflicts,
    transaction_decision,
)
from services.payments.db import PaymentsUnitOfWork
from services.payments.errors import PaymentsError
from services.payments.handlers import deployment_policy

IMPORT_ATTEMPTS = 3


class ConcurrentCardImport(PaymentsError, Conflict):
    """Another import kept recording the same transactions meanwhile; import again."""


@dataclass(frozen=True)
class CardImportReport:
    """What an imported card file did: nothing at all when `rejected` is not empty."""

    lines: int
    accounts: int
    transactions: int
    balances: int
    unchanged: int
    surpluses_flagged: int
    rejected: list[Rejection]

    @property
    def accepted(self) -> bool:
        return not self.rejected


async def import_card_file(
    *, uow: PaymentsUnitOfWork, policies: PolicyBook, actor: Caller, content: bytes
) -> CardImportReport:
    """Record the provider's transactions and balances, all or nothing.

    Every row is checked first; one refused row and nothing is recorded (the report lists
    every refusal). A transaction or balance already recorded exactly so is unchanged, so
    the same file imported twice records nothing the second time.
    """
    try:
        rows = list(read_rows(content, required=CARD_COLUMNS))
    except FileRefused as err:
        raise CardFileRefused(str(err)) from err
    if len(rows) > MAX_CARD_FILE_LINES:
        raise CardFileRefused(
            f"the file has {len(rows)} lines; split it into files of at most {MAX_CARD_FILE_LINES}"
        )
    today = clock.today()
    rejected: list[Rejection] = []
    parsed: list[CardRow] = []
    for row in rows:
        checked = parse_card_row(row, today)
        if isinstance(checked, list):
            rejected += checked
        else:
            parsed.append(checked)
    rejected += same_file_conflicts(parsed)
    for attempt in range(IMPORT_ATTEMPTS):
        try:
            return await _record_card_rows(uow, policies, actor, len(rows), parsed, rejected)
        except IntegrityError as err:
            # Another import recorded some of these rows meanwhile: decide again against
            # what it recorded, where they are unchanged (or refused if they differ).
            if attempt + 1 == IMPORT_ATTEMPTS:
                raise ConcurrentCardImport(
                    "other imports kept recording these transactions meanwhile; "
                    "import the file again"
                ) from err
    raise AssertionError("unreachable")


async def _record_card_rows(
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    row_count: int,
    rows: list[CardRow],
    rejected_in_file: list[Rejection],
) -> CardImportReport:
    council = actor.council
    rejected = list(rejected_in_file)
    async with uow:
        references = [r.account_reference for r in rows]
        accounts = await uow.cards.by_reference(council, references)
        transactions = await uow.cards.known_transactions(
            council, [r.transaction_id for r in rows if r.transaction_id is not None]
        )
        balances = await uow.cards.known_balances(council, references)
        bases: dict[str, DeploymentBasis | None] = {}
        new_rows: dict[str, list[CardRow]] = defaultdict(list)
        unchanged = 0
        for row in rows:
            account = accounts.get(row.account_reference)
            if account is not None and account.person_id != row.person_id:
                rejected.append(
                    refuse(
                        row,
                        "person_id",
                        f"account {row.account_reference} is recorded for another person",
                    )
                )
                continue
            if row.person_id not in bases:
                bases[row.person_id] = await _direct_payment_basis(
                    uow, policies, council, row.person_id
                )
            if account is None and bases[row.person_id] is None:
                rejected.append(
                    refuse(
                        row,
                        "person_id",
                        f"{row.person_id} has no direct payment with a signed agreement in "
                        "this council: a card account belongs to one",
                    )
                )
                continue
            decision = (
                transaction_decision(row, transactions.get(row.transaction_id))
                if row.transaction_id is not None
                else balance_decision(row, balances.get((row.account_reference, row.posted_on)))
            )
            if isinstance(decision, Rejection):
                rejected.append(decision)
            elif decision:
                new_rows[row.account_reference].append(row)
            else:
                unchanged += 1
        rejected.sort(key=lambda r: (r.line, r.column or ""))
        if rejected:
            return CardImportReport(row_count, 0, 0, 0, unchanged, 0, rejected)
        import_id = uuid4()
        recorded_by = actor.as_record()
        flagged = 0
        for reference, account_rows in new_rows.items():
            person_id = account_rows[0].person_id
            account = accounts.get(reference) or CardAccount.open(
                council=council, person_id=person_id, account_reference=reference
            )
            before = len(account.surpluses)
            account.record_import(
                _summary(account_rows),
                import_id=import_id,
                basis=bases.get(person_id),
                actor=recorded_by,
            )
            flagged += len(account.surpluses) - before
            await uow.cards.save(account)
            await uow.cards.record_rows(account, account_rows, import_id)
        await uow.commit()
    added = [r for rs in new_rows.values() for r in rs]
    return CardImportReport(
        lines=row_count,
        accounts=len(new_rows),
        transactions=sum(1 for r in added if r.row_type is RowType.TRANSACTION),
        balances=sum(1 for r in added if r.row_type is RowType.BALANCE),
        unchanged=unchanged,
        surpluses_flagged=flagged,
        rejected=[],
    )


def _summary(rows: list[CardRow]) -> ImportSummary:
    spent: dict[str, int] = defaultdict(int)
    paid_in = 0
    for row in rows:
        if row.row_type is not RowType.TRANSACTION:
            continue
        if row.amount_pence < 0:
            assert row.merchant_category is not None
            spent[row.merchant_category] += -row.amount_pence
        else:
            paid_in += row.amount_pence
    balances = [(r.posted_on, r.amount_pence) for r in rows if r.row_type is RowType.BALANCE]
    return ImportSummary(
        transactions=sum(1 for r in rows if r.row_type is RowType.TRANSACTION),
        spent_pence=sum(spent.values()),
        paid_in_pence=paid_in,
        spent_by_category=dict(spent),
        newest_balance=max(balances) if balances else None,
    )


async def _direct_payment_basis(
    uow: PaymentsUnitOfWork, policies: PolicyBook, council: str, person_id: str
) -> DeploymentBasis | None:
    """The person's live deployment paying a direct payment under a signed agreement."""
    for dep in reversed(await uow.deployments.live_for_person(council, person_id)):
        paying_direct = any(p.option is DeploymentOption.DIRECT_PAYMENT for p in dep.parts)
        if dep.agreement is not None and paying_direct:
            return DeploymentBasis(
                deployment_id=dep.deployment_id,
                weekly_basis_annual_pence=dep.weekly_basis_annual_pence(),
                contingency_weekly_pence=dep.contingency_weekly_pence,
                policy=deployment_policy(policies, dep),
            )
    return None


async def _visible(uow: PaymentsUnitOfWork, actor: Caller, account_id: UUID) -> CardAccount:
    """Another council's account, or for a person someone else's, is not found."""
    account = await uow.cards.get(account_id)
    if account is None or not may_see(actor, account.council, account.person_id):
        raise CardAccountNotFound(account_id)
    return account


async def get_card_account(
    *, uow: PaymentsUnitOfWork, actor: Caller, account_id: UUID
) -> CardAccount:
    """One card account, if the actor may see it."""
    async with uow:
        return await _visible(uow, actor, account_id)


async def list_card_accounts(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    person_id: str | None,
    after_seq: int | None,
    limit: int,
) -> list[tuple[int, CardAccount]]:
    """The council's card accounts (a person's own only), oldest first."""
    if asks_for_another_person(actor, person_id):
        return []
    async with uow:
        return await uow.cards.page(
            council=actor.council,
            person_id=person_listed(actor, person_id),
            after_seq=after_seq,
            limit=limit,
        )


async def send_recoup_notice(
    *,
    uow: PaymentsUnitOfWork,
    policies: PolicyBook,
    actor: Caller,
    account_id: UUID,
    amount_pence: int,
    reason: str,
) -> tuple[CardAccount, RecoupNotice]:
    """The written notice for the latest surplus; emits RecoupNoticeSent."""
    async with uow:
        account = await _visible(uow, actor, account_id)
        today = clock.today()
        notice = account.send_notice(
            amount_pence=amount_pence,
            reason=reason,
            policy=policy_for(policies, account.council, on=today),
            actor=actor.as_record(),
            today=today,
        )
        await uow.cards.save(account)
        await uow.commit()
        return account, notice


async def record_recoup_response(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    account_id: UUID,
    notice_id: UUID,
    response: RecoupResponse,
    comments: str | None,
) -> tuple[CardAccount, Response]:
    """The person's answer to a notice; emits RecoupResponseRecorded."""
    async with uow:
        account = await _visible(uow, actor, account_id)
        answer = account.record_response(
            notice_id=notice_id,
            response=response,
            comments=comments,
            actor=actor.as_record(),
            today=clock.today(),
        )
        await uow.cards.save(account)
        await uow.commit()
        return account, answer


async def recoup_card_funds(
    *,
    uow: PaymentsUnitOfWork,
    actor: Caller,
    account_id: UUID,
    notice_id: UUID | None,
    amount_pence: int,
    today: date | None = None,
) -> tuple[CardAccount, Recoup]:
    """Take money back once the notice's period is over; emits CardFundsRecouped.

    `today`: the day to judge the period by, for a rehearsal (Settings.recoup_today);
    the service's clock otherwise."""
    async with uow:
        account = await _visible(uow, actor, account_id)
        done = account.recoup(
            notice_id=notice_id,
            amount_pence=amount_pence,
            actor=actor.as_record(),
            today=today or clock.today(),
        )
        await uow.cards.save(account)
        await uow.commit()
        return account, done
