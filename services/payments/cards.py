"""Direct payments on prepaid card accounts: the provider's file, surpluses and recoups.

Pure: no I/O. The card provider's file (docs/integrations.md, "The card provider's file")
is read row by row: each row is checked on its own (the layout), then against the other
rows of the file and against what is already recorded. A file with any refused row
changes nothing; a transaction or a balance already recorded exactly as the file gives it
is unchanged, so the same file imported twice records nothing the second time.

An account keeps its newest reported balance and what was spent by merchant category. A
newest balance above what the council's unspent-funds rule lets the person keep is
flagged as a surplus; a surplus is recouped only after a written notice and only once the
period to respond has passed (`rules/recoup.py` decides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from contracts import events as ev
from contracts.events import RecoupResponse
from contracts.policy import Policy
from rules.clawback import unspent_allowance
from rules.recoup import Notice, notice_refusal, recoup_refusal, respond_by, surplus_pence
from servicekit.csvfile import CsvRow, Rejection
from servicekit.errors import Conflict, Invalid, NotFound
from services.payments.errors import PaymentsError
from services.payments.plausible_dates import UP_TO_TODAY

CARD_COLUMNS = (
    "account_reference",
    "person_id",
    "row_type",
    "transaction_id",
    "posted_on",
    "amount_pence",
    "merchant_category",
)
MAX_CARD_FILE_LINES = 100_000
"""A month of a large council's card transactions (seed 003: 36,252 people supported in
Lancashire; a card account has a few dozen transactions a month)."""
MAX_TRANSACTION_ID = 64
MAX_AMOUNT_DIGITS = 11
"""Up to £999,999,999.99: far above any card account, short of any overflow."""

_ACCOUNT_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/-]{0,63}$")
_PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$")


# --- refusals ------------------------------------------------------------------------------


class CardFileRefused(PaymentsError):
    """The file cannot be read as a card provider file at all (encoding, header, size)."""

    status_code = 422


class CardAccountNotFound(PaymentsError, NotFound):
    def __init__(self, account_id: UUID | str) -> None:
        super().__init__(f"card account {account_id} not found")


class RecoupNoticeNotFound(PaymentsError, NotFound):
    def __init__(self, notice_id: UUID | str) -> None:
        super().__init__(f"recoup notice {notice_id} not found on this card account")


class NoSurplus(PaymentsError, Conflict):
    """No surplus has been flagged on the account: there is nothing to give notice of."""


class NoticeAboveSurplus(PaymentsError, Invalid):
    """A notice may not ask for more than the surplus flagged."""


class NothingToRecoup(PaymentsError, Invalid):
    """An amount of nothing or less."""


class NoticeStillOpen(PaymentsError, Conflict):
    """A notice not yet acted on: recoup or withdraw it before giving another."""


class NoRecoupNotice(PaymentsError, Conflict):
    """Nothing is recouped without a written notice to the person first."""


class NoticePeriodNotOver(PaymentsError, Conflict):
    """The person still has time to respond to the notice."""


class NoNoticePeriod(PaymentsError, Conflict):
    """The council's policy sets no period to respond, so no notice can say when it ends."""


class AlreadyRecouped(PaymentsError, Conflict):
    """A notice's money is recouped once."""


class RecoupAboveNotice(PaymentsError, Invalid):
    """More than the notice told the person, which is never more than the surplus flagged."""


class RecoupAboveBalance(PaymentsError, Conflict):
    """More than the account holds now."""


_REFUSALS: dict[str, type[PaymentsError]] = {
    cls.__name__: cls
    for cls in (
        NoSurplus,
        NoticeAboveSurplus,
        NothingToRecoup,
        NoRecoupNotice,
        NoticePeriodNotOver,
        AlreadyRecouped,
        RecoupAboveNotice,
        RecoupAboveBalance,
    )
}


# --- the file ------------------------------------------------------------------------------


class RowType(StrEnum):
    TRANSACTION = "transaction"
    BALANCE = "balance"


@dataclass(frozen=True)
class CardRow:
    """One checked row: a transaction (signed amount) or the account's balance on a day."""

    line: int
    account_reference: str
    person_id: str
    row_type: RowType
    transaction_id: str | None
    posted_on: date
    amount_pence: int
    merchant_category: str | None


