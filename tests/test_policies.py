"""The council policy files under policies/ load, and carry the seeds' own figures.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009).
Seed 004 = SCIE "Keeping personal budgets personal" (2011), Councils A-E in Appendix 1.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.policy import Policy, PolicyBook, PolicyError, load_policy, policy_document
from contracts.vocabulary import ClientGroup, Role
from rules.authority import lowest_sign_off_role, may_sign_off

POLICIES = Path(__file__).resolve().parents[1] / "policies"
COUNCILS = ["council_a", "council_b", "council_c", "council_d", "council_e", "lancashire"]

# Seed 003 ch.2 Step 1 §ii: "The 6 domains and their maximum and minimum points".
LANCASHIRE_MAX_MIN = {
    "staying_safe": (30, 5),
    "communication": (5, 1),
    "work_leisure_learning": (5, 1),
    "essential_living_tasks": (10, 2),
    "personal_care": (10, 1),
    "health": (10, 2),
}


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return PolicyBook.from_directory(POLICIES)


@pytest.fixture(scope="module")
def lancashire(book: PolicyBook) -> Policy:
    return book.current("lancashire")


@pytest.fixture(scope="module")
def council_a(book: PolicyBook) -> Policy:
    return book.current("council_a")


def _raw(council: str) -> dict[str, Any]:
    raw = yaml.safe_load((POLICIES / f"{council}.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _write(directory: Path, name: str, raw: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# --- every file ------------------------------------------------------------------


def test_every_policy_file_loads_through_the_policy_book(book: PolicyBook) -> None:
    assert book.councils == COUNCILS


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_policy_file_is_named_for_its_council(path: Path) -> None:
    assert load_policy(path).council == path.stem


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_policy_file_opens_with_a_comment_citing_its_seeds(path: Path) -> None:
    header = path.read_text(encoding="utf-8").split("\ncouncil:")[0]
    assert header.startswith("#")
    assert re.search(r"Seed 00[34]", header)


@pytest.mark.parametrize("council", COUNCILS)
def test_every_assumption_names_the_seed_that_leaves_it_open(
    book: PolicyBook, council: str
) -> None:
    policy = book.current(council)
    assumed = [*policy.assumptions, *policy.ras.assumed, *policy.monitoring.assumed]
    assert policy.assumptions
    for text in assumed:
        assert re.search(r"seed 00[0-4]", text, re.IGNORECASE), text


@pytest.mark.parametrize("council", COUNCILS)
def test_every_retention_period_is_recorded_as_an_assumption(
    book: PolicyBook, council: str
) -> None:
    policy = book.current(council)
    assert any(
        a.startswith(f"retention_years = {policy.retention_years}:") for a in policy.assumptions
    )


@pytest.mark.parametrize("council", COUNCILS)
def test_reviews_come_within_six_to_eight_weeks_then_yearly_with_their_source(
    book: PolicyBook, council: str
) -> None:
    # Seed 004 §6.7: a six-week and annual review; Care and Support Statutory Guidance,
    # para. 13.32: 6-8 weeks after sign-off, then no later than every 12 months.
    reviews = book.current(council).reviews
    assert 42 <= reviews.first_after_days <= 56
    assert reviews.then_every_months == 12
    assert reviews.source is not None and "13.32" in reviews.source


@pytest.mark.parametrize("council", COUNCILS)
def test_providers_add_a_ten_percent_management_fee(book: PolicyBook, council: str) -> None:
    # Seed 003 ch.3 (Castle) and ch.4 §4: a flat 10% management fee.
    assert book.current(council).planning.provider_management_fee_basis_points == 1000


# --- Lancashire (seed 003) -----------------------------------------------------------


def test_lancashire_maximum_total_is_70_points(lancashire: Policy) -> None:
    # Seed 003 ch.2 Step 1 §ii: 30 + 5 + 5 + 10 + 10 + 10.
    assert lancashire.questionnaire.max_points == 70


def test_lancashire_minimum_total_is_12_points(lancashire: Policy) -> None:
    # Seed 003 ch.2 Step 1 §ii: 5 + 1 + 1 + 2 + 1 + 2.
    assert sum(d.min_points for d in lancashire.questionnaire.domains) == 12


def test_lancashire_has_exactly_the_six_seed_domains(lancashire: Policy) -> None:
    assert [d.key for d in lancashire.questionnaire.domains] == list(LANCASHIRE_MAX_MIN)


@pytest.mark.parametrize(("key", "max_min"), LANCASHIRE_MAX_MIN.items())
def test_lancashire_domain_max_and_min_points_match_the_seed(
    lancashire: Policy, key: str, max_min: tuple[int, int]
) -> None:
    domain = lancashire.questionnaire.domain(key)
    assert domain is not None
    assert (domain.max_points, domain.min_points) == max_min


@pytest.mark.parametrize("key", LANCASHIRE_MAX_MIN)
def test_lancashire_in_between_levels_are_marked_assumed_and_the_ends_are_not(
    lancashire: Policy, key: str
) -> None:
    # Seed 003 ch.2 Step 1 §i: "roughly five levels"; only max and min are printed.
    domain = lancashire.questionnaire.domain(key)
    assert domain is not None
    assert [lvl.level for lvl in domain.levels] == [1, 2, 3, 4, 5]
    assert [lvl.assumed for lvl in domain.levels] == [False, True, True, True, False]


def test_lancashire_price_per_point_is_recorded_as_an_assumption(lancashire: Policy) -> None:
    prices = lancashire.ras.price_per_point_weekly_pence
    assert set(prices) == set(lancashire.client_groups)
    assert any("price_per_point_weekly_pence" in a for a in lancashire.ras.assumed)
    assert any("Price per point" in a for a in lancashire.assumptions)


# --- Council A (seed 004 App.1) ------------------------------------------------------


def test_council_a_care_manager_can_sign_off_250_a_week_but_not_a_penny_more(
    council_a: Policy,
) -> None:
    # Seed 004 App.1 Council A: "The care manager can agree up to £250 per week".
    assert may_sign_off(council_a, Role.CARE_MANAGER, 25_000, None).allowed
    assert not may_sign_off(council_a, Role.CARE_MANAGER, 25_001, None).allowed


def test_council_a_team_manager_can_sign_off_415_a_week_but_not_a_penny_more(
    council_a: Policy,
) -> None:
    # Seed 004 App.1 Council A: "the team manager up to £415 per week".
    assert may_sign_off(council_a, Role.TEAM_MANAGER, 41_500, None).allowed
    assert not may_sign_off(council_a, Role.TEAM_MANAGER, 41_501, None).allowed


def test_council_a_panel_can_sign_off_any_amount(council_a: Policy) -> None:
    assert may_sign_off(council_a, Role.PANEL, 41_501, None).allowed
    assert may_sign_off(council_a, Role.PANEL, 10_000_000, None).allowed


@pytest.mark.parametrize(
    ("weekly_pence", "role"),
    [
        (1, Role.CARE_MANAGER),
        (25_000, Role.CARE_MANAGER),
        (25_001, Role.TEAM_MANAGER),
        (41_500, Role.TEAM_MANAGER),
        (41_501, Role.PANEL),
    ],
)
def test_council_a_lowest_sign_off_role_follows_the_seed_limits(
    council_a: Policy, weekly_pence: int, role: Role
) -> None:
    # Seed 004 App.1 Council A: £250 care manager, £415 team manager, then a meeting.
    assert lowest_sign_off_role(council_a, weekly_pence, None) is role


@pytest.mark.parametrize(
    ("annual_pence", "tier"),
    [
        (0, "light_touch"),
        (499_999, "light_touch"),
        (500_000, "light_touch"),  # exactly £5,000: not "in excess of £5,000"
        (500_001, "detailed_annual_account"),  # £5,000.01
        (2_000_000, "detailed_annual_account"),  # exactly £20,000: not "in excess of"
        (2_000_001, "full_annual_audit"),  # £20,000.01
    ],
)
def test_council_a_audits_by_annual_value_at_the_seed_boundaries(
    council_a: Policy, annual_pence: int, tier: str
) -> None:
    # Seed 004 App.1 Council A and §6.6: < £5,000 light touch; > £5,000 and < £20,000
    # detailed annual account; > £20,000 full annual audit.
    assert council_a.monitoring.audit_tier(annual_pence) == tier


def test_council_a_records_where_exactly_5000_and_20000_fall(council_a: Policy) -> None:
    assumed = " ".join(council_a.monitoring.assumed)
    assert "Exactly £5,000" in assumed
    assert "Exactly £20,000" in assumed


def test_council_a_asks_back_only_unspent_money_above_ten_weeks(council_a: Policy) -> None:
    # Seed 004 App.1 Council A: "unspent funds above the equivalent of 10 weeks".
    assert council_a.monitoring.unspent_rule == "above_weeks_of_payment"
    assert council_a.monitoring.unspent_weeks_allowed == 10


# --- Councils B to E (seed 004 App.1) ------------------------------------------------


def test_council_b_panel_approves_every_plan_and_sits_separately_above_300(
    book: PolicyBook,
) -> None:
    council_b = book.current("council_b")
    assert lowest_sign_off_role(council_b, 1, None) is Role.PANEL
    assert not may_sign_off(council_b, Role.TEAM_MANAGER, 1, None).allowed
    # Seed 004 App.1 Council B: twice a week "for budgets greater than £300 per week".
    assert council_b.approvals.panel_sits_separately_above_weekly_pence == 30_000


def test_council_b_caps_mental_health_at_120_a_week_and_wants_quarterly_returns(
    book: PolicyBook,
) -> None:
    policy = book.current("council_b")
    # Seed 004 App.1 Council B: "a payment ceiling of £120 per week".
    assert policy.ras.ceilings_weekly_pence[ClientGroup.MENTAL_HEALTH] == 12_000
    assert policy.monitoring.returns_every_months == 3
    assert policy.monitoring.unspent_rule == "above_contingency"
    assert ClientGroup.CARERS not in policy.client_groups


def test_council_c_charges_up_to_75_percent_of_the_plan_and_budgets_for_carers(
    book: PolicyBook,
) -> None:
    policy = book.current("council_c")
    # Seed 004 App.1 Council C: "75 per cent of the value of the support plan".
    assert policy.contribution.kind == "share_of_plan_capped_by_means"
    assert policy.contribution.share_of_plan_basis_points == 7_500
    assert ClientGroup.CARERS in policy.client_groups


def _needs_receipt(policy: Policy, item_pence: int) -> bool:
    return item_pence >= policy.monitoring.receipts_required_from_pence


def test_council_d_needs_no_receipt_under_50_pounds(book: PolicyBook) -> None:
    policy = book.current("council_d")
    # Seed 004 App.1 Council D: "Anything under £50 does not require a receipt."
    assert policy.monitoring.receipts_required_from_pence == 5_000
    assert not _needs_receipt(policy, 4_999)
    assert _needs_receipt(policy, 5_000)


def test_council_d_prices_a_point_differently_by_client_group(book: PolicyBook) -> None:
    policy = book.current("council_d")
    prices = policy.ras.price_per_point_weekly_pence
    assert len(set(prices.values())) == len(prices) > 1
    assert policy.monitoring.unspent_rule == "hold_or_clawback"


def test_council_e_reviews_after_eight_weeks_then_annually(book: PolicyBook) -> None:
    # Seed 004 App.1 Council E: "after three months and then annually", before the Care
    # Act; the guidance's 6-8 weeks (para. 13.32) brings the first review to 8 weeks.
    reviews = book.current("council_e").reviews
    assert (reviews.first_after_days, reviews.then_every_months) == (56, 12)


# --- broken files ----------------------------------------------------------------


def test_a_negative_price_names_the_file_and_the_price(tmp_path: Path) -> None:
    raw = _raw("lancashire")
    raw["ras"]["price_per_point_weekly_pence"]["older_people"] = -1
    path = _write(tmp_path, "broken.yaml", raw)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert "ras.price_per_point_weekly_pence.older_people" in str(err.value)


def test_an_unknown_client_group_names_the_file_and_the_client_groups(tmp_path: Path) -> None:
    raw = _raw("council_c")
    raw["client_groups"].append("children")
    path = _write(tmp_path, "broken.yaml", raw)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert "client_groups" in str(err.value)


def test_levels_out_of_order_name_the_file_and_the_domain(tmp_path: Path) -> None:
    raw = _raw("lancashire")
    levels = raw["questionnaire"]["domains"][0]["levels"]
    levels[0], levels[1] = levels[1], levels[0]
    path = _write(tmp_path, "broken.yaml", raw)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert "questionnaire.domains.0" in str(err.value)
    assert "staying_safe: levels must be unique and ascending" in str(err.value)


def test_a_price_in_pounds_with_pence_is_refused(tmp_path: Path) -> None:
    raw = _raw("council_a")
    raw["approvals"]["plan_sign_off"][0]["max_weekly_pence"] = 250.5
    path = _write(tmp_path, "broken.yaml", raw)
    with pytest.raises(PolicyError, match=r"approvals\.plan_sign_off\.0\.max_weekly_pence"):
        load_policy(path)


def test_one_broken_file_stops_the_whole_book_and_is_named(tmp_path: Path) -> None:
    _write(tmp_path, "lancashire.yaml", _raw("lancashire"))
    raw = _raw("council_d")
    raw["monitoring"]["receipts_required_from_pence"] = -5_000
    broken = _write(tmp_path, "council_d.yaml", raw)
    with pytest.raises(PolicyError) as err:
        PolicyBook.from_directory(tmp_path)
    assert str(broken) in str(err.value)
    assert "monitoring.receipts_required_from_pence" in str(err.value)


# --- adopted versions in the book (ADR 10) ---------------------------------------------------


def _version(base: Policy, version: str, effective: str) -> Policy:
    return base.model_copy(
        update={"version": version, "effective_from": date.fromisoformat(effective)}
    )


def test_a_version_adopted_for_a_later_date_is_not_in_force_before_it() -> None:
    base = load_policy(POLICIES / "lancashire.yaml")
    book = PolicyBook([base])
    assert book.add(_version(base, "2099.1", "2099-04-01")) is True
    assert book.current("lancashire").version == "2009.1"  # today, not the newest
    assert book.current("lancashire", date(2099, 4, 1)).version == "2099.1"
    assert book.version("lancashire/2099.1").effective_from == date(2099, 4, 1)


def test_the_later_of_two_adoptions_for_the_same_date_applies() -> None:
    base = load_policy(POLICIES / "lancashire.yaml")
    book = PolicyBook([base])
    book.add(_version(base, "2026.1", "2026-04-01"))
    book.add(_version(base, "2026.2", "2026-04-01"))
    assert book.current("lancashire", date(2026, 4, 1)).version == "2026.2"


def test_the_same_version_with_other_content_is_refused_and_the_same_one_is_no_news() -> None:
    base = load_policy(POLICIES / "lancashire.yaml")
    book = PolicyBook([base])
    adopted = _version(base, "2026.1", "2026-04-01")
    assert book.add(adopted) is True
    assert book.add(adopted) is False
    with pytest.raises(PolicyError, match=re.escape("lancashire/2026.1")):
        book.add(_version(base, "2026.1", "2026-05-01"))


def test_council_c_sends_every_mental_health_plan_to_the_panel(book: PolicyBook) -> None:
    council_c = book.current("council_c")
    assert lowest_sign_off_role(council_c, 1, ClientGroup.MENTAL_HEALTH) is Role.PANEL
    assert not may_sign_off(council_c, Role.TEAM_MANAGER, 1, ClientGroup.MENTAL_HEALTH).allowed
    assert lowest_sign_off_role(council_c, 1, ClientGroup.OLDER_PEOPLE) is Role.TEAM_MANAGER
    assert may_sign_off(council_c, Role.PANEL, 10_000_000, ClientGroup.MENTAL_HEALTH).allowed


def test_a_policy_that_sends_no_group_to_the_panel_keeps_the_document_it_was_adopted_with(
    book: PolicyBook,
) -> None:
    lancashire = policy_document(book.current("lancashire"))
    council_c = policy_document(book.current("council_c"))
    assert "panel_only_client_groups" not in lancashire["approvals"]
    assert council_c["approvals"]["panel_only_client_groups"] == ["mental_health"]
    for document in (lancashire, council_c):
        assert policy_document(Policy.model_validate(document)) == document
