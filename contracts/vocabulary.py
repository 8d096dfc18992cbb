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
