"""Write contracts/golden/<type>.json: one realistic CloudEvent per published event version.

    .venv/bin/python -m contracts.golden.make_golden

Deterministic: fixed ids (uuid5 of a name), fixed times, plausible data for one person's
journey in Lancashire (seed 003: six domains; seed 004 §6.7: a six-week first review).
Every version ever published gets its fixture, older ones included (the v1 of
review-scheduled is built with its own class), so tests/test_golden_events.py can check
that each still decodes, upcast where it must be, and validates against its own schema.
The files are the exact bytes an `Envelope` puts on the log, pretty-printed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.money import Frequency
from contracts.policy import content_sha256, load_policy, policy_document
from contracts.registry import PUBLISHED_CLASSES
from contracts.vocabulary import (
    AgeBand,
    ClientGroup,
    CompletedBy,
    Difficulty,
    EligibilityOutcome,
    Role,
)

GOLDEN_DIR = Path(__file__).parent
NAMESPACE = uuid.UUID("0f5a3c2e-6b1d-4f7e-9a8c-3d2e1f0a9b8c")
PERSON = "golden-p-001"
COUNCIL = "lancashire"
POLICY = "lancashire/2009.1"
START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
LEVELS = {
    "staying_safe": 4,
    "communication": 2,
    "work_leisure_learning": 3,
    "essential_living_tasks": 4,
    "personal_care": 5,
    "health": 3,
}


def uid(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


ASSESSMENT = uid("assessment")
BUDGET = uid("budget")
PLAN = uid("plan")
FIRST_REVIEW = uid("first-review")
ANNUAL_REVIEW = uid("annual-review")
DIRECT_PAYMENT_REVIEW = uid("direct-payment-review")
DIRECT_PAYMENT_REVIEW_DAY = 217
"""Six months after the direct payment was set up (day 36): 11 February to 11 August."""
DEPLOYMENT = uid("deployment")
NEW_DEPLOYMENT = uid("deployment-2")
SCHEDULE = uid("schedule")
WEEKLY = 24_150  # £241.50 a week: within Council A's care manager limit of £250
ANNUAL = WEEKLY * 52
BASE = {"person_id": PERSON, "council": COUNCIL}
ADOPTED_POLICY = GOLDEN_DIR / "lancashire-2026.1.yaml"


def adopted_document() -> dict[str, object]:
    return policy_document(load_policy(ADOPTED_POLICY))


def financial_assessment_fields() -> dict[str, object]:
    """One financial assessment's figures, as v1 published them and v2 repeats them."""
    return dict(
        assessment_id=ASSESSMENT,
        outcome=ev.FinancialAssessmentOutcome.ASSESSED,
        assessed_on=(START + timedelta(days=11)).date(),
        cost_of_support_weekly_pence=WEEKLY,
        capital=[
            ev.AssessedAmount(kind="savings", pence=1_800_000, counted=True),
            ev.AssessedAmount(kind="main_home", pence=16_500_000, counted=False),
        ],
        capital_counted_pence=1_800_000,
        tariff_income_weekly_pence=1_500,  # £3,750 above £14,250: 15 bands of £250
        income_weekly=[
            ev.AssessedAmount(kind="employment_and_support_allowance", pence=12_960, counted=True),
            ev.AssessedAmount(kind="pip_daily_living", pence=7_390, counted=True),
            ev.AssessedAmount(kind="pip_mobility", pence=2_910, counted=False),
        ],
        income_counted_weekly_pence=20_350,
        mig_circumstance="single_25_to_pension_credit_age",
        minimum_income_guarantee_weekly_pence=10_365,
        housing_costs_weekly_pence=1_250,
        disability_related_expenditure=[
            ev.ExpenditureItem(description="Extra heating", weekly_pence=800),
            ev.ExpenditureItem(description="Community alarm", weekly_pence=450),
        ],
        disability_related_expenditure_weekly_pence=1_250,
        weekly_charge_pence=8_985,
        lines=[
            ev.ChargeLine(label="Income we count", weekly_pence=20_350),
            ev.ChargeLine(label="Tariff income on capital of £18,000.00", weekly_pence=1_500),
            ev.ChargeLine(label="Less the Minimum Income Guarantee you keep", weekly_pence=-10_365),
            ev.ChargeLine(label="Less your housing costs", weekly_pence=-1_250),
            ev.ChargeLine(label="Less your disability-related expenditure", weekly_pence=-1_250),
            ev.ChargeLine(label="Your weekly charge", weekly_pence=8_985),
        ],
        figures_to_confirm=[],
        assessed_by="finance:fo-2",
    )


