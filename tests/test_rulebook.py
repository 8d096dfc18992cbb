"""The rulebook's money and date rules with the seeds' own figures, called as `rules/` has them.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009); 004 = SCIE "Keeping
personal budgets personal" (2011), Appendix 1 and §6.7.
"""

from __future__ import annotations

from datetime import date

import pytest

from contracts.events import DeploymentOption, DeploymentPart
from contracts.policy import PolicyBook
from contracts.vocabulary import ClientGroup
from rules import ras
from rules.audit_tiers import audit_tier
from rules.contribution import contribution_annual
from rules.reviews import add_months, first_review_on, next_review_on
from servicekit.testing import POLICIES_DIR

BOOK = PolicyBook.from_directory(POLICIES_DIR)
DP = DeploymentOption.DIRECT_PAYMENT
CM = DeploymentOption.COUNCIL_MANAGED


def test_council_c_charges_75_percent_of_the_plan_capped_by_the_means_test() -> None:
    rule = BOOK.current("council_c").contribution
    assert contribution_annual(1_040_000, rule, assessed_max_weekly_pence=100_000) == 780_000
    assert contribution_annual(1_040_000, rule, assessed_max_weekly_pence=5_000) == 260_000
    council_a = BOOK.current("council_a").contribution  # 100% of the plan, up to the means
    assert contribution_annual(1_040_000, council_a, assessed_max_weekly_pence=5_000) == 260_000
    assert contribution_annual(1_040_000, council_a, assessed_max_weekly_pence=0) == 0


@pytest.mark.parametrize(
    ("annual_pence", "tier"),
    [
        (500_000, "light_touch"),  # exactly £5,000: the seed says "less than", so not above it
        (500_001, "detailed_annual_account"),
        (2_000_000, "detailed_annual_account"),
        (2_000_001, "full_annual_audit"),  # "in excess of £20,000"
    ],
)
def test_council_a_audits_by_annual_value(annual_pence: int, tier: str) -> None:
    monitoring = BOOK.current("council_a").monitoring
    parts = [DeploymentPart(option=DP, annual_pence=annual_pence)]
    assert audit_tier(parts, annual_pence, monitoring) == tier


def test_the_audit_tier_follows_the_direct_payment_part_of_a_mix_else_the_whole() -> None:
    monitoring = BOOK.current("council_a").monitoring
    mix = [
        DeploymentPart(option=DP, annual_pence=500_000),
        DeploymentPart(option=CM, annual_pence=2_500_000),
    ]
    assert audit_tier(mix, 3_000_000, monitoring) == "light_touch"
    whole = [DeploymentPart(option=CM, annual_pence=3_000_000)]
    assert audit_tier(whole, 3_000_000, monitoring) == "full_annual_audit"


def test_the_first_review_is_six_weeks_after_sign_off_then_every_twelve_months() -> None:
    reviews = BOOK.current("lancashire").reviews
    first = first_review_on(date(2010, 6, 1), reviews.first_after_days)
    assert first == date(2010, 7, 13)
    assert next_review_on(first, reviews.then_every_months) == date(2011, 7, 13)


def test_a_month_later_falls_back_to_the_months_last_day() -> None:
    assert add_months(date(2010, 1, 31), 1) == date(2010, 2, 28)
    assert add_months(date(2012, 2, 29), 12) == date(2013, 2, 28)


def test_the_ras_refuses_a_level_that_does_not_exist_naming_the_domain() -> None:
    policy = BOOK.current("lancashire")
    levels = {d.key: d.levels[0].level for d in policy.questionnaire.domains}
    levels["staying_safe"] = 99
    inputs = ras.BudgetInputs(
        client_group=ClientGroup.OLDER_PEOPLE,
        domain_levels=levels,
        significant_informal_support=False,
        needs_24_7=False,
    )
    with pytest.raises(ras.UnknownLevel, match="staying_safe"):
        ras.calculate_budget(inputs, policy)