def _whole_pence(text: str) -> int | None:
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_AMOUNT_DIGITS):
        return None
    return -int(digits) if text.startswith("-") else int(digits)


def parse_card_row(row: CsvRow, today: date) -> CardRow | list[Rejection]:
    """One row checked against the layout: every fault in it, or the row."""
    unusable = row.layout_rejections()
    if unusable:
        return unusable
    values = row.values
    key = values["transaction_id"] or values["account_reference"] or None
    faults: list[Rejection] = []

    def fault(column: str, reason: str) -> None:
        faults.append(Rejection(line=row.line, column=column, reason=reason, key=key))

    reference = values["account_reference"]
    if not _ACCOUNT_REFERENCE.match(reference):
        fault(
            "account_reference",
            f"{reference!r} is not an account reference (letters, digits, _ / -, up to 64)",
        )
    person_id = values["person_id"]
    if not _PERSON_ID.match(person_id):
        fault("person_id", f"{person_id!r} is not a person id (letters, digits, _ -, up to 64)")
    row_type: RowType | None = None
    try:
        row_type = RowType(values["row_type"].lower())
    except ValueError:
        fault("row_type", f"{values['row_type']!r} is not a row type: use transaction or balance")
    posted_on: date | None = None
    try:
        posted_on = date.fromisoformat(values["posted_on"])
    except ValueError:
        fault("posted_on", f"{values['posted_on']!r} is not a date as YYYY-MM-DD")
    else:
        problem = UP_TO_TODAY.problem(posted_on, today)
        if problem is not None:
            fault("posted_on", problem)
    amount = _whole_pence(values["amount_pence"])
    if amount is None:
        fault(
            "amount_pence",
            f"{values['amount_pence']!r} is not a whole number of pence (e.g. -2599 or 46500)",
        )
    transaction_id = values["transaction_id"] or None
    category = values["merchant_category"] or None
    if row_type is RowType.TRANSACTION:
        if transaction_id is None:
            fault("transaction_id", "a transaction needs the provider's transaction id")
        elif not _TRANSACTION_ID.match(transaction_id):
            fault(
                "transaction_id",
                f"{transaction_id!r} is not a transaction id (letters, digits, _ . / : -, "
                f"up to {MAX_TRANSACTION_ID})",
            )
        if amount == 0:
            fault("amount_pence", "a transaction of 0 pence moves no money")
        if amount is not None and amount < 0 and category is None:
            fault("merchant_category", "money spent needs the merchant category")
    elif row_type is RowType.BALANCE:
        if transaction_id is not None:
            fault("transaction_id", "a balance row has no transaction id: leave it empty")
        if category is not None:
            fault("merchant_category", "a balance row has no merchant category: leave it empty")
        if amount is not None and amount < 0:
            fault("amount_pence", "a prepaid card's balance is never below 0")
    if category is not None and not _CATEGORY.match(category):
        fault(
            "merchant_category",
            f"{category!r} is not a category (lower case letters, digits and _, up to 64)",
        )
    if faults:
        return faults
    assert row_type is not None and posted_on is not None and amount is not None
    return CardRow(
        line=row.line,
        account_reference=reference,
        person_id=person_id,
        row_type=row_type,
        transaction_id=transaction_id,
        posted_on=posted_on,
        amount_pence=amount,
        merchant_category=category,
    )


def refuse(row: CardRow, column: str | None, reason: str) -> Rejection:
    return Rejection(
        line=row.line,
        column=column,
        reason=reason,
        key=row.transaction_id or row.account_reference,
    )


def same_file_conflicts(rows: list[CardRow]) -> list[Rejection]:
    """Rows that contradict an earlier row of the same file."""
    rejected: list[Rejection] = []
    transactions: dict[str, int] = {}
    balances: dict[tuple[str, date], int] = {}
    people: dict[str, tuple[str, int]] = {}
    for row in rows:
        first = people.setdefault(row.account_reference, (row.person_id, row.line))
        if first[0] != row.person_id:
            rejected.append(
                refuse(
                    row,
                    "person_id",
                    f"account {row.account_reference} is {first[0]}'s on line {first[1]}",
                )
            )
        if row.transaction_id is not None:
            seen = transactions.setdefault(row.transaction_id, row.line)
            if seen != row.line:
                rejected.append(
                    refuse(row, "transaction_id", f"the transaction is already on line {seen}")
                )
        else:
            at = balances.setdefault((row.account_reference, row.posted_on), row.line)
            if at != row.line:
                rejected.append(
                    refuse(
                        row,
                        "posted_on",
                        f"the account's balance on {row.posted_on} is already on line {at}",
                    )
                )
    return rejected


