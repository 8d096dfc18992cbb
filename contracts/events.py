"""The events of the journey: frozen facts, named in the past tense, versioned by type.

A published version is never edited: a change adds a new class with a `.v2` type and an
upcaster (see `contracts.registry`). `make contracts` writes the JSON Schema of every
class to `contracts/schemas/` and the AsyncAPI document; a test keeps them in step.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.money import Frequency, Pence, SignedPence
from contracts.vocabulary import (
    AgeBand,
    ClientGroup,
    CompletedBy,
    Difficulty,
    EligibilityOutcome,
    Role,
)

PersonId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="The person's opaque id; never a name, NHS number or anything personal.",
    ),
]
Council = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class Event(BaseModel):
    """Base of every event's data. `type` names the event and its version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    service: ClassVar[str]

    person_id: PersonId
    council: Council


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- assessment ---------------------------------------------------------------------------


class AssessmentStarted(Event):
    type: ClassVar[str] = "pb.assessment.assessment-started.v1"
    service: ClassVar[str] = "assessment"
    assessment_id: UUID
    client_group: ClientGroup
    completed_by: CompletedBy
    team: ShortText
    key_worker_id: ShortText
    age_band: AgeBand
    community_based: bool
    policy_version: str


class AssessmentSubmitted(Event):
    type: ClassVar[str] = "pb.assessment.assessment-submitted.v1"
    service: ClassVar[str] = "assessment"
    assessment_id: UUID
    answers: dict[str, int] = Field(description="Domain key -> level the person chose.")
    policy_version: str


class AssessmentReturned(Event):
    type: ClassVar[str] = "pb.assessment.assessment-returned.v1"
    service: ClassVar[str] = "assessment"
    assessment_id: UUID
    reasons: list[Text] = Field(min_length=1)
    returned_by: ShortText


class LevelAdjustment(_Part):
    domain: str
    original_level: int
    validated_level: int
    reason: Text


class OtherFundingSource(StrEnum):
    SUPPORTING_PEOPLE = "supporting_people"
    INDEPENDENT_LIVING_FUND = "independent_living_fund"
    OTHER = "other"


class OtherFunding(_Part):
    source: OtherFundingSource
    weekly_pence: Pence


class Risk(_Part):
    risk_id: ShortText
    description: Text
    flagged: bool = Field(description="A flagged risk needs a mitigation or a risk panel.")
    persons_view: str | None = None
    practitioners_view: str | None = None


class ValidationBasis(StrEnum):
    """Why an assessment could be validated, and so budgeted (docs/charging.md)."""

    ELIGIBLE = "eligible"
    """The latest eligibility determination found the needs eligible."""
    URGENT_NEED = "urgent_need"
    """Care Act 2014 s.19(3): needs met urgently, before or without a determination."""
    CONVERTED_FROM_LEGACY_SYSTEM = "converted_from_legacy_system"
    """A person already receiving support, brought over from the council's old system."""
    DETERMINATION_PENDING_REVIEW = "determination_pending_review"
    """A determination is being reviewed; support goes ahead meanwhile."""
    NO_CRITERIA_IN_FORCE = "no_criteria_in_force"
    """The council's policy had no Care Act eligibility criteria in force that day (before
    1 April 2015): there was nothing to determine."""


class EligibilityBasis(_Part):
    """What the validation rested on: an eligible determination, or a recorded reason."""

    basis: ValidationBasis
    determination_id: UUID | None = Field(
        None, description="The latest eligibility determination, when there was one."
    )
    determined_eligible: bool | None = Field(
        None, description="What that determination found; none when there was none."
    )
    explanation: Text | None = Field(
        None, description="Why it went ahead without an eligible determination, in words."
    )


# Superseded by AssessmentValidated (v2), which says what the validation rested on. Kept
# unchanged so that records published as v1 stay readable: contracts.registry upcasts them.
class AssessmentValidatedV1(Event):
    type: ClassVar[str] = "pb.assessment.assessment-validated.v1"
    service: ClassVar[str] = "assessment"
    assessment_id: UUID
    client_group: ClientGroup
    completed_by: CompletedBy
    team: ShortText
    key_worker_id: ShortText
    age_band: AgeBand
    community_based: bool
    domain_levels: dict[str, int] = Field(description="Domain key -> validated level.")
    adjustments: list[LevelAdjustment]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: Pence = Field(
        description="Support the carer has agreed to go on giving, valued weekly; it reduces "
        "the money, never the points (carer-neutral, seed 004 Council C)."
    )
    other_funding: list[OtherFunding]
    outcomes: list[Text]
    risks: list[Risk]
    validated_by: ShortText
    policy_version: str


