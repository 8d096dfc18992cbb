"""Recouping a card account's surplus (rules/recoup.py): a notice first, time to respond,
never more than the surplus flagged."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from contracts.policy import PolicyBook
from rules.clawback import unspent_allowance
from rules.recoup import (
    Notice,
    NoticeRefusal,
    RecoupRefusal,
    notice_refusal,
    recoup_refusal,
    respond_by,
    surplus_pence,
)

SENT = date(2026, 11, 2)
POLICIES = PolicyBook.from_directory(Path(__file__).resolve().parents[1] / "policies")


def notice(amount_pence: int = 50_000, *, days: int = 28) -> Notice:
    return Notice(amount_pence=amount_pence, sent_on=SENT, respond_by=respond_by(SENT, days))


def test_council_a_surplus_is_the_balance_above_ten_weeks_of_the_net_direct_payment():
    # Seed 004 App.1 Council A: unspent funds above 10 weeks of the direct payment.
    monitoring = POLICIES.current("council_a").monitoring
    allowance = unspent_allowance(
        monitoring.unspent_rule,
        monitoring,
        weekly_basis_annual_pence=20_000 * 52,
        contingency_weekly_pence=0,
    )
    assert allowance == 200_000
    assert surplus_pence(260_000, allowance) == 60_000
    assert surplus_pence(200_000, allowance) == 0


def test_a_recoup_refused_before_its_notice_period_ends():
    sent = notice()
    assert sent.respond_by == date(2026, 11, 30)
    for today in (SENT, SENT + timedelta(days=27), sent.respond_by):
        refusal = recoup_refusal(notice=sent, amount_pence=1, balance_pence=90_000, today=today)
        assert refusal is RecoupRefusal.NOTICE_PERIOD_NOT_OVER
    after = sent.respond_by + timedelta(days=1)
    assert recoup_refusal(notice=sent, amount_pence=50_000, balance_pence=90_000, today=after) is (
        None
    )


def test_no_recoup_without_a_notice():
    today = SENT + timedelta(days=400)
    assert recoup_refusal(notice=None, amount_pence=1, balance_pence=90_000, today=today) is (
        RecoupRefusal.NO_NOTICE
    )


def test_a_notice_asks_for_no_more_than_the_surplus_flagged():
    assert notice_refusal(surplus_flagged_pence=60_000, amount_pence=60_001) is (
        NoticeRefusal.ABOVE_SURPLUS
    )
    assert notice_refusal(surplus_flagged_pence=60_000, amount_pence=60_000) is None
    assert notice_refusal(surplus_flagged_pence=0, amount_pence=1) is NoticeRefusal.NO_SURPLUS
    assert notice_refusal(surplus_flagged_pence=60_000, amount_pence=0) is (
        NoticeRefusal.NOT_POSITIVE
    )


def test_a_surplus_is_recouped_once_in_all_not_again_by_a_second_notice():
    """Found by the card model: a second notice for the same surplus asked for all of it."""
    assert notice_refusal(
        surplus_flagged_pence=60_000, amount_pence=60_000, recouped_from_surplus_pence=45_000
    ) is (NoticeRefusal.ABOVE_SURPLUS)
    assert (
        notice_refusal(
            surplus_flagged_pence=60_000, amount_pence=15_000, recouped_from_surplus_pence=45_000
        )
        is None
    )
    assert notice_refusal(
        surplus_flagged_pence=60_000, amount_pence=1, recouped_from_surplus_pence=60_000
    ) is (NoticeRefusal.NO_SURPLUS)


def test_a_notice_is_acted_on_once_and_not_above_what_the_account_holds():
    after = SENT + timedelta(days=29)
    done = Notice(amount_pence=500, sent_on=SENT, respond_by=respond_by(SENT, 28), recouped=True)
    assert recoup_refusal(notice=done, amount_pence=500, balance_pence=900, today=after) is (
        RecoupRefusal.ALREADY_RECOUPED
    )
    assert recoup_refusal(notice=notice(500), amount_pence=501, balance_pence=900, today=after) is (
        RecoupRefusal.ABOVE_NOTICE
    )
    assert recoup_refusal(notice=notice(500), amount_pence=500, balance_pence=499, today=after) is (
        RecoupRefusal.ABOVE_BALANCE
    )


@given(
    surplus=st.integers(min_value=0, max_value=10**9),
    asked=st.integers(min_value=-10, max_value=10**9),
    recouped=st.integers(min_value=-10, max_value=10**9),
    balance=st.integers(min_value=0, max_value=10**9),
    days=st.integers(min_value=1, max_value=366),
    elapsed=st.integers(min_value=0, max_value=800),
)
def test_whatever_is_recouped_is_within_the_surplus_flagged_and_after_the_notice_period(
    surplus: int, asked: int, recouped: int, balance: int, days: int, elapsed: int
):
    if notice_refusal(surplus_flagged_pence=surplus, amount_pence=asked) is not None:
        return
    sent = notice(asked, days=days)
    today = SENT + timedelta(days=elapsed)
    if recoup_refusal(notice=sent, amount_pence=recouped, balance_pence=balance, today=today):
        return
    assert 0 < recouped <= asked <= surplus
    assert recouped <= balance
    assert today > sent.respond_by >= SENT + timedelta(days=1)
