"""Assessment's rules: the self-rating questionnaire, its submission, return and validation.

Pure and synchronous: no I/O, no clock (the handler passes `now`). An Assessment records
the events it causes in `events`; the unit of work writes them to the outbox with the state.

Rules and their seeds:
- The person ticks one level per domain of the council's questionnaire; the domains,
  levels and points are policy data (seed 003 ch.2 Step 1 §ii). Alone, with help, or by
  a practitioner: `completed_by` records which (seeds 002, 004).
- Outcomes, informal/carer support, 24/7 need and risks are recorded; the person's view
  of a risk and the practitioner's are kept apart (seed 004 exec summary, §7.2).
- A practitioner validates: confirms or adjusts each level; an adjustment keeps the
  person's original answer and needs a reason (seed 003 ch.2 Step 1 §iv, ch.5 §9:
  people "over-egg" and "under-egg" the SRQ).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from contracts.events import (
    AssessedAmount,
    AssessmentReturned,
    AssessmentStarted,
    AssessmentSubmitted,
    AssessmentValidated,
    ChargeLine,
    EligibilityBasis,
    EligibilityDetermined,
    Event,
    ExpenditureItem,
    FinancialAssessmentCompleted,
    FinancialAssessmentOutcome,
    LevelAdjustment,
    LightTouchBasis,
    OtherFunding,
    OtherFundingSource,
    OutcomeNotAchieved,
    Risk,
)
from contracts.policy import Charging, Policy, Questionnaire
from contracts.vocabulary import (
    AgeBand,
    ClientGroup,
    CompletedBy,
    EligibilityOutcome,
)
from rules import charging, eligibility
from rules.eligibility import Determination, DeterminationOnRecord, GoingAhead
from servicekit import errors
from servicekit.caller import Caller, may_see

MIN_REASON_CHARS = 5
"""An adjusted level needs a reason of at least this many characters (not just "x")."""


# --- errors -------------------------------------------------------------------------------


class AssessmentError(errors.DomainError):
    """Base of every refusal of the assessment service."""


class AssessmentNotFound(AssessmentError, errors.NotFound):
    def __init__(self, assessment_id: UUID) -> None:
        super().__init__(f"assessment {assessment_id} not found")


class QuestionnaireNotFound(AssessmentError, errors.NotFound):
    """Another council's questionnaire, like its records, is simply not found."""

    def __init__(self, council: str) -> None:
        super().__init__(f"no questionnaire is on file for council {council!r}")


class PolicyVersionUnavailable(AssessmentError, errors.Conflict):
    def __init__(self, policy_version: str) -> None:
        super().__init__(
            f"this assessment was started under policy {policy_version}, which is no longer "
            "loaded; ask operations to restore that policy file"
        )


class NotAllowed(AssessmentError, errors.Forbidden):
    """The caller's role does not allow this action."""


class ClientGroupNotOffered(AssessmentError, errors.Invalid):
    def __init__(self, client_group: str, policy: Policy) -> None:
        offered = ", ".join(g.value for g in policy.client_groups)
        super().__init__(
            f"client_group {client_group!r} is not one {policy.name} budgets for "
            f"(policy {policy.policy_version}); choose one of: {offered}"
        )


class UnknownDomain(AssessmentError, errors.Invalid):
    def __init__(self, domain: str, questionnaire: Questionnaire) -> None:
        known = ", ".join(d.key for d in questionnaire.domains)
        super().__init__(
            f"domains: {domain!r} is not a domain of this questionnaire; the domains are: {known}"
        )


class UnknownLevel(AssessmentError, errors.Invalid):
    def __init__(self, domain: str, level: int, allowed: Sequence[int]) -> None:
        levels = ", ".join(str(n) for n in allowed)
        super().__init__(
            f"domains: {domain!r} has no level {level}; choose one of its levels: {levels}"
        )


class DomainsUnanswered(AssessmentError, errors.Invalid):
    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(
            "every domain must be answered before the assessment is submitted; "
            f"still unanswered: {', '.join(missing)}"
        )


class AgeBandRequired(AssessmentError, errors.Invalid):
    def __init__(self) -> None:
        super().__init__(
            "age_band: give the age band, or personal_details.date_of_birth to derive it from"
        )


class DuplicateEntry(AssessmentError, errors.Invalid):
    def __init__(self, field_name: str, value: str) -> None:
        super().__init__(f"{field_name}: {value!r} appears more than once")