class AssessmentValidated(AssessmentValidatedV1):
    """A practitioner validated the assessment: the levels the budget is calculated from,
    and what the validation rested on (v2)."""

    type: ClassVar[str] = "pb.assessment.assessment-validated.v2"
    eligibility: EligibilityBasis | None = Field(
        None,
        description="An eligible determination, or the recorded reason to go ahead without "
        "one; none only on an assessment validated before this was required (v1).",
    )


# --- Care Act eligibility and the financial assessment (docs/charging.md) ------------------


class OutcomeNotAchieved(_Part):
    outcome: EligibilityOutcome
    difficulties: list[Difficulty] = Field(
        min_length=1, description="Why the adult cannot achieve it (reg. 2(3))."
    )


class EligibilityDetermined(Event):
    """The Care and Support (Eligibility Criteria) Regulations 2015 applied to a person's
    needs: eligible when the needs arise from an impairment or illness, two or more of the
    ten outcomes cannot be achieved, and there is (or is likely to be) a significant impact
    on wellbeing."""

    type: ClassVar[str] = "pb.assessment.eligibility-determined.v1"
    service: ClassVar[str] = "assessment"
    determination_id: UUID
    assessment_id: UUID
    needs_from_impairment_or_illness: bool
    outcomes_not_achieved: list[OutcomeNotAchieved]
    significant_impact_on_wellbeing: bool
    eligible: bool
    outcomes_needed: int = Field(description="The policy's threshold (reg. 2(1)(b): two).")
    reasons: list[Text] = Field(min_length=1, description="The decision in plain words.")
    determined_by: ShortText
    determined_on: date
    policy_version: str


class FinancialAssessmentOutcome(StrEnum):
    ASSESSED = "assessed"
    FULL_COST_PAYER = "full_cost_payer"
    LIGHT_TOUCH = "light_touch"
    DEFERRED = "deferred"
    REFUSED = "refused"


class LightTouchBasis(StrEnum):
    """When a light-touch assessment will do (statutory guidance, Annex C)."""

    SIGNIFICANT_RESOURCES = "significant_resources"
    NOMINAL_CHARGE = "nominal_charge"
    BENEFITS_SHOW_NO_CONTRIBUTION = "benefits_show_no_contribution"


class AssessedAmount(_Part):
    kind: str = Field(description="A kind of income or capital the policy names.")
    pence: Pence
    counted: bool


class ExpenditureItem(_Part):
    description: ShortText
    weekly_pence: Pence


class ChargeLine(_Part):
    """One line of the letter: a figure, added or taken away, and where it comes from."""

    label: ShortText
    weekly_pence: SignedPence
    source: str | None = None


# Superseded by FinancialAssessmentCompleted (v2), which adds the children and premiums the
# Minimum Income Guarantee counted, from when the charge applies and whether it restates an
# earlier one. Kept unchanged (its docstring is in its published schema), so that records
# published as v1 stay readable: contracts.registry upcasts them.
class FinancialAssessmentCompletedV1(Event):
    """A financial assessment under the Care and Support (Charging and Assessment of
    Resources) Regulations 2014: every figure and the weekly charge, or that it was
    deferred or refused (then no charge is set)."""

    type: ClassVar[str] = "pb.assessment.financial-assessment-completed.v1"
    service: ClassVar[str] = "assessment"
    financial_assessment_id: UUID
    assessment_id: UUID
    outcome: FinancialAssessmentOutcome
    light_touch_basis: LightTouchBasis | None = None
    assessed_on: date
    cost_of_support_weekly_pence: Pence | None
    capital: list[AssessedAmount]
    capital_counted_pence: Pence
    tariff_income_weekly_pence: Pence
    income_weekly: list[AssessedAmount]
    income_counted_weekly_pence: Pence
    mig_circumstance: str | None
    minimum_income_guarantee_weekly_pence: Pence
    housing_costs_weekly_pence: Pence
    disability_related_expenditure: list[ExpenditureItem]
    disability_related_expenditure_weekly_pence: Pence
    weekly_charge_pence: Pence | None = Field(
        description="Never below zero nor above the cost of the support; none when deferred "
        "or refused."
    )
    lines: list[ChargeLine] = Field(description="The calculation, line by line, for a letter.")
    figures_to_confirm: list[Text] = Field(
        description="Policy figures used that are still to be checked against their source."
    )
    reason: Text | None = None
    assessed_by: ShortText
    policy_version: str