def assessment_fields() -> dict[str, object]:
    return {
        "assessment_id": ASSESSMENT,
        "client_group": ClientGroup.LEARNING_DISABILITY,
        "completed_by": CompletedBy.SUPPORTED,
        "team": "north",
        "key_worker_id": "kw-17",
        "age_band": AgeBand.AGE_18_64,
        "community_based": True,
    }


def plan_line() -> ev.PlanLineSummary:
    return ev.PlanLineSummary(
        line_id=uid("line-1"),
        description="Personal assistant, mornings and evenings",
        provider_kind=ev.ProviderKind.PERSONAL_ASSISTANT,
        provider_name=None,
        frequency=Frequency.WEEKLY,
        amount_pence=WEEKLY - 1_150,
        annual_pence=(WEEKLY - 1_150) * 52,
        domains=["personal_care", "essential_living_tasks"],
    )


def part(option: ev.DeploymentOption, annual_pence: int) -> ev.DeploymentPart:
    return ev.DeploymentPart(option=option, annual_pence=annual_pence)


# In journey order: (days after START, the event). The order is the order of a history.
JOURNEY: list[tuple[int, Callable[[], ev.Event]]] = [
    (0, lambda: ev.AssessmentStarted(**BASE, **assessment_fields(), policy_version=POLICY)),
    (
        0,
        lambda: ev.PersonalDetailsRecorded(
            **BASE,
            details_id=uid("personal-details"),
            assessment_id=ASSESSMENT,
            key_id=uid("person-key"),
            # Not a real sealing: fixed bytes standing for nonce + ciphertext + tag.
            sealed_details="AAECAwQFBgcICQoL" + "q83v" * 24,
            fields=["name", "date_of_birth", "postcode"],
            correction=False,
            age_band=AgeBand.AGE_75_84,
            recorded_by="care_manager:cm-17",
        ),
    ),
    (
        3,
        lambda: ev.AssessmentSubmitted(
            **BASE, assessment_id=ASSESSMENT, answers=dict(LEVELS), policy_version=POLICY
        ),
    ),
    (
        5,
        lambda: ev.AssessmentReturned(
            **BASE,
            assessment_id=ASSESSMENT,
            reasons=["Health domain: say how often the seizures happen"],
            returned_by="care_manager:cm-4",
        ),
    ),
    (
        9,
        # Validated before eligibility was required (v1).
        lambda: ev.AssessmentValidatedV1(
            **BASE,
            **assessment_fields(),
            domain_levels={**LEVELS, "staying_safe": 5},
            adjustments=[
                ev.LevelAdjustment(
                    domain="staying_safe",
                    original_level=4,
                    validated_level=5,
                    reason="Practitioner saw more risk at night than the person ticked",
                )
            ],
            significant_informal_support=True,
            needs_24_7=False,
            carer_support_weekly_pence=4_000,
            other_funding=[
                ev.OtherFunding(
                    source=ev.OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=2_500
                )
            ],
            outcomes=["Live in my own flat", "Go to the allotment twice a week"],
            risks=[
                ev.Risk(
                    risk_id="r-1",
                    description="Forgets to take medication in the evening",
                    flagged=True,
                    persons_view="I want to manage it myself with a reminder",
                    practitioners_view="A prompt from the PA is enough",
                )
            ],
            validated_by="care_manager:cm-4",
            policy_version=POLICY,
        ),
    ),
    (
        10,
        lambda: ev.EligibilityDetermined(
            **BASE,
            determination_id=uid("eligibility"),
            assessment_id=ASSESSMENT,
            needs_from_impairment_or_illness=True,
            outcomes_not_achieved=[
                ev.OutcomeNotAchieved(
                    outcome=EligibilityOutcome.NUTRITION,
                    difficulties=[Difficulty.ONLY_WITH_ASSISTANCE],
                ),
                ev.OutcomeNotAchieved(
                    outcome=EligibilityOutcome.HOME_SAFELY,
                    difficulties=[
                        Difficulty.ENDANGERS_HEALTH_OR_SAFETY,
                        Difficulty.SIGNIFICANT_PAIN_DISTRESS_OR_ANXIETY,
                    ],
                ),
            ],
            significant_impact_on_wellbeing=True,
            eligible=True,
            outcomes_needed=2,
            reasons=[
                "The needs meet the eligibility criteria.",
                "2 outcomes cannot be achieved: managing and maintaining nutrition, using the "
                "home safely (reg. 2(1)(b)).",
            ],
            determined_by="care_manager:cm-4",
            determined_on=(START + timedelta(days=10)).date(),
            policy_version=POLICY,
        ),
    ),
    (
        10,
        lambda: ev.AssessmentValidated(
            **BASE,
            **assessment_fields(),
            domain_levels={**LEVELS, "staying_safe": 5},
            adjustments=[
                ev.LevelAdjustment(
                    domain="staying_safe",
                    original_level=4,
                    validated_level=5,
                    reason="Practitioner saw more risk at night than the person ticked",
                )
            ],
            significant_informal_support=True,
            needs_24_7=False,
            carer_support_weekly_pence=4_000,
            other_funding=[
                ev.OtherFunding(
                    source=ev.OtherFundingSource.INDEPENDENT_LIVING_FUND, weekly_pence=2_500
                )
            ],
            outcomes=["Live in my own flat", "Go to the allotment twice a week"],
            risks=[
                ev.Risk(
                    risk_id="r-1",
                    description="Forgets to take medication in the evening",
                    flagged=True,
                    persons_view="I want to manage it myself with a reminder",
                    practitioners_view="A prompt from the PA is enough",
                )
            ],
            validated_by="care_manager:cm-4",
            policy_version=POLICY,
            eligibility=ev.EligibilityBasis(
                basis=ev.ValidationBasis.ELIGIBLE,
                determination_id=uid("eligibility"),
                determined_eligible=True,
            ),
        ),
    ),
    (
        11,
        # As assessment published it before v2: no children or premiums recorded.
        lambda: ev.FinancialAssessmentCompletedV1(
            **BASE,
            financial_assessment_id=uid("financial-assessment"),
            **financial_assessment_fields(),
            policy_version=POLICY,
        ),
    ),
    (
        11,
        lambda: ev.FinancialAssessmentCompleted(
            **BASE,
            financial_assessment_id=uid("financial-assessment-v2"),
            **financial_assessment_fields(),
            mig_children=0,
            mig_premiums=[],
            policy_version=POLICY,
            applies_from=(START + timedelta(days=11)).date(),
            uprating_of=None,
        ),
    ),
    (
        0,
        lambda: ev.PolicyAdopted(
            person_id=f"{ev.POLICY_SUBJECT_PREFIX}{COUNCIL}",
            council=COUNCIL,
            policy_version="lancashire/2026.1",
            version="2026.1",
            effective_from=datetime(2026, 4, 1).date(),
            policy=adopted_document(),
            content_sha256=content_sha256(adopted_document()),
            adopted_by="operations:ops-1",
        ),
    ),
    (
        12,
        lambda: ev.BudgetIssued(
            **BASE,
            budget_id=BUDGET,
            assessment_id=ASSESSMENT,
            client_group=ClientGroup.LEARNING_DISABILITY,
            stage=ev.BudgetStage.INDICATIVE,
            revision=1,
            points=69,
            scale=ev.Scale.STANDARD,
            weekly_pence=WEEKLY,
            annual_pence=ANNUAL,
            ceiling_weekly_pence=None,
            ceiling_exception=False,
            explanation=[
                ev.ExplanationLine(label="69 points at £4.00 a point", amount_pence=27_600),
                ev.ExplanationLine(
                    label="Less the support your carer will go on giving",
                    amount_pence=-3_450,
                    detail="£40.00 a week, valued at the council's rate",
                ),
            ],
            agreed_by="team_manager:tm-2",
            agreed_by_role=Role.TEAM_MANAGER,
            policy_version=POLICY,
        ),
    ),
    (
        26,
        lambda: ev.PlanSubmitted(
            **BASE,
            plan_id=PLAN,
            budget_id=BUDGET,
            plan_version=1,
            weekly_pence=WEEKLY + 900,
            annual_pence=(WEEKLY + 900) * 52,
            request_for_more=False,
        ),
    ),
    (
        28,
        lambda: ev.PlanReturned(
            **BASE,
            plan_id=PLAN,
            reasons=["£9.00 a week over the budget: trim a line or ask for more"],
            returned_by="team_manager:tm-2",
            returned_by_role=Role.TEAM_MANAGER,
        ),
    ),
    (
        33,
        lambda: ev.PlanSignedOff(
            **BASE,
            plan_id=PLAN,
            budget_id=BUDGET,
            assessment_id=ASSESSMENT,
            plan_version=2,
            weekly_pence=WEEKLY,
            annual_pence=ANNUAL,
            one_off_pence=15_000,
            contingency_weekly_pence=1_150,
            lines=[plan_line()],
            request_for_more=False,
            signed_off_by="care_manager:cm-4",
            signed_off_by_role=Role.CARE_MANAGER,
            first_review_on=(START + timedelta(days=33 + 42)).date(),
            policy_version=POLICY,
        ),
    ),
    (
        33,
        # The first review, as planning published it before v2: nobody named as its booker.
        lambda: ev.ReviewScheduledV1(
            **BASE,
            review_id=FIRST_REVIEW,
            plan_id=PLAN,
            kind=ev.ReviewKindV1.FIRST,
            due_on=(START + timedelta(days=33 + 42)).date(),
            reason="first review after sign-off",
        ),
    ),
    (
        36,
        lambda: ev.DeploymentSetUp(
            **BASE,
            deployment_id=DEPLOYMENT,
            plan_id=PLAN,
            parts=[part(ev.DeploymentOption.DIRECT_PAYMENT, ANNUAL)],
            gross_annual_pence=ANNUAL,
            contribution_annual_pence=52_000,
            net_annual_pence=ANNUAL - 52_000,
            audit_tier="light_touch_annual",
            policy_version=POLICY,
        ),
    ),
    (
        36,
        # Planning learnt of the direct payment: its review within the first six months
        # (Care and Support (Direct Payments) Regulations 2014, reg. 7), published as v3.
        lambda: ev.ReviewScheduled(
            **BASE,
            review_id=DIRECT_PAYMENT_REVIEW,
            plan_id=PLAN,
            kind=ev.ReviewKind.DIRECT_PAYMENT,
            due_on=(START + timedelta(days=DIRECT_PAYMENT_REVIEW_DAY)).date(),
            reason="review of the direct payment within 6 months of its start",
            scheduled_by="system",
            deployment_id=DEPLOYMENT,
            policy_version=POLICY,
        ),
    ),
    (
        38,
        lambda: ev.AgreementSigned(
            **BASE,
            deployment_id=DEPLOYMENT,
            signed_on=(START + timedelta(days=38)).date(),
            recorded_by="finance:fin-1",
        ),
    ),
    (
        38,
        # The agreement came back after a first payment date the person had been told:
        # one four-weekly instalment was already past due, approved by the team manager.
        lambda: ev.ArrearsApproved(
            **BASE,
            deployment_id=DEPLOYMENT,
            instalments=1,
            amount_pence=92_600,
            earliest_due_on=(START + timedelta(days=35)).date(),
            recorded_on=(START + timedelta(days=38)).date(),
            reason="Agreement signed late; the PA has worked since the first payment date",
            approved_by="team_manager:tm-2",
            approved_by_role=Role.TEAM_MANAGER,
            policy_version=POLICY,
        ),
    ),
    (
        38,
        lambda: ev.PaymentScheduled(
            **BASE,
            schedule_id=SCHEDULE,
            deployment_id=DEPLOYMENT,
            option=ev.DeploymentOption.DIRECT_PAYMENT,
            frequency=Frequency.FOUR_WEEKLY,
            total_pence=ANNUAL - 52_000,
            instalments=13,
            first_due_on=(START + timedelta(days=42)).date(),
        ),
    ),
    (
        42,
        lambda: ev.PaymentReleased(
            **BASE,
            payment_id=uid("payment-1"),
            schedule_id=SCHEDULE,
            deployment_id=DEPLOYMENT,
            instalment_number=1,
            option=ev.DeploymentOption.DIRECT_PAYMENT,
            amount_pence=92_600,
            due_on=(START + timedelta(days=42)).date(),
        ),
    ),
    (
        45,
        lambda: ev.PaymentConfirmed(
            **BASE,
            payment_id=uid("payment-1"),
            deployment_id=DEPLOYMENT,
            amount_pence=92_600,
            paid_on=(START + timedelta(days=45)).date(),
            finance_reference="BACS-2025-02-20-0042",
            recorded_by="finance:fin-1",
        ),
    ),
    (
        73,
        # The next instalment: the bank refused it, so finance must act before it is retried.
        lambda: ev.PaymentFailed(
            **BASE,
            payment_id=uid("payment-2"),
            deployment_id=DEPLOYMENT,
            amount_pence=92_600,
            failed_on=(START + timedelta(days=73)).date(),
            reason="account closed (BACS ARUDD code 2)",
            finance_reference="BACS-2025-03-20-0017",
            recorded_by="finance:fin-1",
        ),
    ),
    (
        60,
        lambda: ev.PaymentsSuspended(
            **BASE,
            deployment_id=DEPLOYMENT,
            reason="Two months of bank statements missing from the monitoring return",
        ),
    ),
    (
        64,
        lambda: ev.PaymentsResumed(
            **BASE, deployment_id=DEPLOYMENT, reason="Statements received and reconciled"
        ),
    ),
    (
        70,
        lambda: ev.ReturnSubmitted(
            **BASE,
            return_id=uid("return-1"),
            deployment_id=DEPLOYMENT,
            option=ev.DeploymentOption.DIRECT_PAYMENT,
            period_start=(START + timedelta(days=42)).date(),
            period_end=(START + timedelta(days=69)).date(),
            spent_pence=81_250,
            balance_pence=11_350,
            items=14,
            missing_receipts=1,
            recorded_by="finance:fin-1",
        ),
    ),
    (
        75,
        lambda: ev.ReviewDueV1(
            **BASE,
            review_id=FIRST_REVIEW,
            plan_id=PLAN,
            kind=ev.ReviewKindV1.FIRST,
            due_on=(START + timedelta(days=75)).date(),
        ),
    ),
    (
        77,
        lambda: ev.ReviewCompleted(
            **BASE,
            review_id=FIRST_REVIEW,
            plan_id=PLAN,
            outcome=ev.ReviewOutcome.NO_CHANGE,
            completed_on=(START + timedelta(days=77)).date(),
            notes="Settled with the new PA; allotment twice a week",
            completed_by="care_manager:cm-4",
        ),
    ),
    (
        77,
        # The next review, published as v2 after planning moved on: who booked it is known.
        lambda: ev.ReviewScheduledV2(
            **BASE,
            review_id=ANNUAL_REVIEW,
            plan_id=PLAN,
            kind=ev.ReviewKindV1.ANNUAL,
            due_on=(START + timedelta(days=77 + 365)).date(),
            reason=None,
            scheduled_by="care_manager:cm-4",
        ),
    ),
    (
        90,
        lambda: ev.ClawbackRaised(
            **BASE,
            clawback_id=uid("clawback-1"),
            deployment_id=DEPLOYMENT,
            amount_pence=3_350,
            unspent_balance_pence=11_350,
            rule="unspent balance above eight weeks of the net budget",
            policy_version=POLICY,
        ),
    ),
    (
        71,
        lambda: ev.CardTransactionsImported(
            **BASE,
            import_id=uid("card-import-1"),
            account_id=uid("card-account-1"),
            account_reference="PPC-000123",
            transactions=18,
            spent_pence=61_900,
            paid_in_pence=78_000,
            spent_by_category=[
                ev.CategorySpend(category="personal_assistant", spent_pence=52_000),
                ev.CategorySpend(category="leisure", spent_pence=9_900),
            ],
            balance_pence=96_100,
            balance_on=(START + timedelta(days=70)).date(),
            recorded_by="finance:fin-1",
        ),
    ),
    (
        71,
        lambda: ev.CardSurplusFlagged(
            **BASE,
            surplus_id=uid("card-surplus-1"),
            account_id=uid("card-account-1"),
            deployment_id=DEPLOYMENT,
            balance_pence=96_100,
            balance_on=(START + timedelta(days=70)).date(),
            allowance_pence=0,
            surplus_pence=96_100,
            rule="hold_or_clawback",
            policy_version=POLICY,
        ),
    ),
    (
        72,
        lambda: ev.RecoupNoticeSent(
            **BASE,
            notice_id=uid("recoup-notice-1"),
            account_id=uid("card-account-1"),
            surplus_id=uid("card-surplus-1"),
            amount_pence=50_000,
            reason="Money on the card account has built up beyond what the support plan needs",
            sent_on=(START + timedelta(days=72)).date(),
            respond_by=(START + timedelta(days=100)).date(),
            respond_within_days=28,
            policy_version=POLICY,
            sent_by="finance:fin-1",
        ),
    ),
    (
        80,
        lambda: ev.RecoupResponseRecorded(
            **BASE,
            notice_id=uid("recoup-notice-1"),
            account_id=uid("card-account-1"),
            response=ev.RecoupResponse.DISAGREES,
            comments="I am saving for a short break in the summer, as my plan says",
            responded_on=(START + timedelta(days=80)).date(),
            recorded_by="person:golden-p-001",
        ),
    ),
    (
        101,
        lambda: ev.CardFundsRecouped(
            **BASE,
            recoup_id=uid("card-recoup-1"),
            notice_id=uid("recoup-notice-1"),
            account_id=uid("card-account-1"),
            amount_pence=30_000,
            recouped_on=(START + timedelta(days=101)).date(),
            recorded_by="finance:fin-1",
        ),
    ),
    (
        120,
        lambda: ev.DeploymentSwitched(
            **BASE,
            deployment_id=DEPLOYMENT,
            previous_parts=[part(ev.DeploymentOption.DIRECT_PAYMENT, ANNUAL)],
            parts=[
                part(ev.DeploymentOption.DIRECT_PAYMENT, ANNUAL // 2),
                part(ev.DeploymentOption.COUNCIL_MANAGED, ANNUAL - ANNUAL // 2),
            ],
            effective_from=(START + timedelta(days=126)).date(),
            cancelled_instalments=9,
            cancelled_pence=833_400,
            released_pence=370_400,
            remaining_net_pence=833_400,
        ),
    ),
    (
        121,
        lambda: ev.ContributionRecalculated(
            **BASE,
            deployment_id=DEPLOYMENT,
            financial_assessment_id=uid("financial-assessment"),
            charge_outcome=ev.FinancialAssessmentOutcome.ASSESSED,
            assessed_max_weekly_contribution_pence=8_985,
            applies_from=(START + timedelta(days=126)).date(),
            previous_contribution_annual_pence=0,
            contribution_annual_pence=8_985 * 52,
            net_annual_pence=ANNUAL - 8_985 * 52,
            cancelled_instalments=34,
            cancelled_pence=821_100,
            rescheduled_pence=515_610,
            policy_version=POLICY,
        ),
    ),
    (
        122,
        lambda: ev.BudgetStatementIssued(
            **BASE,
            statement_id=uid("statement-1"),
            deployment_id=DEPLOYMENT,
            issued_on=(START + timedelta(days=122)).date(),
            applies_from=(START + timedelta(days=126)).date(),
            total_annual_pence=ANNUAL,
            person_pays_annual_pence=8_985 * 52,
            council_pays_annual_pence=ANNUAL - 8_985 * 52,
            total_weekly_pence=WEEKLY,
            person_pays_weekly_pence=8_985,
            council_pays_weekly_pence=WEEKLY - 8_985,
            charge_outcome=ev.FinancialAssessmentOutcome.ASSESSED,
            financial_assessment_id=uid("financial-assessment"),
            text=(
                "Your personal budget from 12 May 2025. The cost of meeting your eligible "
                "needs is £241.50 a week (£12,558.00 a year). You pay £89.85 a week "
                "(£4,672.20 a year), as your financial assessment worked out. The council "
                "pays £151.65 a week (£7,885.80 a year). If you think this budget is not "
                "enough to meet your needs, you can challenge it."
            ),
            policy_version=POLICY,
        ),
    ),
    (
        123,
        lambda: ev.BudgetStatementChallenged(
            **BASE,
            challenge_id=uid("challenge-1"),
            statement_id=uid("statement-1"),
            deployment_id=DEPLOYMENT,
            reason="The budget leaves nothing for the evening visits I need since March",
            challenged_on=(START + timedelta(days=123)).date(),
            challenged_by="person:golden-p-001",
        ),
    ),
    (
        124,
        lambda: ev.StatementChallengeAnswered(
            **BASE,
            challenge_id=uid("challenge-1"),
            statement_id=uid("statement-1"),
            outcome=ev.ChallengeOutcome.UPHELD,
            response="Evening needs were not assessed; a review is booked for next week",
            review_requested=True,
            answered_on=(START + timedelta(days=124)).date(),
            answered_by="team_manager:tm-1",
            answered_by_role=Role.TEAM_MANAGER,
        ),
    ),
    (
        200,
        lambda: ev.DeploymentSuperseded(
            **BASE,
            deployment_id=DEPLOYMENT,
            superseded_by=NEW_DEPLOYMENT,
            plan_id=PLAN,
            effective_from=(START + timedelta(days=210)).date(),
            cancelled_instalments=3,
            cancelled_pence=277_800,
        ),
    ),
    (
        DIRECT_PAYMENT_REVIEW_DAY,
        lambda: ev.ReviewDue(
            **BASE,
            review_id=DIRECT_PAYMENT_REVIEW,
            plan_id=PLAN,
            kind=ev.ReviewKind.DIRECT_PAYMENT,
            due_on=(START + timedelta(days=DIRECT_PAYMENT_REVIEW_DAY)).date(),
        ),
    ),
    (
        # A replay found the person's stored chain edited at the budget (seq 5).
        240,
        lambda: ev.TamperDetected(
            person_id=f"{ev.TAMPER_SUBJECT_PREFIX}{COUNCIL}",
            council=COUNCIL,
            finding_id=uid("finding-1"),
            chain=PERSON,
            first_bad_seq=5,
            first_bad_event_id=str(uid("event:allocation.budget-issued.v1")),
            difference=ev.TamperDifference.ALTERED,
            reason="hash does not match the stored document (edited)",
            quarantined_events=14,
            replay_id=uid("replay-1"),
            detected_by="operations:ops-1",
        ),
    ),
    (
        241,
        lambda: ev.TamperAcknowledged(
            person_id=f"{ev.TAMPER_SUBJECT_PREFIX}{COUNCIL}",
            council=COUNCIL,
            finding_id=uid("finding-1"),
            chain=PERSON,
            reason="A test edit on the staging copy; the database account is now read-only",
            acknowledged_by="auditor:aud-1",
        ),
    ),
    (
        # Eight years (Lancashire's retention_years) after the last contact, and a bit.
        3_400,
        lambda: ev.PersonalDataErased(
            **BASE,
            key_id=uid("person-key"),
            erased_on=(START + timedelta(days=3_400)).date(),
            erased_by="operations:ig-2",
            last_contact_on=(START + timedelta(days=210)).date(),
            retention_years=8,
            retention_checked_on=(START + timedelta(days=3_400)).date(),
            policy_version=POLICY,
        ),
    ),
    (
        3_401,
        lambda: ev.OperatorActionRecorded(
            person_id=f"{ev.OPERATIONS_SUBJECT_PREFIX}{COUNCIL}",
            council=COUNCIL,
            action_id=uid("operator-action-1"),
            action=ev.OperatorAction.DEAD_LETTERS_REDRIVEN,
            performed_by="operations:ops-3",
            reason="Planning refused the sign-off while its policy was missing; fixed in 2.4",
            selection="dead letter 2-17",
            event_ids=[str(uid("event:planning.plan-signed-off.v1"))],
            dead_letter_ids=["2-17"],
        ),
    ),
]


def golden_envelopes() -> list[Envelope]:
    """Every fixture, in journey order, with fixed ids and times."""
    envelopes = []
    for days, build in JOURNEY:
        event = build()
        name = event.type.removeprefix("pb.")
        envelopes.append(
            Envelope(
                event=event,
                id=str(uid(f"event:{name}")),
                time=START + timedelta(days=days),
                correlation_id=str(uid(f"correlation:{name}")),
                causation_id=str(uid(f"cause:{name}")) if days else None,
            )
        )
    return envelopes


def golden_file(event_type: str) -> Path:
    return GOLDEN_DIR / f"{event_type}.json"


def render(envelope: Envelope) -> str:
    """The record's value as the log carries it, pretty-printed with sorted keys."""
    value = envelope.to_message().value
    assert value is not None
    return json.dumps(json.loads(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[Path, str]:
    """What each fixture file holds; exactly one per published version."""
    files = {golden_file(e.type): render(e) for e in golden_envelopes()}
    missing = {cls.type for cls in PUBLISHED_CLASSES} - {p.stem for p in files}
    if missing or len(files) != len(JOURNEY):
        raise SystemExit(f"a golden fixture per published version is needed: {sorted(missing)}")
    return files


def main() -> None:
    files = rendered()
    for path in GOLDEN_DIR.glob("pb.*.json"):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} golden events to {GOLDEN_DIR}")


if __name__ == "__main__":
    main()
