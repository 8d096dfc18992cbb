"""The charging what-if: each financially assessed person's weekly charge under the policy in
force and under a proposed one (pure).

A council proposing new charging figures (a higher lower capital limit, a different Minimum
Income Guarantee, a new tariff) needs to know who would pay more and who less before it
adopts them. Each person's latest financial assessment carries what was assessed: every
piece of capital and income with its kind, the guarantee's circumstance, children and
premiums (`FinancialAssessmentCompleted` v2), housing costs, disability-related
expenditure and the weekly cost of the support. The charge is worked out from those
inputs twice with the rulebook's `rules.charging.assess`, under each policy's `charging`
figures, so the difference is the figures' effect alone.

- Both charges are calculated as if each policy's figures were in force for the
  assessment: the later of the assessment's date and the date the newest figure used
  applies from.
- A light-touch assessment's charge does not depend on the figures (the full cost, a
  nominal charge, or none): it is the same under both.
- Not compared, with the reason: a deferred or refused assessment (no charge was set); an
  assessment published before v2 (the children and premiums its guarantee counted are not
  recorded); a full-cost payer whose income was not assessed, when the proposal would take
  them below the upper capital limit (they would need a full assessment); inputs a policy
  cannot assess (a kind of capital or income, or a circumstance, it does not name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from contracts import events as ev
from contracts.money import format_pounds
from contracts.policy import Charging, Policy, SourcedFigure
from rules import charging as rules
from whatif.diff import PolicyChange, words

_CHARGED = (ev.FinancialAssessmentOutcome.ASSESSED, ev.FinancialAssessmentOutcome.FULL_COST_PAYER)


@dataclass(frozen=True, slots=True)
class Finances:
    """A person's latest financial assessment, as the what-if recalculates it."""

    financial_assessment_id: str
    outcome: ev.FinancialAssessmentOutcome
    assessed_on: date
    cost_of_support_weekly_pence: int | None
    capital: tuple[rules.Amount, ...]
    income_weekly: tuple[rules.Amount, ...]
    mig_circumstance: str | None
    mig_children: int | None
    mig_premiums: tuple[str, ...] | None
    housing_costs_weekly_pence: int
    disability_related_expenditure: tuple[rules.Expenditure, ...]
    weekly_charge_pence: int | None
    policy_version: str

    @classmethod
    def of(cls, event: ev.FinancialAssessmentCompleted) -> Finances:
        return cls(
            financial_assessment_id=str(event.financial_assessment_id),
            outcome=event.outcome,
            assessed_on=event.assessed_on,
            cost_of_support_weekly_pence=event.cost_of_support_weekly_pence,
            capital=tuple(rules.Amount(a.kind, a.pence) for a in event.capital),
            income_weekly=tuple(rules.Amount(a.kind, a.pence) for a in event.income_weekly),
            mig_circumstance=event.mig_circumstance,
            mig_children=event.mig_children,
            mig_premiums=None if event.mig_premiums is None else tuple(event.mig_premiums),
            housing_costs_weekly_pence=event.housing_costs_weekly_pence,
            disability_related_expenditure=tuple(
                rules.Expenditure(i.description, i.weekly_pence)
                for i in event.disability_related_expenditure
            ),
            weekly_charge_pence=event.weekly_charge_pence,
            policy_version=event.policy_version,
        )


class ChargeChange(StrEnum):
    PAYS_MORE = "pays_more"
    PAYS_LESS = "pays_less"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class Charged:
    """One policy's result for one person."""

    weekly_charge_pence: int
    full_cost_payer: bool
    tariff_income_weekly_pence: int
    minimum_income_guarantee_weekly_pence: int


@dataclass(frozen=True, slots=True)
class ChargeImpact:
    person_id: str
    outcome: ev.FinancialAssessmentOutcome
    assessed_on: date
    recorded_weekly_pence: int | None
    now: Charged
    proposed: Charged

    @property
    def change_weekly(self) -> int:
        return self.proposed.weekly_charge_pence - self.now.weekly_charge_pence

    @property
    def change(self) -> ChargeChange:
        diff = self.change_weekly
        return (
            ChargeChange.PAYS_MORE
            if diff > 0
            else ChargeChange.PAYS_LESS
            if diff < 0
            else ChargeChange.SAME
        )


@dataclass(frozen=True, slots=True)
class ChargeNotCompared:
    person_id: str
    reason: str


