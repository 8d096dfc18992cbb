"""How the portal writes money, dates and the services' codes for people to read."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.money import format_pounds

# The services' codes in plain English; anything missing falls back to the code's words.
WORDS: dict[str, str] = {
    # stages of the caseload
    "assessment": "Assessment",
    "support_planning": "Support planning",
    "setting_up_payments": "Setting up payments",
    "receiving_payments": "Receiving payments",
    # client groups
    "older_people": "Older people",
    "physical_disability": "Physical disability",
    "learning_disability": "Learning disability",
    "mental_health": "Mental health",
    "carers": "Carers",
    # who completed the self-assessment
    "self": "The person themselves",
    "supported": "The person, with support",
    "practitioner": "A practitioner",
    # statuses
    "draft": "Draft",
    "submitted": "Submitted",
    "returned": "Returned for changes",
    "validated": "Validated",
    "awaiting_agreement": "Waiting for agreement",
    "agreed": "Agreed",
    "final": "Final",
    "superseded": "Replaced",
    "signed_off": "Signed off",
    "awaiting_arrangement": "Waiting for how the money is paid",
    "active": "Paying",
    "scheduled": "Booked",
    "due": "Due",
    "completed": "Done",
    "released": "Paid",
    "cancelled": "Cancelled",
    "indicative": "Indicative (a first figure to plan with)",
    # ways of holding the money
    "direct_payment": "Direct payment (paid to you)",
    "third_party_managed": "Managed by a third party (they look after the money)",
    "individual_service_fund": "Individual service fund (a provider holds it)",
    "council_managed": "Council-managed services",
    # frequencies
    "weekly": "every week",
    "four_weekly": "every four weeks",
    "annual": "once a year",
    "informal": "Family or friends",
    "one_off": "once only",
    # providers
    "personal_assistant": "Personal assistant",
    "provider": "Care provider",
    "equipment": "Equipment",
    "community": "Community activity",
    "other": "Other",
    # roles
    "person": "Person",
    "representative": "Representative",
    "care_manager": "Care manager",
    "team_manager": "Team manager",
    "panel": "Panel",
    "finance": "Finance officer",
    "auditor": "Auditor",
    "operations": "Operations",
    # reviews
    "first": "First review",
    "unscheduled": "Extra review",
    "no_change": "No change needed",
    "revise_plan": "The plan is to change",
    "reassess": "A new assessment is needed",
}


def words(code: Any) -> str:
    """A service's code (e.g. four_weekly) as words a person reads."""
    if code is None:
        return "—"
    text = str(code)
    return WORDS.get(text, text.replace("_", " ").capitalize())


def money(pence: Any) -> str:
    """Integer pence as £1,234.56; nothing known as a dash."""
    if pence is None or pence == "":
        return "—"
    return format_pounds(int(pence))


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def long_date(value: Any) -> str:
    """23 November 2026."""
    day = _as_date(value)
    if day is None:
        return "—"
    return f"{day.day} {day:%B %Y}"


class BadAmount(ValueError):
    """A money field a person typed that is not an amount in pounds and pence."""


def pence_from_pounds(text: str, field: str) -> int:
    """'1,234.5' or '£1234.50' -> 123450 pence; anything else is refused with the field."""
    cleaned = text.strip().replace(",", "").removeprefix("£").strip()
    if not cleaned:
        return 0
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as err:
        raise BadAmount(f"{field}: “{text}” is not an amount in pounds, like 415.00") from err
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise BadAmount(f"{field}: enter pounds and pence, not below zero, like 415.00")
    return int(amount * 100)


_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def plain(text: Any) -> str:
    """A service's sentence with its ISO dates and snake_case codes written for people."""
    if text is None:
        return "—"
    written = _ISO_DATE.sub(lambda m: long_date(m.group(1)), str(text))
    return _CODE.sub(lambda m: m.group(0).replace("_", " "), written)
