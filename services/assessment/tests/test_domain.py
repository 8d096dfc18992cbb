"""Assessment's rules, unit by unit: pure, no database, no clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

import pytest

from contracts.events import (
    AssessmentReturned,
    AssessmentStarted,
    AssessmentSubmitted,
    AssessmentValidated,
    OtherFundingSource,
    ValidationBasis,
)
from contracts.policy import Policy, load_policy
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from rules.eligibility import DeterminationOnRecord, GoingAhead
from servicekit.caller import Caller
from servicekit.errors import StaleVersion
from servicekit.testing import POLICIES_DIR
from services.assessment.domain import (
    Answers,
    AnswersLocked,
    Assessment,
    AssessmentNotFound,
    ClientGroupNotOffered,
    DomainsUnanswered,
    DuplicateEntry,
    FundingLine,
    LevelChange,
    NeedsNotEligible,
    NewRiskNeedsDescription,
    NoEligibilityDetermination,
    NotAllowed,
    NotAwaitingSubmission,
    NotAwaitingValidation,
    PersonsRisk,
    PractitionersRisk,
    RaisedBy,
    ReasonRequired,
    ReturnNeedsReasons,
    StartAssessment,
    Status,
    UnknownDomain,
    UnknownLevel,
    ValidateAssessment,
    start,
)

NOW = datetime(2010, 6, 1, 9, 0, tzinfo=UTC)
LANCASHIRE = load_policy(POLICIES_DIR / "lancashire.yaml")
COUNCIL_C = load_policy(POLICIES_DIR / "council_c.yaml")
QUESTIONNAIRE = LANCASHIRE.questionnaire

PERSON = Caller(record="person:p-1", role=Role.PERSON, council="lancashire", person_id="P123")
OTHER_PERSON = Caller(record="person:p-2", role=Role.PERSON, council="lancashire", person_id="P9")
CARE_MANAGER = Caller(record="care_manager:cm-1", role=Role.CARE_MANAGER, council="lancashire")
FINANCE = Caller(record="finance:f-1", role=Role.FINANCE, council="lancashire")
OTHER_COUNCIL = Caller(record="care_manager:cm-9", role=Role.CARE_MANAGER, council="council_a")

# Seed 003 ch.2 Step 1 §ii: a person scoring the maximum in Staying Safe (30 points) and
# modest needs elsewhere.
FULL_ANSWERS = {
    "staying_safe": 5,
    "communication": 2,
    "work_leisure_learning": 3,
    "essential_living_tasks": 3,
    "personal_care": 4,
    "health": 2,
}


def command(**changes: object) -> StartAssessment:
    fields: dict[str, object] = {
        "person_id": "P123",
        "client_group": ClientGroup.LEARNING_DISABILITY,
        "completed_by": CompletedBy.SUPPORTED,
        "team": "Preston LD team",
        "key_worker_id": "kw-7",
        "age_band": AgeBand.AGE_18_64,
    }
    fields.update(changes)
    return StartAssessment(**fields)  # type: ignore[arg-type]


def draft(policy: Policy = LANCASHIRE, caller: Caller = PERSON, **changes: object) -> Assessment:
    return start(
        assessment_id=uuid.uuid4(),
        command=command(**changes),
        caller=caller,
        policy=policy,
        now=NOW,
    )


def answers(domains: dict[str, int] | None = None, **changes: object) -> Answers:
    fields: dict[str, object] = {
        "domains": FULL_ANSWERS if domains is None else domains,
        "significant_informal_support": True,
        "needs_24_7": False,
        "carer_support_weekly_pence": 5_000,
        "other_funding": (FundingLine(OtherFundingSource.INDEPENDENT_LIVING_FUND, 12_000),),
        "outcomes": ("Go to college two days a week",),
        "risks": (PersonsRisk("R1", "Crossing busy roads alone", "I can manage with a phone"),),
    }
    fields.update(changes)
    return Answers(**fields)  # type: ignore[arg-type]


def submitted() -> Assessment:
    assessment = draft()
    assessment.answer(answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assessment.submit(questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assessment.events.clear()
    return assessment


# --- the questionnaire is the council's, from its policy ----------------------------------


def test_lancashire_questionnaire_scores_the_seeds_maximum_and_minimum_points() -> None:
    # Seed 003 ch.2 Step 1 §ii: Staying Safe 30 & 5, Communication 5 & 1, Work, Leisure,
    # Learning 5 & 1, Essential Living Tasks 10 & 2, Personal Care 10 & 1, Health 10 & 2.
    points = {d.key: (d.max_points, d.min_points) for d in QUESTIONNAIRE.domains}
    assert points == {
        "staying_safe": (30, 5),
        "communication": (5, 1),
        "work_leisure_learning": (5, 1),
        "essential_living_tasks": (10, 2),
        "personal_care": (10, 1),
        "health": (10, 2),
    }


# --- starting -----------------------------------------------------------------------------


def test_a_started_assessment_is_a_draft_under_the_policy_in_force() -> None:
    assessment = draft()
    assert assessment.status is Status.DRAFT
    assert assessment.version == 1
    assert assessment.policy_version == "lancashire/2009.1"
    [event] = assessment.events
    assert isinstance(event, AssessmentStarted)
    assert event.completed_by is CompletedBy.SUPPORTED  # seeds 002, 004: who completed it
    assert event.policy_version == "lancashire/2009.1"


def test_a_person_may_start_an_assessment_only_for_themselves() -> None:
    with pytest.raises(NotAllowed):
        draft(caller=OTHER_PERSON)


def test_a_practitioner_may_start_an_assessment_for_anyone_in_their_council() -> None:
    assert draft(caller=CARE_MANAGER, person_id="P555").person_id == "P555"


def test_finance_may_not_start_an_assessment() -> None:
    with pytest.raises(NotAllowed):
        draft(caller=FINANCE)


def test_a_client_group_the_council_does_not_budget_for_is_refused() -> None:
    # Lancashire's policy leaves out carers (seed 003 never says carers hold a PB).
    with pytest.raises(ClientGroupNotOffered, match="carers"):
        draft(client_group=ClientGroup.CARERS)


def test_carers_may_hold_a_budget_in_their_own_right_where_the_council_says_so() -> None:
    # Seed 004 Council C: carers hold a PB in their own right.
    carer = Caller(record="person:c-1", role=Role.PERSON, council="council_c", person_id="P123")
    assessment = draft(policy=COUNCIL_C, caller=carer, client_group=ClientGroup.CARERS)
    assert assessment.client_group is ClientGroup.CARERS


# --- answering ----------------------------------------------------------------------------


def test_partial_answers_are_allowed_while_drafting() -> None:
    assessment = draft()
    assessment.answer(
        answers({"staying_safe": 2}), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW
    )
    assert assessment.answers.domains == {"staying_safe": 2}
    assert assessment.version == 2
    assert assessment.events[1:] == []  # only AssessmentStarted: answering emits nothing


def test_an_answer_for_an_unknown_domain_is_refused_naming_it() -> None:
    assessment = draft()
    with pytest.raises(UnknownDomain, match="Flying"):
        assessment.answer(
            answers({"Flying": 3}), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW
        )
    assert assessment.answers.domains == {}
    assert assessment.version == 1


def test_a_level_the_domain_does_not_have_is_refused_naming_the_domain() -> None:
    # Seed 003 ch.2 Step 1: "roughly five levels"; Lancashire's policy has 1-5.
    assessment = draft()
    with pytest.raises(UnknownLevel, match=r"staying_safe.*level 6"):
        assessment.answer(
            answers({"staying_safe": 6}), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW
        )


def test_the_same_risk_twice_is_refused() -> None:
    risk = PersonsRisk("R1", "Falls at night")
    with pytest.raises(DuplicateEntry, match="R1"):
        draft().answer(
            answers(risks=(risk, risk)), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW
        )


def test_finance_may_not_answer_for_a_person() -> None:
    with pytest.raises(NotAllowed):
        draft().answer(answers(), questionnaire=QUESTIONNAIRE, caller=FINANCE, now=NOW)


def test_someone_elses_assessment_is_not_found_for_a_person() -> None:
    with pytest.raises(AssessmentNotFound):
        draft().answer(answers(), questionnaire=QUESTIONNAIRE, caller=OTHER_PERSON, now=NOW)


def test_another_councils_assessment_is_not_found() -> None:
    with pytest.raises(AssessmentNotFound):
        draft().answer(answers(), questionnaire=QUESTIONNAIRE, caller=OTHER_COUNCIL, now=NOW)


def test_a_stale_expected_version_is_refused() -> None:
    assessment = draft()
    assessment.answer(answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    with pytest.raises(StaleVersion, match=r"version 1.*version 2"):
        assessment.answer(
            answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW, expected_version=1
        )


# --- submitting ---------------------------------------------------------------------------


def test_every_domain_must_be_answered_before_submitting() -> None:
    assessment = draft()
    assessment.answer(
        answers({"staying_safe": 5, "health": 2}),
        questionnaire=QUESTIONNAIRE,
        caller=PERSON,
        now=NOW,
    )
    with pytest.raises(DomainsUnanswered) as refused:
        assessment.submit(questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assert refused.value.missing == [
        "communication",
        "work_leisure_learning",
        "essential_living_tasks",
        "personal_care",
    ]
    assert assessment.status is Status.DRAFT


def test_a_submitted_assessment_carries_the_persons_answers() -> None:
    assessment = draft()
    assessment.answer(answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assessment.submit(questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assert assessment.status is Status.SUBMITTED
    event = assessment.events[-1]
    assert isinstance(event, AssessmentSubmitted)
    assert event.answers == FULL_ANSWERS


def test_a_submitted_assessment_cannot_be_submitted_again() -> None:
    with pytest.raises(NotAwaitingSubmission):
        submitted().submit(questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)


def test_answers_are_locked_while_waiting_for_validation() -> None:
    with pytest.raises(AnswersLocked, match="return it for changes"):
        submitted().answer(answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)


# --- returning ----------------------------------------------------------------------------


def test_a_returned_assessment_can_be_changed_and_submitted_again() -> None:
    assessment = submitted()
    assessment.return_for_changes(
        ["Please check Personal Care: you told us you dress yourself"],
        caller=CARE_MANAGER,
        now=NOW,
    )
    assert assessment.status is Status.RETURNED
    [event] = assessment.events
    assert isinstance(event, AssessmentReturned)
    assert event.returned_by == "care_manager:cm-1"
    assessment.answer(
        answers({**FULL_ANSWERS, "personal_care": 2}),
        questionnaire=QUESTIONNAIRE,
        caller=PERSON,
        now=NOW,
    )
    assessment.submit(questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
    assert [h.status for h in assessment.history] == [
        Status.DRAFT,
        Status.DRAFT,
        Status.SUBMITTED,
        Status.RETURNED,
        Status.RETURNED,
        Status.SUBMITTED,
    ]


def test_returning_needs_a_reason_in_words() -> None:
    with pytest.raises(ReturnNeedsReasons):
        submitted().return_for_changes(["   "], caller=CARE_MANAGER, now=NOW)


def test_a_person_may_not_return_their_own_assessment() -> None:
    with pytest.raises(NotAllowed):
        submitted().return_for_changes(["because"], caller=PERSON, now=NOW)


def test_a_draft_cannot_be_returned() -> None:
    with pytest.raises(NotAwaitingValidation, match="still a draft"):
        draft().return_for_changes(["because"], caller=CARE_MANAGER, now=NOW)


# --- validating ---------------------------------------------------------------------------


FOUND_ELIGIBLE = DeterminationOnRecord(UUID(int=1), eligible=True, determined_on=NOW.date())


def validate(assessment: Assessment, **changes: object) -> None:
    """Validate as a care manager, after a determination found the needs eligible."""
    assessment.eligibility = assessment.eligibility or FOUND_ELIGIBLE
    assessment.validate(
        ValidateAssessment(**changes),  # type: ignore[arg-type]
        questionnaire=QUESTIONNAIRE,
        caller=CARE_MANAGER,
        now=NOW,
        eligibility_in_force=True,
    )


def test_needs_found_not_eligible_are_not_validated_without_a_reason() -> None:
    assessment = submitted()
    assessment.eligibility = DeterminationOnRecord(UUID(int=2), False, NOW.date())
    with pytest.raises(NeedsNotEligible, match="urgent_need"):
        assessment.validate(
            ValidateAssessment(),
            questionnaire=QUESTIONNAIRE,
            caller=CARE_MANAGER,
            now=NOW,
            eligibility_in_force=True,
        )
    assert assessment.status is Status.SUBMITTED and assessment.events == []


def test_no_determination_and_no_reason_is_refused() -> None:
    assessment = submitted()
    with pytest.raises(NoEligibilityDetermination, match="record the determination first"):
        assessment.validate(
            ValidateAssessment(),
            questionnaire=QUESTIONNAIRE,
            caller=CARE_MANAGER,
            now=NOW,
            eligibility_in_force=True,
        )


def test_urgent_need_goes_ahead_and_the_reason_travels_on_the_event() -> None:
    assessment = submitted()
    assessment.eligibility = DeterminationOnRecord(UUID(int=2), False, NOW.date())
    urgent = GoingAhead(ValidationBasis.URGENT_NEED, "Discharged from hospital tonight")
    assessment.validate(
        ValidateAssessment(going_ahead=urgent),
        questionnaire=QUESTIONNAIRE,
        caller=CARE_MANAGER,
        now=NOW,
        eligibility_in_force=True,
    )
    [event] = assessment.events
    assert isinstance(event, AssessmentValidated) and event.eligibility is not None
    assert event.eligibility.basis is ValidationBasis.URGENT_NEED
    assert event.eligibility.explanation == "Discharged from hospital tonight"
    assert event.eligibility.determination_id == UUID(int=2)
    assert event.eligibility.determined_eligible is False


def test_a_draft_cannot_be_validated() -> None:
    with pytest.raises(NotAwaitingValidation, match="still a draft"):
        validate(draft())


def test_only_a_practitioner_may_validate() -> None:
    assessment = submitted()
    with pytest.raises(NotAllowed):
        assessment.validate(
            ValidateAssessment(),
            questionnaire=QUESTIONNAIRE,
            caller=PERSON,
            now=NOW,
            eligibility_in_force=True,
        )
    assert assessment.status is Status.SUBMITTED


def test_validation_without_changes_confirms_the_persons_levels() -> None:
    assessment = submitted()
    validate(assessment)
    assert assessment.status is Status.VALIDATED
    [event] = assessment.events
    assert isinstance(event, AssessmentValidated)
    assert event.domain_levels == FULL_ANSWERS
    assert event.adjustments == []
    assert event.validated_by == "care_manager:cm-1"
    assert event.policy_version == "lancashire/2009.1"


def test_an_over_egged_level_is_adjusted_keeping_the_original_and_a_reason() -> None:
    # Seed 003 ch.5 §9: people may "over-egg" the SRQ; here Staying Safe at its 30-point
    # maximum is validated down to level 3.
    assessment = submitted()
    reason = "Goes out alone daily; needs someone nearby only in the evening"
    validate(assessment, adjustments=(LevelChange("staying_safe", 3, reason),))
    [event] = assessment.events
    assert isinstance(event, AssessmentValidated)
    assert event.domain_levels["staying_safe"] == 3
    [adjustment] = event.adjustments
    assert (adjustment.original_level, adjustment.validated_level) == (5, 3)
    assert adjustment.reason == reason
    assert assessment.answers.domains["staying_safe"] == 5  # the person's answer stays


def test_an_adjusted_level_without_a_reason_is_refused() -> None:
    assessment = submitted()
    with pytest.raises(ReasonRequired, match="staying_safe"):
        validate(assessment, adjustments=(LevelChange("staying_safe", 3),))
    with pytest.raises(ReasonRequired):
        validate(assessment, adjustments=(LevelChange("staying_safe", 3, " ok "),))
    assert assessment.status is Status.SUBMITTED
    assert assessment.validation is None


def test_confirming_a_level_needs_no_reason_and_is_no_adjustment() -> None:
    assessment = submitted()
    validate(assessment, adjustments=(LevelChange("staying_safe", 5),))
    assert assessment.validation is not None
    assert assessment.validation.adjustments == ()


def test_an_under_egged_level_can_be_raised() -> None:
    # Seed 003 ch.5 §9: "Under-egging is also a risk".
    assessment = submitted()
    validate(
        assessment,
        adjustments=(LevelChange("health", 4, "Seizures several times a week, needs support"),),
    )
    assert assessment.validation is not None
    assert assessment.validation.domain_levels["health"] == 4


def test_an_adjustment_to_an_unknown_domain_or_level_is_refused() -> None:
    assessment = submitted()
    with pytest.raises(UnknownDomain, match="Flying"):
        validate(assessment, adjustments=(LevelChange("Flying", 1, "a long reason"),))
    with pytest.raises(UnknownLevel, match="health"):
        validate(assessment, adjustments=(LevelChange("health", 0, "a long reason"),))


def test_the_same_domain_adjusted_twice_is_refused() -> None:
    change = LevelChange("health", 4, "a long reason")
    with pytest.raises(DuplicateEntry, match="health"):
        validate(submitted(), adjustments=(change, change))


def test_the_persons_and_the_practitioners_views_of_a_risk_are_kept_apart() -> None:
    # Seed 004 §7.2: record choice and safety when the person's and practitioner's views differ.
    assessment = submitted()
    validate(
        assessment,
        risks=(
            PractitionersRisk("R1", "Has been hit by a car before", flagged=True),
            PractitionersRisk(
                "R2", "Leaves the gas on", flagged=True, description="Cooking unsupervised"
            ),
        ),
    )
    [event] = assessment.events
    assert isinstance(event, AssessmentValidated)
    roads, gas = event.risks
    assert roads.persons_view == "I can manage with a phone"
    assert roads.practitioners_view == "Has been hit by a car before"
    assert roads.flagged
    assert gas.persons_view is None and gas.description == "Cooking unsupervised"
    assert [r.raised_by for r in assessment.risks] == [RaisedBy.PERSON, RaisedBy.PRACTITIONER]


def test_a_risk_the_person_did_not_record_needs_a_description() -> None:
    with pytest.raises(NewRiskNeedsDescription, match="R9"):
        validate(submitted(), risks=(PractitionersRisk("R9", "Concerned", flagged=False),))


def test_carer_support_and_other_funding_can_be_corrected_at_validation() -> None:
    # Seed 004 Council C: carer support is valued and reduces the money, never the points.
    assessment = submitted()
    validate(assessment, carer_support_weekly_pence=7_500, other_funding=())
    [event] = assessment.events
    assert isinstance(event, AssessmentValidated)
    assert event.carer_support_weekly_pence == 7_500
    assert event.other_funding == []
    assert event.domain_levels == FULL_ANSWERS
    assert assessment.answers.carer_support_weekly_pence == 5_000  # as the person said


def test_a_validated_assessment_is_final() -> None:
    assessment = submitted()
    validate(assessment)
    with pytest.raises(NotAwaitingValidation, match="already been validated"):
        validate(assessment)
    with pytest.raises(AnswersLocked, match="validated"):
        assessment.answer(answers(), questionnaire=QUESTIONNAIRE, caller=PERSON, now=NOW)
