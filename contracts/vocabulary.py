"""Words every service and event shares: client groups, roles, who completed a form."""

from __future__ import annotations

from enum import StrEnum


class ClientGroup(StrEnum):
    """The client groups councils budget for (seed 004, Appendix 1)."""

    OLDER_PEOPLE = "older_people"
    PHYSICAL_DISABILITY = "physical_disability"
    LEARNING_DISABILITY = "learning_disability"
    MENTAL_HEALTH = "mental_health"
    CARERS = "carers"


class Role(StrEnum):
    """Who a caller is; the bearer token carries one of these."""

    PERSON = "person"
    REPRESENTATIVE = "representative"
    CARE_MANAGER = "care_manager"
    TEAM_MANAGER = "team_manager"
    PANEL = "panel"
    FINANCE = "finance"
    AUDITOR = "auditor"
    OPERATIONS = "operations"


STAFF_ROLES = frozenset(
    {Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL, Role.FINANCE, Role.AUDITOR, Role.OPERATIONS}
)
PRACTITIONER_ROLES = frozenset({Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL})
CITIZEN_ROLES = frozenset({Role.PERSON, Role.REPRESENTATIVE})


class CompletedBy(StrEnum):
    """Who filled in the self-assessment (seeds 002, 004)."""

    SELF = "self"
    SUPPORTED = "supported"
    PRACTITIONER = "practitioner"


class AgeBand(StrEnum):
    """Events carry an age band, never a date of birth."""

    AGE_18_64 = "18-64"
    AGE_65_74 = "65-74"
    AGE_75_84 = "75-84"
    AGE_85_PLUS = "85+"


class EligibilityOutcome(StrEnum):
    """The ten specified outcomes of the Care and Support (Eligibility Criteria)
    Regulations 2015, reg. 2(2)(a)-(j), in the regulation's order."""

    NUTRITION = "managing_and_maintaining_nutrition"
    PERSONAL_HYGIENE = "maintaining_personal_hygiene"
    TOILET_NEEDS = "managing_toilet_needs"
    CLOTHED = "being_appropriately_clothed"
    HOME_SAFELY = "using_the_home_safely"
    HABITABLE_HOME = "maintaining_a_habitable_home"
    RELATIONSHIPS = "family_and_other_relationships"
    WORK_TRAINING_EDUCATION = "work_training_education_or_volunteering"
    COMMUNITY_FACILITIES = "using_community_facilities_and_transport"
    CARING_FOR_A_CHILD = "caring_responsibilities_for_a_child"


class Difficulty(StrEnum):
    """Why an outcome cannot be achieved (Eligibility Criteria Regulations 2015, reg. 2(3)).

    reg. 2(3)(a) "unable to achieve it without assistance" covers both `cannot` (not even
    with help) and `only_with_assistance`; the other three are (b), (c) and (d)."""

    CANNOT = "cannot"
    ONLY_WITH_ASSISTANCE = "only_with_assistance"
    SIGNIFICANT_PAIN_DISTRESS_OR_ANXIETY = "significant_pain_distress_or_anxiety"
    ENDANGERS_HEALTH_OR_SAFETY = "endangers_health_or_safety"
    TAKES_SIGNIFICANTLY_LONGER = "takes_significantly_longer"
