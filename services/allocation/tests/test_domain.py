"""The RAS and the budget's rules, pure and fast, with the seeds' own figures.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1.
Seed 004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.events import BudgetStage, OtherFundingSource, Scale
from contracts.money import Frequency, annual_from
from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import ClientGroup, Role
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.allocation.domain import (
    AboveAgreementLimit,
    Budget,
    BudgetInputs,
    BudgetNotFound,
    CeilingExceptionNotAllowed,
    CeilingExceptionNotNeeded,
    CeilingExceptionReasonRequired,
    ClientGroupNotBudgeted,
    FundingStream,
    MayNotAgree,
    MissingDomain,
    NotAwaitingAgreement,
    PlanDoesNotMatchBudget,
    RevisionState,
    SignedOffPlan,
    UnknownDomain,
    UnknownLevel,
    calculate_budget,
    revised_inputs,
    summary_in_words,
)

NOW = datetime(2010, 6, 1, tzinfo=UTC)
BOOK = PolicyBook.from_directory(POLICIES_DIR)
LANCASHIRE = BOOK.current("lancashire")
COUNCIL_A = BOOK.current("council_a")
COUNCIL_B = BOOK.current("council_b")
COUNCIL_D = BOOK.current("council_d")

# Seed 003 ch.2 Step 1 §ii: each domain's highest level (30+5+5+10+10+10 = 70 points)
# and lowest (5+1+1+2+1+2 = 12 points).
HIGHEST = {
    "staying_safe": 5,
    "communication": 5,
    "work_leisure_learning": 5,
    "essential_living_tasks": 5,
    "personal_care": 5,
    "health": 5,
}
LOWEST = dict.fromkeys(HIGHEST, 1)


def levels(**changes: int) -> dict[str, int]:
    return {**LOWEST, **changes}


# Points in the Lancashire questionnaire (levels 2-4 are the policy's, marked assumed).
TWENTY_FIVE_POINTS = levels(staying_safe=3, communication=3)  # 16+3+1+2+1+2
FORTY_ONE_POINTS = levels(staying_safe=5, essential_living_tasks=3)  # 30+1+1+6+1+2
THIRTEEN_POINTS = levels(communication=2)


def inputs(
    domain_levels: dict[str, int] = HIGHEST,
    *,
    group: ClientGroup = ClientGroup.OLDER_PEOPLE,
    informal: bool = False,
    needs_24_7: bool = False,
    carer: int = 0,
    funding: tuple[FundingStream, ...] = (),
    additional: int = 0,
) -> BudgetInputs:
    return BudgetInputs(
        client_group=group,
        domain_levels=domain_levels,
        significant_informal_support=informal,
        needs_24_7=needs_24_7,
        carer_support_weekly_pence=carer,
        other_funding=funding,
        additional_weekly_pence=additional,
    )


def new_budget(budget_inputs: BudgetInputs, policy: Policy) -> Budget:
    return Budget.open(
        budget_id=uuid.uuid4(),
        council=policy.council,
        person_id="P-1",
        assessment_id=uuid.uuid4(),
        inputs=budget_inputs,
        calculation=calculate_budget(budget_inputs, policy),
        by="care_manager:cm-1",
        at=NOW,
    )


def approver(role: Role, council: str) -> Caller:
    return Caller(record=f"{role.value}:u-1", role=role, council=council)


def labels(calc_lines: tuple[object, ...]) -> list[str]:
    return [line.label for line in calc_lines]  # type: ignore[attr-defined]


# --- points -------------------------------------------------------------------------------


def test_lancashire_highest_levels_score_the_70_point_maximum() -> None:
    # Seed 003 ch.2 §ii: Staying Safe 30, Communication 5, Work/Leisure/Learning 5,
    # Essential Living Tasks 10, Personal Care 10, Health 10.
    calc = calculate_budget(inputs(HIGHEST), LANCASHIRE)
    assert calc.points == 70 == calc.max_points
    assert "Staying Safe: level 5 = 30 points" in labels(calc.explanation)


def test_lancashire_lowest_levels_score_the_12_point_minimum() -> None:
    # Seed 003 ch.2 §ii: 5 + 1 + 1 + 2 + 1 + 2.
    assert calculate_budget(inputs(LOWEST), LANCASHIRE).points == 12


def test_points_times_price_per_point_gives_the_weekly_and_annual_budget() -> None:
    calc = calculate_budget(inputs(HIGHEST), LANCASHIRE)
    assert calc.price_per_point_weekly_pence == 1000
    assert calc.weekly_pence == 70_000
    assert calc.annual_pence == annual_from(70_000, Frequency.WEEKLY) == 3_640_000
    assert "70 points \u00d7 £10.00 a point (older people)" in labels(calc.explanation)


def test_price_per_point_differs_by_client_group() -> None:
    # Seed 004 App.1 Council D: "a different price per point dependent on client group".
    d_lowest = {**LOWEST, "risks_to_others": 1}  # Council D adds a seventh domain
    older = calculate_budget(inputs(d_lowest, group=ClientGroup.OLDER_PEOPLE), COUNCIL_D)
    ld = calculate_budget(inputs(d_lowest, group=ClientGroup.LEARNING_DISABILITY), COUNCIL_D)
    assert older.points == ld.points
    assert older.weekly_pence == older.points * 850
    assert ld.weekly_pence == ld.points * 1150


# --- scales -------------------------------------------------------------------------------


def test_lower_scale_applies_with_significant_informal_support_and_no_24_7_need() -> None:
    # Seed 003 ch.2 Step 1 §i: two scales; Lancashire's lower one is 80% (policy data).
    calc = calculate_budget(inputs(HIGHEST, informal=True), LANCASHIRE)
    assert calc.scale is Scale.LOWER
    assert calc.weekly_pence == 56_000
    assert "Lower scale (significant informal support, no 24/7 need): 80%" in labels(
        calc.explanation
    )


def test_a_24_7_need_keeps_the_standard_scale_despite_informal_support() -> None:
    calc = calculate_budget(inputs(HIGHEST, informal=True, needs_24_7=True), LANCASHIRE)
    assert calc.scale is Scale.STANDARD
    assert calc.weekly_pence == 70_000


def test_without_significant_informal_support_the_standard_scale_applies() -> None:
    assert calculate_budget(inputs(HIGHEST), LANCASHIRE).scale is Scale.STANDARD


# --- carer-neutral, other funding ---------------------------------------------------------


def test_carer_support_never_changes_the_points_or_the_scale_only_the_money() -> None:
    # Seed 004 App.1 Council C and §7.8: allocation based on no carer input, then adjusted.
    without = calculate_budget(inputs(HIGHEST), LANCASHIRE)
    with_carer = calculate_budget(inputs(HIGHEST, carer=15_000), LANCASHIRE)
    assert with_carer.points == without.points == 70
    assert with_carer.scale is without.scale
    assert with_carer.weekly_pence == without.weekly_pence - 15_000 == 55_000
    assert "Less agreed carer support: \u2212£150.00" in labels(with_carer.explanation)


def test_a_revision_with_no_carer_support_restores_the_money_without_reassessment() -> None:
    with_carer = inputs(HIGHEST, carer=15_000)
    restored = revised_inputs(with_carer, carer_support_weekly_pence=0)
    assert restored.domain_levels == with_carer.domain_levels
    assert calculate_budget(restored, LANCASHIRE).weekly_pence == 70_000


def test_supporting_people_and_ilf_are_netted_off() -> None:
    # Seed 003 ch.2 Step 1 §v: "we would net off Supporting People funding and
    # Independent Living Fund monies".
    funding = (
        FundingStream(source=OtherFundingSource.SUPPORTING_PEOPLE, weekly_pence=3_000),
        FundingStream(source=OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=10_000),
    )
    calc = calculate_budget(inputs(HIGHEST, funding=funding), LANCASHIRE)
    assert calc.weekly_pence == 70_000 - 3_000 - 10_000
    assert "Less Supporting People: \u2212£30.00" in labels(calc.explanation)
    assert "Less Independent Living Fund: \u2212£100.00" in labels(calc.explanation)


def test_deductions_never_take_the_budget_below_zero() -> None:
    funding = (
        FundingStream(source=OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=50_000),
    )
    calc = calculate_budget(inputs(LOWEST, carer=5_000, funding=funding), LANCASHIRE)
    assert calc.weekly_pence == 0
    assert [d.deducted_weekly_pence for d in calc.deductions] == [5_000, 7_000]


def test_money_lines_of_the_explanation_add_up_to_the_weekly_budget() -> None:
    funding = (FundingStream(source=OtherFundingSource.SUPPORTING_PEOPLE, weekly_pence=2_345),)
    calc = calculate_budget(
        inputs(HIGHEST, informal=True, carer=1_111, funding=funding, additional=777), LANCASHIRE
    )
    weekly_line = next(
        i for i, line in enumerate(calc.explanation) if line.label.startswith("Weekly")
    )
    assert sum(line.amount_pence for line in calc.explanation[:weekly_line]) == calc.weekly_pence
    assert calc.weekly_pence == 56_000 + 777 - 1_111 - 2_345


def test_additional_support_the_points_miss_is_added_to_the_money() -> None:
    # Seed 003 ch.2 §iii: 2-to-1 support is not factored into the points.
    calc = calculate_budget(inputs(HIGHEST, additional=20_000), LANCASHIRE)
    assert calc.points == 70
    assert calc.weekly_pence == 90_000


# --- ceilings -----------------------------------------------------------------------------


def test_a_budget_above_the_mental_health_ceiling_needs_an_exception() -> None:
    # Seed 004 App.1 Council B: £120 a week for PBs in mental health services.
    calc = calculate_budget(inputs(THIRTEEN_POINTS, group=ClientGroup.MENTAL_HEALTH), COUNCIL_B)
    assert calc.ceiling_weekly_pence == 12_000
    assert calc.weekly_pence == 13_000
    assert calc.above_ceiling
    assert (
        "Ceiling for mental health: £120.00 a week \u2014 exceeded, needs an exception"
        in labels(calc.explanation)
    )


def test_a_budget_exactly_at_the_ceiling_needs_no_exception() -> None:
    calc = calculate_budget(inputs(LOWEST, group=ClientGroup.MENTAL_HEALTH), COUNCIL_B)
    assert calc.weekly_pence == 12_000
    assert not calc.above_ceiling


def test_the_explanation_names_the_policy_version() -> None:
    calc = calculate_budget(inputs(HIGHEST), LANCASHIRE)
    assert calc.policy_version == "lancashire/2009.1"
    assert "Policy lancashire/2009.1" in labels(calc.explanation)


# --- bad inputs ---------------------------------------------------------------------------


def test_an_unknown_domain_is_refused_naming_it() -> None:
    with pytest.raises(UnknownDomain, match="flying"):
        calculate_budget(inputs({**HIGHEST, "flying": 3}), LANCASHIRE)


def test_an_unknown_level_is_refused_naming_the_domain() -> None:
    with pytest.raises(UnknownLevel, match="staying_safe"):
        calculate_budget(inputs(levels(staying_safe=6)), LANCASHIRE)


def test_a_missing_domain_is_refused() -> None:
    partial = {k: v for k, v in HIGHEST.items() if k != "health"}
    with pytest.raises(MissingDomain, match="health"):
        calculate_budget(inputs(partial), LANCASHIRE)


def test_a_client_group_the_policy_does_not_price_is_refused() -> None:
    # Lancashire's policy leaves carers out (see its assumptions).
    with pytest.raises(ClientGroupNotBudgeted):
        calculate_budget(inputs(HIGHEST, group=ClientGroup.CARERS), LANCASHIRE)


# --- agreement in principle ---------------------------------------------------------------


def test_care_manager_agrees_up_to_250_a_week_in_council_a() -> None:
    # Seed 004 App.1 Council A: care manager up to £250 a week.
    budget = new_budget(inputs(TWENTY_FIVE_POINTS), COUNCIL_A)
    assert budget.current.weekly_pence == 25_000
    event = budget.agree(
        by=approver(Role.CARE_MANAGER, "council_a"),
        policy=COUNCIL_A,
        at=NOW,
    )
    assert event.stage is BudgetStage.INDICATIVE
    assert event.weekly_pence == 25_000
    assert event.agreed_by_role is Role.CARE_MANAGER


def test_care_manager_cannot_agree_a_penny_above_250_a_week() -> None:
    budget = new_budget(inputs(TWENTY_FIVE_POINTS, additional=1), COUNCIL_A)
    with pytest.raises(AboveAgreementLimit, match=r"care_manager.*£250\.00"):
        budget.agree(
            by=approver(Role.CARE_MANAGER, "council_a"),
            policy=COUNCIL_A,
            at=NOW,
        )
    assert budget.status.value == "awaiting_agreement"
    assert budget.events == []


def test_team_manager_agrees_up_to_415_a_week_but_not_above() -> None:
    # Seed 004 App.1 Council A: team manager up to £415 a week; above that a panel.
    at_limit = new_budget(inputs(FORTY_ONE_POINTS, additional=500), COUNCIL_A)
    assert at_limit.current.weekly_pence == 41_500
    at_limit.agree(
        by=approver(Role.TEAM_MANAGER, "council_a"),
        policy=COUNCIL_A,
        at=NOW,
    )
    above = new_budget(inputs(FORTY_ONE_POINTS, additional=501), COUNCIL_A)
    with pytest.raises(AboveAgreementLimit, match="panel"):
        above.agree(
            by=approver(Role.TEAM_MANAGER, "council_a"),
            policy=COUNCIL_A,
            at=NOW,
        )
    above.agree(
        by=approver(Role.PANEL, "council_a"),
        policy=COUNCIL_A,
        at=NOW,
    )


def test_a_role_without_an_agreement_limit_may_not_agree() -> None:
    # Seed 003 ch.2 §iv: agreement in principle from the team manager or the panel.
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    with pytest.raises(MayNotAgree):
        budget.agree(
            by=approver(Role.CARE_MANAGER, "lancashire"),
            policy=LANCASHIRE,
            at=NOW,
        )


def test_above_the_ceiling_only_an_exception_role_may_agree() -> None:
    # Council D: a team manager may agree any amount, but a ceiling exception is the panel's.
    # 80 points (70 + Risks to Others 10) x £9.00 = £720 a week, above the £400 ceiling.
    mh = inputs({**HIGHEST, "risks_to_others": 5}, group=ClientGroup.MENTAL_HEALTH)
    budget = new_budget(mh, COUNCIL_D)
    assert budget.current.weekly_pence == 72_000
    assert budget.current.above_ceiling
    with pytest.raises(CeilingExceptionNotAllowed):
        budget.agree(
            by=approver(Role.TEAM_MANAGER, "council_d"),
            policy=COUNCIL_D,
            at=NOW,
            ceiling_exception_reason="night-time support after seizures",
        )


def test_a_ceiling_exception_needs_a_reason() -> None:
    # Seed 004 App.1 Council B: £120 a week mental health ceiling; only the panel agrees.
    budget = new_budget(inputs(THIRTEEN_POINTS, group=ClientGroup.MENTAL_HEALTH), COUNCIL_B)
    panel = approver(Role.PANEL, "council_b")
    with pytest.raises(CeilingExceptionReasonRequired):
        budget.agree(
            by=panel,
            policy=COUNCIL_B,
            at=NOW,
        )
    event = budget.agree(
        by=panel,
        policy=COUNCIL_B,
        at=NOW,
        ceiling_exception_reason="crisis support agreed with the CPN",
    )
    assert event.ceiling_exception is True
    assert event.ceiling_weekly_pence == 12_000


def test_a_reason_for_an_exception_that_is_not_needed_is_refused() -> None:
    budget = new_budget(inputs(LOWEST, group=ClientGroup.MENTAL_HEALTH), COUNCIL_B)
    with pytest.raises(CeilingExceptionNotNeeded):
        budget.agree(
            by=approver(Role.PANEL, "council_b"),
            policy=COUNCIL_B,
            at=NOW,
            ceiling_exception_reason="just in case",
        )


def test_an_agreed_budget_cannot_be_agreed_again() -> None:
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    tm = approver(Role.TEAM_MANAGER, "lancashire")
    budget.agree(by=tm, policy=LANCASHIRE, at=NOW)
    with pytest.raises(NotAwaitingAgreement):
        budget.agree(
            by=tm,
            policy=LANCASHIRE,
            at=NOW,
        )


def test_a_stale_expected_version_is_refused() -> None:
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    with pytest.raises(StaleVersion):
        budget.agree(
            by=approver(Role.TEAM_MANAGER, "lancashire"),
            policy=LANCASHIRE,
            at=NOW,
            expected_version=7,
        )


def test_another_councils_staff_cannot_find_the_budget() -> None:
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    with pytest.raises(BudgetNotFound):
        budget.agree(
            by=approver(Role.TEAM_MANAGER, "council_a"),
            policy=COUNCIL_A,
            at=NOW,
        )


# --- revisions and the final budget -------------------------------------------------------


def test_revisions_are_kept_and_an_unagreed_one_is_superseded() -> None:
    budget = new_budget(inputs(HIGHEST, carer=15_000), LANCASHIRE)
    restored = revised_inputs(budget.current.inputs, carer_support_weekly_pence=0)
    budget.revise(
        inputs=restored,
        calculation=calculate_budget(restored, LANCASHIRE),
        reason="carer has stopped",
        by=approver(Role.CARE_MANAGER, "lancashire"),
        at=NOW,
        expected_version=1,
    )
    assert [r.number for r in budget.revisions] == [1, 2]
    assert [r.state for r in budget.revisions] == [
        RevisionState.SUPERSEDED,
        RevisionState.AWAITING_AGREEMENT,
    ]
    assert [r.weekly_pence for r in budget.revisions] == [55_000, 70_000]
    assert budget.version == 2


def test_a_signed_off_plan_makes_the_budget_final_at_the_plans_cost() -> None:
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    budget.agree(
        by=approver(Role.TEAM_MANAGER, "lancashire"),
        policy=LANCASHIRE,
        at=NOW,
    )
    plan_id = uuid.uuid4()
    event = budget.finalise(
        plan=SignedOffPlan(
            plan_id=plan_id,
            plan_version=1,
            person_id="P-1",
            council="lancashire",
            weekly_pence=68_000,
            annual_pence=3_536_000,
            one_off_pence=0,
            signed_off_by="team_manager:tm-1",
            signed_off_by_role=Role.TEAM_MANAGER,
        ),
        at=NOW,
    )
    assert event.stage is BudgetStage.FINAL
    assert event.revision == 2
    assert (event.weekly_pence, event.annual_pence) == (68_000, 3_536_000)
    assert event.revision_reason == "support plan signed off"
    assert event.explanation[-1].label == "Signed-off support plan: £680.00 a week"
    assert budget.status.value == "final"
    assert budget.has_plan(plan_id, 1)
    assert "final budget" in summary_in_words(budget, budget.current)


def test_a_plan_for_another_person_does_not_finalise_the_budget() -> None:
    budget = new_budget(inputs(HIGHEST), LANCASHIRE)
    with pytest.raises(PlanDoesNotMatchBudget):
        budget.finalise(
            plan=SignedOffPlan(
                plan_id=uuid.uuid4(),
                plan_version=1,
                person_id="SOMEONE-ELSE",
                council="lancashire",
                weekly_pence=1,
                annual_pence=52,
                one_off_pence=0,
                signed_off_by="team_manager:tm-1",
                signed_off_by_role=Role.TEAM_MANAGER,
            ),
            at=NOW,
        )
    assert len(budget.revisions) == 1


# --- revising under an adopted policy (ADR 10) -----------------------------------------------


def _adopted(price: int, ceiling: int | None = None) -> Policy:
    ras = LANCASHIRE.ras.model_copy(
        update={
            "price_per_point_weekly_pence": {
                **LANCASHIRE.ras.price_per_point_weekly_pence,
                ClientGroup.OLDER_PEOPLE: price,
            },
            "ceilings_weekly_pence": {} if ceiling is None else {ClientGroup.OLDER_PEOPLE: ceiling},
        }
    )
    return LANCASHIRE.model_copy(update={"version": "2026.1", "ras": ras})


def test_an_agreed_budget_is_issued_again_under_the_adopted_policy() -> None:
    budget = new_budget(inputs(), LANCASHIRE)
    budget.agree(
        by=approver(Role.PANEL, "lancashire"),
        policy=LANCASHIRE,
        at=NOW,
    )
    budget.events.clear()
    policy = _adopted(900)
    revision = budget.revise_for_policy(
        calculation=calculate_budget(budget.current.inputs, policy),
        reason="bulk revision",
        by=approver(Role.OPERATIONS, "lancashire"),
        at=NOW,
    )
    assert revision is not None and revision.state is RevisionState.AGREED
    [issued] = budget.events
    assert (issued.policy_version, issued.weekly_pence, issued.stage) == (
        "lancashire/2026.1",
        63_000,  # 70 points at £9 (seed 003 ch.2 §ii's maximum)
        BudgetStage.INDICATIVE,
    )
    again = budget.revise_for_policy(
        calculation=calculate_budget(budget.current.inputs, policy),
        reason="bulk revision",
        by=approver(Role.OPERATIONS, "lancashire"),
        at=NOW,
    )
    assert again is None and len(budget.events) == 1


def test_a_budget_the_adopted_policy_puts_above_its_ceiling_waits_for_an_exception() -> None:
    budget = new_budget(inputs(), LANCASHIRE)
    budget.agree(
        by=approver(Role.PANEL, "lancashire"),
        policy=LANCASHIRE,
        at=NOW,
    )
    budget.events.clear()
    policy = _adopted(900, ceiling=45_000)
    revision = budget.revise_for_policy(
        calculation=calculate_budget(budget.current.inputs, policy),
        reason="bulk revision",
        by=approver(Role.OPERATIONS, "lancashire"),
        at=NOW,
    )
    assert revision is not None and revision.state is RevisionState.AWAITING_AGREEMENT
    assert revision.weekly_pence == 63_000 and revision.above_ceiling
    assert budget.events == []
