"""Assessment's use cases on a unit of work over dicts: who may start, answer, submit,
validate and return an assessment, and what each emits; no database or app.

Seed 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1. The HTTP
tests in test_api.py check the same rules through the routes.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from contracts.events import (
    AssessmentReturned,
    AssessmentStarted,
    AssessmentSubmitted,
    AssessmentValidated,
)
from contracts.policy import PolicyBook
from contracts.vocabulary import ClientGroup, Difficulty, EligibilityOutcome, Role
from servicekit.caller import Caller
from servicekit.testing import POLICIES_DIR
from services.assessment.domain import (
    Answers,
    AnswersLocked,
    AssessmentNotFound,
    DomainsUnanswered,
    NotAllowed,
    ReturnNeedsReasons,
    Status,
    ValidateAssessment,
)
from services.assessment.handlers import (
    answer_assessment,
    determine_eligibility,
    get_assessment,
    return_assessment,
    start_assessment,
    submit_assessment,
    validate_assessment,
)
from services.assessment.tests.fakes import FakeAssessmentUnitOfWork
from services.assessment.tests.test_domain import (
    CARE_MANAGER,
    FULL_ANSWERS,
    OTHER_COUNCIL,
    OTHER_PERSON,
    PERSON,
    answers,
    command,
)

POLICIES = PolicyBook.from_directory(POLICIES_DIR)


@pytest.fixture
def uow() -> FakeAssessmentUnitOfWork:
    return FakeAssessmentUnitOfWork()


async def started(uow: FakeAssessmentUnitOfWork, caller: Caller = PERSON) -> UUID:
    assessment = await start_assessment(
        uow=uow, policies=POLICIES, caller=caller, command=command()
    )
    return assessment.assessment_id


async def answered(uow: FakeAssessmentUnitOfWork, given: Answers | None = None) -> UUID:
    assessment_id = await started(uow)
    await answer_assessment(
        uow=uow,
        policies=POLICIES,
        caller=PERSON,
        assessment_id=assessment_id,
        answers=given or answers(),
        expected_version=None,
    )
    return assessment_id


async def submitted(uow: FakeAssessmentUnitOfWork) -> UUID:
    assessment_id = await answered(uow)
    await submit_assessment(
        uow=uow,
        policies=POLICIES,
        caller=PERSON,
        assessment_id=assessment_id,
        expected_version=None,
    )
    return assessment_id


async def found_eligible(uow: FakeAssessmentUnitOfWork, assessment_id: UUID) -> None:
    """A care manager records a determination that finds the needs eligible."""
    await determine_eligibility(
        uow=uow,
        policies=POLICIES,
        caller=CARE_MANAGER,
        assessment_id=assessment_id,
        needs_from_impairment_or_illness=True,
        outcomes={
            EligibilityOutcome.NUTRITION: [Difficulty.ONLY_WITH_ASSISTANCE],
            EligibilityOutcome.HOME_SAFELY: [Difficulty.ENDANGERS_HEALTH_OR_SAFETY],
        },
        significant_impact_on_wellbeing=True,
    )


async def validate(uow: FakeAssessmentUnitOfWork, assessment_id: UUID, caller: Caller) -> None:
    await found_eligible(uow, assessment_id)
    await validate_assessment(
        uow=uow,
        policies=POLICIES,
        caller=caller,
        assessment_id=assessment_id,
        command=ValidateAssessment(),
        expected_version=None,
    )


async def test_a_person_starts_their_own_assessment_under_their_councils_policy(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    await started(uow)
    [event] = uow.events(AssessmentStarted)
    assert (event.person_id, event.council, event.client_group) == (
        "P123",
        "lancashire",
        ClientGroup.LEARNING_DISABILITY,
    )


async def test_a_person_may_not_start_an_assessment_for_someone_else(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    with pytest.raises(NotAllowed, match="only for themselves"):
        await started(uow, OTHER_PERSON)
    assert uow.event_types == []


async def test_an_assessment_with_a_domain_unanswered_is_not_submitted(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    without_health = {k: v for k, v in FULL_ANSWERS.items() if k != "health"}
    assessment_id = await answered(uow, answers(without_health))
    with pytest.raises(DomainsUnanswered, match="health"):
        await submit_assessment(
            uow=uow,
            policies=POLICIES,
            caller=PERSON,
            assessment_id=assessment_id,
            expected_version=None,
        )
    assert uow.events(AssessmentSubmitted) == []


async def test_a_submitted_assessments_answers_are_locked(uow: FakeAssessmentUnitOfWork) -> None:
    assessment_id = await submitted(uow)
    with pytest.raises(AnswersLocked):
        await answer_assessment(
            uow=uow,
            policies=POLICIES,
            caller=PERSON,
            assessment_id=assessment_id,
            answers=answers(),
            expected_version=None,
        )
    assessment = await get_assessment(uow=uow, caller=PERSON, assessment_id=assessment_id)
    assert assessment.status is Status.SUBMITTED


async def test_only_a_practitioner_validates_and_the_validation_carries_the_levels(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    assessment_id = await submitted(uow)
    with pytest.raises(NotAllowed):
        await validate(uow, assessment_id, PERSON)
    assert uow.events(AssessmentValidated) == []
    await validate(uow, assessment_id, CARE_MANAGER)
    [validated] = uow.events(AssessmentValidated)
    # Seed 003 ch.2 Step 1 §ii: the levels the person gave, confirmed unchanged.
    assert validated.domain_levels == FULL_ANSWERS
    assert validated.validated_by == CARE_MANAGER.record


async def test_an_assessment_is_returned_to_the_person_only_with_reasons(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    assessment_id = await submitted(uow)
    with pytest.raises(ReturnNeedsReasons):
        await return_assessment(
            uow=uow,
            caller=CARE_MANAGER,
            assessment_id=assessment_id,
            reasons=[],
            expected_version=None,
        )
    assert uow.events(AssessmentReturned) == []
    await return_assessment(
        uow=uow,
        caller=CARE_MANAGER,
        assessment_id=assessment_id,
        reasons=["Personal care: tell us about mornings"],
        expected_version=None,
    )
    [returned] = uow.events(AssessmentReturned)
    assert returned.reasons == ["Personal care: tell us about mornings"]


async def test_another_councils_staff_cannot_find_the_assessment(
    uow: FakeAssessmentUnitOfWork,
) -> None:
    assessment_id = await submitted(uow)
    assert OTHER_COUNCIL.role is Role.CARE_MANAGER
    with pytest.raises(AssessmentNotFound):
        await validate(uow, assessment_id, OTHER_COUNCIL)
    assert uow.events(AssessmentValidated) == []
