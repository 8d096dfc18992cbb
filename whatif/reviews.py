"""The review and recoup what-if: each person's next review due, and the earliest day each open
recoup notice may be acted on, under the policy in force and under a proposed one (pure).

A council proposing a different review schedule (`reviews`) or a longer or shorter time to
answer a recoup notice (`monitoring.recoup_notice`) needs to know whose review would come
sooner or later, and by how much, before it adopts them. The dates are worked out from what
the log records, with the rulebook's `rules.reviews` and `rules.recoup`, under each policy's
figures, so the difference is the figures' effect alone.

- **The next plan review**: the first after the plan's sign-off (the day `PlanSignedOff` was
  recorded), or, once a review of the plan is completed, the next after the latest one.
- **The next direct payment review**: for a deployment with a direct payment part, the first
  after the deployment was set up, or the next after the latest completed direct payment
  review (`ReviewScheduled` names each review's kind).
- **An unscheduled review** booked and not yet completed: its trigger's days after the day
  the change happened.
- **Overdue**: a review whose proposed date is before the day of the run while its date now
  is not; a proposal inside the law can still leave a review late for someone whose
  circumstances came first. A proposal outside the law is refused when it is loaded
  (`contracts.policy.Reviews`), before anything is read.
- **The earliest recoup**: the day after a notice's last day to respond, counting the
  policy's `respond_within_days` from the day it was sent; notices already acted on are left
  out. A surplus flagged with no notice yet is counted as if its notice were sent on the day
  of the run. Where the cohort holds neither, the change is given in words from the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from contracts import events as ev
from contracts.policy import Policy, Reviews
from rules import recoup, reviews
from whatif.diff import PolicyChange, words

# --- what the log says, per person ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingUnscheduled:
    trigger: str
    happened_on: date


@dataclass(slots=True)
class ReviewHistory:
    """A person's signed-off plan and the reviews the log records for it."""

    plan_id: str
    signed_off_on: date
    direct_payment_from: date | None = None
    last_plan_review_on: date | None = None
    last_direct_payment_review_on: date | None = None
    kinds: dict[str, ev.ReviewKind] = field(default_factory=dict)
    unscheduled: dict[str, PendingUnscheduled] = field(default_factory=dict)

    def scheduled(self, event: ev.ReviewScheduled) -> None:
        review_id = str(event.review_id)
        self.kinds[review_id] = event.kind
        if event.kind is ev.ReviewKind.UNSCHEDULED and event.happened_on is not None:
            trigger = event.trigger.value if event.trigger else ev.ReviewTrigger.OTHER.value
            self.unscheduled[review_id] = PendingUnscheduled(trigger, event.happened_on)

    def completed(self, event: ev.ReviewCompleted) -> None:
        review_id = str(event.review_id)
        self.unscheduled.pop(review_id, None)
        if self.kinds.get(review_id) is ev.ReviewKind.DIRECT_PAYMENT:
            self.last_direct_payment_review_on = event.completed_on
        else:
            self.last_plan_review_on = event.completed_on


@dataclass(frozen=True, slots=True)
class OpenNotice:
    """A recoup notice sent and not yet acted on, or a surplus flagged with no notice yet
    (`notice_id` and `sent_on` None: the amount is the surplus)."""

    surplus_id: str
    amount_pence: int
    notice_id: str | None = None
    sent_on: date | None = None


# --- reviews --------------------------------------------------------------------------------


class DueChange(StrEnum):
    EARLIER = "earlier"
    LATER = "later"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class ReviewDue:
    person_id: str
    kind: str
    counted_from: date
    now: date
    proposed: date
    newly_overdue: bool

    @property
    def change_days(self) -> int:
        return (self.proposed - self.now).days

    @property
    def change(self) -> DueChange:
        days = self.change_days
        return DueChange.LATER if days > 0 else DueChange.EARLIER if days < 0 else DueChange.SAME