@dataclass(frozen=True)
class KnownTransaction:
    transaction_id: str
    account_reference: str
    posted_on: date
    amount_pence: int
    merchant_category: str | None


def transaction_decision(row: CardRow, known: KnownTransaction | None) -> bool | Rejection:
    """True: record it; False: recorded before exactly so (not counted twice); or refused."""
    if known is None:
        return True
    if (
        known.account_reference,
        known.posted_on,
        known.amount_pence,
        known.merchant_category,
    ) == (row.account_reference, row.posted_on, row.amount_pence, row.merchant_category):
        return False
    return refuse(
        row,
        "transaction_id",
        f"transaction {row.transaction_id} was imported before with other details "
        f"(account {known.account_reference}, {known.posted_on}, {known.amount_pence} pence, "
        f"{known.merchant_category or 'no category'}); the provider's ids never repeat",
    )


def balance_decision(row: CardRow, known_pence: int | None) -> bool | Rejection:
    """True: record it; False: recorded before at the same amount; or refused."""
    if known_pence is None:
        return True
    if known_pence == row.amount_pence:
        return False
    return refuse(
        row,
        "amount_pence",
        f"the balance on {row.posted_on} was imported before as {known_pence} pence",
    )


# --- the account ---------------------------------------------------------------------------


@dataclass
class Surplus:
    surplus_id: UUID
    deployment_id: UUID
    balance_pence: int
    balance_on: date
    allowance_pence: int
    surplus_pence: int
    rule: str
    policy_version: str


@dataclass
class RecoupNotice:
    notice_id: UUID
    surplus_id: UUID
    amount_pence: int
    reason: str
    sent_on: date
    respond_by: date
    respond_within_days: int
    policy_version: str
    sent_by: str


@dataclass
class Response:
    notice_id: UUID
    response: RecoupResponse
    comments: str | None
    responded_on: date
    recorded_by: str


@dataclass
class Recoup:
    recoup_id: UUID
    notice_id: UUID
    amount_pence: int
    recouped_on: date
    recorded_by: str


@dataclass(frozen=True)
class DeploymentBasis:
    """What the surplus threshold is worked out from: the person's direct payment."""

    deployment_id: UUID
    weekly_basis_annual_pence: int
    contingency_weekly_pence: int
    policy: Policy


@dataclass(frozen=True)
class ImportSummary:
    """What one file adds to one account."""

    transactions: int
    spent_pence: int
    paid_in_pence: int
    spent_by_category: Mapping[str, int]
    newest_balance: tuple[date, int] | None


