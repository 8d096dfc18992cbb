"""The Care Act routes of assessment: the eligibility determination and the financial
assessment (docs/charging.md). Each records one event the audit keeps in the person's
history; the figures and the decision come from `rules/` under the council's policy."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from contracts.events import (
    EligibilityDetermined,
    FinancialAssessmentCompleted,
    FinancialAssessmentOutcome,
    LightTouchBasis,
    ShortText,
    Text,
)
from contracts.money import Pence, SignedPence
from contracts.vocabulary import PRACTITIONER_ROLES, Difficulty, EligibilityOutcome, Role
from rules.charging import Amount, Expenditure
from servicekit.app import RequestPence, runtime_from
from servicekit.auth import CurrentActor, require_role
from servicekit.runtime import ServiceRuntime
from services.assessment import handlers
from services.assessment.db import AssessmentUnitOfWork
from services.assessment.domain import AssessFinances, FinancialPath, OutcomeNamedTwice
from services.assessment.personal_api import Privacy

router = APIRouter(prefix="/v1", tags=["care act"])
Runtime = Annotated[ServiceRuntime[AssessmentUnitOfWork], Depends(runtime_from)]

# Checked before any record is read, so a refusal for the role says nothing about the id.
ELIGIBILITY_DECIDERS = tuple(sorted(PRACTITIONER_ROLES))
FINANCIAL_ASSESSORS = tuple(sorted({*PRACTITIONER_ROLES, Role.FINANCE}))
MAX_ITEMS = 50
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- eligibility --------------------------------------------------------------------------


class OutcomeIn(_Request):
    outcome: EligibilityOutcome
    difficulties: list[Difficulty] = Field(
        min_length=1, max_length=5, description="Why it cannot be achieved (reg. 2(3))."
    )


class EligibilityRequest(_Request):
    needs_from_impairment_or_illness: StrictBool = Field(
        description="The needs arise from or relate to a physical or mental impairment or "
        "illness (reg. 2(1)(a))."
    )
    outcomes: list[OutcomeIn] = Field(
        default_factory=list,
        max_length=10,
        description="The specified outcomes the person cannot achieve, each once.",
    )
    significant_impact_on_wellbeing: StrictBool = Field(
        description="There is, or is likely to be, a significant impact on wellbeing "
        "(reg. 2(1)(c))."
    )


class OutcomeOut(BaseModel):
    outcome: EligibilityOutcome
    difficulties: list[Difficulty]


class EligibilityOut(BaseModel):
    determination_id: UUID
    assessment_id: UUID
    person_id: str
    eligible: bool
    needs_from_impairment_or_illness: bool
    outcomes_not_achieved: list[OutcomeOut]
    outcomes_needed: int
    significant_impact_on_wellbeing: bool
    reasons: list[str]
    determined_by: str
    determined_on: date
    policy_version: str


def _eligibility_out(event: EligibilityDetermined) -> EligibilityOut:
    return EligibilityOut(
        determination_id=event.determination_id,
        assessment_id=event.assessment_id,
        person_id=event.person_id,
        eligible=event.eligible,
        needs_from_impairment_or_illness=event.needs_from_impairment_or_illness,
        outcomes_not_achieved=[
            OutcomeOut(outcome=o.outcome, difficulties=list(o.difficulties))
            for o in event.outcomes_not_achieved
        ],
        outcomes_needed=event.outcomes_needed,
        significant_impact_on_wellbeing=event.significant_impact_on_wellbeing,
        reasons=list(event.reasons),
        determined_by=event.determined_by,
        determined_on=event.determined_on,
        policy_version=event.policy_version,
    )


@router.post(
    "/assessments/{assessment_id}/eligibility",
    response_model=EligibilityOut,
    status_code=201,
    summary="Record the Care Act eligibility determination (practitioners)",
    description=(
        "Applies the Care and Support (Eligibility Criteria) Regulations 2015, reg. 2: "
        "eligible when the needs arise from an impairment or illness, the person cannot "
        "achieve at least the policy's number of the ten outcomes (two), and there is or is "
        "likely to be a significant impact on wellbeing. Records EligibilityDetermined."
    ),
)
async def determine_eligibility(
    assessment_id: UUID, body: EligibilityRequest, actor: CurrentActor, runtime: Runtime
) -> EligibilityOut:
    require_role(actor, *ELIGIBILITY_DECIDERS)
    outcomes: dict[EligibilityOutcome, list[Difficulty]] = {}
    for item in body.outcomes:
        if item.outcome in outcomes:
            raise OutcomeNamedTwice(item.outcome)
        outcomes[item.outcome] = list(item.difficulties)
    event = await handlers.determine_eligibility(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=actor,
        assessment_id=assessment_id,
        needs_from_impairment_or_illness=body.needs_from_impairment_or_illness,
        outcomes=outcomes,
        significant_impact_on_wellbeing=body.significant_impact_on_wellbeing,
    )
    return _eligibility_out(event)


# --- the financial assessment ---------------------------------------------------------------


class CapitalIn(_Request):
    kind: Kind = Field(description="A kind of capital the policy names (`charging.capital_kinds`).")
    pence: RequestPence


class IncomeIn(_Request):
    kind: Kind = Field(description="A kind of income the policy names (`charging.income_kinds`).")
    weekly_pence: RequestPence


class ExpenditureIn(_Request):
    description: ShortText
    weekly_pence: RequestPence


class FinancialAssessmentRequest(_Request):
    path: FinancialPath = Field(
        description="full: every figure; light_touch: on a basis of the statutory guidance "
        "Annex C; deferred or refused: recorded with a reason, no charge set."
    )
    cost_of_support_weekly_pence: RequestPence | None = Field(
        None, description="Required for full and light-touch: the charge is never above it."
    )
    capital: list[CapitalIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    income_weekly: list[IncomeIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    mig_circumstance: Kind | None = Field(
        None,
        description="Required for a full assessment: the Minimum Income Guarantee's age and "
        "circumstance as the policy names it (`charging.minimum_income_guarantee`).",
    )
    children: Annotated[int, Field(strict=True, ge=0, le=20)] = 0
    premiums: list[Kind] = Field(default_factory=list, max_length=10)
    housing_costs_weekly_pence: RequestPence = 0
    disability_related_expenditure: list[ExpenditureIn] = Field(
        default_factory=list, max_length=MAX_ITEMS
    )
    light_touch_basis: LightTouchBasis | None = None
    nominal_charge_weekly_pence: RequestPence | None = None
    reason: Text | None = Field(None, description="Required for light-touch, deferred, refused.")

    def to_command(self) -> AssessFinances:
        return AssessFinances(
            path=self.path,
            cost_of_support_weekly_pence=self.cost_of_support_weekly_pence,
            capital=tuple(Amount(c.kind, c.pence) for c in self.capital),
            income_weekly=tuple(Amount(i.kind, i.weekly_pence) for i in self.income_weekly),
            mig_circumstance=self.mig_circumstance,
            children=self.children,
            premiums=tuple(self.premiums),
            housing_costs_weekly_pence=self.housing_costs_weekly_pence,
            disability_related_expenditure=tuple(
                Expenditure(e.description, e.weekly_pence)
                for e in self.disability_related_expenditure
            ),
            light_touch_basis=self.light_touch_basis,
            nominal_charge_weekly_pence=self.nominal_charge_weekly_pence,
            reason=self.reason,
        )


class AmountOut(BaseModel):
    kind: str
    pence: Pence
    counted: bool


class ExpenditureOut(BaseModel):
    description: str
    weekly_pence: Pence


class LineOut(BaseModel):
    label: str
    weekly_pence: SignedPence
    source: str | None


class FinancialAssessmentOut(BaseModel):
    financial_assessment_id: UUID
    assessment_id: UUID
    person_id: str
    outcome: FinancialAssessmentOutcome
    light_touch_basis: LightTouchBasis | None
    assessed_on: date
    cost_of_support_weekly_pence: Pence | None
    capital: list[AmountOut]
    capital_counted_pence: Pence
    tariff_income_weekly_pence: Pence
    income_weekly: list[AmountOut]
    income_counted_weekly_pence: Pence
    mig_circumstance: str | None
    mig_children: int | None
    mig_premiums: list[str] | None
    minimum_income_guarantee_weekly_pence: Pence
    housing_costs_weekly_pence: Pence
    disability_related_expenditure: list[ExpenditureOut]
    disability_related_expenditure_weekly_pence: Pence
    weekly_charge_pence: Pence | None
    lines: list[LineOut]
    figures_to_confirm: list[str]
    reason: str | None
    assessed_by: str
    policy_version: str
    applies_from: date | None
    uprating_of: UUID | None


def _financial_out(event: FinancialAssessmentCompleted) -> FinancialAssessmentOut:
    return FinancialAssessmentOut.model_validate(event.model_dump())


FINANCIAL_ASSESSMENT_PATH = "/v1/assessments/{assessment_id}/financial-assessment"
"""Its answer holds the person's finances: never kept for an Idempotency-Key replay."""


@router.post(
    FINANCIAL_ASSESSMENT_PATH.removeprefix("/v1"),
    response_model=FinancialAssessmentOut,
    status_code=201,
    summary="Record a financial assessment and the weekly charge (practitioners, finance)",
    description=(
        "Under the council's charging figures in force today (Care and Support (Charging "
        "and Assessment of Resources) Regulations 2014; statutory guidance Annexes B and C): "
        "weekly charge = assessed income + tariff income - Minimum Income Guarantee - "
        "housing costs - disability-related expenditure, never below zero nor above the "
        "cost of the support; at or above the upper capital limit, the full cost. Records "
        "FinancialAssessmentCompleted with every figure, or that it was deferred or refused."
    ),
)
async def record_financial_assessment(
    assessment_id: UUID,
    body: FinancialAssessmentRequest,
    actor: CurrentActor,
    runtime: Runtime,
    privacy: Privacy,
) -> FinancialAssessmentOut:
    require_role(actor, *FINANCIAL_ASSESSORS)
    event = await handlers.assess_finances(
        uow=runtime.uow(),
        policies=runtime.policies,
        caller=actor,
        assessment_id=assessment_id,
        command=body.to_command(),
        keys=privacy.keys,
    )
    return _financial_out(event)