class FinancialAssessmentCompleted(FinancialAssessmentCompletedV1):
    """A financial assessment under the Care and Support (Charging and Assessment of
    Resources) Regulations 2014: every figure and the weekly charge from a date, or that it
    was deferred or refused (then no charge is set). v2 also records the children and
    premiums the Minimum Income Guarantee counted, so that with the capital, income,
    housing costs and disability-related expenditure it already carries, the charge can be
    recalculated under other figures (the policy what-if); and an uprating restates an
    earlier assessment under a newly adopted policy's figures."""

    type: ClassVar[str] = "pb.assessment.financial-assessment-completed.v2"
    mig_children: int | None = Field(
        None,
        ge=0,
        description="Dependent children the Minimum Income Guarantee counted; none when the "
        "assessment set no guarantee (light touch, deferred, refused) or was published as v1.",
    )
    mig_premiums: list[ShortText] | None = Field(
        None,
        max_length=20,
        description="The premiums (policy names) the Minimum Income Guarantee counted; none "
        "as for mig_children.",
    )
    applies_from: date | None = Field(
        None,
        description="The day the charge applies from: the assessment's day, or an uprated "
        "policy's effective date; none means assessed_on (v1).",
    )
    uprating_of: UUID | None = Field(
        None,
        description="Set on an uprating: the financial assessment this one restates under "
        "the figures of policy_version, from applies_from. The earlier one stays as it was.",
    )


# --- personal data (docs/privacy.md, ADR 0011) ---------------------------------------------


class PersonalDetailsRecorded(Event):
    """A person's identifying details, sealed under a data key of their own.

    Name, date of birth, NHS number, address and contact never travel in the clear: they
    are one AES-256-GCM sealed JSON document in `sealed_details`. Destroying the person's
    data key (PersonalDataErased) leaves this event readable as a fact and its personal
    content unreadable for ever, so the log and the audit chain stay whole.
    """

    type: ClassVar[str] = "pb.assessment.personal-details-recorded.v1"
    service: ClassVar[str] = "assessment"
    details_id: UUID
    assessment_id: UUID | None = Field(
        None, description="The assessment they were given at; none for a later correction."
    )
    key_id: UUID = Field(description="The person's data key; never the key itself.")
    cipher: Literal["AES-256-GCM"] = "AES-256-GCM"
    sealed_details: str = Field(
        max_length=20_000,
        description="Base64 of the 12-byte nonce and the ciphertext with its tag; the "
        "associated data is council:person_id:details_id.",
    )
    fields: list[ShortText] = Field(
        description="Which details were given (names of fields only, never their values)."
    )
    correction: bool = Field(description="True when these replace details already recorded.")
    age_band: AgeBand | None = Field(
        None, description="Derived from the date of birth when one was given."
    )
    recorded_by: ShortText


class PersonalDataErased(Event):
    """The person's data key was destroyed at the end of the retention period.

    Records who erased and when, and the rule that allowed it; no personal data.
    """

    type: ClassVar[str] = "pb.assessment.personal-data-erased.v1"
    service: ClassVar[str] = "assessment"
    key_id: UUID
    erased_on: date
    erased_by: ShortText
    last_contact_on: date
    retention_years: int = Field(ge=1)
    retention_checked_on: date = Field(
        description="The day the retention check took as today: erased_on, except in a "
        "rehearsal run with a date set by operations."
    )
    policy_version: str


# --- allocation ---------------------------------------------------------------------------


class BudgetStage(StrEnum):
    INDICATIVE = "indicative"
    FINAL = "final"


class Scale(StrEnum):
    STANDARD = "standard"
    LOWER = "lower"


class ExplanationLine(_Part):
    """One figure of the calculation, in words a person can read."""

    label: Text
    amount_pence: SignedPence
    detail: str = ""


class BudgetIssued(Event):
    """A budget agreed and told to the person: indicative first, final after sign-off.

    Budgets are revised, never overwritten: each revision is a new BudgetIssued with the
    same budget_id and a higher revision number.
    """

    type: ClassVar[str] = "pb.allocation.budget-issued.v1"
    service: ClassVar[str] = "allocation"
    budget_id: UUID
    assessment_id: UUID
    client_group: ClientGroup
    stage: BudgetStage
    revision: int = Field(ge=1)
    revision_reason: str | None = None
    points: int = Field(ge=0)
    scale: Scale
    weekly_pence: Pence
    annual_pence: Pence
    ceiling_weekly_pence: Pence | None
    ceiling_exception: bool
    explanation: list[ExplanationLine]
    agreed_by: ShortText
    agreed_by_role: Role
    policy_version: str


