"""A council's policy as versioned data: one YAML file per council under `policies/`.

Every rule that differs between councils lives here, never in code (architecture.md §6).
The RAS and every money rule are pure functions of (inputs, policy), so a proposed
policy can be replayed over the real cohort before a council adopts it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.money import Pence
from contracts.vocabulary import ClientGroup, Role

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
BasisPoints = Annotated[int, Field(strict=True, ge=0, le=10_000, description="10,000 = 100%")]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    level: Annotated[int, Field(strict=True, ge=1, le=9)]
    statement: str = Field(min_length=1)
    points: Annotated[int, Field(strict=True, ge=0)]
    assumed: bool = Field(
        default=False, description="True where the seed gives no figure and this one is ours."
    )


class Domain(_Strict):
    """One domain of the self-assessment questionnaire with its levels and points."""

    key: Slug
    name: str = Field(min_length=1)
    levels: list[Level] = Field(min_length=2)
    high_from_level: Annotated[int, Field(strict=True, ge=1)] = Field(
        description="A level at or above this is 'high': a signed-off plan must address it."
    )

    @model_validator(mode="after")
    def _levels_ascend(self) -> Self:
        numbers = [lvl.level for lvl in self.levels]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"domain {self.key}: levels must be unique and ascending")
        points = [lvl.points for lvl in self.levels]
        if points != sorted(points):
            raise ValueError(f"domain {self.key}: points must not fall as the level rises")
        if self.high_from_level not in numbers:
            raise ValueError(
                f"domain {self.key}: high_from_level {self.high_from_level} is no level"
            )
        return self

    def level(self, number: int) -> Level | None:
        return next((lvl for lvl in self.levels if lvl.level == number), None)

    @property
    def max_points(self) -> int:
        return self.levels[-1].points

    @property
    def min_points(self) -> int:
        return self.levels[0].points


class Questionnaire(_Strict):
    domains: list[Domain] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Self:
        keys = [d.key for d in self.domains]
        if len(keys) != len(set(keys)):
            raise ValueError("domain keys must be unique")
        return self

    def domain(self, key: str) -> Domain | None:
        return next((d for d in self.domains if d.key == key), None)

    @property
    def max_points(self) -> int:
        return sum(d.max_points for d in self.domains)


class Ras(_Strict):
    """Points to money (seed 003 ch.2; seed 004 Council D prices by client group)."""

    price_per_point_weekly_pence: dict[ClientGroup, Pence]
    lower_scale_basis_points: BasisPoints = Field(
        description="The lower scale, used where there is significant informal support "
        "and no 24/7 need, as a share of the standard scale."
    )
    ceilings_weekly_pence: dict[ClientGroup, Pence] = Field(
        default_factory=dict,
        description="Per-client-group ceiling; above it only an exception approver may agree.",
    )
    assumed: list[str] = Field(default_factory=list)


class ApprovalLimit(_Strict):
    role: Role
    max_weekly_pence: Pence | None = Field(description="None: no upper limit.")


class Approvals(_Strict):
    """Who may agree what, by weekly amount (seed 004 Councils A and B), as data:
    `rules.authority` decides with it."""

    plan_sign_off: list[ApprovalLimit] = Field(min_length=1)
    agreement_in_principle: list[ApprovalLimit] = Field(min_length=1)
    ceiling_exception_roles: list[Role] = Field(min_length=1)
    panel_sits_separately_above_weekly_pence: Pence | None = None
    panel_only_client_groups: list[ClientGroup] = Field(
        default_factory=list,
        description="Client groups whose budgets and plans only the panel agrees, whatever "
        "the amount (seed 004 App.1 Council C: 'All mental health requests go to a panel').",
    )


class ContributionKind(StrEnum):
    NONE = "none"
    SHARE_OF_PLAN_CAPPED_BY_MEANS = "share_of_plan_capped_by_means"


class Contribution(_Strict):
    """The client's means-tested charge (seed 004 Council C: up to 75% of the plan)."""

    kind: ContributionKind
    share_of_plan_basis_points: BasisPoints = 0


class AuditTier(_Strict):
    name: Slug
    from_annual_pence: Pence = Field(description="Inclusive lower bound of the annual value.")


class UnspentRule(StrEnum):
    NONE = "none"
    ABOVE_WEEKS_OF_PAYMENT = "above_weeks_of_payment"
    ABOVE_CONTINGENCY = "above_contingency"
    HOLD_OR_CLAWBACK = "hold_or_clawback"


class RecoupNotice(_Strict):
    """How long a person has to answer a written notice before a surplus is recouped."""

    respond_within_days: Annotated[int, Field(strict=True, ge=1, le=366)]
    source: str = Field(min_length=1)
    applies_from: date
    to_confirm: str | None = Field(
        None, description="Set while the period has not been checked with the council."
    )


