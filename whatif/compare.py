"""The what-if comparison: every person's budget now and under a proposed policy (pure).

Both figures come from the RAS allocation sets budgets with, `rules.ras.calculate_budget`,
fed the inputs of the person's latest validated assessment, so the difference is the policy's
effect alone. Charges come from the contribution rule payments charges by,
`rules.contribution.contribution_annual`.

Assumptions (also in the report and docs/whatif.md):
- The budget compared is the indicative budget the RAS gives from the assessment. Support
  added on a revision (e.g. 2-to-1, seed 003 ch.2 §iii) is not in the assessment and is left
  out of both figures; the budget issued now and the signed-off plan are shown beside them.
- A year is 52 weeks (contracts.money).
- Approver: the first role in the policy's `agreement_in_principle` list that may agree
  the budget in principle under `rules.authority` (the rule allocation's `Budget.agree`
  enforces): within its limit, an exception role above the ceiling, the panel for a
  panel-only client group. None means nobody may agree it.
- Contribution: the policy's rule applied to the budget's annual value, as if the support
  plan were costed at the budget. The means test caps it at the person's assessed maximum;
  the events carry that figure only implicitly, so where the person's current deployment
  (under the policy in force) charges less than the rule's share, that charge is taken as
  their cap; otherwise the rule's maximum is reported (an upper bound on what they pay).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from contracts.money import WEEKS_PER_YEAR, apply_basis_points, div_round_half_up, format_pounds
from contracts.policy import Contribution, ContributionKind, Policy
from contracts.vocabulary import AgeBand, ClientGroup, Role
from rules.authority import who_may_agree
from rules.contribution import contribution_annual
from rules.ras import Calculation, InputsRefused, calculate_budget
from servicekit import clock
from whatif.charging import ChargingComparison, charging_changes, compare_charges
from whatif.cohort import Person
from whatif.diff import PolicyChange, policy_changes, words
from whatif.errors import DifferentCouncil
from whatif.reviews import (
    RecoupComparison,
    ReviewsComparison,
    compare_recoups,
    compare_reviews,
    review_changes,
)

MOST_AFFECTED = 20

# Changes in pounds a week, pence inclusive at both ends (None: open-ended).
BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("\u2212£100 or more", None, -10_000),
    ("\u2212£50 to \u2212£99.99", -9_999, -5_000),
    ("\u2212£20 to \u2212£49.99", -4_999, -2_000),
    ("\u2212£10 to \u2212£19.99", -1_999, -1_000),
    ("\u22121p to \u2212£9.99", -999, -1),
    ("no change", 0, 0),
    ("+1p to +£9.99", 1, 999),
    ("+£10 to +£19.99", 1_000, 1_999),
    ("+£20 to +£49.99", 2_000, 4_999),
    ("+£50 to +£99.99", 5_000, 9_999),
    ("+£100 or more", 10_000, None),
)


class Outcome(StrEnum):
    WINNER = "winner"
    LOSER = "loser"
    UNCHANGED = "unchanged"


class ContributionBasis(StrEnum):
    NO_CHARGE = "no_charge"
    RULE_MAXIMUM = "rule_maximum"
    MEANS_TEST_CAP = "means_test_cap"


# --- one person -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonImpact:
    person_id: str
    client_group: ClientGroup
    team: str
    age_band: AgeBand
    points_now: int
    points_proposed: int
    scale_now: str
    scale_proposed: str
    weekly_now: int
    weekly_proposed: int
    ceiling_now: int | None
    ceiling_proposed: int | None
    above_ceiling_now: bool
    above_ceiling_proposed: bool
    approver_now: Role | None
    approver_proposed: Role | None
    contribution_basis: ContributionBasis
    contribution_now: int
    contribution_proposed: int
    issued_weekly: int | None
    issued_stage: str | None
    issued_policy_version: str | None
    plan_weekly: int | None

    @property
    def change_weekly(self) -> int:
        return self.weekly_proposed - self.weekly_now

    @property
    def annual_now(self) -> int:
        return self.weekly_now * WEEKS_PER_YEAR

    @property
    def annual_proposed(self) -> int:
        return self.weekly_proposed * WEEKS_PER_YEAR

    @property
    def outcome(self) -> Outcome:
        change = self.change_weekly
        return Outcome.WINNER if change > 0 else Outcome.LOSER if change < 0 else Outcome.UNCHANGED

    @property
    def crosses_ceiling(self) -> bool:
        """Above its ceiling under the proposal, and not now."""
        return self.above_ceiling_proposed and not self.above_ceiling_now

    @property
    def plan_exceeds_now(self) -> bool:
        return self.plan_weekly is not None and self.plan_weekly > self.weekly_now

    @property
    def plan_exceeds_proposed(self) -> bool:
        """The signed-off plan costs more a week than the proposed budget."""
        return self.plan_weekly is not None and self.plan_weekly > self.weekly_proposed

    @property
    def approver_changes(self) -> bool:
        return self.approver_now != self.approver_proposed


@dataclass(frozen=True, slots=True)
class Excluded:
    """Someone the comparison leaves out, and why."""

    person_id: str
    client_group: ClientGroup | None
    team: str | None
    age_band: AgeBand | None
    stage: str  # "log" | "current" | "proposed"
    reason: str


def approver(calculation: Calculation, policy: Policy) -> Role | None:
    """The lowest role (in the policy's order) who may agree this budget in principle."""
    return who_may_agree(policy, calculation.weekly_pence, calculation.client_group)


def means_cap_weekly(person: Person, current: Policy) -> int | None:
    """The person's means-tested weekly maximum, where their deployment reveals it."""
    deployed = person.deployment
    rule = current.contribution
    if deployed is None or deployed.policy_version != current.policy_version:
        return None
    if rule.kind is ContributionKind.NONE:
        return None
    gross = deployed.gross_annual_pence
    full = min(apply_basis_points(gross, rule.share_of_plan_basis_points), gross)
    paid = deployed.contribution_annual_pence
    if paid < full and paid % WEEKS_PER_YEAR == 0:
        return paid // WEEKS_PER_YEAR
    return None


def charge(annual_pence: int, rule: Contribution, cap_weekly: int | None) -> int:
    """payments' contribution rule; no known cap -> the rule's maximum."""
    return contribution_annual(
        annual_pence, rule, annual_pence if cap_weekly is None else cap_weekly
    )


def compare_person(person: Person, current: Policy, proposed: Policy) -> PersonImpact | Excluded:
    """One person's budget, approver and charge under both policies."""
    assessed = person.assessment
    if assessed is None:
        return Excluded(
            person.person_id,
            None,
            None,
            None,
            "log",
            "no validated assessment in the log (only budget, plan or payment events)",
        )
    inputs = assessed.budget_inputs()
    try:
        now = calculate_budget(inputs, current)
    except InputsRefused as err:
        return Excluded(
            person.person_id,
            assessed.client_group,
            assessed.team,
            assessed.age_band,
            "current",
            f"cannot be computed under the policy in force: {err}",
        )
    try:
        new = calculate_budget(inputs, proposed)
    except InputsRefused as err:
        return Excluded(
            person.person_id,
            assessed.client_group,
            assessed.team,
            assessed.age_band,
            "proposed",
            f"cannot be computed under the proposed policy: {err}",
        )
    cap = means_cap_weekly(person, current)
    if cap is not None:
        basis = ContributionBasis.MEANS_TEST_CAP
    elif (
        current.contribution.kind is ContributionKind.NONE
        and proposed.contribution.kind is ContributionKind.NONE
    ):
        basis = ContributionBasis.NO_CHARGE
    else:
        basis = ContributionBasis.RULE_MAXIMUM
    budget, plan = person.budget, person.plan
    return PersonImpact(
        person_id=person.person_id,
        client_group=assessed.client_group,
        team=assessed.team,
        age_band=assessed.age_band,
        points_now=now.points,
        points_proposed=new.points,
        scale_now=now.scale.value,
        scale_proposed=new.scale.value,
        weekly_now=now.weekly_pence,
        weekly_proposed=new.weekly_pence,
        ceiling_now=now.ceiling_weekly_pence,
        ceiling_proposed=new.ceiling_weekly_pence,
        above_ceiling_now=now.above_ceiling,
        above_ceiling_proposed=new.above_ceiling,
        approver_now=approver(now, current),
        approver_proposed=approver(new, proposed),
        contribution_basis=basis,
        contribution_now=charge(now.annual_pence, current.contribution, cap),
        contribution_proposed=charge(new.annual_pence, proposed.contribution, cap),
        issued_weekly=budget.weekly_pence if budget else None,
        issued_stage=budget.stage.value if budget else None,
        issued_policy_version=budget.policy_version if budget else None,
        plan_weekly=plan.weekly_pence if plan else None,
    )


# --- totals ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """Totals for a set of people (everyone, a client group, a team, an age band)."""

    key: str
    people: int = 0
    weekly_now: int = 0
    weekly_proposed: int = 0
    contribution_now: int = 0
    contribution_proposed: int = 0
    winners: int = 0
    losers: int = 0
    unchanged: int = 0
    total_loss_weekly: int = 0
    largest_gain_weekly: int = 0
    largest_loss_weekly: int = 0
    crosses_ceiling: int = 0
    above_ceiling_proposed: int = 0
    plan_exceeds_proposed: int = 0
    approver_changes: int = 0
    not_compared: int = 0

    def add(self, p: PersonImpact) -> None:
        change = p.change_weekly
        self.people += 1
        self.weekly_now += p.weekly_now
        self.weekly_proposed += p.weekly_proposed
        self.contribution_now += p.contribution_now
        self.contribution_proposed += p.contribution_proposed
        if change > 0:
            self.winners += 1
            self.largest_gain_weekly = max(self.largest_gain_weekly, change)
        elif change < 0:
            self.losers += 1
            self.total_loss_weekly += -change
            self.largest_loss_weekly = max(self.largest_loss_weekly, -change)
        else:
            self.unchanged += 1
        self.crosses_ceiling += p.crosses_ceiling
        self.above_ceiling_proposed += p.above_ceiling_proposed
        self.plan_exceeds_proposed += p.plan_exceeds_proposed
        self.approver_changes += p.approver_changes

    @property
    def annual_now(self) -> int:
        return self.weekly_now * WEEKS_PER_YEAR

    @property
    def annual_proposed(self) -> int:
        return self.weekly_proposed * WEEKS_PER_YEAR

    @property
    def change_annual(self) -> int:
        return self.annual_proposed - self.annual_now

    @property
    def mean_change_weekly(self) -> int:
        if not self.people:
            return 0
        return div_round_half_up(self.weekly_proposed - self.weekly_now, self.people)

    @property
    def mean_loss_weekly(self) -> int:
        """The average fall among those who lose (0 when nobody does)."""
        return div_round_half_up(self.total_loss_weekly, self.losers) if self.losers else 0

    @property
    def net_annual_now(self) -> int:
        """What the council pays a year: budgets less the people's contributions."""
        return self.annual_now - self.contribution_now

    @property
    def net_annual_proposed(self) -> int:
        return self.annual_proposed - self.contribution_proposed

    def as_dict(self) -> dict[str, int | str]:
        return {
            "key": self.key,
            "people": self.people,
            "not_compared": self.not_compared,
            "annual_now_pence": self.annual_now,
            "annual_proposed_pence": self.annual_proposed,
            "change_annual_pence": self.change_annual,
            "mean_change_weekly_pence": self.mean_change_weekly,
            "contribution_annual_now_pence": self.contribution_now,
            "contribution_annual_proposed_pence": self.contribution_proposed,
            "net_annual_now_pence": self.net_annual_now,
            "net_annual_proposed_pence": self.net_annual_proposed,
            "winners": self.winners,
            "losers": self.losers,
            "unchanged": self.unchanged,
            "mean_loss_weekly_pence": self.mean_loss_weekly,
            "largest_gain_weekly_pence": self.largest_gain_weekly,
            "largest_loss_weekly_pence": self.largest_loss_weekly,
            "crosses_ceiling": self.crosses_ceiling,
            "above_ceiling_proposed": self.above_ceiling_proposed,
            "plan_exceeds_proposed": self.plan_exceeds_proposed,
            "approver_changes": self.approver_changes,
        }


@dataclass(frozen=True)
class Bucket:
    label: str
    low_pence: int | None
    high_pence: int | None
    count: int

    @property
    def side(self) -> Outcome:
        if self.high_pence is not None and self.high_pence < 0:
            return Outcome.LOSER
        if self.low_pence is not None and self.low_pence > 0:
            return Outcome.WINNER
        return Outcome.UNCHANGED


def bucket_index(change_pence: int) -> int:
    for index, (_, low, high) in enumerate(BUCKETS):
        if (low is None or change_pence >= low) and (high is None or change_pence <= high):
            return index
    raise AssertionError(change_pence)  # the buckets cover every integer


@dataclass
class Comparison:
    council: str
    current: Policy
    proposed: Policy
    people: list[PersonImpact]
    excluded: list[Excluded]
    total: Tally
    by_client_group: list[Tally]
    by_team: list[Tally]
    by_age_band: list[Tally]
    histogram: list[Bucket]
    most_affected: list[PersonImpact]
    changes: list[PolicyChange]
    approver_moves: list[tuple[str, str, int]]
    issued_weekly_total: int
    issued_people: int
    plan_weekly_total: int
    plan_people: int
    findings: list[str] = field(default_factory=list)
    charging: ChargingComparison = field(default_factory=ChargingComparison)
    """Who would pay more or less a week under the proposal's charging figures."""
    reviews: ReviewsComparison = field(default_factory=ReviewsComparison)
    """Whose next review would come sooner or later under the proposal's schedule."""
    recoups: RecoupComparison = field(default_factory=RecoupComparison)
    """When each open recoup notice could first be acted on under the proposal."""


def check_same_council(current: Policy, proposed: Policy) -> None:
    if current.council != proposed.council:
        raise DifferentCouncil(proposed.council, current.council)


def _group_order(current: Policy, proposed: Policy, seen: Iterable[ClientGroup]) -> list[str]:
    ordered = [*current.client_groups, *proposed.client_groups, *ClientGroup, *seen]
    return [g.value for g in dict.fromkeys(ordered)]


def compare(
    people: Iterable[Person],
    current: Policy,
    proposed: Policy,
    *,
    top: int = MOST_AFFECTED,
    on: date | None = None,
) -> Comparison:
    """Everyone's budget under both policies, with the totals a council decides on; `on` is
    the day of the run (the clock's today by default): reviews before it are overdue, and a
    flagged surplus's notice is counted as sent on it."""
    check_same_council(current, proposed)
    people = list(people)
    impacts: list[PersonImpact] = []
    excluded: list[Excluded] = []
    for person in people:
        result = compare_person(person, current, proposed)
        if isinstance(result, PersonImpact):
            impacts.append(result)
        else:
            excluded.append(result)

    total = Tally("all")
    groups = {g: Tally(g) for g in _group_order(current, proposed, [])}
    bands = {b.value: Tally(b.value) for b in AgeBand}
    teams: dict[str, Tally] = {}
    counts = [0] * len(BUCKETS)
    moves: dict[tuple[str, str], int] = {}
    issued_total = issued_people = plan_total = plan_people = 0
    for p in impacts:
        total.add(p)
        groups.setdefault(p.client_group.value, Tally(p.client_group.value)).add(p)
        bands[p.age_band.value].add(p)
        teams.setdefault(p.team, Tally(p.team)).add(p)
        counts[bucket_index(p.change_weekly)] += 1
        if p.approver_changes:
            move = (_role(p.approver_now), _role(p.approver_proposed))
            moves[move] = moves.get(move, 0) + 1
        if p.issued_weekly is not None:
            issued_total += p.issued_weekly
            issued_people += 1
        if p.plan_weekly is not None:
            plan_total += p.plan_weekly
            plan_people += 1
    for e in excluded:
        total.not_compared += 1
        if e.client_group is not None:
            groups.setdefault(e.client_group.value, Tally(e.client_group.value)).not_compared += 1
        if e.age_band is not None:
            bands[e.age_band.value].not_compared += 1
        if e.team is not None:
            teams.setdefault(e.team, Tally(e.team)).not_compared += 1

    budgeted = {g.value for g in (*current.client_groups, *proposed.client_groups)}
    by_group = [t for g, t in groups.items() if g in budgeted or t.people or t.not_compared]
    comparison = Comparison(
        council=current.council,
        current=current,
        proposed=proposed,
        people=impacts,
        excluded=excluded,
        total=total,
        by_client_group=by_group,
        by_team=[teams[k] for k in sorted(teams)],
        by_age_band=list(bands.values()),
        histogram=[
            Bucket(label, low, high, count)
            for (label, low, high), count in zip(BUCKETS, counts, strict=True)
        ],
        most_affected=heapq.nsmallest(
            top, impacts, key=lambda p: (-abs(p.change_weekly), p.person_id)
        ),
        changes=[
            *policy_changes(current, proposed),
            *charging_changes(current, proposed),
            *review_changes(current, proposed),
        ],
        approver_moves=sorted(
            ((a, b, n) for (a, b), n in moves.items()), key=lambda m: (-m[2], m[0], m[1])
        ),
        issued_weekly_total=issued_total,
        issued_people=issued_people,
        plan_weekly_total=plan_total,
        plan_people=plan_people,
    )
    comparison.findings = equality_findings(comparison)
    comparison.charging = compare_charges(
        [(p.person_id, p.finances) for p in people if p.finances is not None], current, proposed
    )
    run_on = on or clock.today()
    comparison.reviews = compare_reviews(
        [(p.person_id, p.reviews) for p in people if p.reviews is not None],
        current,
        proposed,
        run_on,
    )
    comparison.recoups = compare_recoups(
        [(p.person_id, n) for p in people for n in p.open_notices.values()],
        current,
        proposed,
        run_on,
    )
    return comparison


def _role(role: Role | None) -> str:
    return role.value if role is not None else "nobody"


# --- the equality reading -------------------------------------------------------------------


def share(part: int, whole: int) -> str:
    """12.3%: a count as a share, to one decimal place."""
    if whole == 0:
        return "0%"
    permille = div_round_half_up(part * 1000, whole)
    return f"{permille // 10}.{permille % 10}%"


def _label(key: str) -> str:
    return f"people aged {key}" if key[0].isdigit() else words(key)


def _findings_for(rows: list[Tally], total: Tally, dimension: str) -> list[str]:
    out: list[str] = []
    present = [r for r in rows if r.people]
    losing = [r for r in present if r.losers]
    winning = [r for r in present if r.winners]
    for side, rows_on_side, verb in (
        ("loss", losing, "would lose"),
        ("gain", winning, "would gain"),
    ):
        if not rows_on_side or len(rows_on_side) == len(present):
            continue
        if len(rows_on_side) * 2 <= len(present):
            names = ", ".join(_label(r.key) for r in rows_on_side)
            out.append(f"By {dimension}, every {side} falls on: {names}.")
        else:
            others = ", ".join(_label(r.key) for r in present if r not in rows_on_side)
            out.append(f"By {dimension}, nobody among {others} {verb}.")
    for r in losing:
        out.append(
            f"{r.losers:,} of {r.people:,} {_label(r.key)} ({share(r.losers, r.people)}) would "
            f"get less, on average {format_pounds(r.mean_loss_weekly)} a week less; the "
            f"largest fall is {format_pounds(r.largest_loss_weekly)} a week."
        )
        # Disproportionate: the group's loser share is at least 10 points above the cohort's
        # and one and a half times it.
        if (
            len(present) > 1
            and r.losers * total.people * 2 >= total.losers * r.people * 3
            and (r.losers * 1000 // r.people) - (total.losers * 1000 // total.people) >= 100
        ):
            out.append(
                f"A larger share of {_label(r.key)} would lose ({share(r.losers, r.people)}) "
                f"than of the cohort as a whole ({share(total.losers, total.people)}): "
                "the equality impact assessment should consider this group."
            )
    return out


def equality_findings(c: Comparison) -> list[str]:
    """Plain sentences an equality impact assessment starts from (seed 001 §5.2)."""
    t = c.total
    if not t.people:
        return ["Nobody could be compared."]
    out = [
        f"Of {t.people:,} people, {t.winners:,} ({share(t.winners, t.people)}) would get more, "
        f"{t.losers:,} ({share(t.losers, t.people)}) less and {t.unchanged:,} "
        f"({share(t.unchanged, t.people)}) the same."
    ]
    out += _findings_for(c.by_client_group, t, "client group")
    out += _findings_for(c.by_age_band, t, "age band")
    lost = [e for e in c.excluded if e.stage == "proposed"]
    if lost:
        out.append(
            f"{len(lost):,} people could not be given a budget under the proposed policy at all "
            "(see 'Not compared'): their impact is not in the figures above."
        )
    return out