POLICY_SUBJECT_PREFIX = "policy:"
"""The subject (and record key) of a council's policy events: `policy:<council>`. The colon
is outside every person id's pattern, so a council's policy chain can never meet a person's."""

PolicySubject = Annotated[
    str,
    Field(
        pattern=r"^policy:[a-z][a-z0-9_]{0,56}$",
        description="policy:<council>: the council's policy chain, never a person.",
    ),
]


class PolicyAdopted(Event):
    """A council adopted a policy version, in force from a date (architecture.md §6).

    The event carries the whole policy document, so every service, and any audit replaying
    the log on another machine, computes with exactly the policy the council adopted.
    `person_id` is `policy:<council>`: one chain per council, keyed apart from people.
    """

    type: ClassVar[str] = "pb.allocation.policy-adopted.v1"
    service: ClassVar[str] = "allocation"
    person_id: PolicySubject
    policy_version: str = Field(description="council/version, as every event records it.")
    version: str = Field(pattern=r"^[0-9A-Za-z._-]+$", max_length=32)
    effective_from: date = Field(
        description="New computations on or after this date use this policy; existing "
        "budgets change only at their next review or by a bulk revision."
    )
    policy: dict[str, Any] = Field(
        description="The policy document as in policies/<council>.yaml (validated by "
        "contracts.policy.Policy); its effective_from equals the event's."
    )
    content_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the canonical JSON of `policy`."
    )
    adopted_by: ShortText


# --- planning -----------------------------------------------------------------------------


class ProviderKind(StrEnum):
    PROVIDER = "provider"
    PERSONAL_ASSISTANT = "personal_assistant"
    INFORMAL = "informal"
    EQUIPMENT = "equipment"
    COMMUNITY = "community"
    OTHER = "other"


class PlanLineSummary(_Part):
    line_id: UUID
    description: Text
    provider_kind: ProviderKind
    provider_name: str | None = None
    frequency: Frequency
    amount_pence: Pence = Field(description="Cost per occurrence at its frequency.")
    annual_pence: Pence
    domains: list[str]


class PlanSubmitted(Event):
    type: ClassVar[str] = "pb.planning.plan-submitted.v1"
    service: ClassVar[str] = "planning"
    plan_id: UUID
    budget_id: UUID
    plan_version: int = Field(ge=1)
    weekly_pence: Pence
    annual_pence: Pence
    request_for_more: bool


class PlanReturned(Event):
    type: ClassVar[str] = "pb.planning.plan-returned.v1"
    service: ClassVar[str] = "planning"
    plan_id: UUID
    reasons: list[Text] = Field(min_length=1)
    returned_by: ShortText
    returned_by_role: Role


class PlanSignedOff(Event):
    type: ClassVar[str] = "pb.planning.plan-signed-off.v1"
    service: ClassVar[str] = "planning"
    plan_id: UUID
    budget_id: UUID
    assessment_id: UUID
    plan_version: int = Field(ge=1)
    weekly_pence: Pence = Field(
        description="Weekly cost of the recurring support, with contingency and fees."
    )
    annual_pence: Pence = Field(description="Recurring cost over a year (52 weeks).")
    one_off_pence: Pence
    contingency_weekly_pence: Pence
    lines: list[PlanLineSummary]
    request_for_more: bool
    signed_off_by: ShortText
    signed_off_by_role: Role
    first_review_on: date
    policy_version: str


class ReviewKindV1(StrEnum):
    FIRST = "first"
    ANNUAL = "annual"
    UNSCHEDULED = "unscheduled"


# The kinds as review-scheduled v1 and v2 and review-due v1 published them, kept unchanged
# so that those schemas stay as published (ReviewKind below adds a kind). The schemas name
# the enum by its class name: ReviewKind, as when they were published.
ReviewKindV1.__name__ = ReviewKindV1.__qualname__ = "ReviewKind"


class ReviewKind(StrEnum):
    """Which review: of the support plan (first, annual, unscheduled on an event in the
    person's life) or of the making of direct payments (Care and Support (Direct Payments)
    Regulations 2014, reg. 7)."""

    FIRST = "first"
    ANNUAL = "annual"
    UNSCHEDULED = "unscheduled"
    DIRECT_PAYMENT = "direct_payment"


class ReviewTrigger(StrEnum):
    """What brought an unscheduled review forward: a change in the person's circumstances
    a case worker recorded, or a surplus payments found on a direct payment."""

    CARER_STOPPED = "carer_stopped"
    HOSPITAL_ADMISSION = "hospital_admission"
    SURPLUS_FOUND = "surplus_found"
    OTHER = "other"


