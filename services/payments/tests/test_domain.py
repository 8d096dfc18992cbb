"""The payments rules, pure and fast, with the seeds' own figures.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009).
Seed 004 = SCIE "Keeping personal budgets personal" (2011), Councils A-E in Appendix 1.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from contracts import events as ev
from contracts.events import DeploymentOption
from contracts.policy import Contribution, ContributionKind, Policy, PolicyBook, UnspentRule
from contracts.vocabulary import Role
from rules.audit_tiers import audit_tier
from rules.contribution import contribution_annual
from rules.receipts import ReturnItem, missing_receipts
from rules.schedules import split_by_amount
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.payments.arrears_approval import ArrearsDecision
from services.payments.domain import Deployment
from services.payments.errors import (
    AgreementNotSigned,
    ArrangementMissing,
    DeploymentIsSuperseded,
    HandoverBlocked,
    InvalidArrangement,
    InvalidUnspentCheck,
    NothingToExport,
    PartsDoNotAddUp,
    PaymentsAreSuspended,
)
from services.payments.export import ExportRow, amount_gbp, export_csv, new_export_batch
from services.payments.lifecycle import Status
from services.payments.monitoring import UnspentAction
from services.payments.schedules import (
    InstalmentStatus,
    PartRequest,
    PaymentFrequency,
    ScheduleKind,
    resolve_parts,
)

DP = DeploymentOption.DIRECT_PAYMENT
CM = DeploymentOption.COUNCIL_MANAGED
TPM = DeploymentOption.THIRD_PARTY_MANAGED
ISF = DeploymentOption.INDIVIDUAL_SERVICE_FUND
START = date(2010, 4, 5)
ARRANGED_ON = SIGNED_ON = START - timedelta(days=3)
ACTOR = "care_manager:cm-1"


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return PolicyBook.from_directory(POLICIES_DIR)


def policy(book: PolicyBook, council: str) -> Policy:
    return book.current(council)


def signed_plan(
    council: str = "lancashire",
    *,
    annual_pence: int = 1_040_000,
    one_off_pence: int = 0,
    contingency_weekly_pence: int = 0,
    person_id: str = "p-1",
    plan_id: object = None,
    plan_version: int = 1,
) -> ev.PlanSignedOff:
    return ev.PlanSignedOff(
        person_id=person_id,
        council=council,
        plan_id=plan_id or uuid4(),
        budget_id=uuid4(),
        assessment_id=uuid4(),
        plan_version=plan_version,
        weekly_pence=annual_pence // 52,
        annual_pence=annual_pence,
        one_off_pence=one_off_pence,
        contingency_weekly_pence=contingency_weekly_pence,
        lines=[],
        request_for_more=False,
        signed_off_by="tm-1",
        signed_off_by_role=Role.TEAM_MANAGER,
        # reviews.first_after_days before it (42 or 91 days): signed off well before START
        first_review_on=SIGNED_ON,
        policy_version=f"{council}/2010.1",
    )


def deployment(book: PolicyBook, council: str = "lancashire", **plan: object) -> Deployment:
    return Deployment.for_signed_plan(
        signed_plan(council, **plan),  # type: ignore[arg-type]
        policy=policy(book, council),
        recorded_by="event:test",
    )


def arranged(
    book: PolicyBook,
    council: str = "lancashire",
    *,
    parts: list[PartRequest] | None = None,
    frequency: PaymentFrequency = PaymentFrequency.WEEKLY,
    assessed: int = 0,
    first_due_on: date = START,
    **plan: object,
) -> Deployment:
    dep = deployment(book, council, **plan)
    dep.arrange(
        parts=parts or [PartRequest(DP)],
        frequency=frequency,
        first_due_on=first_due_on,
        assessed_max_weekly_contribution_pence=assessed,
        policy=policy(book, council),
        actor=ACTOR,
        today=ARRANGED_ON,
    )
    return dep


def on(
    day: date, book: PolicyBook, council: str = "lancashire", **kwargs: object
) -> ArrearsDecision:
    """Deciding on the day given, as a team manager, with no arrears reason unless given."""
    return ArrearsDecision(
        today=day,
        approver=kwargs.pop("approver", Role.TEAM_MANAGER),  # type: ignore[arg-type]
        reason=kwargs.pop("reason", None),  # type: ignore[arg-type]
        policy=policy(book, council),
    )


def signed(book: PolicyBook, council: str = "lancashire", **kwargs: object) -> Deployment:
    dep = arranged(book, council, **kwargs)  # type: ignore[arg-type]
    dep.sign_agreement(signed_on=SIGNED_ON, actor=ACTOR, arrears=on(SIGNED_ON, book, council))
    return dep


def recurring_amounts(dep: Deployment) -> list[int]:
    return [
        i.amount_pence
        for s in dep.schedules
        if s.kind is ScheduleKind.RECURRING
        for i in s.instalments
        if i.status is not InstalmentStatus.CANCELLED
    ]


# --- exact money (seed 003 ch.5 §5: converting budgets caused under/overpayments) ----------


def test_52_weekly_instalments_of_an_awkward_total_add_up_to_it_exactly(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=1_000_001)
    amounts = recurring_amounts(dep)
    assert len(amounts) == 52
    assert sum(amounts) == 1_000_001
    assert max(amounts) - min(amounts) == 1


def test_13_four_weekly_instalments_of_an_awkward_total_add_up_to_it_exactly(
    book: PolicyBook,
) -> None:
    dep = signed(book, annual_pence=1_000_001, frequency=PaymentFrequency.FOUR_WEEKLY)
    amounts = recurring_amounts(dep)
    assert len(amounts) == 13
    assert sum(amounts) == 1_000_001
    due = [i.due_on for i in dep.ordered_instalments()]
    assert due[0] == START and due[1] == START + timedelta(days=28)


def test_annual_is_one_instalment_up_front(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=1_000_001, frequency=PaymentFrequency.ANNUAL)
    [instalment] = dep.instalments
    assert (instalment.amount_pence, instalment.due_on) == (1_000_001, START)


def test_a_one_off_cost_is_a_separate_instalment_paid_in_full(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=520_000, one_off_pence=30_000)
    one_offs = [s for s in dep.schedules if s.kind is ScheduleKind.ONE_OFF]
    assert [(s.option, s.total_pence, len(s.instalments)) for s in one_offs] == [(DP, 30_000, 1)]
    assert sum(recurring_amounts(dep)) == 520_000


def test_instalments_sum_to_the_net_annual_for_a_mix_with_a_contribution(
    book: PolicyBook,
) -> None:
    # Council C (seed 004): 75% of 1,000,001 capped at £33.33 a week x 52 = 173,316.
    dep = signed(
        book,
        "council_c",
        annual_pence=1_000_001,
        parts=[PartRequest(DP, 333_334), PartRequest(ISF, 666_667)],
        assessed=3_333,
    )
    assert dep.contribution_annual_pence == 173_316
    assert dep.net_annual_pence == 1_000_001 - 173_316
    assert sum(recurring_amounts(dep)) == dep.net_annual_pence
    for part, schedule in zip(dep.parts, dep.schedules, strict=True):
        assert schedule.total_pence == part.net_annual_pence
        assert sum(i.amount_pence for i in schedule.instalments) == part.net_annual_pence


# --- deployment options: a mix split by amount (seed 004 §6.1) -----------------------------


def test_a_mix_is_split_by_amount_and_its_nets_add_up_to_the_net() -> None:
    assert split_by_amount(100, [1, 1, 1]) == [34, 33, 33]
    assert split_by_amount(1_000, [250, 750]) == [250, 750]
    assert split_by_amount(10, [1, 2]) == [3, 7]  # 3.33 and 6.67: the odd penny to 6.67
    shares = split_by_amount(999_999, [300_001, 700_000])  # 300,000.4 and 699,998.6
    assert shares == [300_000, 699_999] and sum(shares) == 999_999


def test_the_parts_of_a_mix_must_add_up_exactly_to_the_gross_annual() -> None:
    with pytest.raises(PartsDoNotAddUp, match="parts"):
        resolve_parts([PartRequest(DP, 500_000), PartRequest(CM, 500_001)], 1_000_000)
    assert resolve_parts([PartRequest(DP, 400_000), PartRequest(CM, 600_000)], 1_000_000) == [
        (DP, 400_000),
        (CM, 600_000),
    ]


def test_a_single_part_without_an_amount_takes_the_whole_budget() -> None:
    assert resolve_parts([PartRequest(TPM)], 1_000_000) == [(TPM, 1_000_000)]


def test_only_a_single_part_may_leave_out_its_amount_and_options_appear_once() -> None:
    with pytest.raises(InvalidArrangement, match=r"parts\[1\].annual_pence"):
        resolve_parts([PartRequest(DP, 1_000_000), PartRequest(CM)], 1_000_000)
    with pytest.raises(InvalidArrangement, match="once"):
        resolve_parts([PartRequest(DP, 500_000), PartRequest(DP, 500_000)], 1_000_000)
    with pytest.raises(InvalidArrangement, match="more than 0"):
        resolve_parts([PartRequest(DP, 1_000_000), PartRequest(CM, 0)], 1_000_000)


# --- client contribution (seed 004 App.1 Council C) ----------------------------------------


def test_council_c_takes_75_percent_of_the_plan_when_the_means_test_allows_more(
    book: PolicyBook,
) -> None:
    # Seed 004 Council C: "contribute ... to the level of 75 per cent of the value of the
    # support plan, up to the maximum value identified in their means test".
    rule = policy(book, "council_c").contribution
    assert rule.share_of_plan_basis_points == 7_500
    assert contribution_annual(1_000_000, rule, assessed_max_weekly_pence=20_000) == 750_000


def test_council_c_caps_the_contribution_at_the_means_tested_maximum(book: PolicyBook) -> None:
    rule = policy(book, "council_c").contribution
    # £100 a week x 52 = £5,200 < 75% of £10,000.
    assert contribution_annual(1_000_000, rule, assessed_max_weekly_pence=10_000) == 520_000
    assert contribution_annual(1_000_000, rule, assessed_max_weekly_pence=0) == 0


def test_no_contribution_rule_charges_nothing() -> None:
    rule = Contribution(kind=ContributionKind.NONE)
    assert contribution_annual(1_000_000, rule, assessed_max_weekly_pence=99_999) == 0


def test_the_means_figure_is_required_when_the_council_charges(book: PolicyBook) -> None:
    dep = deployment(book, "council_c")
    with pytest.raises(InvalidArrangement, match="assessed_max_weekly_contribution_pence"):
        dep.arrange(
            parts=[PartRequest(DP)],
            frequency=PaymentFrequency.WEEKLY,
            first_due_on=START,
            assessed_max_weekly_contribution_pence=None,
            policy=policy(book, "council_c"),
            actor=ACTOR,
            today=ARRANGED_ON,
        )
    assert dep.status is Status.AWAITING_ARRANGEMENT and dep.version == 1


# --- audit tiers (seed 004 App.1 Council A) ------------------------------------------------


@pytest.mark.parametrize(
    ("annual_pence", "tier"),
    [
        (499_999, "light_touch"),
        (500_000, "light_touch"),  # exactly £5,000: council_a.yaml says light touch
        (500_001, "detailed_annual_account"),
        (2_000_000, "detailed_annual_account"),  # exactly £20,000: detailed
        (2_000_001, "full_annual_audit"),
    ],
)
def test_council_a_audits_by_annual_value_at_the_5000_and_20000_boundaries(
    book: PolicyBook, annual_pence: int, tier: str
) -> None:
    monitoring = policy(book, "council_a").monitoring
    bounds = {t.name: t.from_annual_pence for t in monitoring.audit_tiers}
    assert bounds == {
        "light_touch": 0,
        "detailed_annual_account": 500_001,
        "full_annual_audit": 2_000_001,
    }
    dep = arranged(book, "council_a", annual_pence=annual_pence)
    assert dep.audit_tier == tier


def test_the_audit_tier_follows_the_direct_payment_part_of_a_mix(book: PolicyBook) -> None:
    monitoring = policy(book, "council_a").monitoring
    dep = arranged(
        book,
        "council_a",
        annual_pence=3_000_000,
        parts=[PartRequest(DP, 500_000), PartRequest(CM, 2_500_000)],
    )
    assert dep.audit_tier == "light_touch"
    whole = arranged(book, "council_a", annual_pence=3_000_000, parts=[PartRequest(CM)])
    assert whole.audit_tier == "full_annual_audit"
    assert audit_tier(whole.parts, 3_000_000, monitoring) == "full_annual_audit"


# --- agreement and release (seed 003 ch.4: released once the agreement is signed) ----------


def test_nothing_is_scheduled_or_released_before_the_agreement_is_signed(
    book: PolicyBook,
) -> None:
    dep = arranged(book)
    assert dep.schedules == []
    with pytest.raises(AgreementNotSigned, match="the agreement has not been signed"):
        dep.release_due(
            as_of=START + timedelta(days=60),
            today=START + timedelta(days=60),
            actor=ACTOR,
            strict=True,
        )
    assert (
        dep.release_due(
            as_of=START + timedelta(days=60), today=START + timedelta(days=60), actor=ACTOR
        )
        == []
    )
    assert dep.events[-1].type == ev.DeploymentSetUp.type


def test_the_agreement_needs_an_arrangement_first(book: PolicyBook) -> None:
    with pytest.raises(ArrangementMissing):
        deployment(book).sign_agreement(signed_on=START, actor=ACTOR, arrears=on(START, book))


def test_releasing_twice_pays_each_instalment_once(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=520_000)
    first = dep.release_due(
        as_of=START + timedelta(days=14), today=START + timedelta(days=14), actor=ACTOR
    )
    again = dep.release_due(
        as_of=START + timedelta(days=14), today=START + timedelta(days=14), actor=ACTOR
    )
    assert [i.number for i in first] == [1, 2, 3] and again == []
    assert dep.pence(InstalmentStatus.RELEASED) == 30_000
    released = [e for e in dep.events if isinstance(e, ev.PaymentReleased)]
    assert len(released) == 3


def test_a_suspended_deployment_releases_nothing_until_resumed(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=520_000)
    dep.suspend(reason="build-up of unused funds", actor=ACTOR)
    assert dep.release_due(as_of=START, today=START, actor=ACTOR) == []
    with pytest.raises(PaymentsAreSuspended):
        dep.release_due(as_of=START, today=START, actor=ACTOR, strict=True)
    dep.resume(reason="spending plan agreed", actor=ACTOR)
    assert len(dep.release_due(as_of=START, today=START, actor=ACTOR)) == 1


def test_a_stale_expected_version_is_refused(book: PolicyBook) -> None:
    dep = arranged(book)
    assert dep.version == 2
    with pytest.raises(StaleVersion):
        dep.sign_agreement(
            signed_on=START, actor=ACTOR, arrears=on(START, book), expected_version=1
        )
    assert dep.agreement is None


# --- switching options without reassessment (seed 004 §6.1) --------------------------------


def test_switching_keeps_released_payments_and_replaces_the_future_ones(
    book: PolicyBook,
) -> None:
    dep = signed(book, annual_pence=1_000_001, parts=[PartRequest(CM)])
    released = dep.release_due(
        as_of=START + timedelta(days=7 * 9), today=START + timedelta(days=7 * 9), actor=ACTOR
    )
    assert len(released) == 10
    released_pence = sum(i.amount_pence for i in released)
    dep.events.clear()  # what the release recorded is not the switch's

    dep.arrange(
        parts=[PartRequest(DP, 400_000), PartRequest(CM, 600_001)],
        frequency=PaymentFrequency.FOUR_WEEKLY,
        first_due_on=START + timedelta(days=7 * 10),
        assessed_max_weekly_contribution_pence=None,  # no reassessment: keep the figure
        policy=policy(book, "lancashire"),
        actor=ACTOR,
        today=ARRANGED_ON,
    )

    assert all(i.status is InstalmentStatus.RELEASED for i in released)
    assert dep.pence(InstalmentStatus.CANCELLED) == 1_000_001 - released_pence
    assert dep.pence(InstalmentStatus.RELEASED) + dep.pence(InstalmentStatus.SCHEDULED) == (
        1_000_001
    )
    new = [s for s in dep.schedules if s.first_due_on == START + timedelta(days=70)]
    assert {s.option for s in new} == {DP, CM}
    assert all(len(s.instalments) == 11 for s in new)  # 294 days left / 28, rounded up
    types = [e.type for e in dep.events]
    assert types[:2] == [ev.DeploymentSwitched.type, ev.PaymentScheduled.type]
    assert types[-1] == ev.DeploymentSetUp.type


def test_a_switch_cannot_start_before_the_last_released_instalment(book: PolicyBook) -> None:
    dep = signed(book, annual_pence=520_000)
    dep.release_due(as_of=START + timedelta(days=14), today=START + timedelta(days=14), actor=ACTOR)
    with pytest.raises(InvalidArrangement, match="first_due_on"):
        dep.arrange(
            parts=[PartRequest(CM)],
            frequency=PaymentFrequency.WEEKLY,
            first_due_on=START + timedelta(days=14),
            assessed_max_weekly_contribution_pence=0,
            policy=policy(book, "lancashire"),
            actor=ACTOR,
            today=ARRANGED_ON,
        )
    assert dep.parts[0].option is DP
    assert dep.pence(InstalmentStatus.CANCELLED) == 0


# --- a revised plan replaces the old deployment's future instalments -----------------------


def test_a_revised_plan_takes_over_from_its_first_payment_and_never_pays_twice(
    book: PolicyBook,
) -> None:
    old = signed(book, annual_pence=520_000)
    old.release_due(
        as_of=START + timedelta(days=7), today=START + timedelta(days=7), actor=ACTOR
    )  # weeks 1 and 2
    new = arranged(book, annual_pence=780_000, first_due_on=START + timedelta(days=14))
    old.await_successor(new, actor="event:test")

    day = START + timedelta(days=10)
    new.sign_agreement(signed_on=day, actor=ACTOR, arrears=on(day, book), predecessor=old)

    assert old.status is Status.SUPERSEDED and old.superseded_by == new.deployment_id
    assert old.pence(InstalmentStatus.RELEASED) == 20_000
    assert old.pence(InstalmentStatus.SCHEDULED) == 0
    assert old.pence(InstalmentStatus.CANCELLED) == 500_000
    with pytest.raises(DeploymentIsSuperseded):
        old.arrange(
            parts=[PartRequest(CM)],
            frequency=PaymentFrequency.WEEKLY,
            first_due_on=START,
            assessed_max_weekly_contribution_pence=0,
            policy=policy(book, "lancashire"),
            actor=ACTOR,
            today=ARRANGED_ON,
        )


def test_the_handover_is_refused_when_the_old_plan_already_paid_those_weeks(
    book: PolicyBook,
) -> None:
    old = signed(book, annual_pence=520_000)
    old.release_due(as_of=START + timedelta(days=21), today=START + timedelta(days=21), actor=ACTOR)
    new = arranged(book, annual_pence=780_000, first_due_on=START + timedelta(days=14))
    old.await_successor(new, actor="event:test")
    with pytest.raises(HandoverBlocked):
        new.sign_agreement(signed_on=START, actor=ACTOR, arrears=on(START, book), predecessor=old)
    assert new.agreement is None and new.schedules == []
    assert old.status is Status.ACTIVE


# --- monitoring (seed 004 App.1) -----------------------------------------------------------


def test_council_d_needs_no_receipt_under_50_pounds(book: PolicyBook) -> None:
    # Seed 004 Council D: "Anything under £50 does not require a receipt."
    threshold = policy(book, "council_d").monitoring.receipts_required_from_pence
    assert threshold == 5_000
    items = [
        ReturnItem("bus fares", 4_999, receipt=False),
        ReturnItem("gardening", 5_000, receipt=False),
        ReturnItem("personal assistant", 25_000, receipt=True),
    ]
    assert missing_receipts(items, threshold) == [1]


def test_council_b_returns_are_due_quarterly(book: PolicyBook) -> None:
    dep = signed(book, "council_b")
    every = policy(book, "council_b").monitoring.returns_every_months
    assert every == 3
    assert dep.next_return_due_on(every) == date(2010, 7, 5)
    dep.record_return(
        period_start=START,
        period_end=date(2010, 7, 4),
        items=[ReturnItem("personal assistant", 100_000, receipt=True)],
        balance_pence=30_000,
        option=None,
        monitoring=policy(book, "council_b").monitoring,
        actor=ACTOR,
        today=START,
    )
    assert dep.next_return_due_on(every) == date(2010, 10, 5)


@pytest.mark.parametrize(("balance", "clawback"), [(200_000, 0), (200_001, 1), (250_000, 50_000)])
def test_council_a_recovers_only_unspent_funds_above_10_weeks_of_direct_payments(
    book: PolicyBook, balance: int, clawback: int
) -> None:
    # Seed 004 Council A: "unspent funds above the equivalent of 10 weeks direct payments".
    # £20,000 a year = £200 a week as a direct payment, so 10 weeks = £2,000.
    council_a = policy(book, "council_a")
    assert council_a.monitoring.unspent_rule is UnspentRule.ABOVE_WEEKS_OF_PAYMENT
    assert council_a.monitoring.unspent_weeks_allowed == 10
    dep = signed(book, "council_a", annual_pence=1_040_000)
    check = dep.check_unspent(
        as_of=START + timedelta(days=180),
        balance_pence=balance,
        action=None,
        policy=council_a,
        actor="finance:f-1",
        today=START,
    )
    assert (check.allowance_pence, check.clawback_pence) == (200_000, clawback)
    raised = [e for e in dep.events if isinstance(e, ev.ClawbackRaised)]
    assert [e.amount_pence for e in raised] == ([clawback] if clawback else [])


def test_council_b_recoups_above_a_quarter_of_the_agreed_contingency(book: PolicyBook) -> None:
    # Seed 004 Council B: "recoups any unspent ... funds in excess of an agreed contingency
    # ... on a quarterly basis": £50 a week of contingency x 13 weeks = £650.
    dep = signed(book, "council_b", contingency_weekly_pence=5_000)
    check = dep.check_unspent(
        as_of=date(2010, 7, 5),
        balance_pence=70_000,
        action=None,
        policy=policy(book, "council_b"),
        actor="finance:f-1",
        today=START,
    )
    assert (check.allowance_pence, check.clawback_pence) == (65_000, 5_000)


def test_council_d_may_claw_back_a_build_up_or_hold_future_payments(book: PolicyBook) -> None:
    # Seed 004 Council D: "may put a hold on future release of funds or potentially
    # 'claw back'".
    council_d = policy(book, "council_d")
    dep = signed(book, "council_d")
    claw = dep.check_unspent(
        as_of=START,
        balance_pence=12_345,
        action=None,
        policy=council_d,
        actor="finance:f-1",
        today=START,
    )
    assert claw.clawback_pence == 12_345 and not dep.suspended
    hold = dep.check_unspent(
        as_of=START,
        balance_pence=12_345,
        action=UnspentAction.HOLD,
        policy=council_d,
        actor="finance:f-1",
        today=START,
    )
    assert hold.clawback_pence == 0 and hold.held and dep.suspended


def test_hold_is_only_for_councils_whose_rule_allows_it(book: PolicyBook) -> None:
    dep = signed(book, "council_a")
    with pytest.raises(InvalidUnspentCheck, match="action"):
        dep.check_unspent(
            as_of=START,
            balance_pence=1,
            action=UnspentAction.HOLD,
            policy=policy(book, "council_a"),
            actor="finance:f-1",
            today=START,
        )


def test_a_managed_account_statement_shows_what_is_left(book: PolicyBook) -> None:
    # Seed 004 §6.2: managed accounts should give 'monthly statements' of what is left.
    dep = signed(
        book, annual_pence=520_000, parts=[PartRequest(DP, 260_000), PartRequest(ISF, 260_000)]
    )
    dep.release_due(as_of=START + timedelta(days=7), today=START + timedelta(days=7), actor=ACTOR)
    dep.record_return(
        period_start=START,
        period_end=START + timedelta(days=13),
        items=[ReturnItem("day centre", 7_000, receipt=True)],
        balance_pence=3_000,
        option=ISF,
        monitoring=policy(book, "lancashire").monitoring,
        actor=ACTOR,
        today=START,
    )
    [account] = dep.statement()
    assert (account.option, account.paid_in_pence, account.spent_pence) == (ISF, 10_000, 7_000)
    assert account.balance_left_pence == 3_000


# --- finance export ------------------------------------------------------------------------


def test_the_export_csv_is_sorted_numbered_and_ends_with_a_control_row() -> None:
    batch_id = uuid4()
    rows = [
        ExportRow(uuid4(), "p-2", "lancashire", uuid4(), DP, 2, START, START, 12_345),
        ExportRow(uuid4(), "p-1", "lancashire", uuid4(), CM, 1, START, START, 10_000),
    ]
    text = export_csv(batch_id, rows)
    assert text == export_csv(batch_id, list(reversed(rows)))
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:3] == ["batch_id", "line_number", "payment_id"]
    assert [line[3] for line in lines[1:3]] == ["p-1", "p-2"]
    assert [line[1] for line in lines[1:3]] == ["1", "2"]
    assert lines[2][-2:] == ["12345", "123.45"]
    assert lines[-1][:4] == ["CONTROL", "2", "22345", "223.45"]
    assert all(len(line) == 12 for line in lines)


def test_amounts_in_pounds_come_from_integer_pence() -> None:
    assert [str(amount_gbp(p)) for p in (0, 5, 100, 12_345, 100_000_001, -120_000)] == [
        "0.00",
        "0.05",
        "1.00",
        "123.45",
        "1000000.01",
        "-1200.00",
    ]


def test_an_empty_export_is_refused() -> None:
    with pytest.raises(NothingToExport):
        new_export_batch(
            council="lancashire",
            up_to=START,
            rows=[],
            created_at=datetime.now(UTC),
            created_by="finance:f-1",
        )
