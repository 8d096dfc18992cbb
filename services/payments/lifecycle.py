"""Where a deployment stands: awaiting its arrangement, awaiting the signed agreement,
active (paying), or superseded by a revised plan's deployment; and the agreement that
makes it active (seed 003 ch.4: "Funding released once agreement signed and returned")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Status(StrEnum):
    AWAITING_ARRANGEMENT = "awaiting_arrangement"
    AWAITING_AGREEMENT = "awaiting_agreement"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Agreement:
    signed_on: date
    recorded_by: str