class ReasonRequired(AssessmentError, errors.Invalid):
    def __init__(self, domain: str, original: int, level: int) -> None:
        super().__init__(
            f"adjustments: changing {domain!r} from level {original} to level {level} needs a "
            f"reason of at least {MIN_REASON_CHARS} characters; the person's answer stays on "
            "record next to yours"
        )


class NewRiskNeedsDescription(AssessmentError, errors.Invalid):
    def __init__(self, risk_id: str) -> None:
        super().__init__(
            f"risks: {risk_id!r} is not a risk the person recorded, so it needs a description"
        )


class ReturnNeedsReasons(AssessmentError, errors.Invalid):
    def __init__(self) -> None:
        super().__init__("reasons: say at least once, in words, what the person should change")


class NegativeAmount(AssessmentError, errors.Invalid):
    def __init__(self, field_name: str) -> None:
        super().__init__(f"{field_name}: an amount of money cannot be negative")


class IllegalStatusChange(AssessmentError, errors.Conflict):
    """The assessment's status does not allow this action."""


class AnswersLocked(IllegalStatusChange):
    pass


class NotAwaitingSubmission(IllegalStatusChange):
    pass


class NotAwaitingValidation(IllegalStatusChange):
    pass


class NoEligibilityDetermination(IllegalStatusChange):
    """Validated only for eligible needs: no determination yet, and no reason to go ahead."""


class NeedsNotEligible(IllegalStatusChange):
    """The latest determination found the needs not eligible, and no reason to go ahead."""


class ExplanationRequired(AssessmentError, errors.Invalid):
    """Going ahead without an eligible determination needs it explained in words."""


_GATE_REFUSALS: dict[type[eligibility.NotYetValidatable], type[AssessmentError]] = {
    eligibility.NoDetermination: NoEligibilityDetermination,
    eligibility.NeedsNotEligible: NeedsNotEligible,
    eligibility.ExplanationTooShort: ExplanationRequired,
}


# --- values -------------------------------------------------------------------------------


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    VALIDATED = "validated"


class Action(StrEnum):
    STARTED = "started"
    ANSWERED = "answered"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    VALIDATED = "validated"


class RaisedBy(StrEnum):
    PERSON = "person"
    PRACTITIONER = "practitioner"


@dataclass(frozen=True)
class FundingLine:
    """Another funding stream the person has, valued weekly (seed 003 ch.2 §v)."""

    source: OtherFundingSource
    weekly_pence: int


@dataclass(frozen=True)
class PersonsRisk:
    risk_id: str
    description: str
    persons_view: str | None = None


@dataclass(frozen=True)
class PractitionersRisk:
    """The practitioner's view of a risk; a risk the person did not record needs a description."""

    risk_id: str
    practitioners_view: str
    flagged: bool
    description: str | None = None


@dataclass(frozen=True)
class RiskRecord:
    """One risk with both views kept apart (seed 004 §7.2)."""

    risk_id: str
    description: str
    raised_by: RaisedBy
    persons_view: str | None
    practitioners_view: str | None
    flagged: bool


@dataclass(frozen=True)
class LevelChange:
    """A practitioner's level for one domain; a changed level needs a reason."""

    domain: str
    level: int
    reason: str = ""


@dataclass(frozen=True)
class Adjustment:
    domain: str
    original_level: int
    validated_level: int
    reason: str


@dataclass(frozen=True)
class HistoryEntry:
    action: Action
    status: Status
    at: datetime
    by: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answers:
    """What the person (or someone helping them) answered."""

    domains: Mapping[str, int]
    significant_informal_support: bool = False
    needs_24_7: bool = False
    carer_support_weekly_pence: int = 0
    other_funding: tuple[FundingLine, ...] = ()
    outcomes: tuple[str, ...] = ()
    risks: tuple[PersonsRisk, ...] = ()


@dataclass(frozen=True)
class Validation:
    """The practitioner's confirmed figures; the person's answers stay in `Answers`."""

    domain_levels: Mapping[str, int]
    adjustments: tuple[Adjustment, ...]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: int
    other_funding: tuple[FundingLine, ...]
    risks: tuple[RiskRecord, ...]
    validated_by: str
    validated_at: datetime
    eligibility: EligibilityBasis | None = None
    """What the validation rested on; none only on one validated before it was required."""


@dataclass(frozen=True)
class StartAssessment:
    person_id: str
    client_group: ClientGroup
    completed_by: CompletedBy
    team: str
    key_worker_id: str
    age_band: AgeBand | None = None
    community_based: bool = True