class Monitoring(_Strict):
    audit_tiers: list[AuditTier] = Field(min_length=1)
    receipts_required_from_pence: Pence = Field(
        description="Items below this need no receipt (seed 004 Council D: £50)."
    )
    returns_every_months: Annotated[int, Field(strict=True, ge=1, le=12)] | None = None
    unspent_rule: UnspentRule
    unspent_weeks_allowed: Annotated[int, Field(strict=True, ge=0)] | None = None
    recoup_notice: RecoupNotice | None = Field(
        None,
        description="The notice before a card account's surplus is recouped; none in "
        "policies before card accounts were monitored (no recoup without it).",
    )
    assumed: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tiers_ascend_and_rule_complete(self) -> Self:
        bounds = [t.from_annual_pence for t in self.audit_tiers]
        if bounds[0] != 0 or bounds != sorted(set(bounds)):
            raise ValueError("audit_tiers must start at 0 and ascend strictly")
        if self.unspent_rule is UnspentRule.ABOVE_WEEKS_OF_PAYMENT and (
            self.unspent_weeks_allowed is None
        ):
            raise ValueError("unspent_weeks_allowed is required for above_weeks_of_payment")
        return self

    def audit_tier(self, annual_pence: int) -> str:
        return [t.name for t in self.audit_tiers if t.from_annual_pence <= annual_pence][-1]


FIRST_REVIEW_DAYS_GUIDANCE = (42, 56)
"""A light-touch first review 6 to 8 weeks after the plan and personal budget are signed
off (Care and Support Statutory Guidance, para. 13.32)."""
PLAN_REVIEW_MONTHS_AT_MOST = 12
"""A plan is reviewed no later than every 12 months (Care and Support Statutory Guidance,
para. 13.32)."""
DIRECT_PAYMENT_FIRST_REVIEW_MONTHS_AT_MOST = 6
DIRECT_PAYMENT_REVIEW_MONTHS_AT_MOST = 12
"""The making of direct payments is reviewed at least once within the first 6 months of
the direct payment being made and at intervals not exceeding 12 months thereafter (Care
and Support (Direct Payments) Regulations 2014, reg. 7(1)(a))."""


class DirectPaymentReviews(_Strict):
    """When the making of direct payments is reviewed (Care and Support (Direct Payments)
    Regulations 2014, reg. 7(1)(a)): the first within `first_within_months` of the first
    payment, then every `then_every_months`; the regulation's limits are the most a
    policy may say."""

    first_within_months: Annotated[int, Field(strict=True, ge=1)]
    then_every_months: Annotated[int, Field(strict=True, ge=1)]
    source: str = Field(min_length=1)
    applies_from: date

    @model_validator(mode="after")
    def _within_the_regulations(self) -> Self:
        if self.first_within_months > DIRECT_PAYMENT_FIRST_REVIEW_MONTHS_AT_MOST:
            raise ValueError(
                f"reviews.direct_payment.first_within_months is {self.first_within_months}: "
                "the Care and Support (Direct Payments) Regulations 2014, reg. 7(1)(a), require "
                f"a review within the first {DIRECT_PAYMENT_FIRST_REVIEW_MONTHS_AT_MOST} "
                "months of the first direct payment"
            )
        if self.then_every_months > DIRECT_PAYMENT_REVIEW_MONTHS_AT_MOST:
            raise ValueError(
                f"reviews.direct_payment.then_every_months is {self.then_every_months}: the "
                "Care and Support (Direct Payments) Regulations 2014, reg. 7(1)(a), require "
                f"reviews at intervals not exceeding {DIRECT_PAYMENT_REVIEW_MONTHS_AT_MOST} "
                "months"
            )
        return self


class UnscheduledReviews(_Strict):
    """How soon an unscheduled review is due after an event in the person's life (a carer
    stops, a hospital admission, a surplus found): days by trigger. The law sets no figure
    (Care Act 2014, s.27: plans are kept under review and reviewed on a reasonable
    request); these are the council's, with their source."""

    within_days: dict[Slug, Annotated[int, Field(strict=True, ge=0, le=366)]] = Field(
        min_length=1,
        description="Trigger (carer_stopped, hospital_admission, surplus_found, other) -> "
        "days after the day it happened that the review is due.",
    )
    source: str = Field(min_length=1)
    applies_from: date
    to_confirm: str | None = Field(
        None, description="Set while the figures have not been checked against their source."
    )

    @model_validator(mode="after")
    def _every_trigger_has_a_figure(self) -> Self:
        missing = sorted(set(UNSCHEDULED_TRIGGERS) - set(self.within_days))
        if missing:
            raise ValueError(f"reviews.unscheduled.within_days has no figure for {missing}")
        return self


UNSCHEDULED_TRIGGERS = ("carer_stopped", "hospital_admission", "surplus_found", "other")
"""Every trigger an unscheduled review has (contracts.events.ReviewTrigger)."""


