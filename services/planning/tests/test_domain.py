"""The planning rules, pure and fast: costing, the sign-off checks, authority, reviews."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from contracts.events import (
    PlanReturned,
    PlanSignedOff,
    PlanSubmitted,
    ProviderKind,
    ReviewCompleted,
    ReviewDue,
    ReviewKind,
    ReviewOutcome,
    ReviewScheduled,
)
from contracts.money import Frequency
from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import Role
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.planning.domain import (
    SYSTEM_ACTOR,
    AboveApprovalLimit,
    Check,
    CheckName,
    ChecksFailed,
    IllegalStateChange,
    InvalidPlan,
    KnownAssessment,
    KnownBudget,
    KnownRisk,
    Plan,
    PlanContent,
    PlanLine,
    PlanStatus,
    RequestForMore,
    Review,
    ReviewStatus,
    RiskMitigation,
    SharedSupport,
    add_months,
    cost_plan,
    run_checks,
)

AT = datetime(2010, 5, 3, 9, 0, tzinfo=UTC)
PERSON = "p-001"
BOOK = PolicyBook.from_directory(Path(POLICIES_DIR))
LANCASHIRE = BOOK.current("lancashire")
COUNCIL_A = BOOK.current("council_a")
COUNCIL_B = BOOK.current("council_b")
COUNCIL_E = BOOK.current("council_e")
FEE = LANCASHIRE.planning.provider_management_fee_basis_points  # seed 003: 10%


def line(
    amount: int | None = 10_000,
    frequency: Frequency = Frequency.WEEKLY,
    domains: tuple[str, ...] = (),
    **rest: object,
) -> PlanLine:
    return PlanLine.costed(
        description="Personal assistant",
        provider_kind=ProviderKind.PERSONAL_ASSISTANT,
        frequency=frequency,
        amount_pence=amount,
        domains=domains,
        **rest,  # type: ignore[arg-type]
    )


def content(*lines: PlanLine, **rest: object) -> PlanContent:
    return PlanContent(outcomes=("Live in my own flat",), lines=lines, **rest)  # type: ignore[arg-type]


def budget(weekly: int, council: str = "lancashire", stage: str = "indicative") -> KnownBudget:
    return KnownBudget(
        budget_id=uuid.uuid4(),
        assessment_id=uuid.uuid4(),
        person_id=PERSON,
        council=council,
        stage=stage,
        revision=1,
        weekly_pence=weekly,
        annual_pence=weekly * 52,
        policy_version="lancashire/2009.1",
    )


def assessment(
    levels: dict[str, int] | None = None, risks: tuple[KnownRisk, ...] = ()
) -> KnownAssessment:
    return KnownAssessment(
        assessment_id=uuid.uuid4(),
        person_id=PERSON,
        council="lancashire",
        client_group="learning_disability",
        domain_levels=levels or {"staying_safe": 1},
        risks=risks,
        policy_version="lancashire/2009.1",
    )


def checks_for(
    plan_content: PlanContent,
    known_budget: KnownBudget | None,
    known_assessment: KnownAssessment | None = None,
) -> dict[CheckName, Check]:
    found = run_checks(
        person_id=PERSON,
        content=plan_content,
        costing=cost_plan(plan_content, fee_basis_points=FEE),
        budget=known_budget,
        assessment=known_assessment or assessment(),
        questionnaire=LANCASHIRE.questionnaire,
    )
    return {c.name: c for c in found}


def submitted_plan(weekly: int, council: str = "lancashire") -> Plan:
    known = budget(weekly, council)
    plan = Plan.draft(
        person_id=PERSON,
        council=council,
        budget=known,
        content=content(line(weekly)),
        fee_basis_points=FEE,
        by="care_manager:cm-1",
        at=AT,
    )
    plan.submit(checks=[], by="care_manager:cm-1", at=AT)
    return plan


def passing_checks() -> list[Check]:
    return [Check(name, True, "ok") for name in CheckName]


def sign_off(plan: Plan, role: Role, policy: Policy, on: date = date(2010, 5, 3)) -> Review:
    return plan.sign_off(
        approver=Caller(f"{role.value}:u-1", role, plan.council),
        policy=policy,
        checks=passing_checks(),
        budget=budget(plan.costing.weekly_pence, plan.council),
        on=on,
        first_review_after_days=policy.reviews.first_after_days,
        policy_version=policy.policy_version,
        at=AT,
    )


# --- costing ------------------------------------------------------------------------------


def test_a_weekly_line_costs_52_weeks_a_year() -> None:
    costing = cost_plan(content(line(25_000)), fee_basis_points=FEE)
    assert (costing.weekly_pence, costing.annual_pence) == (25_000, 1_300_000)


def test_a_four_weekly_line_counts_13_periods_and_weekly_is_annual_over_52() -> None:
    # contracts.money: a year is 13 four-week periods; weekly is derived from the annual
    costing = cost_plan(content(line(10_001, Frequency.FOUR_WEEKLY)), fee_basis_points=FEE)
    assert costing.annual_pence == 130_013
    assert costing.weekly_pence == 2_500  # 130,013 / 52 = 2,500.25, rounded half up


def test_one_off_lines_are_counted_apart_from_the_weekly_cost() -> None:
    # seed 003 ch.2 §v: assistive technology bought once
    costing = cost_plan(
        content(line(20_000), line(45_000, Frequency.ONE_OFF)), fee_basis_points=FEE
    )
    assert (costing.weekly_pence, costing.one_off_pence) == (20_000, 45_000)


def test_provider_holding_the_funds_adds_the_10_percent_management_fee() -> None:
    # seed 003 ch.3 Castle: "Castle charges each person a 10% management fee"
    isf = line(30_000, provider_holds_funds=True, provider_name="Castle Supported Living")
    costing = cost_plan(content(isf, line(5_000)), fee_basis_points=FEE)
    assert costing.fee_annual_pence == 3_000 * 52
    assert costing.weekly_pence == 30_000 + 3_000 + 5_000
    [fee] = costing.fee_lines
    assert fee.amount_pence == 3_000 and fee.line_id == isf.line_id
    assert "10%" in fee.description


def test_no_fee_on_a_line_the_provider_does_not_hold() -> None:
    costing = cost_plan(content(line(30_000)), fee_basis_points=FEE)
    assert costing.fee_annual_pence == 0 and costing.fee_lines == ()


def test_contingency_is_added_every_week() -> None:
    # seed 003 ch.3 Castle: support for 4-6 extra weeks a year held as a contingency;
    # six weeks of £150 extra support = £900 a year, about £17.31 a week
    costing = cost_plan(content(line(20_000), contingency_weekly_pence=1_731), fee_basis_points=FEE)
    assert costing.contingency_annual_pence == 1_731 * 52
    assert costing.weekly_pence == 21_731
    assert costing.annual_pence == 20_000 * 52 + 1_731 * 52


def test_sleep_in_shared_by_four_tenants_costs_each_an_equal_quarter() -> None:
    # seed 003 ch.4: tenants share the cost of a sleep-in; no more than 4 tenants a house
    sleep_in = SharedSupport(total_amount_pence=70_000, people=4)
    shared_line = line(None, shared=sleep_in)
    assert shared_line.amount_pence == 17_500


def test_shared_support_follows_an_agreed_share_based_on_need() -> None:
    # seed 003 ch.4: "Their contribution ... would be based entirely on their individual needs"
    sleep_in = SharedSupport(total_amount_pence=70_000, people=4, share_basis_points=4_000)
    assert line(None, shared=sleep_in).amount_pence == 28_000


def test_an_equal_share_is_rounded_to_the_penny() -> None:
    assert SharedSupport(total_amount_pence=10_000, people=3).this_persons_amount == 3_333


def test_a_shared_line_with_a_different_amount_is_refused() -> None:
    with pytest.raises(InvalidPlan, match="share"):
        line(20_000, shared=SharedSupport(total_amount_pence=70_000, people=4))


def test_shared_support_needs_two_people() -> None:
    with pytest.raises(InvalidPlan, match="people"):
        SharedSupport(total_amount_pence=70_000, people=1)


def test_a_line_needs_an_amount_unless_shared() -> None:
    with pytest.raises(InvalidPlan, match="amount_pence"):
        line(None)


def test_an_unknown_domain_is_refused_naming_the_line() -> None:
    plan_content = content(line(10_000, domains=("flying",)))
    with pytest.raises(InvalidPlan, match=r"lines\[0\]\.domains: 'flying'"):
        plan_content.validate_against(LANCASHIRE.questionnaire, None)


def test_a_mitigation_for_a_risk_never_assessed_is_refused() -> None:
    plan_content = content(line(), risk_mitigations=(RiskMitigation("r-9", "a plan"),))
    with pytest.raises(InvalidPlan, match="r-9"):
        plan_content.validate_against(LANCASHIRE.questionnaire, ["r-1"])


# --- checks -------------------------------------------------------------------------------


def test_a_plan_within_the_budget_passes() -> None:
    # seed 004 Council A: £250 a week, the care manager's limit
    assert checks_for(content(line(25_000)), budget(25_000))[CheckName.WITHIN_BUDGET].passed


def test_a_plan_over_budget_without_a_request_for_more_fails() -> None:
    check = checks_for(content(line(25_001)), budget(25_000))[CheckName.WITHIN_BUDGET]
    assert not check.passed and "£0.01 over" in check.reason


def test_a_plan_over_budget_with_a_request_for_more_passes() -> None:
    # seed 003 ch.2 §iii: 2:1 support the points miss -> "funding above the indicative budget"
    more = RequestForMore(weekly_pence=16_500, reason="2:1 support for moving and handling")
    plan_content = content(line(41_500), request_for_more=more)
    check = checks_for(plan_content, budget(25_000))[CheckName.WITHIN_BUDGET]
    assert check.passed and "request for more" in check.reason


def test_without_a_budget_the_plan_fails_budget_issued() -> None:
    assert not checks_for(content(line()), None)[CheckName.BUDGET_ISSUED].passed


def test_staying_safe_scored_high_and_unaddressed_fails() -> None:
    # seed 003 ch.2 §ii: Staying Safe (30 points at the top level) must be addressed by spend
    high = assessment({"staying_safe": 5, "communication": 2})
    check = checks_for(content(line(domains=("personal_care",))), budget(50_000), high)[
        CheckName.HIGH_DOMAINS_ADDRESSED
    ]
    assert not check.passed and "Staying Safe" in check.reason


def test_staying_safe_scored_high_and_addressed_passes() -> None:
    high = assessment({"staying_safe": 5})
    night_support = line(domains=("staying_safe",))
    check = checks_for(content(night_support), budget(50_000), high)[
        CheckName.HIGH_DOMAINS_ADDRESSED
    ]
    assert check.passed


def test_a_domain_at_exactly_the_high_level_counts_as_high() -> None:
    # lancashire policy: staying_safe high_from_level 4 (23 points)
    check = checks_for(content(line()), budget(50_000), assessment({"staying_safe": 4}))[
        CheckName.HIGH_DOMAINS_ADDRESSED
    ]
    assert not check.passed


def test_a_domain_below_the_high_level_needs_no_line() -> None:
    # lancashire policy: high_from_level 4
    check = checks_for(content(line()), budget(50_000), assessment({"staying_safe": 3}))[
        CheckName.HIGH_DOMAINS_ADDRESSED
    ]
    assert check.passed


SEIZURES = KnownRisk("r-1", "Falls after night-time seizures", flagged=True)


def test_a_flagged_risk_without_mitigation_fails() -> None:
    # seed 003 ch.2 §ii: seizures at night; seed 004 Council B: plans must address risks
    check = checks_for(content(line()), budget(50_000), assessment(risks=(SEIZURES,)))[
        CheckName.FLAGGED_RISKS_MITIGATED
    ]
    assert not check.passed and "r-1" in check.reason


def test_a_flagged_risk_with_a_blank_mitigation_still_fails() -> None:
    plan_content = content(line(), risk_mitigations=(RiskMitigation("r-1", "   "),))
    check = checks_for(plan_content, budget(50_000), assessment(risks=(SEIZURES,)))[
        CheckName.FLAGGED_RISKS_MITIGATED
    ]
    assert not check.passed


def test_a_flagged_risk_referred_to_the_risk_panel_passes() -> None:
    # seed 003 ch.5 §4: uncertain plans go to a risk enablement panel
    referred = RiskMitigation("r-1", referred_to_risk_panel=True)
    check = checks_for(
        content(line(), risk_mitigations=(referred,)),
        budget(50_000),
        assessment(risks=(SEIZURES,)),
    )[CheckName.FLAGGED_RISKS_MITIGATED]
    assert check.passed


def test_a_flagged_risk_with_a_mitigation_passes() -> None:
    mitigated = RiskMitigation("r-1", "Sleep-in support every night")
    check = checks_for(
        content(line(), risk_mitigations=(mitigated,)),
        budget(50_000),
        assessment(risks=(SEIZURES,)),
    )[CheckName.FLAGGED_RISKS_MITIGATED]
    assert check.passed


def test_an_unflagged_risk_needs_nothing() -> None:
    calm = KnownRisk("r-2", "Occasional low mood", flagged=False)
    check = checks_for(content(line()), budget(50_000), assessment(risks=(calm,)))[
        CheckName.FLAGGED_RISKS_MITIGATED
    ]
    assert check.passed


def test_every_failing_check_is_reported_at_once() -> None:
    known = budget(10_000)
    plan = Plan.draft(
        person_id=PERSON,
        council="lancashire",
        budget=known,
        content=content(line(20_000)),
        fee_basis_points=FEE,
        by="person:p-001",
        at=AT,
    )
    checks = list(
        checks_for(plan.content, known, assessment({"staying_safe": 5}, (SEIZURES,))).values()
    )
    with pytest.raises(ChecksFailed) as refused:
        plan.submit(checks=checks, by="person:p-001", at=AT)
    assert {c.name for c in refused.value.failures} == {
        CheckName.WITHIN_BUDGET,
        CheckName.HIGH_DOMAINS_ADDRESSED,
        CheckName.FLAGGED_RISKS_MITIGATED,
    }
    assert plan.status is PlanStatus.DRAFT and plan.events == []


# --- submit, return, sign-off -------------------------------------------------------------


def test_submitting_records_plan_submitted() -> None:
    plan = submitted_plan(20_000)
    [event] = plan.events
    assert isinstance(event, PlanSubmitted) and event.weekly_pence == 20_000
    assert plan.status is PlanStatus.SUBMITTED and plan.version == 2


def test_a_returned_plan_can_be_amended_and_resubmitted() -> None:
    plan = submitted_plan(20_000)
    plan.return_to_author(
        reasons=["Say how night-time safety is covered"],
        by=Caller("panel:u-1", Role.PANEL, "lancashire"),
        at=AT,
    )
    assert isinstance(plan.events[-1], PlanReturned)
    plan.amend(
        budget=budget(20_000),
        content=content(line(19_000)),
        fee_basis_points=FEE,
        by="care_manager:cm-1",
        at=AT,
    )
    plan.submit(checks=passing_checks(), by="care_manager:cm-1", at=AT)
    assert plan.status is PlanStatus.SUBMITTED


def test_a_submitted_plan_cannot_be_amended() -> None:
    plan = submitted_plan(20_000)
    with pytest.raises(IllegalStateChange):
        plan.amend(
            budget=budget(20_000),
            content=content(line()),
            fee_basis_points=FEE,
            by="care_manager:cm-1",
            at=AT,
        )


def test_a_stale_version_is_refused() -> None:
    plan = submitted_plan(20_000)
    with pytest.raises(StaleVersion):
        plan.return_to_author(
            reasons=["x"], by=Caller("panel:u", Role.PANEL, "lancashire"), at=AT, expected_version=1
        )


def test_only_a_submitted_plan_can_be_signed_off() -> None:
    plan = Plan.draft(
        person_id=PERSON,
        council="council_a",
        budget=budget(1, "council_a"),
        content=content(line(100)),
        fee_basis_points=FEE,
        by="care_manager:cm-1",
        at=AT,
    )
    with pytest.raises(IllegalStateChange):
        sign_off(plan, Role.PANEL, COUNCIL_A)


def test_care_manager_can_sign_off_250_a_week() -> None:
    # seed 004 Council A: "The care manager can agree up to £250 per week"
    plan = submitted_plan(25_000, "council_a")
    sign_off(plan, Role.CARE_MANAGER, COUNCIL_A)
    assert plan.status is PlanStatus.SIGNED_OFF


def test_care_manager_cannot_sign_off_a_penny_over_250_a_week() -> None:
    plan = submitted_plan(25_001, "council_a")
    with pytest.raises(AboveApprovalLimit) as refused:
        sign_off(plan, Role.CARE_MANAGER, COUNCIL_A)
    assert refused.value.needed is Role.TEAM_MANAGER and "team_manager" in str(refused.value)
    assert plan.status is PlanStatus.SUBMITTED


def test_team_manager_can_sign_off_415_a_week() -> None:
    # seed 004 Council A: "the team manager up to £415 per week"
    plan = submitted_plan(41_500, "council_a")
    sign_off(plan, Role.TEAM_MANAGER, COUNCIL_A)
    assert plan.status is PlanStatus.SIGNED_OFF


def test_team_manager_cannot_sign_off_above_415_a_week() -> None:
    plan = submitted_plan(41_501, "council_a")
    with pytest.raises(AboveApprovalLimit) as refused:
        sign_off(plan, Role.TEAM_MANAGER, COUNCIL_A)
    assert refused.value.needed is Role.PANEL


def test_the_panel_signs_off_above_415_a_week() -> None:
    # seed 004 Council A: "Discretionary payments above that level go to a ... team meeting"
    plan = submitted_plan(90_000, "council_a")
    sign_off(plan, Role.PANEL, COUNCIL_A)
    assert plan.status is PlanStatus.SIGNED_OFF


@pytest.mark.parametrize("role", [Role.CARE_MANAGER, Role.TEAM_MANAGER])
def test_in_council_b_only_the_panel_signs_off_even_small_plans(role: Role) -> None:
    # seed 004 Council B: "all support plans ... have to be approved by a panel"
    plan = submitted_plan(5_000, "council_b")
    with pytest.raises(AboveApprovalLimit) as refused:
        sign_off(plan, role, COUNCIL_B)
    assert refused.value.needed is Role.PANEL
    sign_off(plan, Role.PANEL, COUNCIL_B)
    assert plan.status is PlanStatus.SIGNED_OFF


def test_sign_off_is_refused_when_a_check_fails() -> None:
    plan = submitted_plan(20_000, "council_a")
    failing = [*passing_checks()[:-1], Check(CheckName.FLAGGED_RISKS_MITIGATED, False, "r-1")]
    with pytest.raises(ChecksFailed):
        plan.sign_off(
            approver=Caller("panel:u", Role.PANEL, "lancashire"),
            policy=COUNCIL_A,
            checks=failing,
            budget=budget(20_000, "council_a"),
            on=date(2010, 5, 3),
            first_review_after_days=42,
            policy_version="council_a/2009.1",
            at=AT,
        )


def test_sign_off_records_the_event_and_a_first_review_six_weeks_on() -> None:
    # seed 004 §6.7: "the national requirement of a six-week and annual review"
    plan = submitted_plan(25_000, "council_a")
    plan.events.clear()
    review = sign_off(plan, Role.CARE_MANAGER, COUNCIL_A, on=date(2010, 5, 3))
    [signed] = plan.events
    assert isinstance(signed, PlanSignedOff)
    assert signed.first_review_on == date(2010, 6, 14)
    assert signed.signed_off_by == "care_manager:u-1"
    assert signed.signed_off_by_role is Role.CARE_MANAGER
    assert signed.policy_version == "council_a/2009.1"
    assert (review.kind, review.due_on) == (ReviewKind.FIRST, date(2010, 6, 14))
    [scheduled] = review.events
    assert isinstance(scheduled, ReviewScheduled)
    assert scheduled.scheduled_by == "care_manager:u-1"  # v2: who booked it


def test_a_review_no_person_booked_is_scheduled_by_the_system() -> None:
    plan = submitted_plan(25_000, "council_a")
    sign_off(plan, Role.CARE_MANAGER, COUNCIL_A)
    review = Review.schedule(
        plan=plan, kind=ReviewKind.ANNUAL, due_on=date(2011, 5, 3), by="", at=AT
    )
    [scheduled] = review.events
    assert isinstance(scheduled, ReviewScheduled) and scheduled.scheduled_by == SYSTEM_ACTOR


def test_council_e_reviews_first_after_eight_weeks() -> None:
    # seed 004 Council E: "reviews, after three months and then annually"; the Care and
    # Support Statutory Guidance (para. 13.32) expects 6-8 weeks: 56 days
    plan = submitted_plan(20_000, "council_e")
    review = sign_off(plan, Role.TEAM_MANAGER, COUNCIL_E, on=date(2010, 5, 3))
    assert review.due_on == date(2010, 6, 28)


def test_signed_off_lines_carry_the_fee_as_a_line_of_its_own() -> None:
    known = budget(50_000, "council_a")
    isf = line(30_000, provider_holds_funds=True)
    plan = Plan.draft(
        person_id=PERSON,
        council="council_a",
        budget=known,
        content=content(isf),
        fee_basis_points=FEE,
        by="care_manager:cm-1",
        at=AT,
    )
    plan.submit(checks=passing_checks(), by="care_manager:cm-1", at=AT)
    sign_off(plan, Role.TEAM_MANAGER, COUNCIL_A)
    signed = plan.events[-1]
    assert isinstance(signed, PlanSignedOff)
    assert [line.amount_pence for line in signed.lines] == [30_000, 3_000]
    assert sum(line.annual_pence for line in signed.lines) == signed.annual_pence


# --- reviews ------------------------------------------------------------------------------


def test_add_months_keeps_the_day_or_falls_back_to_the_month_end() -> None:
    assert add_months(date(2010, 6, 14), 12) == date(2011, 6, 14)
    assert add_months(date(2010, 1, 31), 1) == date(2010, 2, 28)
    assert add_months(date(2012, 2, 29), 12) == date(2013, 2, 28)
    assert add_months(date(2010, 11, 30), 3) == date(2011, 2, 28)


def signed_off_plan() -> tuple[Plan, Review]:
    plan = submitted_plan(20_000, "lancashire")
    review = sign_off(plan, Role.TEAM_MANAGER, LANCASHIRE, on=date(2010, 5, 3))
    return plan, review


def test_a_review_is_announced_due_once() -> None:
    _, review = signed_off_plan()
    review.events.clear()
    assert not review.announce_if_due(as_of=date(2010, 6, 13), by="operations:ops-1", at=AT)
    assert review.announce_if_due(as_of=date(2010, 6, 14), by="operations:ops-1", at=AT)
    assert not review.announce_if_due(as_of=date(2010, 6, 20), by="operations:ops-1", at=AT)
    assert [type(e) for e in review.events] == [ReviewDue]
    assert review.status is ReviewStatus.DUE


def test_completing_a_review_schedules_the_next_annual_one() -> None:
    # seed 003 ch.1: "the support plan will be reviewed at least once a year"
    plan, review = signed_off_plan()
    review.events.clear()
    following = review.complete(
        outcome=ReviewOutcome.NO_CHANGE,
        completed_on=date(2010, 6, 15),
        notes="All well",
        by="care_manager:cm-1",
        plan=plan,
        reviews=LANCASHIRE.reviews,
        policy_version=LANCASHIRE.policy_version,
        at=AT,
    )
    assert isinstance(review.events[0], ReviewCompleted)
    assert (following.kind, following.due_on) == (ReviewKind.ANNUAL, date(2011, 6, 15))
    assert plan.status is PlanStatus.SIGNED_OFF


def test_a_review_that_revises_the_plan_reopens_it_as_a_new_draft_version() -> None:
    # seed 003 step 7: "The budget may also change as a result of the review"
    plan, review = signed_off_plan()
    review.complete(
        outcome=ReviewOutcome.REVISE_PLAN,
        completed_on=date(2010, 6, 15),
        notes="More help",
        by="care_manager:cm-1",
        plan=plan,
        reviews=LANCASHIRE.reviews,
        policy_version=LANCASHIRE.policy_version,
        at=AT,
    )
    assert (plan.status, plan.plan_version) == (PlanStatus.DRAFT, 2)
    assert plan.history[-1].action == "reopened_for_revision"


def test_a_review_that_asks_for_reassessment_only_records_it() -> None:
    plan, review = signed_off_plan()
    review.complete(
        outcome=ReviewOutcome.REASSESS,
        completed_on=date(2010, 6, 15),
        notes="",
        by="care_manager:cm-1",
        plan=plan,
        reviews=LANCASHIRE.reviews,
        policy_version=LANCASHIRE.policy_version,
        at=AT,
    )
    assert (plan.status, plan.plan_version) == (PlanStatus.SIGNED_OFF, 1)
    assert review.outcome is ReviewOutcome.REASSESS


def test_a_completed_review_cannot_be_completed_again() -> None:
    plan, review = signed_off_plan()
    review.complete(
        outcome=ReviewOutcome.NO_CHANGE,
        completed_on=date(2010, 6, 15),
        notes="",
        by="care_manager:cm-1",
        plan=plan,
        reviews=LANCASHIRE.reviews,
        policy_version=LANCASHIRE.policy_version,
        at=AT,
    )
    with pytest.raises(IllegalStateChange):
        review.complete(
            outcome=ReviewOutcome.NO_CHANGE,
            completed_on=date(2010, 6, 16),
            notes="",
            by="care_manager:cm-1",
            plan=plan,
            reviews=LANCASHIRE.reviews,
            policy_version=LANCASHIRE.policy_version,
            at=AT,
        )
