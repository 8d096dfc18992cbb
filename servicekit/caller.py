"""Who is acting, as every service's domain needs to know it.

The one caller type: servicekit.auth builds it from a verified bearer token (`Caller.of`)
for a person or member of staff; a service builds it directly when it acts on an event for
someone (a review completed by someone else, recorded under their name). `record` is what
state changes and events store as "who".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, Role


@dataclass(frozen=True)
class Caller:
    record: str
    """``role:user_id``, as history rows and events record the one who acted."""
    role: Role
    council: str
    person_id: str | None = None
    """The person a citizen's token speaks for (their own id, or the one they represent)."""

    @classmethod
    def of(cls, *, user_id: str, role: Role, council: str, person_id: str | None = None) -> Caller:
        """The caller a token names: its subject in its role, of its council."""
        return cls(
            record=f"{role.value}:{user_id}", role=role, council=council, person_id=person_id
        )

    @property
    def user_id(self) -> str:
        """The token's subject (what `record` holds after the role)."""
        return self.record.partition(":")[2]

    def as_record(self) -> str:
        return self.record

    @property
    def is_citizen(self) -> bool:
        return self.role in CITIZEN_ROLES

    @property
    def is_practitioner(self) -> bool:
        return self.role in PRACTITIONER_ROLES


class Someone(Protocol):
    """Anyone acting (a Caller, or a test's stand-in): their role and, for a person or
    representative, whose records they speak for."""

    @property
    def role(self) -> Role: ...

    @property
    def council(self) -> str: ...

    @property
    def person_id(self) -> str | None: ...


def may_see(who: Someone, council: str, person_id: str) -> bool:
    """Staff see their own council's records; a person or representative only their own.
    Anything else is answered as not found, so it says nothing of who is on file."""
    if who.council != council:
        return False
    return who.role not in CITIZEN_ROLES or who.person_id == person_id


def asks_for_another_person(who: Someone, person_id: str | None) -> bool:
    """A person or representative filtering a list by someone else's id: the list is empty,
    as if that person had no records here."""
    return who.role in CITIZEN_ROLES and person_id is not None and person_id != who.person_id


def person_listed(who: Someone, person_id: str | None) -> str | None:
    """Whose records a list holds: a person or representative's only ever their own; staff's
    the person they named (None: everyone in their council)."""
    return who.person_id if who.role in CITIZEN_ROLES else person_id
