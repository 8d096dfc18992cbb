"""rules/reviews.py and the policy's `reviews`: dates over month ends and leap years, and
schedules outside the law refused when a policy is loaded or adopted.

Care and Support Statutory Guidance, para. 13.32: the plan reviewed 6-8 weeks after
sign-off, then no later than every 12 months. Care and Support (Direct Payments)
Regulations 2014, reg. 7(1)(a): a direct payment reviewed at least once within the first
6 months of its being made, then at intervals not exceeding 12 months.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from contracts.policy import Policy, PolicyBook, PolicyError, load_policy, policy_document
from rules.reviews import (
    add_months,
    first_direct_payment_review_on,
    next_direct_payment_review_on,
    next_review_on,
    unscheduled_review_on,
)
from servicekit.testing import POLICIES_DIR, Tokens, running

BOOK = PolicyBook.from_directory(POLICIES_DIR)
COUNCILS = BOOK.councils
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


# --- the issue's own figures ----------------------------------------------------------------


def test_a_direct_payment_started_on_31_august_is_reviewed_by_the_end_of_february() -> None:
    reviews = BOOK.current("lancashire").reviews
    assert first_direct_payment_review_on(date(2025, 8, 31), reviews) == date(2026, 2, 28)
    assert first_direct_payment_review_on(date(2027, 8, 31), reviews) == date(2028, 2, 29)


def test_the_next_direct_payment_review_is_twelve_months_after_the_last() -> None:
    reviews = BOOK.current("lancashire").reviews
    assert next_direct_payment_review_on(date(2026, 2, 20), reviews) == date(2027, 2, 20)
    assert next_direct_payment_review_on(date(2028, 2, 29), reviews) == date(2029, 2, 28)


# --- properties over dates ------------------------------------------------------------------


@given(DAYS, st.integers(min_value=0, max_value=1200))
def test_add_months_lands_in_the_right_month_never_past_the_day(start: date, months: int) -> None:
    later = add_months(start, months)
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == months
    assert later.day <= start.day
    if later.day < start.day:  # fell back: the target month is shorter
        assert (later + timedelta(days=1)).day == 1


@given(DAYS)
def test_twelve_months_on_is_the_same_day_but_29_february(start: date) -> None:
    later = add_months(start, 12)
    if (start.month, start.day) == (2, 29):
        assert later == date(start.year + 1, 2, 28)
    else:
        assert later == start.replace(year=start.year + 1)


@pytest.mark.parametrize("council", COUNCILS)
@given(started=DAYS)
def test_every_council_reviews_a_direct_payment_within_six_months_of_its_start(
    council: str, started: date
) -> None:
    due = first_direct_payment_review_on(started, BOOK.current(council).reviews)
    assert started < due <= add_months(started, 6)
    assert (due - started).days <= 184


@pytest.mark.parametrize("council", COUNCILS)
@given(completed=DAYS)
def test_every_council_reviews_within_twelve_months_of_the_last_review(
    council: str, completed: date
) -> None:
    reviews = BOOK.current(council).reviews
    for due in (
        next_review_on(completed, reviews.then_every_months),
        next_direct_payment_review_on(completed, reviews),
    ):
        assert completed < due <= add_months(completed, 12)
        assert (due - completed).days <= 366


@pytest.mark.parametrize("council", COUNCILS)
@given(
    happened=DAYS,
    trigger=st.sampled_from(["carer_stopped", "hospital_admission", "surplus_found", "other"]),
)
def test_an_unscheduled_review_is_due_on_or_after_what_brought_it(
    council: str, happened: date, trigger: str
) -> None:
    reviews = BOOK.current(council).reviews
    assert reviews.unscheduled is not None
    due = unscheduled_review_on(happened, trigger, reviews)
    assert due - happened == timedelta(days=reviews.unscheduled.within_days[trigger])


# --- every council's policy, and what a policy may not say ----------------------------------


@pytest.mark.parametrize("council", COUNCILS)
def test_every_council_carries_sourced_review_figures_within_the_law(council: str) -> None:
    reviews = BOOK.current(council).reviews
    assert 42 <= reviews.first_after_days <= 56 and reviews.then_every_months <= 12
    assert reviews.source is not None and "13.32" in reviews.source
    assert reviews.direct_payment is not None
    assert (
        reviews.direct_payment.first_within_months,
        reviews.direct_payment.then_every_months,
    ) == (
        6,
        12,
    )
    assert "Direct Payments) Regulations 2014" in reviews.direct_payment.source
    assert reviews.unscheduled is not None and reviews.unscheduled.to_confirm


def lancashire_with(**reviews: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((POLICIES_DIR / "lancashire.yaml").read_text())
    raw["reviews"] = {**raw["reviews"], **reviews}
    return raw


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"first_after_days": 91}, "first_after_days is 91: the Care and Support Statutory"),
        ({"first_after_days": 30}, "6 to 8 weeks (42 to 56 days)"),
        ({"then_every_months": 13}, "no later than every 12 months"),
        (
            {
                "direct_payment": {
                    "first_within_months": 7,
                    "then_every_months": 12,
                    "source": "x",
                    "applies_from": "2015-04-01",
                }
            },
            "reg. 7(1)(a), require a review within the first 6 months",
        ),
        (
            {
                "direct_payment": {
                    "first_within_months": 6,
                    "then_every_months": 18,
                    "source": "x",
                    "applies_from": "2015-04-01",
                }
            },
            "intervals not exceeding 12 months",
        ),
        (
            {
                "unscheduled": {
                    "within_days": {"carer_stopped": 14},
                    "source": "x",
                    "applies_from": "2015-04-01",
                }
            },
            "has no figure for ['hospital_admission', 'other', 'surplus_found']",
        ),
    ],
)
def test_a_policy_outside_the_law_is_refused_with_the_reason(
    tmp_path: Any, change: dict[str, Any], says: str
) -> None:
    path = tmp_path / "lancashire.yaml"
    path.write_text(yaml.safe_dump(lancashire_with(**change)))
    with pytest.raises(PolicyError, match=r"lancashire\.yaml: reviews") as refused:
        load_policy(path)
    assert says in str(refused.value)


def test_a_policy_adopted_before_these_figures_keeps_its_document() -> None:
    # An adopted document without the newer review fields reads back without them, so its
    # fingerprint is unchanged (contracts.policy.policy_document).
    raw = lancashire_with()
    for name in ("source", "direct_payment", "unscheduled"):
        del raw["reviews"][name]
    older = Policy.model_validate(raw)
    assert older.reviews.direct_payment is None
    assert set(policy_document(older)["reviews"]) == {"first_after_days", "then_every_months"}
    # Without the figures: the regulation's own limits, and an unscheduled review at once.
    assert first_direct_payment_review_on(date(2025, 8, 31), older.reviews) == date(2026, 2, 28)
    assert unscheduled_review_on(date(2025, 9, 1), "carer_stopped", older.reviews) == date(
        2025, 9, 1
    )


async def test_an_adoption_outside_the_regulations_is_refused_naming_the_rule(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    from services.allocation.api import create_app
    from services.allocation.settings import Settings
    from services.allocation.tests.test_policies_api import adopt, proposal

    document = proposal()
    document["reviews"]["direct_payment"]["first_within_months"] = 9
    async with running(create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))) as c:
        refused = await adopt(c, tokens, document)
    assert refused.status_code == 422, refused.text
    assert "reg. 7(1)(a), require a review within the first 6 months" in refused.text