class Reviews(_Strict):
    """The support plan's first review, then at least every 12 months (seed 004 §6.7,
    Councils D and E; Care and Support Statutory Guidance, para. 13.32); direct payments'
    reviews (reg. 7 of the Direct Payments Regulations 2014); unscheduled reviews."""

    first_after_days: Annotated[int, Field(strict=True, ge=1)]
    then_every_months: Annotated[int, Field(strict=True, ge=1)]
    source: str | None = Field(None, description="Where the plan's review schedule comes from.")
    direct_payment: DirectPaymentReviews | None = Field(
        None,
        description="None in policies before it: the regulation's own limits (6, then 12 "
        "months) apply.",
    )
    unscheduled: UnscheduledReviews | None = Field(
        None, description="None in policies before it: an unscheduled review is due at once."
    )

    @model_validator(mode="after")
    def _within_the_guidance(self) -> Self:
        low, high = FIRST_REVIEW_DAYS_GUIDANCE
        if not low <= self.first_after_days <= high:
            raise ValueError(
                f"reviews.first_after_days is {self.first_after_days}: the Care and Support "
                "Statutory Guidance (para. 13.32) expects the first review 6 to 8 weeks "
                f"({low} to {high} days) after the plan is signed off"
            )
        if self.then_every_months > PLAN_REVIEW_MONTHS_AT_MOST:
            raise ValueError(
                f"reviews.then_every_months is {self.then_every_months}: the Care and Support "
                "Statutory Guidance (para. 13.32) expects a plan to be reviewed no later than "
                f"every {PLAN_REVIEW_MONTHS_AT_MOST} months"
            )
        return self


class Planning(_Strict):
    provider_management_fee_basis_points: BasisPoints = Field(
        description="Fee a provider holding an ISF adds on its lines (seed 003: 10%)."
    )


class SourcedFigure(_Strict):
    """One figure the law or the council sets, with where it comes from and since when."""

    pence: Pence
    source: str = Field(min_length=1, description="The regulation, circular or decision.")
    applies_from: date
    to_confirm: str | None = Field(
        None,
        description="Set while the figure has not been checked against its source: what to "
        "check, and where. A financial assessment using it says so.",
    )


class EligibilityRules(_Strict):
    """Care and Support (Eligibility Criteria) Regulations 2015, reg. 2."""

    outcomes_needed: Annotated[int, Field(strict=True, ge=1, le=10)] = Field(
        description="How many of the ten specified outcomes the adult must be unable to "
        "achieve (reg. 2(1)(b): two or more)."
    )
    source: str = Field(min_length=1)
    applies_from: date


class Treatment(StrEnum):
    COUNTED = "counted"
    DISREGARDED = "disregarded"


class Treated(_Strict):
    """How a kind of income or capital is treated in the financial assessment."""

    treatment: Treatment
    source: str = Field(min_length=1)
    to_confirm: str | None = None


class CapitalLimits(_Strict):
    """Capital limits and tariff income (Charging Regulations 2014, regs. 12 and 25)."""

    upper_limit: SourcedFigure
    lower_limit: SourcedFigure
    tariff_band: SourcedFigure = Field(description="Tariff income per band or part of one.")
    tariff_per_band_weekly: SourcedFigure

    @model_validator(mode="after")
    def _limits_ascend(self) -> Self:
        if self.lower_limit.pence >= self.upper_limit.pence:
            raise ValueError("capital.lower_limit must be below capital.upper_limit")
        if self.tariff_band.pence == 0:
            raise ValueError("capital.tariff_band must be more than zero")
        return self


class Charging(_Strict):
    """The financial assessment's figures (Care and Support (Charging and Assessment of
    Resources) Regulations 2014; Care and Support Statutory Guidance, Annexes B and C)."""

    source: str = Field(min_length=1)
    capital: CapitalLimits
    capital_kinds: dict[Slug, Treated] = Field(min_length=1)
    income_kinds: dict[Slug, Treated] = Field(min_length=1)
    minimum_income_guarantee: dict[Slug, SourcedFigure] = Field(
        min_length=1, description="The weekly amount by age and circumstance (reg. 7)."
    )
    mig_per_child: SourcedFigure
    mig_premiums: dict[Slug, SourcedFigure] = Field(default_factory=dict)
    assumed: list[str] = Field(default_factory=list)