@dataclass
class ChargingComparison:
    """Everyone's weekly charge under both policies, and who pays more or less."""

    people: list[ChargeImpact] = field(default_factory=list)
    not_compared: list[ChargeNotCompared] = field(default_factory=list)
    modelled: bool = False
    """Both policies have charging figures (before the Care Act a policy has none)."""

    def count(self, change: ChargeChange) -> int:
        return sum(1 for p in self.people if p.change is change)

    @property
    def pays_more(self) -> int:
        return self.count(ChargeChange.PAYS_MORE)

    @property
    def pays_less(self) -> int:
        return self.count(ChargeChange.PAYS_LESS)

    @property
    def same(self) -> int:
        return self.count(ChargeChange.SAME)

    @property
    def weekly_now_total(self) -> int:
        return sum(p.now.weekly_charge_pence for p in self.people)

    @property
    def weekly_proposed_total(self) -> int:
        return sum(p.proposed.weekly_charge_pence for p in self.people)

    @property
    def change_weekly_total(self) -> int:
        return self.weekly_proposed_total - self.weekly_now_total

    @property
    def changed(self) -> list[ChargeImpact]:
        """Those whose charge moves, the largest move first."""
        return sorted(
            (p for p in self.people if p.change_weekly),
            key=lambda p: (-abs(p.change_weekly), p.person_id),
        )


class NotRecalculable(Exception):
    """A person whose charge cannot be recalculated; the message says why."""


def _figures(charging: Charging, finances: Finances) -> list[SourcedFigure]:
    limits = charging.capital
    used = [limits.upper_limit, limits.lower_limit, limits.tariff_band]
    used.append(limits.tariff_per_band_weekly)
    mig = charging.minimum_income_guarantee.get(finances.mig_circumstance or "")
    if mig is not None:
        used.append(mig)
    if finances.mig_children:
        used.append(charging.mig_per_child)
    used += [
        charging.mig_premiums[p] for p in finances.mig_premiums or () if p in charging.mig_premiums
    ]
    return used


def charge_under(finances: Finances, policy: Policy) -> Charged:
    """The person's weekly charge under a policy's figures (rules.charging)."""
    charging = policy.charging
    if charging is None:
        raise NotRecalculable(f"{policy.policy_version} has no charging figures")
    cost = finances.cost_of_support_weekly_pence
    if finances.outcome is ev.FinancialAssessmentOutcome.LIGHT_TOUCH:
        charge = finances.weekly_charge_pence or 0
        return Charged(charge, False, 0, 0)
    if finances.outcome not in _CHARGED or cost is None:
        raise NotRecalculable(f"the financial assessment was {words(finances.outcome.value)}")
    if finances.mig_circumstance is None or finances.mig_children is None:
        raise NotRecalculable(
            "assessed before assessments recorded the children and premiums the Minimum "
            "Income Guarantee counted"
        )
    on = max([finances.assessed_on, *(f.applies_from for f in _figures(charging, finances))])
    try:
        result = rules.assess(
            rules.FinancialCircumstances(
                cost_of_support_weekly_pence=cost,
                capital=finances.capital,
                income_weekly=finances.income_weekly,
                mig_circumstance=finances.mig_circumstance,
                children=finances.mig_children,
                premiums=finances.mig_premiums or (),
                housing_costs_weekly_pence=finances.housing_costs_weekly_pence,
                disability_related_expenditure=finances.disability_related_expenditure,
            ),
            charging,
            on,
        )
    except rules.ChargingRefused as err:
        raise NotRecalculable(f"{policy.policy_version}: {err}") from err
    return Charged(
        weekly_charge_pence=result.weekly_charge_pence,
        full_cost_payer=result.full_cost_payer,
        tariff_income_weekly_pence=result.tariff_income_weekly_pence,
        minimum_income_guarantee_weekly_pence=result.minimum_income_guarantee_weekly_pence,
    )


def compare_charge(
    person_id: str, finances: Finances, current: Policy, proposed: Policy
) -> ChargeImpact | ChargeNotCompared:
    try:
        now = charge_under(finances, current)
        after = charge_under(finances, proposed)
    except NotRecalculable as err:
        return ChargeNotCompared(person_id, str(err))
    income_unknown = not finances.income_weekly
    if now.full_cost_payer and not after.full_cost_payer and income_unknown:
        return ChargeNotCompared(
            person_id,
            "a full-cost payer whose income was not assessed: below the proposed upper "
            "capital limit they would need a full assessment",
        )
    return ChargeImpact(
        person_id=person_id,
        outcome=finances.outcome,
        assessed_on=finances.assessed_on,
        recorded_weekly_pence=finances.weekly_charge_pence,
        now=now,
        proposed=after,
    )


