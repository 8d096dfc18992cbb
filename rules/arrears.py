"""Arrears: instalments already past their due date when they are scheduled.

An agreement recorded late, or a first payment dated back (a person converted from the
council's old system, a plan whose paperwork came back weeks after sign-off), schedules
instalments whose due date has already passed. The first release after that pays them
all at once. That can be right, but it is a decision, so it needs a reason and someone
with the authority to spend that much in one go.

- **Which instalments are arrears**: those due strictly before today by the service's
  clock. An instalment due today is simply due. One due before the plan was signed off is
  also before today: an agreement is signed neither before the plan's sign-off nor after
  today (payments refuses both), so the sign-off day never falls after today.
- **Their total**: the sum of those instalments, in pence.
- **Who may approve them** (decided in `rules.authority.may_approve_arrears`): the roles the
  council's policy lets sign off a support plan
  (`approvals.plan_sign_off`), each limit applied to the arrears *total*.

Assumption (no seed sets an arrears limit): a plan sign-off limit is a weekly amount, and
we read it as the most a role may commit in one decision, so a role may approve arrears
whose total is within its weekly sign-off limit. Under Council A's limits (seed 004 App.1:
care manager £250, team manager £415, above that the panel) a care manager may approve up
to £250 of arrears, a team manager up to £415, and the panel any amount; in Lancashire
and Council B only the roles their policies list (team manager or panel; panel) may.
A panel-only client group is not applied here: payments does not hold the client group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DueAmount:
    """One instalment as this rule sees it: when it falls due and how much it pays."""

    due_on: date
    amount_pence: int


@dataclass(frozen=True)
class Arrears:
    """The instalments of a schedule already past due, and what they add up to."""

    instalments: tuple[DueAmount, ...]

    @property
    def total_pence(self) -> int:
        return sum(i.amount_pence for i in self.instalments)

    @property
    def earliest_due_on(self) -> date | None:
        return min((i.due_on for i in self.instalments), default=None)

    def __bool__(self) -> bool:
        return bool(self.instalments)


def arrears_among(instalments: Iterable[DueAmount], today: date) -> Arrears:
    """The instalments due before today: paid at once by the next release."""
    return Arrears(tuple(i for i in instalments if i.due_on < today))