def due_dates(history: ReviewHistory, schedule: Reviews) -> list[tuple[str, date, date]]:
    """(kind, the day counted from, the day due) for each review the schedule sets."""
    out: list[tuple[str, date, date]] = []
    if history.last_plan_review_on is None:
        start = history.signed_off_on
        out.append(("first", start, reviews.first_review_on(start, schedule.first_after_days)))
    else:
        start = history.last_plan_review_on
        out.append(("annual", start, reviews.next_review_on(start, schedule.then_every_months)))
    if history.direct_payment_from is not None:
        if history.last_direct_payment_review_on is None:
            start = history.direct_payment_from
            due = reviews.first_direct_payment_review_on(start, schedule)
        else:
            start = history.last_direct_payment_review_on
            due = reviews.next_direct_payment_review_on(start, schedule)
        out.append(("direct_payment", start, due))
    for pending in history.unscheduled.values():
        due = reviews.unscheduled_review_on(pending.happened_on, pending.trigger, schedule)
        out.append((f"unscheduled ({words(pending.trigger)})", pending.happened_on, due))
    return out


@dataclass
class ReviewsComparison:
    """Every next review due under both policies, and which would come sooner or later."""

    reviews: list[ReviewDue] = field(default_factory=list)
    as_of: date | None = None

    def count(self, change: DueChange) -> int:
        return sum(1 for r in self.reviews if r.change is change)

    @property
    def brought_forward(self) -> int:
        return self.count(DueChange.EARLIER)

    @property
    def pushed_back(self) -> int:
        return self.count(DueChange.LATER)

    @property
    def same(self) -> int:
        return self.count(DueChange.SAME)

    @property
    def people(self) -> int:
        return len({r.person_id for r in self.reviews})

    @property
    def newly_overdue(self) -> list[ReviewDue]:
        return [r for r in self.reviews if r.newly_overdue]

    def by_kind(self) -> list[tuple[str, int, int, int, int, int]]:
        """(kind, reviews, brought forward, pushed back, fewest days moved, most days moved)."""
        kinds: dict[str, list[ReviewDue]] = {}
        for r in self.reviews:
            kinds.setdefault(r.kind.split(" ")[0], []).append(r)
        rows = []
        for kind, due in kinds.items():
            moves = [r.change_days for r in due]
            rows.append(
                (
                    kind,
                    len(due),
                    sum(1 for m in moves if m < 0),
                    sum(1 for m in moves if m > 0),
                    min(moves),
                    max(moves),
                )
            )
        return rows

    @property
    def changed(self) -> list[ReviewDue]:
        """The reviews whose date moves, the largest move first."""
        return sorted(
            (r for r in self.reviews if r.change_days),
            key=lambda r: (-abs(r.change_days), r.person_id, r.kind),
        )


def compare_reviews(
    histories: list[tuple[str, ReviewHistory]], current: Policy, proposed: Policy, today: date
) -> ReviewsComparison:
    """Each signed-off plan's next reviews under both policies, by person id."""
    result = ReviewsComparison(as_of=today)
    for person_id, history in sorted(histories, key=lambda item: item[0]):
        now = due_dates(history, current.reviews)
        after = due_dates(history, proposed.reviews)
        for (kind, start, due_now), (_, _, due_proposed) in zip(now, after, strict=True):
            result.reviews.append(
                ReviewDue(
                    person_id=person_id,
                    kind=kind,
                    counted_from=start,
                    now=due_now,
                    proposed=due_proposed,
                    newly_overdue=due_proposed < today <= due_now,
                )
            )
    return result


# --- recoup notices -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoupDay:
    person_id: str
    surplus_id: str
    notice_id: str | None
    sent_on: date
    """The day the notice was sent; for a surplus with no notice yet, the day of the run."""
    amount_pence: int
    now: date
    proposed: date

    @property
    def change_days(self) -> int:
        return (self.proposed - self.now).days


def earliest_recoup_on(sent_on: date, respond_within_days: int) -> date:
    """The first day a recoup may be made: the day after the last day to respond."""
    return recoup.respond_by(sent_on, respond_within_days) + timedelta(days=1)


@dataclass
class RecoupComparison:
    """The earliest recoup day for each open notice, and the notice periods behind them."""

    days_now: int | None = None
    days_proposed: int | None = None
    notices: list[RecoupDay] = field(default_factory=list)

    @property
    def modelled(self) -> bool:
        """Both policies give a notice period (before card accounts a policy has none)."""
        return self.days_now is not None and self.days_proposed is not None

    @property
    def shift_days(self) -> int:
        """How many days later (positive) or earlier each recoup could be made."""
        if self.days_now is None or self.days_proposed is None:
            return 0
        return self.days_proposed - self.days_now

    @property
    def in_words(self) -> str:
        if not self.modelled:
            return "Not modelled: the policy in force or the proposal has no recoup notice period."
        shift = self.shift_days
        if shift == 0:
            change = "Recoups could be made on the same day after each notice as now"
        else:
            way = "later" if shift > 0 else "earlier"
            plural = "" if abs(shift) == 1 else "s"
            change = f"Recoups could be made {abs(shift)} day{plural} {way} after each notice"
        periods = f" ({self.days_proposed} days to respond instead of {self.days_now})"
        if self.notices:
            whose = (
                f"; {len(self.notices):,} open notices or flagged surpluses in the cohort are "
                "listed."
            )
        else:
            whose = (
                "; the cohort holds no open recoup notice or flagged surplus, so this is "
                "worked out from the figures alone."
            )
        return change + (periods if shift else "") + whose