class ReviewOutcome(StrEnum):
    NO_CHANGE = "no_change"
    REVISE_PLAN = "revise_plan"
    REASSESS = "reassess"


# Superseded by ReviewScheduled (v2), which adds scheduled_by. Kept, unchanged and without
# a docstring (a docstring would enter its published schema), so that records published as
# v1 stay readable: contracts.registry upcasts them to v2.
class ReviewScheduledV1(Event):
    type: ClassVar[str] = "pb.planning.review-scheduled.v1"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    kind: ReviewKindV1
    due_on: date
    reason: str | None = None


class ReviewScheduledV2(Event):
    """A review of a signed-off plan booked for a date, and who booked it (v2)."""

    type: ClassVar[str] = "pb.planning.review-scheduled.v2"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    kind: ReviewKindV1
    due_on: date
    reason: str | None = None
    scheduled_by: ShortText = Field(
        description='Who booked the review: the actor as role:user-id, or "system" when '
        'no person did; "unknown (v1 event)" for a review published as v1.'
    )


class ReviewScheduled(Event):
    """A review booked for a date: of the support plan, or of the making of direct
    payments; what brought an unscheduled one forward, and the policy its date came from
    (v3)."""

    type: ClassVar[str] = "pb.planning.review-scheduled.v3"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    kind: ReviewKind
    due_on: date
    reason: str | None = None
    scheduled_by: ShortText = Field(
        description='Who booked the review: the actor as role:user-id, or "system" when '
        'no person did; "unknown (v1 event)" for a review published as v1.'
    )
    trigger: ReviewTrigger | None = Field(
        None, description="What brought an unscheduled review forward; none for the others."
    )
    happened_on: date | None = Field(
        None, description="The day the change of circumstances or the surplus was found."
    )
    deployment_id: UUID | None = Field(
        None, description="The deployment a direct-payment or surplus review looks at."
    )
    policy_version: str | None = Field(
        None,
        description="The council policy the due date was worked out under; none where a "
        "person chose the date, and in reviews published before v3.",
    )


# Superseded by ReviewDue (v2), whose kind may be direct_payment. Kept as published.
class ReviewDueV1(Event):
    type: ClassVar[str] = "pb.planning.review-due.v1"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    kind: ReviewKindV1
    due_on: date


class ReviewDue(Event):
    """A booked review's day has come (v2: a direct-payment review is one kind)."""

    type: ClassVar[str] = "pb.planning.review-due.v2"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    kind: ReviewKind
    due_on: date


class ReviewCompleted(Event):
    type: ClassVar[str] = "pb.planning.review-completed.v1"
    service: ClassVar[str] = "planning"
    review_id: UUID
    plan_id: UUID
    outcome: ReviewOutcome
    completed_on: date
    notes: str = ""
    completed_by: ShortText


# --- payments -----------------------------------------------------------------------------


class DeploymentOption(StrEnum):
    """How a personal budget is held (seed 000; seed 004 §6.1)."""

    DIRECT_PAYMENT = "direct_payment"
    COUNCIL_MANAGED = "council_managed"
    THIRD_PARTY_MANAGED = "third_party_managed"
    INDIVIDUAL_SERVICE_FUND = "individual_service_fund"


class DeploymentPart(_Part):
    option: DeploymentOption
    annual_pence: Pence


class DeploymentSetUp(Event):
    type: ClassVar[str] = "pb.payments.deployment-set-up.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    plan_id: UUID
    parts: list[DeploymentPart] = Field(min_length=1)
    gross_annual_pence: Pence
    contribution_annual_pence: Pence
    net_annual_pence: Pence
    audit_tier: str
    policy_version: str


class AgreementSigned(Event):
    type: ClassVar[str] = "pb.payments.agreement-signed.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    signed_on: date
    recorded_by: ShortText


class ArrearsApproved(Event):
    """Instalments already past due when they were scheduled (a late agreement, a first
    payment dated back, a switch dated back), paid by the next release all at once. Who
    approved them, why, and what they add up to (rules/arrears.py)."""

    type: ClassVar[str] = "pb.payments.arrears-approved.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    instalments: int = Field(ge=1, description="How many instalments were already past due.")
    amount_pence: Pence = Field(description="What they add up to.")
    earliest_due_on: date
    recorded_on: date = Field(description="The service's today when they were scheduled.")
    reason: Text
    approved_by: ShortText
    approved_by_role: Role
    policy_version: str


class PaymentScheduled(Event):
    type: ClassVar[str] = "pb.payments.payment-scheduled.v1"
    service: ClassVar[str] = "payments"
    schedule_id: UUID
    deployment_id: UUID
    option: DeploymentOption
    frequency: Frequency
    total_pence: Pence
    instalments: int = Field(ge=1)
    first_due_on: date


