"""Personal details, the age band they give, and the retention rule that ends them.

Pure: no I/O, no clock. The handler passes `today`; sealing is done by the handler with
services.assessment.sealing, so nothing here ever sees a key.

Rules:
- Events carry an age band, never a date of birth (contracts.vocabulary.AgeBand). Given a
  date of birth, the band is derived from it on the day of the assessment; a band given
  as well must agree.
- Adult social care is for people aged 18 and over (Care Act 2014 s.9 assesses adults).
- Personal data is kept `retention_years` (council policy) after the person's last
  contact, then may be erased by destroying their data key (docs/privacy.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

from contracts.vocabulary import AgeBand
from servicekit import errors
from servicekit.dates import DateInRange
from services.assessment.domain import AgeBandRequired, AssessmentError

ADULT_FROM_AGE = 18
OLDEST_AGE = 120
DATE_OF_BIRTH = DateInRange(earliest_years_back=OLDEST_AGE, latest_years_ahead=0)
"""A plausible date of birth, for the API and the client import alike: not in the future,
not more than 120 years ago."""
NHS_NUMBER = re.compile(r"^[0-9]{10}$")
_AGE_BANDS: tuple[tuple[int, AgeBand], ...] = (
    (85, AgeBand.AGE_85_PLUS),
    (75, AgeBand.AGE_75_84),
    (65, AgeBand.AGE_65_74),
    (ADULT_FROM_AGE, AgeBand.AGE_18_64),
)


# --- errors -------------------------------------------------------------------------------


class AgeBandContradictsDateOfBirth(AssessmentError, errors.Invalid):
    def __init__(self, given: AgeBand, derived: AgeBand) -> None:
        super().__init__(
            f"age_band: {given.value!r} does not match the date of birth, which gives "
            f"{derived.value!r} today; leave age_band out or correct one of them"
        )


class NotAnAdult(AssessmentError, errors.Invalid):
    def __init__(self, age: int) -> None:
        super().__init__(
            f"personal_details.date_of_birth: the person is {age}; adult social care "
            f"assesses people aged {ADULT_FROM_AGE} and over"
        )


class DateOfBirthInFuture(AssessmentError, errors.Invalid):
    def __init__(self) -> None:
        super().__init__("personal_details.date_of_birth: the date is in the future")


class InvalidNhsNumber(AssessmentError, errors.Invalid):
    def __init__(self) -> None:
        super().__init__(
            "personal_details.nhs_number: not a valid NHS number (10 digits whose last is "
            "the modulus 11 check digit)"
        )


class PersonalDataAlreadyErased(AssessmentError, errors.Conflict):
    def __init__(self, erased_on: date) -> None:
        super().__init__(
            f"this person's personal data was erased on {erased_on.isoformat()} at the end of "
            "its retention period; it cannot be recorded again under the same person id"
        )


class NoPersonalDataHeld(AssessmentError, errors.Conflict):
    def __init__(self, person_id: str) -> None:
        super().__init__(f"no personal details are held for person {person_id}: nothing to erase")


class RetentionNotOver(AssessmentError, errors.Conflict):
    def __init__(self, last_contact: date, years: int, ends: date, policy_version: str) -> None:
        super().__init__(
            f"the retention period has not ended: policy {policy_version} keeps personal "
            f"data {years} years after the last contact ({last_contact.isoformat()}), so "
            f"until {ends.isoformat()}; it can be erased from that day"
        )


class PersonNotFound(AssessmentError, errors.NotFound):
    def __init__(self, person_id: str) -> None:
        super().__init__(f"person {person_id} not found")


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonalDetails:
    """What identifies a person. Only ever stored or sent sealed."""

    name: str
    date_of_birth: date | None = None
    nhs_number: str | None = None
    address: str | None = None
    postcode: str | None = None
    phone: str | None = None
    email: str | None = None

    @property
    def given(self) -> list[str]:
        """Names of the fields that carry a value (the only part an event shows)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def as_document(self) -> dict[str, str]:
        return {
            key: value.isoformat() if isinstance(value, date) else value
            for key, value in asdict(self).items()
            if value is not None
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PersonalDetails:
        values = dict(document)
        if values.get("date_of_birth"):
            values["date_of_birth"] = date.fromisoformat(values["date_of_birth"])
        return cls(**values)

    def over(self, older: PersonalDetails | None) -> PersonalDetails:
        """These details, with anything left out taken from what was recorded before."""
        if older is None:
            return self
        return PersonalDetails(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(older, f.name)
                for f in fields(self)
            }
        )


@dataclass(frozen=True)
class PersonKey:
    """A person's data key as stored: wrapped, or gone after erasure."""

    council: str
    person_id: str
    key_id: str
    wrapped_key: bytes | None
    created_at: datetime
    erased_at: datetime | None = None
    erased_by: str | None = None


@dataclass(frozen=True)
class SealedRecord:
    """One PersonalDetailsRecorded as the assessment service keeps it (sealed)."""

    details_id: str
    council: str
    person_id: str
    key_id: str
    sealed_details: str
    fields: tuple[str, ...]
    correction: bool
    recorded_at: datetime
    recorded_by: str


# --- rules --------------------------------------------------------------------------------


def check_nhs_number(number: str) -> None:
    """NHS numbers end in a modulus 11 check digit (NHS Data Dictionary)."""
    if not NHS_NUMBER.match(number):
        raise InvalidNhsNumber()
    total = sum(
        int(digit) * weight for digit, weight in zip(number[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    check = 0 if check == 11 else check
    if check == 10 or check != int(number[9]):
        raise InvalidNhsNumber()


def age_on(date_of_birth: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - int(before_birthday)


def age_band_on(date_of_birth: date, today: date) -> AgeBand:
    if date_of_birth > today:
        raise DateOfBirthInFuture()
    age = age_on(date_of_birth, today)
    for from_age, band in _AGE_BANDS:
        if age >= from_age:
            return band
    raise NotAnAdult(age)


def resolve_age_band(given: AgeBand | None, date_of_birth: date | None, today: date) -> AgeBand:
    """The band events carry: from the date of birth when known, else the one given."""
    if date_of_birth is None:
        if given is None:
            raise AgeBandRequired()
        return given
    derived = age_band_on(date_of_birth, today)
    if given is not None and given != derived:
        raise AgeBandContradictsDateOfBirth(given, derived)
    return derived


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def ensure_retention_over(
    *, last_contact: date, years: int, today: date, policy_version: str
) -> None:
    ends = add_years(last_contact, years)
    if today < ends:
        raise RetentionNotOver(last_contact, years, ends, policy_version)


def associated_data(council: str, person_id: str, record_id: str) -> str:
    """What a sealed value or wrapped key is bound to."""
    return f"{council}:{person_id}:{record_id}"


@dataclass(frozen=True)
class FinancialRecord:
    """A financial assessment as kept for a later uprating: its inputs sealed under the
    person's data key (none for a light-touch, deferred or refused one, which an uprating
    of the figures does not change)."""

    financial_assessment_id: UUID
    council: str
    person_id: str
    assessment_id: UUID
    policy_version: str
    applies_from: date
    key_id: str | None
    sealed_inputs: str | None
    recorded_at: datetime


FINANCIAL_RECORD_FIELDS = tuple(f.name for f in fields(FinancialRecord))