@dataclass
class CardAccount:
    account_id: UUID
    council: str
    person_id: str
    account_reference: str
    version: int = 0
    balance_pence: int | None = None
    balance_on: date | None = None
    paid_in_pence: int = 0
    spent_pence: int = 0
    spent_by_category: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    surpluses: list[Surplus] = field(default_factory=list)
    notices: list[RecoupNotice] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    recoups: list[Recoup] = field(default_factory=list)
    events: list[ev.Event] = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, *, council: str, person_id: str, account_reference: str) -> CardAccount:
        return cls(
            account_id=uuid4(),
            council=council,
            person_id=person_id,
            account_reference=account_reference,
        )

    def _base(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "council": self.council, "account_id": self.account_id}

    @property
    def latest_surplus(self) -> Surplus | None:
        return self.surpluses[-1] if self.surpluses else None

    @property
    def latest_notice(self) -> RecoupNotice | None:
        return self.notices[-1] if self.notices else None

    def recoup_of(self, notice_id: UUID) -> Recoup | None:
        return next((r for r in self.recoups if r.notice_id == notice_id), None)

    def recouped_from(self, surplus_id: UUID) -> int:
        """What recoups under any notice for this surplus took back."""
        noticed = {n.notice_id for n in self.notices if n.surplus_id == surplus_id}
        return sum(r.amount_pence for r in self.recoups if r.notice_id in noticed)

    def notice(self, notice_id: UUID) -> RecoupNotice:
        for notice in self.notices:
            if notice.notice_id == notice_id:
                return notice
        raise RecoupNoticeNotFound(notice_id)

    def record_import(
        self,
        summary: ImportSummary,
        *,
        import_id: UUID,
        basis: DeploymentBasis | None,
        actor: str,
    ) -> None:
        """Add what a file brought; flag a surplus when the newest balance is above the
        council's threshold."""
        self.transactions += summary.transactions
        self.spent_pence += summary.spent_pence
        self.paid_in_pence += summary.paid_in_pence
        for category, pence in summary.spent_by_category.items():
            self.spent_by_category[category] = self.spent_by_category.get(category, 0) + pence
        newest = summary.newest_balance
        is_newer = newest is not None and (self.balance_on is None or newest[0] > self.balance_on)
        if newest is not None and is_newer:
            self.balance_on, self.balance_pence = newest
        self.events.append(
            ev.CardTransactionsImported(
                **self._base(),
                import_id=import_id,
                account_reference=self.account_reference,
                transactions=summary.transactions,
                spent_pence=summary.spent_pence,
                paid_in_pence=summary.paid_in_pence,
                spent_by_category=[
                    ev.CategorySpend(category=c, spent_pence=p)
                    for c, p in sorted(summary.spent_by_category.items())
                ],
                balance_pence=newest[1] if newest else None,
                balance_on=newest[0] if newest else None,
                recorded_by=actor,
            )
        )
        if is_newer and basis is not None:
            self._check_surplus(basis)

    def _check_surplus(self, basis: DeploymentBasis) -> None:
        assert self.balance_pence is not None and self.balance_on is not None
        monitoring = basis.policy.monitoring
        allowance = unspent_allowance(
            monitoring.unspent_rule,
            monitoring,
            weekly_basis_annual_pence=basis.weekly_basis_annual_pence,
            contingency_weekly_pence=basis.contingency_weekly_pence,
        )
        surplus = surplus_pence(self.balance_pence, allowance)
        if surplus <= 0 or allowance is None:
            return
        flagged = Surplus(
            surplus_id=uuid4(),
            deployment_id=basis.deployment_id,
            balance_pence=self.balance_pence,
            balance_on=self.balance_on,
            allowance_pence=allowance,
            surplus_pence=surplus,
            rule=monitoring.unspent_rule.value,
            policy_version=basis.policy.policy_version,
        )
        self.surpluses.append(flagged)
        self.events.append(
            ev.CardSurplusFlagged(
                person_id=self.person_id,
                council=self.council,
                surplus_id=flagged.surplus_id,
                account_id=self.account_id,
                deployment_id=flagged.deployment_id,
                balance_pence=flagged.balance_pence,
                balance_on=flagged.balance_on,
                allowance_pence=flagged.allowance_pence,
                surplus_pence=flagged.surplus_pence,
                rule=flagged.rule,
                policy_version=flagged.policy_version,
            )
        )

    def send_notice(
        self, *, amount_pence: int, reason: str, policy: Policy, actor: str, today: date
    ) -> RecoupNotice:
        """The written notice for the latest surplus: amount, reason, last day to respond."""
        surplus = self.latest_surplus
        open_notice = self.latest_notice
        if open_notice is not None and self.recoup_of(open_notice.notice_id) is None:
            raise NoticeStillOpen(
                f"the notice sent on {open_notice.sent_on} for "
                f"{open_notice.amount_pence} pence has not been acted on yet"
            )
        flagged = surplus.surplus_pence if surplus else 0
        recouped = self.recouped_from(surplus.surplus_id) if surplus else 0
        refusal = notice_refusal(
            surplus_flagged_pence=flagged,
            amount_pence=amount_pence,
            recouped_from_surplus_pence=recouped,
        )
        if refusal is not None:
            raise _REFUSALS[refusal.value](
                f"{refusal.value}: a notice may ask for more than 0 and at most the surplus "
                f"flagged ({flagged} pence) less what was recouped from it ({recouped} pence): "
                f"{flagged - recouped} pence; {amount_pence} pence asked"
            )
        assert surplus is not None
        period = policy.monitoring.recoup_notice
        if period is None:
            raise NoNoticePeriod(
                f"policy {policy.policy_version} sets no period to respond to a recoup notice"
            )
        notice = RecoupNotice(
            notice_id=uuid4(),
            surplus_id=surplus.surplus_id,
            amount_pence=amount_pence,
            reason=reason,
            sent_on=today,
            respond_by=respond_by(today, period.respond_within_days),
            respond_within_days=period.respond_within_days,
            policy_version=policy.policy_version,
            sent_by=actor,
        )
        self.notices.append(notice)
        self.events.append(
            ev.RecoupNoticeSent(
                **self._base(),
                notice_id=notice.notice_id,
                surplus_id=notice.surplus_id,
                amount_pence=notice.amount_pence,
                reason=notice.reason,
                sent_on=notice.sent_on,
                respond_by=notice.respond_by,
                respond_within_days=notice.respond_within_days,
                policy_version=notice.policy_version,
                sent_by=actor,
            )
        )
        return notice

    def record_response(
        self,
        *,
        notice_id: UUID,
        response: RecoupResponse,
        comments: str | None,
        actor: str,
        today: date,
    ) -> Response:
        """The person's answer, kept whenever it comes before the money is recouped."""
        notice = self.notice(notice_id)
        if self.recoup_of(notice.notice_id) is not None:
            raise AlreadyRecouped(f"the notice of {notice.sent_on} has been acted on already")
        answer = Response(
            notice_id=notice.notice_id,
            response=response,
            comments=comments,
            responded_on=today,
            recorded_by=actor,
        )
        self.responses.append(answer)
        self.events.append(
            ev.RecoupResponseRecorded(
                **self._base(),
                notice_id=notice.notice_id,
                response=response,
                comments=comments,
                responded_on=today,
                recorded_by=actor,
            )
        )
        return answer

    def recoup(
        self, *, notice_id: UUID | None, amount_pence: int, actor: str, today: date
    ) -> Recoup:
        """Take money back under a notice whose period to respond is over."""
        notice = self.notice(notice_id) if notice_id is not None else self.latest_notice
        seen_by_rule = (
            None
            if notice is None
            else Notice(
                amount_pence=notice.amount_pence,
                sent_on=notice.sent_on,
                respond_by=notice.respond_by,
                recouped=self.recoup_of(notice.notice_id) is not None,
            )
        )
        refusal = recoup_refusal(
            notice=seen_by_rule,
            amount_pence=amount_pence,
            balance_pence=self.balance_pence or 0,
            today=today,
        )
        if refusal is not None:
            raise _REFUSALS[refusal.value](self._recoup_refusal_words(refusal.value, notice))
        assert notice is not None
        done = Recoup(
            recoup_id=uuid4(),
            notice_id=notice.notice_id,
            amount_pence=amount_pence,
            recouped_on=today,
            recorded_by=actor,
        )
        self.recoups.append(done)
        self.balance_pence = (self.balance_pence or 0) - amount_pence
        self.events.append(
            ev.CardFundsRecouped(
                **self._base(),
                recoup_id=done.recoup_id,
                notice_id=notice.notice_id,
                amount_pence=amount_pence,
                recouped_on=today,
                recorded_by=actor,
            )
        )
        return done

    def _recoup_refusal_words(self, refusal: str, notice: RecoupNotice | None) -> str:
        if notice is None:
            return "no written notice has been sent to the person: send one first"
        words = {
            "NoticePeriodNotOver": (
                f"the person may respond until {notice.respond_by.isoformat()} (the notice "
                f"was sent on {notice.sent_on.isoformat()}); recoup from the day after"
            ),
            "AlreadyRecouped": f"the notice of {notice.sent_on} has been acted on already",
            "NothingToRecoup": "the amount must be more than 0 pence",
            "RecoupAboveNotice": (
                f"the notice told the person {notice.amount_pence} pence; no more may be "
                "recouped under it"
            ),
            "RecoupAboveBalance": f"the account holds {self.balance_pence or 0} pence now",
        }
        return words.get(refusal, refusal)