class PaymentReleased(Event):
    type: ClassVar[str] = "pb.payments.payment-released.v1"
    service: ClassVar[str] = "payments"
    payment_id: UUID
    schedule_id: UUID
    deployment_id: UUID
    instalment_number: int = Field(ge=1)
    option: DeploymentOption
    amount_pence: Pence
    due_on: date


class PaymentConfirmed(Event):
    """The finance system paid a released payment (its confirmation file said `paid`)."""

    type: ClassVar[str] = "pb.payments.payment-confirmed.v1"
    service: ClassVar[str] = "payments"
    payment_id: UUID
    deployment_id: UUID
    amount_pence: Pence
    paid_on: date
    finance_reference: ShortText | None = None
    recorded_by: ShortText


class PaymentFailed(Event):
    """The finance system could not pay a released payment; the reason is the finance
    system's own words (a closed account, a bank detail that does not validate)."""

    type: ClassVar[str] = "pb.payments.payment-failed.v1"
    service: ClassVar[str] = "payments"
    payment_id: UUID
    deployment_id: UUID
    amount_pence: Pence
    failed_on: date
    reason: Text
    finance_reference: ShortText | None = None
    recorded_by: ShortText


class ClawbackRaised(Event):
    type: ClassVar[str] = "pb.payments.clawback-raised.v1"
    service: ClassVar[str] = "payments"
    clawback_id: UUID
    deployment_id: UUID
    amount_pence: Pence
    unspent_balance_pence: Pence
    rule: str
    policy_version: str


class PaymentsSuspended(Event):
    type: ClassVar[str] = "pb.payments.payments-suspended.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    reason: Text


class PaymentsResumed(Event):
    """A hold on a deployment's releases is lifted; instalments due meanwhile release next."""

    type: ClassVar[str] = "pb.payments.payments-resumed.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    reason: Text


class DeploymentSwitched(Event):
    """The budget moved to other options without reassessment (seed 004 §6.1).

    Released instalments stay; every unreleased one is cancelled and new schedules pay
    what is left of the net annual (remaining_net_pence) from effective_from.
    """

    type: ClassVar[str] = "pb.payments.deployment-switched.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    previous_parts: list[DeploymentPart] = Field(min_length=1)
    parts: list[DeploymentPart] = Field(min_length=1)
    effective_from: date
    cancelled_instalments: int = Field(ge=0)
    cancelled_pence: Pence
    released_pence: Pence
    remaining_net_pence: Pence


class DeploymentSuperseded(Event):
    """A revised plan's deployment replaced this one: its instalments from the new plan's
    first payment on (all of them when it never started) are cancelled."""

    type: ClassVar[str] = "pb.payments.deployment-superseded.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    superseded_by: UUID
    plan_id: UUID = Field(description="The revised plan.")
    effective_from: date | None = None
    cancelled_instalments: int = Field(ge=0)
    cancelled_pence: Pence


class ContributionRecalculated(Event):
    """A financial assessment changed what the person pays towards a deployment.

    The charge it set (or, when the person refused, the full cost) is the assessed maximum
    of the council's contribution rule from `applies_from`. Released money is never
    touched: the scheduled instalments due from `applies_from` are cancelled and new ones
    pay the new net annual for the rest of the plan year (`rescheduled_pence`).
    """

    type: ClassVar[str] = "pb.payments.contribution-recalculated.v1"
    service: ClassVar[str] = "payments"
    deployment_id: UUID
    financial_assessment_id: UUID
    charge_outcome: FinancialAssessmentOutcome
    assessed_max_weekly_contribution_pence: Pence
    applies_from: date
    previous_contribution_annual_pence: Pence
    contribution_annual_pence: Pence
    net_annual_pence: Pence
    cancelled_instalments: int = Field(ge=0)
    cancelled_pence: Pence
    rescheduled_pence: Pence
    policy_version: str


class BudgetStatementIssued(Event):
    """The personal budget statement (Care Act 2014 s.26): the cost of meeting the
    person's needs, what the person pays and what the council pays, in plain words.

    Issued whenever one of the three figures changes, never otherwise.
    """

    type: ClassVar[str] = "pb.payments.budget-statement-issued.v1"
    service: ClassVar[str] = "payments"
    statement_id: UUID
    deployment_id: UUID
    issued_on: date
    applies_from: date
    total_annual_pence: Pence
    person_pays_annual_pence: Pence
    council_pays_annual_pence: Pence
    total_weekly_pence: Pence
    person_pays_weekly_pence: Pence
    council_pays_weekly_pence: Pence
    charge_outcome: FinancialAssessmentOutcome | None = Field(
        description="The outcome of the financial assessment the person's part comes from; "
        "none when it was a figure given with the arrangement."
    )
    financial_assessment_id: UUID | None
    text: Text = Field(description="The statement in plain words, as the person reads it.")
    policy_version: str


