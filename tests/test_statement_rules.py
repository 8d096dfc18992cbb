"""The financial assessment's charge in payments and the personal budget statement (Care
Act 2014 s.26): rules/statement.py, docs/charging.md "The charge in payments"."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.events import FinancialAssessmentOutcome as Outcome
from contracts.events import LightTouchBasis
from contracts.policy import Contribution, ContributionKind
from rules.contribution import contribution_annual
from rules.statement import (
    BudgetFigures,
    assessed_max_weekly_pence,
    pays_full_cost,
    rescheduled_pence,
    sets_a_charge,
    statement_due,
    statement_text,
    weekly_pence,
)

COUNCIL_C = Contribution(
    kind=ContributionKind.SHARE_OF_PLAN_CAPPED_BY_MEANS, share_of_plan_basis_points=7_500
)
WHOLE_SHARE = Contribution(
    kind=ContributionKind.SHARE_OF_PLAN_CAPPED_BY_MEANS, share_of_plan_basis_points=10_000
)
BUDGET = 24_150 * 52  # £241.50 a week


def test_a_deferred_assessment_sets_no_charge_and_every_other_outcome_does() -> None:
    assert not sets_a_charge(Outcome.DEFERRED)
    assert all(sets_a_charge(o) for o in Outcome if o is not Outcome.DEFERRED)


@pytest.mark.parametrize(
    ("outcome", "basis", "full_cost"),
    [
        (Outcome.FULL_COST_PAYER, None, True),
        (Outcome.REFUSED, None, True),
        (Outcome.LIGHT_TOUCH, LightTouchBasis.SIGNIFICANT_RESOURCES, True),
        (Outcome.LIGHT_TOUCH, LightTouchBasis.NOMINAL_CHARGE, False),
        (Outcome.LIGHT_TOUCH, LightTouchBasis.BENEFITS_SHOW_NO_CONTRIBUTION, False),
        (Outcome.ASSESSED, None, False),
    ],
)
def test_who_pays_the_full_cost(
    outcome: Outcome, basis: LightTouchBasis | None, full_cost: bool
) -> None:
    assert pays_full_cost(outcome, basis) is full_cost


def test_an_assessed_charge_of_89_85_caps_the_contribution_at_89_85_a_week() -> None:
    cap = assessed_max_weekly_pence(
        full_cost=False, weekly_charge_pence=8_985, gross_annual_pence=BUDGET
    )
    assert cap == 8_985
    assert contribution_annual(BUDGET, WHOLE_SHARE, cap) == 8_985 * 52


def test_a_full_cost_payer_pays_the_whole_budget_and_council_c_still_caps_it_at_75_percent() -> (
    None
):
    cap = assessed_max_weekly_pence(
        full_cost=True, weekly_charge_pence=None, gross_annual_pence=BUDGET
    )
    assert contribution_annual(BUDGET, WHOLE_SHARE, cap) == BUDGET
    assert contribution_annual(BUDGET, COUNCIL_C, cap) == BUDGET * 3 // 4


def test_the_full_cost_of_a_budget_not_a_whole_number_of_pence_a_week_is_rounded_up() -> None:
    cap = assessed_max_weekly_pence(full_cost=True, weekly_charge_pence=None, gross_annual_pence=53)
    assert cap == 2  # 52 weeks of 1p would leave the person a penny short of the full cost


def test_the_weeks_left_pay_their_share_of_the_new_net_annual() -> None:
    assert rescheduled_pence(1_040_000, 26, 52) == 520_000
    assert rescheduled_pence(1_040_000, 52, 52) == 1_040_000
    assert rescheduled_pence(1_040_000, 0, 52) == 0


def test_a_statement_is_due_for_the_first_figures_and_when_one_changes_only() -> None:
    figures = BudgetFigures(BUDGET, 8_985 * 52)
    assert statement_due(None, figures)
    assert not statement_due(figures, BudgetFigures(BUDGET, 8_985 * 52))
    assert statement_due(figures, BudgetFigures(BUDGET, 9_000 * 52))
    assert statement_due(figures, BudgetFigures(BUDGET + 52, 8_985 * 52))


def test_the_person_never_pays_more_than_the_budget() -> None:
    with pytest.raises(ValueError, match="never pays more"):
        BudgetFigures(100, 101)


@given(
    total=st.integers(min_value=0, max_value=10**9),
    share=st.floats(min_value=0, max_value=1),
)
def test_the_weekly_figures_add_up_to_the_weekly_total(total: int, share: float) -> None:
    figures = BudgetFigures(total, int(total * share))
    assert (
        figures.person_pays_weekly_pence + figures.council_pays_weekly_pence
        == figures.total_weekly_pence
        == weekly_pence(total)
    )
    assert figures.council_pays_weekly_pence >= 0


def test_the_statement_says_the_three_figures_in_plain_words() -> None:
    text = statement_text(
        BudgetFigures(BUDGET, 8_985 * 52),
        applies_from=date(2025, 5, 12),
        charge_outcome=Outcome.ASSESSED,
    )
    assert text.startswith("Your personal budget from 12 May 2025.")
    assert "The cost of meeting your eligible needs is £241.50 a week (£12,558.00 a year)." in text
    assert "You pay £89.85 a week (£4,672.20 a year), as your financial assessment" in text
    assert "The council pays £151.65 a week (£7,885.80 a year)." in text
    assert "you can challenge it" in text


def test_a_refusal_is_explained_and_nothing_to_pay_is_said_so() -> None:
    refused = statement_text(
        BudgetFigures(BUDGET, BUDGET),
        applies_from=date(2025, 5, 12),
        charge_outcome=Outcome.REFUSED,
    )
    assert "the full cost, because you chose not to have a financial assessment" in refused
    assert "The council pays £0.00 a week" in refused
    nothing = statement_text(
        BudgetFigures(BUDGET, 0), applies_from=date(2025, 5, 12), charge_outcome=None
    )
    assert "You pay nothing towards it." in nothing
