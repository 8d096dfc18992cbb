"""The Care Act financial assessment: what a person pays each week towards their support.

The Care and Support (Charging and Assessment of Resources) Regulations 2014 and the Care
and Support Statutory Guidance, Annexes B (capital) and C (income), for care other than in
a care home. Every figure is the policy's `charging` (docs/charging.md gives the source of
each); money is integer pence (ADR 3).

- Capital: the kinds the policy counts are added up (the home is disregarded while care is
  at home). At or above the upper limit the person pays the full cost of their support.
  Between the limits, tariff income of £1 a week for every £250, or part of £250, above the
  lower limit; at or below the lower limit, none.
- Income: the kinds the policy counts (earnings and the mobility components are among those
  it disregards).
- The weekly charge = assessed income + tariff income - the Minimum Income Guarantee -
  housing costs - disability-related expenditure, never below zero and never above the
  cost of the support.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from contracts.events import LightTouchBasis
from contracts.money import format_pounds
from contracts.policy import CapitalLimits, Charging, SourcedFigure, Treated, Treatment


class ChargingRefused(ValueError):
    """Inputs the policy's charging figures cannot assess; the message says which."""


class UnknownIncomeKind(ChargingRefused):
    def __init__(self, kind: str, known: Iterable[str]) -> None:
        super().__init__(
            f"income: {kind!r} is not a kind of income the policy knows; "
            f"use one of: {', '.join(sorted(known))}"
        )


class UnknownCapitalKind(ChargingRefused):
    def __init__(self, kind: str, known: Iterable[str]) -> None:
        super().__init__(
            f"capital: {kind!r} is not a kind of capital the policy knows; "
            f"use one of: {', '.join(sorted(known))}"
        )


class UnknownCircumstance(ChargingRefused):
    def __init__(self, circumstance: str, known: Iterable[str]) -> None:
        super().__init__(
            f"mig_circumstance: {circumstance!r} has no Minimum Income Guarantee in the "
            f"policy; use one of: {', '.join(sorted(known))}"
        )


class UnknownPremium(ChargingRefused):
    def __init__(self, premium: str, known: Iterable[str]) -> None:
        super().__init__(
            f"premiums: {premium!r} is not a premium the policy knows; "
            f"use one of: {', '.join(sorted(known)) or '(none)'}"
        )


class FigureNotInForce(ChargingRefused):
    def __init__(self, name: str, figure: SourcedFigure, on: date) -> None:
        super().__init__(
            f"the policy's {name} applies from {figure.applies_from.isoformat()}, after the "
            f"assessment date {on.isoformat()}"
        )


class NominalChargeMissing(ChargingRefused):
    def __init__(self) -> None:
        super().__init__(
            "nominal_charge_weekly_pence: a light-touch assessment on a nominal charge "
            "needs the charge"
        )


@dataclass(frozen=True)
class Amount:
    """A piece of capital (a total) or of income (a weekly amount), of a kind the policy names."""

    kind: str
    pence: int


@dataclass(frozen=True)
class Expenditure:
    """One item of disability-related expenditure, weekly."""

    description: str
    weekly_pence: int


@dataclass(frozen=True)
class FinancialCircumstances:
    """What a full financial assessment is told about the person, each week."""

    cost_of_support_weekly_pence: int
    capital: tuple[Amount, ...]
    income_weekly: tuple[Amount, ...]
    mig_circumstance: str
    children: int
    premiums: tuple[str, ...]
    housing_costs_weekly_pence: int
    disability_related_expenditure: tuple[Expenditure, ...]


@dataclass(frozen=True)
class Line:
    """One line of the calculation for a letter: a label, a signed weekly figure, its source."""

    label: str
    weekly_pence: int
    source: str | None = None


@dataclass(frozen=True)
class AssessedAmount:
    """An amount as assessed: counted, or disregarded by the policy."""

    kind: str
    pence: int
    counted: bool


@dataclass(frozen=True)
class ChargeAssessment:
    """Every figure of a full financial assessment and the weekly charge it comes to."""

    full_cost_payer: bool
    capital: tuple[AssessedAmount, ...]
    capital_counted_pence: int
    tariff_income_weekly_pence: int
    income_weekly: tuple[AssessedAmount, ...]
    income_counted_weekly_pence: int
    minimum_income_guarantee_weekly_pence: int
    housing_costs_weekly_pence: int
    disability_related_expenditure_weekly_pence: int
    weekly_charge_pence: int
    lines: tuple[Line, ...]
    figures_to_confirm: tuple[str, ...]