def compare_charges(
    assessed: list[tuple[str, Finances]], current: Policy, proposed: Policy
) -> ChargingComparison:
    """Every financially assessed person's charge under both policies, by person id."""
    result = ChargingComparison(
        modelled=current.charging is not None and proposed.charging is not None
    )
    if not result.modelled:
        return result
    for person_id, finances in sorted(assessed, key=lambda item: item[0]):
        outcome = compare_charge(person_id, finances, current, proposed)
        if isinstance(outcome, ChargeImpact):
            result.people.append(outcome)
        else:
            result.not_compared.append(outcome)
    return result


# --- the policy diff, in words ----------------------------------------------------------------


def _figure_change(
    item: str, name: str, a: SourcedFigure | None, b: SourcedFigure | None
) -> PolicyChange | None:
    before = format_pounds(a.pence) if a else "none"
    after = format_pounds(b.pence) if b else "none"
    if before == after:
        return None
    if a is None:
        sentence = f"A new {name} of {after}."
    elif b is None:
        sentence = f"The {name} of {before} is dropped."
    else:
        way = "rises" if b.pence > a.pence else "falls"
        sentence = f"The {name} {way} from {before} to {after}."
    return PolicyChange("charging", item, before, after, sentence)


def charging_changes(current: Policy, proposed: Policy) -> list[PolicyChange]:
    """The financial assessment's figures the proposal changes, one sentence each."""
    a, b = current.charging, proposed.charging
    if a is None and b is None:
        return []
    if a is None or b is None:
        state = "brings in" if a is None else "drops"
        return [
            PolicyChange(
                "charging",
                "charging",
                "" if a is None else "the Care Act financial assessment",
                "" if b is None else "the Care Act financial assessment",
                f"The proposal {state} the Care Act financial assessment's figures.",
            )
        ]
    pairs: list[tuple[str, str, SourcedFigure | None, SourcedFigure | None]] = [
        (
            "capital.upper_limit",
            "upper capital limit",
            a.capital.upper_limit,
            b.capital.upper_limit,
        ),
        (
            "capital.lower_limit",
            "lower capital limit",
            a.capital.lower_limit,
            b.capital.lower_limit,
        ),
        ("capital.tariff_band", "tariff income band", a.capital.tariff_band, b.capital.tariff_band),
        (
            "capital.tariff_per_band_weekly",
            "tariff income a week for each band",
            a.capital.tariff_per_band_weekly,
            b.capital.tariff_per_band_weekly,
        ),
    ]
    for circumstance in dict.fromkeys([*a.minimum_income_guarantee, *b.minimum_income_guarantee]):
        pairs.append(
            (
                f"minimum_income_guarantee.{circumstance}",
                f"Minimum Income Guarantee ({words(circumstance)}) a week",
                a.minimum_income_guarantee.get(circumstance),
                b.minimum_income_guarantee.get(circumstance),
            )
        )
    pairs.append(
        ("mig_per_child", "guarantee for each child a week", a.mig_per_child, b.mig_per_child)
    )
    for premium in dict.fromkeys([*a.mig_premiums, *b.mig_premiums]):
        pairs.append(
            (
                f"mig_premiums.{premium}",
                f"{words(premium)} premium a week",
                a.mig_premiums.get(premium),
                b.mig_premiums.get(premium),
            )
        )
    changes = [_figure_change(item, name, x, y) for item, name, x, y in pairs]
    found = [c for c in changes if c is not None]
    for kinds, what in ((a.capital_kinds, b.capital_kinds), (a.income_kinds, b.income_kinds)):
        for kind in dict.fromkeys([*kinds, *what]):
            x, y = kinds.get(kind), what.get(kind)
            before = x.treatment.value if x else "not named"
            after = y.treatment.value if y else "not named"
            if before != after:
                found.append(
                    PolicyChange(
                        "charging",
                        kind,
                        before,
                        after,
                        f"{words(kind).capitalize()} would be {words(after)} "
                        f"(now {words(before)}).",
                    )
                )
    return found