class ChallengeOutcome(StrEnum):
    UPHELD = "upheld"
    NOT_UPHELD = "not_upheld"


class BudgetStatementChallenged(Event):
    """The person says the budget in a statement is not enough to meet their needs."""

    type: ClassVar[str] = "pb.payments.budget-statement-challenged.v1"
    service: ClassVar[str] = "payments"
    challenge_id: UUID
    statement_id: UUID
    deployment_id: UUID
    reason: Text
    challenged_on: date
    challenged_by: ShortText


class StatementChallengeAnswered(Event):
    """A team manager's answer to a challenge: upheld (a review of the person's needs
    and budget is asked for) or not upheld, with the reasons in words."""

    type: ClassVar[str] = "pb.payments.statement-challenge-answered.v1"
    service: ClassVar[str] = "payments"
    challenge_id: UUID
    statement_id: UUID
    outcome: ChallengeOutcome
    response: Text
    review_requested: bool
    answered_on: date
    answered_by: ShortText
    answered_by_role: Role


class ReturnSubmitted(Event):
    """A monitoring return: what was spent from one account over a period (seed 004 §6.6)."""

    type: ClassVar[str] = "pb.payments.return-submitted.v1"
    service: ClassVar[str] = "payments"
    return_id: UUID
    deployment_id: UUID
    option: DeploymentOption
    period_start: date
    period_end: date
    spent_pence: Pence
    balance_pence: Pence
    items: int = Field(ge=0)
    missing_receipts: int = Field(ge=0)
    recorded_by: ShortText


# --- prepaid card accounts (docs/integrations.md, the card provider's file) ---------------

CardCategory = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_]{0,63}$",
        description="The card provider's merchant category, lower case words joined by _.",
    ),
]
AccountReference = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_/-]{0,63}$",
        description="The card provider's reference for the account; never a card number.",
    ),
]


class CategorySpend(_Part):
    category: CardCategory
    spent_pence: Pence


class CardTransactionsImported(Event):
    """What one card provider file added to one account: a summary, not each transaction.

    The transactions stay in payments' store (a council's monthly file holds tens of
    thousands); the history keeps what a decision about the account rests on.
    """

    type: ClassVar[str] = "pb.payments.card-transactions-imported.v1"
    service: ClassVar[str] = "payments"
    import_id: UUID
    account_id: UUID
    account_reference: AccountReference
    transactions: int = Field(ge=0, description="New transactions; ones seen before not counted.")
    spent_pence: Pence
    paid_in_pence: Pence
    spent_by_category: list[CategorySpend]
    balance_pence: Pence | None = Field(description="The newest balance the file reported.")
    balance_on: date | None
    recorded_by: ShortText


class CardSurplusFlagged(Event):
    """A card balance above what the council's unspent-funds rule lets the person keep."""

    type: ClassVar[str] = "pb.payments.card-surplus-flagged.v1"
    service: ClassVar[str] = "payments"
    surplus_id: UUID
    account_id: UUID
    deployment_id: UUID
    balance_pence: Pence
    balance_on: date
    allowance_pence: Pence
    surplus_pence: Pence
    rule: ShortText
    policy_version: ShortText


class RecoupNoticeSent(Event):
    """The written notice before a surplus is recouped: amount, reason, time to respond."""

    type: ClassVar[str] = "pb.payments.recoup-notice-sent.v1"
    service: ClassVar[str] = "payments"
    notice_id: UUID
    account_id: UUID
    surplus_id: UUID
    amount_pence: Pence
    reason: Text
    sent_on: date
    respond_by: date
    respond_within_days: int = Field(ge=1)
    policy_version: ShortText
    sent_by: ShortText


class RecoupResponse(StrEnum):
    AGREES = "agrees"
    DISAGREES = "disagrees"


class RecoupResponseRecorded(Event):
    """The person's answer to a recoup notice, from them or recorded by a case worker."""

    type: ClassVar[str] = "pb.payments.recoup-response-recorded.v1"
    service: ClassVar[str] = "payments"
    notice_id: UUID
    account_id: UUID
    response: RecoupResponse
    comments: Text | None
    responded_on: date
    recorded_by: ShortText