def _in_force(name: str, figure: SourcedFigure, on: date) -> int:
    if figure.applies_from > on:
        raise FigureNotInForce(name, figure, on)
    return figure.pence


def is_full_cost_payer(capital_pence: int, limits: CapitalLimits) -> bool:
    """At or above the upper capital limit the person pays the full cost."""
    return capital_pence >= limits.upper_limit.pence


def tariff_income_weekly_pence(capital_pence: int, limits: CapitalLimits) -> int:
    """£1 a week for every £250, or part of £250, above the lower limit and up to the upper.

    At or below the lower limit: none. Above the upper limit the full cost applies instead;
    the tariff is then reported as that of the upper limit.
    """
    above = min(capital_pence, limits.upper_limit.pence) - limits.lower_limit.pence
    if above <= 0:
        return 0
    bands = -(-above // limits.tariff_band.pence)  # a part of a band counts as a whole one
    return bands * limits.tariff_per_band_weekly.pence


def weekly_charge_pence(
    *,
    assessed_income: int,
    tariff_income: int,
    minimum_income_guarantee: int,
    housing_costs: int,
    disability_related_expenditure: int,
    cost_of_support: int,
) -> int:
    """Income + tariff - MIG - housing costs - DRE, never below zero nor above the cost."""
    left = (
        assessed_income
        + tariff_income
        - minimum_income_guarantee
        - housing_costs
        - disability_related_expenditure
    )
    return min(max(left, 0), cost_of_support)


def minimum_income_guarantee_weekly_pence(
    charging: Charging, circumstance: str, children: int, premiums: Iterable[str], on: date
) -> int:
    """The MIG by age and circumstance, plus the amount for each child and each premium."""
    base = charging.minimum_income_guarantee.get(circumstance)
    if base is None:
        raise UnknownCircumstance(circumstance, charging.minimum_income_guarantee)
    total = _in_force(f"minimum_income_guarantee.{circumstance}", base, on)
    if children:
        total += children * _in_force("mig_per_child", charging.mig_per_child, on)
    for premium in premiums:
        figure = charging.mig_premiums.get(premium)
        if figure is None:
            raise UnknownPremium(premium, charging.mig_premiums)
        total += _in_force(f"mig_premiums.{premium}", figure, on)
    return total


def _treat(
    amounts: Iterable[Amount],
    kinds: dict[str, Treated],
    unknown: Callable[[str, Iterable[str]], ChargingRefused],
) -> tuple[AssessedAmount, ...]:
    treated: list[AssessedAmount] = []
    for amount in amounts:
        rule = kinds.get(amount.kind)
        if rule is None:
            raise unknown(amount.kind, kinds)
        treated.append(
            AssessedAmount(amount.kind, amount.pence, rule.treatment is Treatment.COUNTED)
        )
    return tuple(treated)


def _to_confirm(charging: Charging, circumstances: FinancialCircumstances) -> tuple[str, ...]:
    used: list[tuple[str, str | None]] = [
        ("capital.upper_limit", charging.capital.upper_limit.to_confirm),
        ("capital.lower_limit", charging.capital.lower_limit.to_confirm),
        ("capital.tariff_band", charging.capital.tariff_band.to_confirm),
        ("capital.tariff_per_band_weekly", charging.capital.tariff_per_band_weekly.to_confirm),
    ]
    mig = charging.minimum_income_guarantee.get(circumstances.mig_circumstance)
    if mig is not None:
        name = f"minimum_income_guarantee.{circumstances.mig_circumstance}"
        used.append((name, mig.to_confirm))
    if circumstances.children:
        used.append(("mig_per_child", charging.mig_per_child.to_confirm))
    for premium in circumstances.premiums:
        figure = charging.mig_premiums.get(premium)
        if figure is not None:
            used.append((f"mig_premiums.{premium}", figure.to_confirm))
    for amounts, kinds in (
        (circumstances.capital, charging.capital_kinds),
        (circumstances.income_weekly, charging.income_kinds),
    ):
        for amount in amounts:
            rule = kinds.get(amount.kind)
            if rule is not None:
                used.append((amount.kind, rule.to_confirm))
    return tuple(dict.fromkeys(f"{name}: {note}" for name, note in used if note))


def assess(circumstances: FinancialCircumstances, charging: Charging, on: date) -> ChargeAssessment:
    """A full financial assessment on a date, with every figure and a line for each."""
    c = circumstances
    limits = charging.capital
    for name, figure in (
        ("capital.upper_limit", limits.upper_limit),
        ("capital.lower_limit", limits.lower_limit),
        ("capital.tariff_band", limits.tariff_band),
        ("capital.tariff_per_band_weekly", limits.tariff_per_band_weekly),
    ):
        _in_force(name, figure, on)
    capital = _treat(c.capital, charging.capital_kinds, UnknownCapitalKind)
    income = _treat(c.income_weekly, charging.income_kinds, UnknownIncomeKind)
    capital_counted = sum(a.pence for a in capital if a.counted)
    income_counted = sum(a.pence for a in income if a.counted)
    mig = minimum_income_guarantee_weekly_pence(
        charging, c.mig_circumstance, c.children, c.premiums, on
    )
    dre = sum(item.weekly_pence for item in c.disability_related_expenditure)
    tariff = tariff_income_weekly_pence(capital_counted, limits)
    full_cost = is_full_cost_payer(capital_counted, limits)
    cost = c.cost_of_support_weekly_pence
    lines: tuple[Line, ...]
    if full_cost:
        charge = cost
        lines = (
            Line(
                f"Capital counted {format_pounds(capital_counted)}: at or above the upper "
                f"limit of {format_pounds(limits.upper_limit.pence)}, so the full cost",
                cost,
                limits.upper_limit.source,
            ),
            Line("Your weekly charge", cost),
        )
    else:
        charge = weekly_charge_pence(
            assessed_income=income_counted,
            tariff_income=tariff,
            minimum_income_guarantee=mig,
            housing_costs=c.housing_costs_weekly_pence,
            disability_related_expenditure=dre,
            cost_of_support=cost,
        )
        lines = _lines(c, charging, income_counted, capital_counted, tariff, mig, dre, charge)
    return ChargeAssessment(
        full_cost_payer=full_cost,
        capital=capital,
        capital_counted_pence=capital_counted,
        tariff_income_weekly_pence=tariff,
        income_weekly=income,
        income_counted_weekly_pence=income_counted,
        minimum_income_guarantee_weekly_pence=mig,
        housing_costs_weekly_pence=c.housing_costs_weekly_pence,
        disability_related_expenditure_weekly_pence=dre,
        weekly_charge_pence=charge,
        lines=lines,
        figures_to_confirm=_to_confirm(charging, c),
    )


def _lines(
    c: FinancialCircumstances,
    charging: Charging,
    income_counted: int,
    capital_counted: int,
    tariff: int,
    mig: int,
    dre: int,
    charge: int,
) -> tuple[Line, ...]:
    limits = charging.capital
    mig_source = charging.minimum_income_guarantee[c.mig_circumstance].source
    lines = [
        Line("Income we count", income_counted, charging.source),
        Line(
            f"Tariff income on capital of {format_pounds(capital_counted)} "
            f"({format_pounds(limits.tariff_per_band_weekly.pence)} a week for every "
            f"{format_pounds(limits.tariff_band.pence)} or part of it "
            f"above {format_pounds(limits.lower_limit.pence)})",
            tariff,
            limits.tariff_per_band_weekly.source,
        ),
        Line("Less the Minimum Income Guarantee you keep", -mig, mig_source),
        Line("Less your housing costs", -c.housing_costs_weekly_pence),
        Line("Less your disability-related expenditure", -dre),
    ]
    left = income_counted + tariff - mig - c.housing_costs_weekly_pence - dre
    if left < 0:
        lines.append(Line("Nothing is left to charge, so the charge is nil", -left))
    elif left > charge:
        lines.append(
            Line(
                "Capped at the cost of your support "
                f"({format_pounds(c.cost_of_support_weekly_pence)} a week)",
                charge - left,
            )
        )
    lines.append(Line("Your weekly charge", charge))
    return tuple(lines)


def light_touch_charge_pence(
    basis: LightTouchBasis, cost_of_support_weekly_pence: int, nominal_weekly_pence: int | None
) -> int:
    """The weekly charge a light-touch assessment sets (statutory guidance, Annex C).

    A person with significant resources who does not want a full assessment pays the full
    cost; a nominal charge the person can clearly meet is that charge (never above the
    cost); benefits showing the person cannot contribute mean no charge.
    """
    if basis is LightTouchBasis.SIGNIFICANT_RESOURCES:
        return cost_of_support_weekly_pence
    if basis is LightTouchBasis.NOMINAL_CHARGE:
        if nominal_weekly_pence is None:
            raise NominalChargeMissing()
        return min(nominal_weekly_pence, cost_of_support_weekly_pence)
    return 0