@dataclass(frozen=True)
class ValidateAssessment:
    adjustments: tuple[LevelChange, ...] = ()
    risks: tuple[PractitionersRisk, ...] = ()
    carer_support_weekly_pence: int | None = None
    other_funding: tuple[FundingLine, ...] | None = None
    significant_informal_support: bool | None = None
    needs_24_7: bool | None = None
    going_ahead: GoingAhead | None = None
    """A reason to validate without an eligible determination (urgent need, conversion)."""


# --- rules --------------------------------------------------------------------------------


def check_levels(domains: Mapping[str, int], questionnaire: Questionnaire) -> None:
    """Every key must be a domain of the questionnaire and every level one that domain has."""
    for key, level in domains.items():
        domain = questionnaire.domain(key)
        if domain is None:
            raise UnknownDomain(key, questionnaire)
        if domain.level(level) is None:
            raise UnknownLevel(key, level, [lvl.level for lvl in domain.levels])


def unanswered(domains: Mapping[str, int], questionnaire: Questionnaire) -> list[str]:
    """The questionnaire's domains with no answer yet, in questionnaire order."""
    return [d.key for d in questionnaire.domains if d.key not in domains]


def _no_duplicates(field_name: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise DuplicateEntry(field_name, value)
        seen.add(value)


def _check_money(field_name: str, amount: int | None) -> None:
    if amount is not None and amount < 0:
        raise NegativeAmount(field_name)


def _check_funding(lines: Iterable[FundingLine]) -> None:
    for line in lines:
        _check_money("other_funding.weekly_pence", line.weekly_pence)


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def ensure_may_start(caller: Caller, person_id: str) -> None:
    """A person or representative starts one only for themselves; practitioners for anyone."""
    if caller.is_citizen:
        if caller.person_id != person_id:
            raise NotAllowed(
                "a person or representative can start an assessment only for themselves"
            )
        return
    if not caller.is_practitioner:
        raise NotAllowed(f"a {caller.role.value} may not start an assessment")


def ensure_practitioner(caller: Caller, doing: str) -> None:
    if not caller.is_practitioner:
        raise NotAllowed(
            f"a {caller.role.value} may not {doing}; a care manager, team manager or panel can"
        )


def start(
    *,
    assessment_id: UUID,
    command: StartAssessment,
    caller: Caller,
    policy: Policy,
    now: datetime,
) -> Assessment:
    """A new draft assessment under the council's policy in force."""
    ensure_may_start(caller, command.person_id)
    if command.age_band is None:  # the handler derives it from a date of birth if it can
        raise AgeBandRequired()
    if command.client_group not in policy.client_groups:
        raise ClientGroupNotOffered(command.client_group.value, policy)
    assessment = Assessment(
        assessment_id=assessment_id,
        council=policy.council,
        person_id=command.person_id,
        client_group=command.client_group,
        completed_by=command.completed_by,
        team=command.team,
        key_worker_id=command.key_worker_id,
        age_band=command.age_band,
        community_based=command.community_based,
        policy_version=policy.policy_version,
        status=Status.DRAFT,
        version=1,
        created_at=now,
        updated_at=now,
        created_by=caller.record,
        answers=Answers(domains={}),
        history=[HistoryEntry(Action.STARTED, Status.DRAFT, now, caller.record)],
    )
    assessment.events.append(
        AssessmentStarted(
            person_id=assessment.person_id,
            council=assessment.council,
            assessment_id=assessment_id,
            client_group=assessment.client_group,
            completed_by=assessment.completed_by,
            team=assessment.team,
            key_worker_id=assessment.key_worker_id,
            age_band=assessment.age_band,
            community_based=assessment.community_based,
            policy_version=assessment.policy_version,
        )
    )
    return assessment


# --- the entity ---------------------------------------------------------------------------


@dataclass
class Assessment:
    assessment_id: UUID
    council: str
    person_id: str
    client_group: ClientGroup
    completed_by: CompletedBy
    team: str
    key_worker_id: str
    age_band: AgeBand
    community_based: bool
    policy_version: str
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    answers: Answers
    validation: Validation | None = None
    eligibility: DeterminationOnRecord | None = None
    """The latest eligibility determination recorded for it, if any."""
    history: list[HistoryEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # --- who may see it ---

    def visible_to(self, caller: Caller) -> bool:
        """Staff see their council's assessments; a person or representative only their own."""
        return may_see(caller, self.council, self.person_id)

    def ensure_visible_to(self, caller: Caller) -> None:
        """Another council's record, or someone else's for a person, is simply not found."""
        if not self.visible_to(caller):
            raise AssessmentNotFound(self.assessment_id)

    def _ensure_may_answer(self, caller: Caller) -> None:
        if not (caller.is_citizen or caller.is_practitioner):
            raise NotAllowed(
                f"a {caller.role.value} may not answer or submit an assessment; the person, "
                "their representative or a practitioner can"
            )
        self.ensure_visible_to(caller)

    def _ensure_version(self, expected_version: int | None) -> None:
        errors.require_version(f"assessment {self.assessment_id}", expected_version, self.version)

    @property
    def latest_return_reasons(self) -> tuple[str, ...]:
        for entry in reversed(self.history):
            if entry.action is Action.RETURNED:
                return entry.reasons
        return ()

    @property
    def risks(self) -> tuple[RiskRecord, ...]:
        """Every risk with both views: validated ones, or the person's before validation."""
        if self.validation is not None:
            return self.validation.risks
        return tuple(
            RiskRecord(
                risk_id=r.risk_id,
                description=r.description,
                raised_by=RaisedBy.PERSON,
                persons_view=r.persons_view,
                practitioners_view=None,
                flagged=False,
            )
            for r in self.answers.risks
        )

    def _record(
        self, action: Action, caller: Caller, now: datetime, reasons: tuple[str, ...] = ()
    ) -> None:
        self.version += 1
        self.updated_at = now
        self.history.append(HistoryEntry(action, self.status, now, caller.record, reasons))

    # --- actions ---

    def answer(
        self,
        answers: Answers,
        *,
        questionnaire: Questionnaire,
        caller: Caller,
        now: datetime,
        expected_version: int | None = None,
    ) -> None:
        """Replace the answers; allowed while a draft or returned, partial domains allowed."""
        self._ensure_may_answer(caller)
        self._ensure_version(expected_version)
        if self.status is Status.SUBMITTED:
            raise AnswersLocked(
                "this assessment has been submitted and is waiting for validation, so its "
                "answers cannot be changed now; a practitioner can return it for changes"
            )
        if self.status is Status.VALIDATED:
            raise AnswersLocked(
                "this assessment has been validated, so its answers can no longer be changed; "
                "start a new assessment to reassess"
            )
        check_levels(answers.domains, questionnaire)
        _check_money("carer_support_weekly_pence", answers.carer_support_weekly_pence)
        _check_funding(answers.other_funding)
        _no_duplicates("risks.risk_id", (r.risk_id for r in answers.risks))
        self.answers = replace(answers, domains=dict(answers.domains))
        self._record(Action.ANSWERED, caller, now)

    def submit(
        self,
        *,
        questionnaire: Questionnaire,
        caller: Caller,
        now: datetime,
        expected_version: int | None = None,
    ) -> None:
        """Draft or returned -> submitted, once every domain is answered."""
        self._ensure_may_answer(caller)
        self._ensure_version(expected_version)
        if self.status is Status.SUBMITTED:
            raise NotAwaitingSubmission(
                "this assessment has already been submitted and is waiting for validation"
            )
        if self.status is Status.VALIDATED:
            raise NotAwaitingSubmission(
                "this assessment has already been validated; start a new assessment to reassess"
            )
        check_levels(self.answers.domains, questionnaire)
        missing = unanswered(self.answers.domains, questionnaire)
        if missing:
            raise DomainsUnanswered(missing)
        self.status = Status.SUBMITTED
        self._record(Action.SUBMITTED, caller, now)
        self.events.append(
            AssessmentSubmitted(
                person_id=self.person_id,
                council=self.council,
                assessment_id=self.assessment_id,
                answers=dict(self.answers.domains),
                policy_version=self.policy_version,
            )
        )

    def _ensure_awaiting_validation(self, doing: str) -> None:
        if self.status is Status.SUBMITTED:
            return
        if self.status is Status.VALIDATED:
            raise NotAwaitingValidation(
                f"this assessment has already been validated, so you cannot {doing} it"
            )
        if self.status is Status.RETURNED:
            raise NotAwaitingValidation(
                f"this assessment was returned to the person for changes; you can {doing} it "
                "once they submit it again"
            )
        raise NotAwaitingValidation(
            f"this assessment is still a draft; you can {doing} it once the person submits it"
        )

    def return_for_changes(
        self,
        reasons: Sequence[str],
        *,
        caller: Caller,
        now: datetime,
        expected_version: int | None = None,
    ) -> None:
        """Submitted -> returned with reasons, so the person can change answers and resubmit."""
        ensure_practitioner(caller, "return an assessment")
        self.ensure_visible_to(caller)
        self._ensure_version(expected_version)
        self._ensure_awaiting_validation("return")
        cleaned = tuple(r.strip() for r in reasons)
        if not cleaned or any(not r for r in cleaned):
            raise ReturnNeedsReasons()
        self.status = Status.RETURNED
        self._record(Action.RETURNED, caller, now, cleaned)
        self.events.append(
            AssessmentReturned(
                person_id=self.person_id,
                council=self.council,
                assessment_id=self.assessment_id,
                reasons=list(cleaned),
                returned_by=caller.record,
            )
        )

    def validate(
        self,
        command: ValidateAssessment,
        *,
        questionnaire: Questionnaire,
        caller: Caller,
        now: datetime,
        eligibility_in_force: bool,
        expected_version: int | None = None,
    ) -> None:
        """Submitted -> validated: levels confirmed or adjusted with reasons, risks viewed.

        Only for needs found eligible, or with a recorded reason to go ahead (the rule is
        rules.eligibility.validation_basis); `eligibility_in_force` says whether the
        council's criteria apply today.
        """
        ensure_practitioner(caller, "validate an assessment")
        self.ensure_visible_to(caller)
        self._ensure_version(expected_version)
        self._ensure_awaiting_validation("validate")
        adjustments = self._adjustments(command.adjustments, questionnaire)
        risks = self._merged_risks(command.risks)
        _check_money("carer_support_weekly_pence", command.carer_support_weekly_pence)
        _check_funding(command.other_funding or ())
        try:
            basis = eligibility.validation_basis(
                self.eligibility, command.going_ahead, in_force=eligibility_in_force
            )
        except eligibility.NotYetValidatable as err:
            raise _GATE_REFUSALS[type(err)](str(err)) from err

        levels = dict(self.answers.domains)
        levels.update({a.domain: a.validated_level for a in adjustments})
        validation = Validation(
            domain_levels=levels,
            adjustments=adjustments,
            significant_informal_support=(
                self.answers.significant_informal_support
                if command.significant_informal_support is None
                else command.significant_informal_support
            ),
            needs_24_7=(
                self.answers.needs_24_7 if command.needs_24_7 is None else command.needs_24_7
            ),
            carer_support_weekly_pence=(
                self.answers.carer_support_weekly_pence
                if command.carer_support_weekly_pence is None
                else command.carer_support_weekly_pence
            ),
            other_funding=(
                self.answers.other_funding
                if command.other_funding is None
                else tuple(command.other_funding)
            ),
            risks=risks,
            validated_by=caller.record,
            validated_at=now,
            eligibility=basis,
        )
        self.validation = validation
        self.status = Status.VALIDATED
        self._record(Action.VALIDATED, caller, now)
        self.events.append(self._validated_event(validation))

    def _adjustments(
        self, changes: Sequence[LevelChange], questionnaire: Questionnaire
    ) -> tuple[Adjustment, ...]:
        _no_duplicates("adjustments.domain", (c.domain for c in changes))
        check_levels({c.domain: c.level for c in changes}, questionnaire)
        adjustments: list[Adjustment] = []
        for change in changes:
            original = self.answers.domains[change.domain]
            if change.level == original:
                continue  # confirmed as the person answered: nothing to adjust
            reason = change.reason.strip()
            if len(reason) < MIN_REASON_CHARS:
                raise ReasonRequired(change.domain, original, change.level)
            adjustments.append(Adjustment(change.domain, original, change.level, reason))
        return tuple(adjustments)

    def _merged_risks(self, views: Sequence[PractitionersRisk]) -> tuple[RiskRecord, ...]:
        _no_duplicates("risks.risk_id", (v.risk_id for v in views))
        by_id = {v.risk_id: v for v in views}
        persons_ids = {r.risk_id for r in self.answers.risks}
        merged: list[RiskRecord] = []
        for risk in self.answers.risks:
            view = by_id.get(risk.risk_id)
            merged.append(
                RiskRecord(
                    risk_id=risk.risk_id,
                    description=risk.description,
                    raised_by=RaisedBy.PERSON,
                    persons_view=risk.persons_view,
                    practitioners_view=view.practitioners_view if view else None,
                    flagged=view.flagged if view else False,
                )
            )
        for view in views:
            if view.risk_id in persons_ids:
                continue
            if view.description is None or _blank(view.description):
                raise NewRiskNeedsDescription(view.risk_id)
            merged.append(
                RiskRecord(
                    risk_id=view.risk_id,
                    description=view.description.strip(),
                    raised_by=RaisedBy.PRACTITIONER,
                    persons_view=None,
                    practitioners_view=view.practitioners_view,
                    flagged=view.flagged,
                )
            )
        return tuple(merged)

    def _validated_event(self, validation: Validation) -> AssessmentValidated:
        return AssessmentValidated(
            person_id=self.person_id,
            council=self.council,
            assessment_id=self.assessment_id,
            client_group=self.client_group,
            completed_by=self.completed_by,
            team=self.team,
            key_worker_id=self.key_worker_id,
            age_band=self.age_band,
            community_based=self.community_based,
            domain_levels=dict(validation.domain_levels),
            adjustments=[
                LevelAdjustment(
                    domain=a.domain,
                    original_level=a.original_level,
                    validated_level=a.validated_level,
                    reason=a.reason,
                )
                for a in validation.adjustments
            ],
            significant_informal_support=validation.significant_informal_support,
            needs_24_7=validation.needs_24_7,
            carer_support_weekly_pence=validation.carer_support_weekly_pence,
            other_funding=[
                OtherFunding(source=f.source, weekly_pence=f.weekly_pence)
                for f in validation.other_funding
            ],
            outcomes=list(self.answers.outcomes),
            risks=[
                Risk(
                    risk_id=r.risk_id,
                    description=r.description,
                    flagged=r.flagged,
                    persons_view=r.persons_view,
                    practitioners_view=r.practitioners_view,
                )
                for r in validation.risks
            ],
            validated_by=validation.validated_by,
            policy_version=self.policy_version,
            eligibility=validation.eligibility,
        )


# --- Care Act eligibility and the financial assessment (docs/charging.md) --------------------


class NoEligibilityCriteria(AssessmentError, errors.Conflict):
    def __init__(self, policy: Policy, on: date) -> None:
        super().__init__(
            f"policy {policy.policy_version} has no Care Act eligibility criteria in force on "
            f"{on.isoformat()}; a policy version carrying them must be adopted first"
        )


class NoChargingFigures(AssessmentError, errors.Conflict):
    def __init__(self, policy: Policy) -> None:
        super().__init__(
            f"policy {policy.policy_version} has no charging figures; a policy version "
            "carrying them must be adopted before a financial assessment"
        )


class OutcomeNamedTwice(AssessmentError, errors.Invalid):
    def __init__(self, outcome: EligibilityOutcome) -> None:
        super().__init__(
            f"outcomes: {outcome.value!r} is named twice; give all its difficulties once"
        )


class FinancialDetailsMissing(AssessmentError, errors.Invalid):
    """A full or light-touch assessment without what it needs."""


class FinancialReasonRequired(AssessmentError, errors.Invalid):
    def __init__(self, outcome: FinancialAssessmentOutcome) -> None:
        super().__init__(f"reason: a {outcome.value} financial assessment needs a reason")


class ChargingInputRefused(AssessmentError, errors.Invalid):
    """The policy's charging figures cannot assess these inputs (an unknown kind of
    income or capital, a circumstance without a Minimum Income Guarantee, a figure not yet
    in force); the message names which."""


class UnknownIncomeKind(ChargingInputRefused):
    pass


class UnknownCapitalKind(ChargingInputRefused):
    pass


class UnknownCircumstance(ChargingInputRefused):
    pass


class UnknownPremium(ChargingInputRefused):
    pass


class FigureNotInForce(ChargingInputRefused):
    pass


class NominalChargeMissing(ChargingInputRefused):
    pass


def eligibility_event(
    *,
    assessment: Assessment,
    determination_id: UUID,
    decision: Determination,
    needs_from_impairment_or_illness: bool,
    significant_impact_on_wellbeing: bool,
    caller: Caller,
    on: date,
    policy: Policy,
) -> EligibilityDetermined:
    """The determination as the event the audit keeps."""
    return EligibilityDetermined(
        person_id=assessment.person_id,
        council=assessment.council,
        determination_id=determination_id,
        assessment_id=assessment.assessment_id,
        needs_from_impairment_or_illness=needs_from_impairment_or_illness,
        outcomes_not_achieved=[
            OutcomeNotAchieved(outcome=outcome, difficulties=list(difficulties))
            for outcome, difficulties in decision.outcomes_not_achieved
        ],
        significant_impact_on_wellbeing=significant_impact_on_wellbeing,
        eligible=decision.eligible,
        outcomes_needed=decision.outcomes_needed,
        reasons=list(decision.reasons),
        determined_by=caller.record,
        determined_on=on,
        policy_version=policy.policy_version,
    )


class FinancialPath(StrEnum):
    """Which financial assessment is asked for; a full one may find a full-cost payer."""

    FULL = "full"
    LIGHT_TOUCH = "light_touch"
    DEFERRED = "deferred"
    REFUSED = "refused"


@dataclass(frozen=True)
class AssessFinances:
    path: FinancialPath
    cost_of_support_weekly_pence: int | None = None
    capital: tuple[charging.Amount, ...] = ()
    income_weekly: tuple[charging.Amount, ...] = ()
    mig_circumstance: str | None = None
    children: int = 0
    premiums: tuple[str, ...] = ()
    housing_costs_weekly_pence: int = 0
    disability_related_expenditure: tuple[charging.Expenditure, ...] = ()
    light_touch_basis: LightTouchBasis | None = None
    nominal_charge_weekly_pence: int | None = None
    reason: str | None = None


_REFUSALS: dict[type[charging.ChargingRefused], type[ChargingInputRefused]] = {
    charging.UnknownIncomeKind: UnknownIncomeKind,
    charging.UnknownCapitalKind: UnknownCapitalKind,
    charging.UnknownCircumstance: UnknownCircumstance,
    charging.UnknownPremium: UnknownPremium,
    charging.FigureNotInForce: FigureNotInForce,
    charging.NominalChargeMissing: NominalChargeMissing,
}


def _amounts(treated: Iterable[charging.AssessedAmount]) -> list[AssessedAmount]:
    return [AssessedAmount(kind=a.kind, pence=a.pence, counted=a.counted) for a in treated]


def financial_assessment_event(
    *,
    assessment: Assessment,
    financial_assessment_id: UUID,
    command: AssessFinances,
    figures: Charging,
    caller: Caller,
    on: date,
    policy: Policy,
    uprating_of: UUID | None = None,
) -> FinancialAssessmentCompleted:
    """Assess the person's finances as the rules say, as the event the audit keeps.

    A deferred or refused assessment sets no charge and says why; a light-touch one sets
    the charge its basis gives; a full one every figure, line by line. The charge applies
    from `on`; an uprating names the assessment it restates.
    """
    fields: dict[str, Any] = {
        "person_id": assessment.person_id,
        "council": assessment.council,
        "financial_assessment_id": financial_assessment_id,
        "assessment_id": assessment.assessment_id,
        "assessed_on": on,
        "cost_of_support_weekly_pence": command.cost_of_support_weekly_pence,
        "capital": [],
        "capital_counted_pence": 0,
        "tariff_income_weekly_pence": 0,
        "income_weekly": [],
        "income_counted_weekly_pence": 0,
        "mig_circumstance": None,
        "minimum_income_guarantee_weekly_pence": 0,
        "housing_costs_weekly_pence": 0,
        "disability_related_expenditure": [],
        "disability_related_expenditure_weekly_pence": 0,
        "weekly_charge_pence": None,
        "lines": [],
        "figures_to_confirm": [],
        "reason": command.reason,
        "assessed_by": caller.record,
        "policy_version": policy.policy_version,
        "applies_from": on,
        "uprating_of": uprating_of,
    }
    path = command.path
    if path in (FinancialPath.DEFERRED, FinancialPath.REFUSED):
        outcome = FinancialAssessmentOutcome(path.value)
        if not command.reason:
            raise FinancialReasonRequired(outcome)
        return FinancialAssessmentCompleted(**fields, outcome=outcome)
    cost = command.cost_of_support_weekly_pence
    if cost is None:
        raise FinancialDetailsMissing(
            "cost_of_support_weekly_pence: the weekly cost of the support is needed, as the "
            "charge is never above it"
        )
    try:
        if path is FinancialPath.LIGHT_TOUCH:
            return _light_touch(command, cost, fields)
        if command.mig_circumstance is None:
            raise FinancialDetailsMissing(
                "mig_circumstance: a full assessment needs the person's circumstance for the "
                "Minimum Income Guarantee; one of: "
                + ", ".join(sorted(figures.minimum_income_guarantee))
            )
        result = charging.assess(
            charging.FinancialCircumstances(
                cost_of_support_weekly_pence=cost,
                capital=command.capital,
                income_weekly=command.income_weekly,
                mig_circumstance=command.mig_circumstance,
                children=command.children,
                premiums=command.premiums,
                housing_costs_weekly_pence=command.housing_costs_weekly_pence,
                disability_related_expenditure=command.disability_related_expenditure,
            ),
            figures,
            on,
        )
    except charging.ChargingRefused as err:
        raise _REFUSALS.get(type(err), ChargingInputRefused)(str(err)) from err
    return FinancialAssessmentCompleted(
        **{
            **fields,
            "capital": _amounts(result.capital),
            "capital_counted_pence": result.capital_counted_pence,
            "tariff_income_weekly_pence": result.tariff_income_weekly_pence,
            "income_weekly": _amounts(result.income_weekly),
            "income_counted_weekly_pence": result.income_counted_weekly_pence,
            "mig_circumstance": command.mig_circumstance,
            "mig_children": command.children,
            "mig_premiums": list(command.premiums),
            "minimum_income_guarantee_weekly_pence": result.minimum_income_guarantee_weekly_pence,
            "housing_costs_weekly_pence": result.housing_costs_weekly_pence,
            "disability_related_expenditure": [
                ExpenditureItem(description=i.description, weekly_pence=i.weekly_pence)
                for i in command.disability_related_expenditure
            ],
            "disability_related_expenditure_weekly_pence": (
                result.disability_related_expenditure_weekly_pence
            ),
            "weekly_charge_pence": result.weekly_charge_pence,
            "lines": [
                ChargeLine(label=line.label, weekly_pence=line.weekly_pence, source=line.source)
                for line in result.lines
            ],
            "figures_to_confirm": list(result.figures_to_confirm),
        },
        outcome=(
            FinancialAssessmentOutcome.FULL_COST_PAYER
            if result.full_cost_payer
            else FinancialAssessmentOutcome.ASSESSED
        ),
    )


def _light_touch(
    command: AssessFinances, cost: int, fields: dict[str, Any]
) -> FinancialAssessmentCompleted:
    basis = command.light_touch_basis
    if basis is None:
        raise FinancialDetailsMissing(
            "light_touch_basis: say why a light-touch assessment will do: "
            + ", ".join(b.value for b in LightTouchBasis)
        )
    if not command.reason:
        raise FinancialReasonRequired(FinancialAssessmentOutcome.LIGHT_TOUCH)
    charge = charging.light_touch_charge_pence(basis, cost, command.nominal_charge_weekly_pence)
    return FinancialAssessmentCompleted(
        **{
            **fields,
            "weekly_charge_pence": charge,
            "lines": [
                ChargeLine(
                    label=f"Light-touch assessment ({basis.value.replace('_', ' ')})",
                    weekly_pence=charge,
                    source="Care and Support Statutory Guidance, Annex C",
                ),
                ChargeLine(label="Your weekly charge", weekly_pence=charge),
            ],
        },
        outcome=FinancialAssessmentOutcome.LIGHT_TOUCH,
        light_touch_basis=basis,
    )


def finances_document(command: AssessFinances) -> dict[str, Any]:
    """What a full assessment was told, as a document to seal and recalculate from."""
    return {
        "cost_of_support_weekly_pence": command.cost_of_support_weekly_pence,
        "capital": [[a.kind, a.pence] for a in command.capital],
        "income_weekly": [[a.kind, a.pence] for a in command.income_weekly],
        "mig_circumstance": command.mig_circumstance,
        "children": command.children,
        "premiums": list(command.premiums),
        "housing_costs_weekly_pence": command.housing_costs_weekly_pence,
        "disability_related_expenditure": [
            [e.description, e.weekly_pence] for e in command.disability_related_expenditure
        ],
    }


def finances_from_document(document: Mapping[str, Any]) -> AssessFinances:
    """The full assessment `finances_document` kept, to be assessed again."""
    return AssessFinances(
        path=FinancialPath.FULL,
        cost_of_support_weekly_pence=document["cost_of_support_weekly_pence"],
        capital=tuple(charging.Amount(kind, pence) for kind, pence in document["capital"]),
        income_weekly=tuple(
            charging.Amount(kind, pence) for kind, pence in document["income_weekly"]
        ),
        mig_circumstance=document["mig_circumstance"],
        children=document["children"],
        premiums=tuple(document["premiums"]),
        housing_costs_weekly_pence=document["housing_costs_weekly_pence"],
        disability_related_expenditure=tuple(
            charging.Expenditure(description, pence)
            for description, pence in document["disability_related_expenditure"]
        ),
    )


def charging_changed(before: Policy | None, after: Policy) -> bool:
    """Whether `after`'s charging figures differ from those an assessment used."""
    return before is None or before.charging != after.charging
