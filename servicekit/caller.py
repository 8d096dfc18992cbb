"""Who is acting, as every service's domain needs to know it.

Built from the bearer token (`Actor.as_caller()`) for a person or member of staff, or
directly for the service itself acting on an event (a review completed by someone else,
recorded under their name). `record` is what state changes and events store as "who".
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, Role


@dataclass(frozen=True)
class Caller:
    record: str
    """``role:user_id``, as history rows and events record the one who acted."""
    role: Role
    council: str
    person_id: str | None = None
    """The person a citizen's token speaks for (their own id, or the one they represent)."""

    @property
    def is_citizen(self) -> bool:
        return self.role in CITIZEN_ROLES

    @property
    def is_practitioner(self) -> bool:
        return self.role in PRACTITIONER_ROLES
