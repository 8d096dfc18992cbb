"""Every published event type, its topic, and the upcasters from older versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import events as ev

UpcastFn = Callable[[dict[str, Any]], dict[str, Any]]

TOPIC_PREFIX = "pb."
DEAD_LETTER_TOPIC = "pb.dead-letter"

EVENT_CLASSES: tuple[type[ev.Event], ...] = (
    ev.AssessmentStarted,
    ev.AssessmentSubmitted,
    ev.AssessmentReturned,
    ev.AssessmentValidated,
    ev.EligibilityDetermined,
    ev.FinancialAssessmentCompleted,
    ev.PersonalDetailsRecorded,
    ev.PersonalDataErased,
    ev.BudgetIssued,
    ev.PolicyAdopted,
    ev.PlanSubmitted,
    ev.PlanReturned,
    ev.PlanSignedOff,
    ev.ReviewScheduled,
    ev.ReviewDue,
    ev.ReviewCompleted,
    ev.DeploymentSetUp,
    ev.AgreementSigned,
    ev.ArrearsApproved,
    ev.PaymentScheduled,
    ev.PaymentReleased,
    ev.PaymentConfirmed,
    ev.PaymentFailed,
    ev.ClawbackRaised,
    ev.PaymentsSuspended,
    ev.PaymentsResumed,
    ev.DeploymentSwitched,
    ev.DeploymentSuperseded,
    ev.ReturnSubmitted,
    ev.CardTransactionsImported,
    ev.CardSurplusFlagged,
    ev.RecoupNoticeSent,
    ev.RecoupResponseRecorded,
    ev.CardFundsRecouped,
    ev.ContributionRecalculated,
    ev.BudgetStatementIssued,
    ev.BudgetStatementChallenged,
    ev.StatementChallengeAnswered,
    ev.OperatorActionRecorded,
    ev.TamperDetected,
    ev.TamperAcknowledged,
)

"""The current version of every event: what producers publish and consumers handle."""

SUPERSEDED_CLASSES: tuple[type[ev.Event], ...] = (
    ev.ReviewScheduledV1,
    ev.ReviewScheduledV2,
    ev.ReviewDueV1,
    ev.AssessmentValidatedV1,
    ev.FinancialAssessmentCompletedV1,
)
"""Older published versions: never produced again, read only through UPCASTERS."""

BY_TYPE: dict[str, type[ev.Event]] = {cls.type: cls for cls in EVENT_CLASSES}
"""Current type -> class; decode upcasts anything older to one of these."""


def _version(cls: type[ev.Event]) -> int:
    """pb.planning.review-scheduled.v2 -> 2."""
    return int(cls.type.rsplit(".v", 1)[1])


def _event_name(cls: type[ev.Event]) -> str:
    """pb.planning.review-scheduled.v2 -> pb.planning.review-scheduled."""
    return cls.type.rsplit(".v", 1)[0]


PUBLISHED_CLASSES: tuple[type[ev.Event], ...] = tuple(
    version
    for current in EVENT_CLASSES
    for version in sorted(
        (c for c in (*SUPERSEDED_CLASSES, current) if _event_name(c) == _event_name(current)),
        key=_version,
    )
)
"""Every version ever published, oldest first within an event: each keeps its schema file."""

PUBLISHED_BY_TYPE: dict[str, type[ev.Event]] = {cls.type: cls for cls in PUBLISHED_CLASSES}

V1_SCHEDULED_BY = "unknown (v1 event)"


def review_scheduled_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 did not say who booked the review; v2 requires it."""
    return {**data, "scheduled_by": V1_SCHEDULED_BY}


def with_more_review_kinds(data: dict[str, Any]) -> dict[str, Any]:
    """review-scheduled v3 and review-due v2 only add kinds (and, for v3, optional fields
    left empty): every older record is already valid as the newer version."""
    return dict(data)


def assessment_validated_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 was validated before eligibility was required: v2 leaves `eligibility` empty."""
    return dict(data)


def financial_assessment_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 did not record the children and premiums the guarantee counted (none: unknown);
    its charge applied from the day it was assessed, and restated nothing."""
    return {
        **data,
        "mig_children": None,
        "mig_premiums": None,
        "applies_from": data["assessed_on"],
    }


# Older type -> (newer type, function turning old data into new data). A consumer reading
# an old event walks this chain until it reaches a type it has a class for.
UPCASTERS: dict[str, tuple[str, UpcastFn]] = {
    ev.ReviewScheduledV1.type: (ev.ReviewScheduledV2.type, review_scheduled_v1_to_v2),
    ev.ReviewScheduledV2.type: (ev.ReviewScheduled.type, with_more_review_kinds),
    ev.ReviewDueV1.type: (ev.ReviewDue.type, with_more_review_kinds),
    ev.AssessmentValidatedV1.type: (ev.AssessmentValidated.type, assessment_validated_v1_to_v2),
    ev.FinancialAssessmentCompletedV1.type: (
        ev.FinancialAssessmentCompleted.type,
        financial_assessment_v1_to_v2,
    ),
}

PRODUCING_SERVICES = ("assessment", "allocation", "planning", "payments", "audit", "operations")
"""`operations` is the operators' command line (`pbj events`, `pbj dead-letters`): it
publishes the record of each action it takes, and audit keeps them. `audit` publishes
its own tamper findings and their acknowledgements."""


def topic_for_service(service: str) -> str:
    return f"{TOPIC_PREFIX}{service}"


def topic_for(event_cls: type[ev.Event]) -> str:
    return topic_for_service(event_cls.service)


ALL_TOPICS = tuple(topic_for_service(s) for s in PRODUCING_SERVICES)


class UnknownEventType(LookupError):
    pass


def upcast(event_type: str, data: dict[str, Any]) -> tuple[type[ev.Event], dict[str, Any]]:
    """Bring an event of any published version up to the class this code knows."""
    seen: set[str] = set()
    while event_type not in BY_TYPE:
        if event_type in seen or event_type not in UPCASTERS:
            raise UnknownEventType(event_type)
        seen.add(event_type)
        event_type, step = UPCASTERS[event_type]
        data = step(data)
    return BY_TYPE[event_type], data
