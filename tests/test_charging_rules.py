"""The Care Act rules with the regulations' own figures: eligibility (Care and Support
(Eligibility Criteria) Regulations 2015, reg. 2) and the financial assessment (Care and
Support (Charging and Assessment of Resources) Regulations 2014; statutory guidance Annexes B
and C), as every council's policy carries them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.policy import Charging, Policy, PolicyBook, policy_document
from contracts.vocabulary import Difficulty, EligibilityOutcome
from rules.charging import (
    Amount,
    Expenditure,
    FigureNotInForce,
    FinancialCircumstances,
    UnknownCircumstance,
    UnknownIncomeKind,
    assess,
    tariff_income_weekly_pence,
    weekly_charge_pence,
)
from rules.eligibility import CriteriaNotInForce, determine
from servicekit.testing import POLICIES_DIR

BOOK = PolicyBook.from_directory(POLICIES_DIR)
ON = date(2025, 6, 2)


def charging(council: str = "lancashire") -> Charging:
    figures = BOOK.current(council).charging
    assert figures is not None
    return figures


LIMITS = charging().capital


def pounds(amount: str) -> int:
    whole, _, pence = amount.partition(".")
    return int(whole.replace(",", "")) * 100 + int(pence or 0)


def circumstances(**changes: object) -> FinancialCircumstances:
    base = FinancialCircumstances(
        cost_of_support_weekly_pence=pounds("300"),
        capital=(),
        income_weekly=(),
        mig_circumstance="single_pension_credit_age",
        children=0,
        premiums=(),
        housing_costs_weekly_pence=0,
        disability_related_expenditure=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- capital: the regulations' limits and tariff income --------------------------------------


@pytest.mark.parametrize(
    ("capital", "tariff"),
    [
        ("0", "0"),
        ("14,250", "0"),  # at the lower limit: no tariff income
        ("14,250.01", "1"),  # a part of £250 counts as a whole £250
        ("14,500", "1"),
        ("14,500.01", "2"),
        ("20,000", "23"),  # £5,750 above the lower limit is 23 bands of £250
        ("23,249.99", "36"),
    ],
)
def test_tariff_income_is_a_pound_a_week_for_every_250_or_part_above_14250(
    capital: str, tariff: str
) -> None:
    assert tariff_income_weekly_pence(pounds(capital), LIMITS) == pounds(tariff)


@pytest.mark.parametrize("capital", ["23,250", "23,250.01", "100,000"])
def test_capital_of_23250_and_above_pays_the_full_cost(capital: str) -> None:
    result = assess(circumstances(capital=(Amount("savings", pounds(capital)),)), charging(), ON)
    assert result.full_cost_payer
    assert result.weekly_charge_pence == pounds("300")


def test_just_below_the_upper_limit_the_charge_is_means_tested() -> None:
    result = assess(
        circumstances(capital=(Amount("savings", pounds("23,249.99")),)), charging(), ON
    )
    assert not result.full_cost_payer
    assert result.tariff_income_weekly_pence == pounds("36")


def test_the_home_is_disregarded_when_care_is_at_home() -> None:
    result = assess(
        circumstances(
            capital=(Amount("main_home", pounds("250,000")), Amount("savings", pounds("20,000")))
        ),
        charging(),
        ON,
    )
    assert not result.full_cost_payer
    assert result.capital_counted_pence == pounds("20,000")
    assert result.tariff_income_weekly_pence == pounds("23")


# --- income, the Minimum Income Guarantee and the charge ----------------------------------------


def test_the_charge_is_income_plus_tariff_less_mig_housing_and_dre() -> None:
    mig = charging().minimum_income_guarantee["single_pension_credit_age"].pence
    result = assess(
        circumstances(
            capital=(Amount("savings", pounds("20,000")),),
            income_weekly=(
                Amount("state_pension", pounds("230")),
                Amount("attendance_allowance", pounds("73.90")),
            ),
            housing_costs_weekly_pence=pounds("20"),
            disability_related_expenditure=(
                Expenditure("Extra laundry", pounds("4.50")),
                Expenditure("Community alarm", pounds("5")),
            ),
        ),
        charging(),
        ON,
    )
    expected = pounds("230") + pounds("73.90") + pounds("23") - mig - pounds("20") - pounds("9.50")
    assert result.weekly_charge_pence == expected
    assert result.lines[-1].weekly_pence == expected
    assert sum(line.weekly_pence for line in result.lines[:-1]) == expected


def test_earnings_and_the_mobility_component_are_disregarded() -> None:
    with_them = assess(
        circumstances(
            income_weekly=(
                Amount("state_pension", pounds("230")),
                Amount("earnings", pounds("120")),
                Amount("pip_mobility", pounds("75.75")),
            )
        ),
        charging(),
        ON,
    )
    without = assess(
        circumstances(income_weekly=(Amount("state_pension", pounds("230")),)), charging(), ON
    )
    assert with_them.income_counted_weekly_pence == pounds("230")
    assert with_them.weekly_charge_pence == without.weekly_charge_pence


def test_income_below_the_minimum_income_guarantee_is_never_a_negative_charge() -> None:
    result = assess(
        circumstances(income_weekly=(Amount("state_pension", pounds("100")),)), charging(), ON
    )
    assert result.weekly_charge_pence == 0


def test_the_charge_is_never_above_the_cost_of_the_support() -> None:
    result = assess(
        circumstances(
            cost_of_support_weekly_pence=pounds("50"),
            income_weekly=(Amount("occupational_or_private_pension", pounds("900")),),
        ),
        charging(),
        ON,
    )
    assert result.weekly_charge_pence == pounds("50")


def test_each_child_adds_the_policys_amount_to_the_minimum_income_guarantee() -> None:
    figures = charging()
    alone = assess(circumstances(mig_circumstance="single_25_to_pension_credit_age"), figures, ON)
    two = assess(
        circumstances(mig_circumstance="single_25_to_pension_credit_age", children=2), figures, ON
    )
    difference = two.minimum_income_guarantee_weekly_pence
    difference -= alone.minimum_income_guarantee_weekly_pence
    assert difference == 2 * figures.mig_per_child.pence


def test_an_income_the_policy_does_not_name_is_refused_by_name() -> None:
    with pytest.raises(UnknownIncomeKind, match="lottery_win"):
        assess(circumstances(income_weekly=(Amount("lottery_win", 100),)), charging(), ON)


def test_a_circumstance_without_a_minimum_income_guarantee_is_refused() -> None:
    with pytest.raises(UnknownCircumstance, match="couple"):
        assess(circumstances(mig_circumstance="couple_pension_credit_age"), charging(), ON)


def test_figures_not_yet_in_force_are_refused_rather_than_applied() -> None:
    with pytest.raises(FigureNotInForce, match="applies from"):
        assess(circumstances(), charging(), date(2014, 6, 2))


def test_an_assessment_names_every_figure_still_to_be_confirmed() -> None:
    result = assess(circumstances(), charging(), ON)
    assert any(
        "minimum_income_guarantee.single_pension_credit_age" in f for f in result.figures_to_confirm
    )


# --- properties ------------------------------------------------------------------------------

money = st.integers(min_value=0, max_value=500_000)


@settings(max_examples=300, deadline=None)
@given(
    income=money,
    tariff=money,
    mig=money,
    housing=money,
    dre=money,
    cost=money,
)
def test_a_charge_is_never_negative_nor_above_the_cost(
    income: int, tariff: int, mig: int, housing: int, dre: int, cost: int
) -> None:
    charge = weekly_charge_pence(
        assessed_income=income,
        tariff_income=tariff,
        minimum_income_guarantee=mig,
        housing_costs=housing,
        disability_related_expenditure=dre,
        cost_of_support=cost,
    )
    assert 0 <= charge <= cost


@settings(max_examples=300, deadline=None)
@given(
    capital=st.integers(min_value=0, max_value=5_000_000),
    income=money,
    earnings=money,
    housing=money,
    dre=money,
    cost=money,
    circumstance=st.sampled_from(sorted(charging().minimum_income_guarantee)),
    children=st.integers(min_value=0, max_value=4),
)
def test_an_assessed_charge_is_never_negative_nor_above_the_cost(
    capital: int,
    income: int,
    earnings: int,
    housing: int,
    dre: int,
    cost: int,
    circumstance: str,
    children: int,
) -> None:
    result = assess(
        circumstances(
            cost_of_support_weekly_pence=cost,
            capital=(Amount("savings", capital),),
            income_weekly=(Amount("state_pension", income), Amount("earnings", earnings)),
            mig_circumstance=circumstance,
            children=children,
            housing_costs_weekly_pence=housing,
            disability_related_expenditure=(Expenditure("Extra laundry", dre),),
        ),
        charging(),
        ON,
    )
    assert 0 <= result.weekly_charge_pence <= cost
    assert sum(line.weekly_pence for line in result.lines[:-1]) == result.weekly_charge_pence


@settings(max_examples=300, deadline=None)
@given(
    lower=st.integers(min_value=0, max_value=5_000_000),
    more=st.integers(min_value=0, max_value=5_000_000),
    income=money,
    cost=money,
    council=st.sampled_from(BOOK.councils),
)
def test_more_capital_never_means_a_lower_charge(
    lower: int, more: int, income: int, cost: int, council: str
) -> None:
    def charge(capital: int) -> int:
        return assess(
            circumstances(
                cost_of_support_weekly_pence=cost,
                capital=(Amount("savings", capital),),
                income_weekly=(Amount("state_pension", income),),
            ),
            charging(council),
            ON,
        ).weekly_charge_pence

    assert charge(lower) <= charge(lower + more)


# --- eligibility -------------------------------------------------------------------------------

ELIGIBILITY = BOOK.current("lancashire").eligibility
assert ELIGIBILITY is not None
NUTRITION, HYGIENE = EligibilityOutcome.NUTRITION, EligibilityOutcome.PERSONAL_HYGIENE


def test_two_outcomes_and_a_significant_impact_are_eligible() -> None:
    decision = determine(
        needs_from_impairment_or_illness=True,
        outcomes={
            NUTRITION: [Difficulty.ONLY_WITH_ASSISTANCE],
            HYGIENE: [Difficulty.TAKES_SIGNIFICANTLY_LONGER],
        },
        significant_impact_on_wellbeing=True,
        rules=ELIGIBILITY,
        on=ON,
    )
    assert decision.eligible
    assert "managing and maintaining nutrition" in decision.reasons[1]


def test_one_outcome_is_not_enough() -> None:
    decision = determine(
        needs_from_impairment_or_illness=True,
        outcomes={NUTRITION: [Difficulty.CANNOT]},
        significant_impact_on_wellbeing=True,
        rules=ELIGIBILITY,
        on=ON,
    )
    assert not decision.eligible
    assert any("at least 2" in reason for reason in decision.reasons)


def test_an_outcome_without_a_reason_it_cannot_be_achieved_does_not_count() -> None:
    decision = determine(
        needs_from_impairment_or_illness=True,
        outcomes={NUTRITION: [Difficulty.CANNOT], HYGIENE: []},
        significant_impact_on_wellbeing=True,
        rules=ELIGIBILITY,
        on=ON,
    )
    assert not decision.eligible
    assert len(decision.outcomes_not_achieved) == 1


@pytest.mark.parametrize(
    ("from_impairment", "impact"), [(False, True), (True, False), (False, False)]
)
def test_without_an_impairment_or_a_significant_impact_no_number_of_outcomes_is_enough(
    from_impairment: bool, impact: bool
) -> None:
    decision = determine(
        needs_from_impairment_or_illness=from_impairment,
        outcomes={o: [Difficulty.CANNOT] for o in EligibilityOutcome},
        significant_impact_on_wellbeing=impact,
        rules=ELIGIBILITY,
        on=ON,
    )
    assert not decision.eligible


def test_before_the_criteria_apply_they_are_refused_not_applied() -> None:
    with pytest.raises(CriteriaNotInForce, match="2015-04-01"):
        determine(
            needs_from_impairment_or_illness=True,
            outcomes={NUTRITION: [Difficulty.CANNOT], HYGIENE: [Difficulty.CANNOT]},
            significant_impact_on_wellbeing=True,
            rules=ELIGIBILITY,
            on=date(2015, 3, 31),
        )


# --- the policy sections are optional ----------------------------------------------------------


def test_a_policy_without_the_care_act_sections_keeps_the_document_it_was_adopted_with() -> None:
    with_sections = BOOK.current("lancashire")
    without = with_sections.model_copy(update={"eligibility": None, "charging": None})
    document = policy_document(without)
    assert "charging" not in document and "eligibility" not in document
    assert Policy.model_validate(document) == without
    assert "charging" in policy_document(with_sections)