class CardFundsRecouped(Event):
    """Money taken back from a card account after its notice period ended."""

    type: ClassVar[str] = "pb.payments.card-funds-recouped.v1"
    service: ClassVar[str] = "payments"
    recoup_id: UUID
    notice_id: UUID
    account_id: UUID
    amount_pence: Pence
    recouped_on: date
    recorded_by: ShortText


# --- operations ---------------------------------------------------------------------------

OPERATIONS_SUBJECT_PREFIX = "operations:"
"""The subject (and record key) of a council's operator actions: `operations:<council>`.
Like `policy:`, the colon keeps the chain apart from every person's."""

OperationsSubject = Annotated[
    str,
    Field(
        pattern=r"^operations:[a-z][a-z0-9_]{0,52}$",
        description="operations:<council>: the council's chain of operator actions.",
    ),
]
CloudEventId = Annotated[str, Field(min_length=1, max_length=200)]

MAX_RECORDS_PER_ACTION = 5_000
"""Records one operator action may re-publish; the ids of all of them travel in its event."""


class OperatorAction(StrEnum):
    EVENTS_REDELIVERED = "events_redelivered"
    DEAD_LETTERS_REDRIVEN = "dead_letters_redriven"


class OperatorActionRecorded(Event):
    """An operator put records back on the log: who, why, and exactly which.

    A redelivery re-publishes events unchanged (same CloudEvent ids), so every consumer's
    inbox makes them change nothing; a re-drive re-publishes the records dead letters hold
    to their topics. `person_id` is `operations:<council>`: one chain per council.
    """

    type: ClassVar[str] = "pb.operations.operator-action-recorded.v1"
    service: ClassVar[str] = "operations"
    person_id: OperationsSubject
    action_id: UUID
    action: OperatorAction
    performed_by: ShortText = Field(description="Who ran it, as role:user-id.")
    reason: Text
    selection: Text = Field(description="How the records were chosen, in words.")
    event_ids: list[CloudEventId] = Field(
        max_length=MAX_RECORDS_PER_ACTION, description="The CloudEvent ids re-published."
    )
    dead_letter_ids: list[ShortText] = Field(
        max_length=MAX_RECORDS_PER_ACTION,
        description="The dead letters re-driven (partition-offset in pb.dead-letter); "
        "none for a redelivery. A dead letter named here is not re-driven again.",
    )


# --- audit --------------------------------------------------------------------------------


TAMPER_SUBJECT_PREFIX = "tamper:"
"""The subject (and record key) of audit's own findings about a council's store:
`tamper:<council>`. Like `policy:`, the colon keeps it apart from every person id."""

TamperSubject = Annotated[
    str,
    Field(
        pattern=r"^tamper:[a-z][a-z0-9_]{0,56}$",
        description="tamper:<council>: the council's chain of tamper findings, never a person.",
    ),
]
ChainSubject = Annotated[
    str,
    Field(
        pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,63}|(?:policy|tamper):[a-z][a-z0-9_]{0,56})$",
        description="Whose chain: a person's opaque id, policy:<council> or tamper:<council>.",
    ),
]


class TamperDifference(StrEnum):
    """How the stored chain differed from the one the log rebuilds."""

    ALTERED = "altered"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"
    REWRITTEN = "rewritten"


class TamperDetected(Event):
    """A replay found a stored chain that fails verification (architecture.md §13).

    The chain was rebuilt from the log; the rows as they were found are kept in quarantine
    under `finding_id`, served by no read. One event per affected chain, naming the first
    bad event. `person_id` is `tamper:<council>`: the council's chain of findings.
    """

    type: ClassVar[str] = "pb.audit.tamper-detected.v1"
    service: ClassVar[str] = "audit"
    person_id: TamperSubject
    finding_id: UUID
    chain: ChainSubject
    first_bad_seq: int = Field(ge=1, description="The position of the first bad event.")
    first_bad_event_id: str | None = Field(
        None, max_length=64, description="The event stored there; none when it is missing."
    )
    difference: TamperDifference
    reason: Text = Field(description="What verification found, in words.")
    quarantined_events: int = Field(ge=0, description="Stored rows kept as evidence.")
    replay_id: UUID
    detected_by: ShortText = Field(description="Who ran the replay (role:user_id).")


class TamperAcknowledged(Event):
    """An auditor has looked at a tamper finding and says why it may be closed."""

    type: ClassVar[str] = "pb.audit.tamper-acknowledged.v1"
    service: ClassVar[str] = "audit"
    person_id: TamperSubject
    finding_id: UUID
    chain: ChainSubject
    reason: Text
    acknowledged_by: ShortText