class Policy(_Strict):
    """One version of one council's policy."""

    council: Slug
    name: str = Field(min_length=1)
    version: str = Field(pattern=r"^[0-9A-Za-z._-]+$", max_length=32)
    effective_from: date
    client_groups: list[ClientGroup] = Field(min_length=1)
    questionnaire: Questionnaire
    ras: Ras
    approvals: Approvals
    contribution: Contribution
    monitoring: Monitoring
    reviews: Reviews
    planning: Planning
    retention_years: Annotated[int, Field(strict=True, ge=1, le=100)]
    eligibility: EligibilityRules | None = Field(
        None, description="The Care Act eligibility criteria; none in policies before them."
    )
    charging: Charging | None = Field(
        None, description="The Care Act financial assessment; none in policies before it."
    )
    assumptions: list[str] = Field(
        default_factory=list, description="Every figure the seeds leave open, and what we chose."
    )

    @model_validator(mode="after")
    def _prices_cover_client_groups(self) -> Self:
        missing = [g for g in self.client_groups if g not in self.ras.price_per_point_weekly_pence]
        if missing:
            raise ValueError(f"ras.price_per_point_weekly_pence has no price for {missing}")
        return self

    @property
    def policy_version(self) -> str:
        """The identifier every event records: council/version."""
        return f"{self.council}/{self.version}"


# Fields added to the policy model after policies were first adopted: left out of the
# document while at their default, so a policy that does not use them keeps the document,
# and the fingerprint, it was adopted with.
_LATER_APPROVAL_FIELDS = ("panel_only_client_groups",)
_LATER_SECTIONS = ("eligibility", "charging")
_LATER_REVIEW_FIELDS = ("source", "direct_payment", "unscheduled")
_LATER_MONITORING_FIELDS = ("recoup_notice",)


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as a JSON document: what a PolicyAdopted event carries."""
    document = policy.model_dump(mode="json")
    approvals = document["approvals"]
    for name in _LATER_APPROVAL_FIELDS:
        if approvals.get(name) == []:
            del approvals[name]
    for name in _LATER_SECTIONS:
        if document.get(name) is None:
            document.pop(name, None)
    reviews = document["reviews"]
    for name in _LATER_REVIEW_FIELDS:
        if reviews.get(name) is None:
            reviews.pop(name, None)
    for name in _LATER_MONITORING_FIELDS:
        if document["monitoring"].get(name) is None:
            document["monitoring"].pop(name, None)
    return document


def content_sha256(document: dict[str, Any]) -> str:
    """A fingerprint of a policy document that ignores key order and whitespace."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def problems_of(err: ValidationError) -> list[str]:
    """Each field a policy fails on, as `dotted.field: reason`."""
    return [
        f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}"
        for e in err.errors()
    ]


def today() -> date:
    """Today in UTC: the date every service picks the policy in force by."""
    return datetime.now(UTC).date()


# libyaml's loader reads the same documents as PyYAML's own safe loader about eight times
# faster (the six files in 21 ms instead of 168): every service start and every app a test
# creates reads the whole directory. PyYAML's wheels ship it; the pure one is the fallback.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file, naming the file and the bad field on failure."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read policy: {err}") from err
    try:
        return Policy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"{path}: {'; '.join(problems_of(err))}") from err


class PolicyBook:
    """Every policy version known, by council; the newest in force on a date applies.

    Versions come from the files in `policies/` and from adoptions (PolicyAdopted events,
    `add`). Two versions in force from the same date: the one added later applies.
    """

    def __init__(self, policies: list[Policy]) -> None:
        self._by_council: dict[str, list[Policy]] = {}
        for policy in sorted(policies, key=lambda p: p.effective_from):
            self._by_council.setdefault(policy.council, []).append(policy)

    @classmethod
    def from_directory(cls, directory: Path) -> PolicyBook:
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise PolicyError(f"{directory}: no policy files (*.yaml)")
        return cls([load_policy(path) for path in files])

    @property
    def councils(self) -> list[str]:
        return sorted(self._by_council)

    def versions(self, council: str) -> list[Policy]:
        """A council's versions by the date they come into force."""
        return list(self._by_council.get(council, []))

    def add(self, policy: Policy) -> bool:
        """Know one more version (an adoption); False when exactly this one is known."""
        versions = self._by_council.setdefault(policy.council, [])
        for known in versions:
            if known.version == policy.version:
                if known == policy:
                    return False
                raise PolicyError(
                    f"{policy.policy_version} is already known with different content"
                )
        versions.append(policy)
        versions.sort(key=lambda p: p.effective_from)  # stable: later adoptions win ties
        return True

    def current(self, council: str, on: date | None = None) -> Policy:
        """The version in force on a date (today, in UTC, when no date is given)."""
        versions = self._by_council.get(council)
        if not versions:
            raise KeyError(council)
        on = on or today()
        in_force = [p for p in versions if p.effective_from <= on]
        return in_force[-1] if in_force else versions[0]

    def version(self, policy_version: str) -> Policy:
        """A policy by its recorded identifier, for audits that recompute a figure."""
        council, _, version = policy_version.partition("/")
        for policy in self._by_council.get(council, []):
            if policy.version == version:
                return policy
        raise KeyError(policy_version)
