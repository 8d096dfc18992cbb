"""Recouping a prepaid card account's surplus: only after a written notice, never more.

A council may take back direct payment money a person has not used (Care Act 2014 s.33;
seed 004 App.1: Council A above 10 weeks of payments, Council B above an agreed
contingency, Council D by claw back). The Local Government and Social Care Ombudsman has
repeatedly found councils at fault for doing it without warning, so here:

- **The surplus** is the card balance above what the council's unspent-funds rule lets the
  person keep (`rules.clawback.unspent_allowance`: Council A 10 weeks of the net direct
  payment), never less than nothing.
- **A notice first**: a written notice names the amount (more than nothing and never more
  than the surplus flagged less what earlier notices for it recouped), the reason, and
  the last day to respond: the day it is sent plus the council's
  `monitoring.recoup_notice.respond_within_days`.
- **The recoup** is refused without a notice, refused until the last day to respond has
  passed (on that day the person may still answer), refused above the amount the notice
  named or above what the account holds, and happens once per notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from rules.clawback import clawback_amount


@dataclass(frozen=True)
class Notice:
    """A written notice as this rule sees it."""

    amount_pence: int
    sent_on: date
    respond_by: date
    recouped: bool = False


class NoticeRefusal(StrEnum):
    NO_SURPLUS = "NoSurplus"
    ABOVE_SURPLUS = "NoticeAboveSurplus"
    NOT_POSITIVE = "NothingToRecoup"


class RecoupRefusal(StrEnum):
    NO_NOTICE = "NoRecoupNotice"
    NOTICE_PERIOD_NOT_OVER = "NoticePeriodNotOver"
    ALREADY_RECOUPED = "AlreadyRecouped"
    NOT_POSITIVE = "NothingToRecoup"
    ABOVE_NOTICE = "RecoupAboveNotice"
    ABOVE_BALANCE = "RecoupAboveBalance"


def surplus_pence(balance_pence: int, allowance_pence: int | None) -> int:
    """The balance above what the person may keep; nothing when the council sets no limit."""
    return clawback_amount(balance_pence, allowance_pence)


def respond_by(sent_on: date, respond_within_days: int) -> date:
    """The last day the person may respond to a notice sent on `sent_on`."""
    return sent_on + timedelta(days=respond_within_days)


def notice_refusal(
    *, surplus_flagged_pence: int, amount_pence: int, recouped_from_surplus_pence: int = 0
) -> NoticeRefusal | None:
    """Why a notice for this amount may not be sent; None when it may.

    What was recouped under earlier notices for the same surplus is gone from it: a
    surplus is taken back once in all, never twice over by notice after notice."""
    surplus_left = surplus_flagged_pence - recouped_from_surplus_pence
    if surplus_left <= 0:
        return NoticeRefusal.NO_SURPLUS
    if amount_pence <= 0:
        return NoticeRefusal.NOT_POSITIVE
    if amount_pence > surplus_left:
        return NoticeRefusal.ABOVE_SURPLUS
    return None


def recoup_refusal(
    *, notice: Notice | None, amount_pence: int, balance_pence: int, today: date
) -> RecoupRefusal | None:
    """Why this recoup may not happen today; None when it may."""
    if notice is None:
        return RecoupRefusal.NO_NOTICE
    if notice.recouped:
        return RecoupRefusal.ALREADY_RECOUPED
    if today <= notice.respond_by:
        return RecoupRefusal.NOTICE_PERIOD_NOT_OVER
    if amount_pence <= 0:
        return RecoupRefusal.NOT_POSITIVE
    if amount_pence > notice.amount_pence:
        return RecoupRefusal.ABOVE_NOTICE
    if amount_pence > balance_pence:
        return RecoupRefusal.ABOVE_BALANCE
    return None