def compare_recoups(
    notices: list[tuple[str, OpenNotice]], current: Policy, proposed: Policy, on: date
) -> RecoupComparison:
    """Each open notice's earliest recoup day under both notice periods, by person id; a
    flagged surplus with no notice yet as if its notice were sent on `on`."""
    before, after = current.monitoring.recoup_notice, proposed.monitoring.recoup_notice
    result = RecoupComparison(
        days_now=before.respond_within_days if before else None,
        days_proposed=after.respond_within_days if after else None,
    )
    if result.days_now is None or result.days_proposed is None:
        return result
    for person_id, notice in sorted(
        notices, key=lambda item: (item[0], item[1].sent_on or on, item[1].surplus_id)
    ):
        sent_on = notice.sent_on or on
        result.notices.append(
            RecoupDay(
                person_id=person_id,
                surplus_id=notice.surplus_id,
                notice_id=notice.notice_id,
                sent_on=sent_on,
                amount_pence=notice.amount_pence,
                now=earliest_recoup_on(sent_on, result.days_now),
                proposed=earliest_recoup_on(sent_on, result.days_proposed),
            )
        )
    return result


# --- the policy diff, in words ----------------------------------------------------------------


def _months(n: int) -> str:
    return f"{n} month" + ("" if n == 1 else "s")


def review_changes(current: Policy, proposed: Policy) -> list[PolicyChange]:
    """The review schedule's and the recoup notice's figures the proposal changes."""
    a, b = current.reviews, proposed.reviews
    found: list[PolicyChange] = []

    def changed(item: str, before: str, after: str, sentence: str, area: str = "reviews") -> None:
        if before != after:
            found.append(PolicyChange(area, item, before, after, sentence))

    changed(
        "first_after_days",
        f"{a.first_after_days} days",
        f"{b.first_after_days} days",
        f"The first review of a plan would be {b.first_after_days} days after sign-off "
        f"(now {a.first_after_days}).",
    )
    changed(
        "then_every_months",
        _months(a.then_every_months),
        _months(b.then_every_months),
        f"Plans would then be reviewed every {_months(b.then_every_months)} "
        f"(now {_months(a.then_every_months)}).",
    )
    for item, what, x, y in (
        (
            "direct_payment.first_within_months",
            "The first review of a direct payment would be within",
            a.direct_payment.first_within_months if a.direct_payment else None,
            b.direct_payment.first_within_months if b.direct_payment else None,
        ),
        (
            "direct_payment.then_every_months",
            "Direct payments would then be reviewed every",
            a.direct_payment.then_every_months if a.direct_payment else None,
            b.direct_payment.then_every_months if b.direct_payment else None,
        ),
    ):
        before = _months(x) if x is not None else "the regulation's limit"
        after = _months(y) if y is not None else "the regulation's limit"
        changed(item, before, after, f"{what} {after} (now {before}).")
    old = a.unscheduled.within_days if a.unscheduled else {}
    new = b.unscheduled.within_days if b.unscheduled else {}
    for trigger in dict.fromkeys([*old, *new]):
        before = f"{old[trigger]} days" if trigger in old else "at once"
        after = f"{new[trigger]} days" if trigger in new else "at once"
        changed(
            f"unscheduled.{trigger}",
            before,
            after,
            f"An unscheduled review after {words(trigger)} would be due within {after} "
            f"(now {before}).",
        )
    r_a, r_b = current.monitoring.recoup_notice, proposed.monitoring.recoup_notice
    before = f"{r_a.respond_within_days} days" if r_a else "no notice period"
    after = f"{r_b.respond_within_days} days" if r_b else "no notice period"
    changed(
        "recoup_notice.respond_within_days",
        before,
        after,
        f"A person would have {after} to answer a recoup notice (now {before}).",
        area="monitoring",
    )
    return found
