"""Importing people from a CareFirst-style client extract (layout: docs/integrations.md).

Pure: no I/O. Each row is checked against the layout and the council's policy; every
fault is reported with its line, column and reason. A file with any refused row imports
nobody (ADR 0013). A row whose legacy client id was imported before creates nothing new,
so the same extract can be imported again.

Personal data (name, date of birth, NHS number, postcode) is checked here and handed to
the start of the assessment only through `personal_details_from_row`; nothing else
reads those columns. The date of birth becomes the age band events carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from contracts.vocabulary import AgeBand, ClientGroup
from servicekit.csvfile import CsvRow, Rejection
from services.assessment.domain import AssessmentError
from services.assessment.personal import DATE_OF_BIRTH

PEOPLE_COLUMNS = (
    "legacy_client_id",
    "forename",
    "surname",
    "date_of_birth",
    "postcode",
    "client_group",
    "team",
    "key_worker",
)
PEOPLE_OPTIONAL = ("nhs_number", "community_based")
MAX_PEOPLE_ROWS = 100_000
"""Above Lancashire's 36,252 people supported in 2007/08 (seed 003)."""

_LEGACY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{0,31}$")
_NAME_MAX = 100
_SHORT_MAX = 200
# The UK postcode shape (outward code, space optional, inward code), GOV.UK's pattern.
_POSTCODE = re.compile(r"^(GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})$")

_CLIENT_GROUP_WORDS: dict[str, ClientGroup] = {
    **{group.value: group for group in ClientGroup},
    "older_person": ClientGroup.OLDER_PEOPLE,
    "op": ClientGroup.OLDER_PEOPLE,
    "pd": ClientGroup.PHYSICAL_DISABILITY,
    "ld": ClientGroup.LEARNING_DISABILITY,
    "mh": ClientGroup.MENTAL_HEALTH,
    "carer": ClientGroup.CARERS,
}
"""Our codes, and the short forms CareFirst extracts commonly carry (OP, PD, LD, MH)."""

_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}


class PeopleFileRefused(AssessmentError):
    """The extract cannot be read at all (encoding, header, size)."""

    status_code = 422


class ConcurrentImport(AssessmentError):
    """The same people were imported by another upload at the same moment."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__(
            "another import of some of these people finished meanwhile: import the file again"
        )


@dataclass(frozen=True)
class PersonalDetails:
    """Who the person is. Never stored or put on an event in plain text."""

    forename: str
    surname: str
    date_of_birth: date
    nhs_number: str | None
    postcode: str


@dataclass(frozen=True)
class PersonRow:
    """One valid row: what the assessment is started with, and the personal details."""

    line: int
    legacy_client_id: str
    client_group: ClientGroup
    team: str
    key_worker_id: str
    age_band: AgeBand
    community_based: bool
    personal: PersonalDetails


def nhs_number_is_valid(digits: str) -> bool:
    """Ten digits whose last is the modulus 11 check digit of the first nine (NHS Digital)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_band(age: int) -> AgeBand:
    if age >= 85:
        return AgeBand.AGE_85_PLUS
    if age >= 75:
        return AgeBand.AGE_75_84
    if age >= 65:
        return AgeBand.AGE_65_74
    return AgeBand.AGE_18_64


def _date(text: str) -> date | None:
    """ISO (2026-04-01) or the day-first form CareFirst extracts use (01/04/2026)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split("/")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[2]) == 4:
        try:
            return date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            return None
    return None


def parse_person(
    row: CsvRow, *, today: date, client_groups: frozenset[ClientGroup]
) -> PersonRow | list[Rejection]:
    """One row of the extract: every fault in it, or the row ready to import."""
    unusable = row.layout_rejections()
    if unusable:
        return unusable
    values = row.values
    legacy = values["legacy_client_id"]
    faults: list[Rejection] = []

    def fault(column: str, reason: str) -> None:
        faults.append(Rejection(line=row.line, column=column, reason=reason, key=legacy or None))

    if not _LEGACY_ID.match(legacy):
        fault(
            "legacy_client_id",
            "required: up to 32 letters, digits, '/', '_' or '-', starting with a letter or digit",
        )
    for column in ("forename", "surname"):
        if not values[column]:
            fault(column, "required")
        elif len(values[column]) > _NAME_MAX:
            fault(column, f"longer than {_NAME_MAX} characters")
    born = _date(values["date_of_birth"])
    band: AgeBand | None = None
    if born is None:
        fault("date_of_birth", "required, as YYYY-MM-DD or DD/MM/YYYY")
    elif (problem := DATE_OF_BIRTH.problem(born, today)) is not None:
        fault("date_of_birth", problem)
    elif age_on(born, today) < 18:
        fault("date_of_birth", "the person is under 18: adult social care is for adults")
    else:
        band = age_band(age_on(born, today))
    nhs = values.get("nhs_number", "").replace(" ", "").replace("-", "") or None
    if nhs is not None and not nhs_number_is_valid(nhs):
        fault("nhs_number", "not a valid NHS number (10 digits with a correct check digit)")
    postcode = " ".join(values["postcode"].upper().split())
    if not _POSTCODE.match(postcode):
        fault("postcode", "not a UK postcode (e.g. PR1 8XJ)")
    group = _CLIENT_GROUP_WORDS.get(values["client_group"].lower().replace(" ", "_"))
    if group is None:
        fault(
            "client_group",
            f"{values['client_group']!r} is not a client group: use one of "
            + ", ".join(g.value for g in ClientGroup),
        )
    elif group not in client_groups:
        fault("client_group", f"{group.value} is not a client group this council's policy offers")
    for column in ("team", "key_worker"):
        if not values[column]:
            fault(column, "required")
        elif len(values[column]) > _SHORT_MAX:
            fault(column, f"longer than {_SHORT_MAX} characters")
    community_text = values.get("community_based", "").lower() or "y"
    if community_text not in _YES | _NO:
        fault("community_based", "use Y or N (blank means Y)")
    if faults:
        return faults
    assert born is not None and band is not None and group is not None
    return PersonRow(
        line=row.line,
        legacy_client_id=legacy,
        client_group=group,
        team=values["team"],
        key_worker_id=values["key_worker"],
        age_band=band,
        community_based=community_text in _YES,
        personal=PersonalDetails(
            forename=values["forename"],
            surname=values["surname"],
            date_of_birth=born,
            nhs_number=nhs,
            postcode=postcode,
        ),
    )


def duplicates(rows: list[PersonRow]) -> list[Rejection]:
    """A legacy id or an NHS number on two rows: the second is refused, naming the first."""
    refused: list[Rejection] = []
    first_legacy: dict[str, int] = {}
    first_nhs: dict[str, int] = {}
    for row in rows:
        earlier = first_legacy.get(row.legacy_client_id)
        if earlier is not None:
            refused.append(
                Rejection(
                    line=row.line,
                    column="legacy_client_id",
                    reason=f"the same legacy client id is on line {earlier}",
                    key=row.legacy_client_id,
                )
            )
            continue
        first_legacy[row.legacy_client_id] = row.line
        nhs = row.personal.nhs_number
        if nhs is not None:
            if nhs in first_nhs:
                refused.append(
                    Rejection(
                        line=row.line,
                        column="nhs_number",
                        reason=f"the same NHS number is on line {first_nhs[nhs]}",
                        key=row.legacy_client_id,
                    )
                )
            else:
                first_nhs[nhs] = row.line
    return refused
