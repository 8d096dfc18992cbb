"""The finance page's exports and imports: one list, shown when the service offers them.

Each entry names the service and the path of its endpoint. The page reads each
service's OpenAPI document (cached for a minute) and shows the entries whose endpoint
exists; the others are listed as not offered by this installation yet. A new export or
import is one more entry here (plus, for a form, a few lines in finance.html).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date

import httpx
from fastapi import FastAPI

from contracts.vocabulary import Role
from services.portal.clients import Services

OPENAPI_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class Feature:
    key: str
    title: str
    description: str
    service: str
    method: str
    path: str  # as the service's OpenAPI document writes it


FEATURES = (
    Feature(
        "payments_export",
        "Payments export for the finance system",
        "Batch every released payment up to a date, then download the batch as CSV.",
        "payments",
        "post",
        "/v1/exports/payments",
    ),
    Feature(
        "release_due",
        "Release every payment due",
        "Release each signed deployment's instalments due by a date.",
        "payments",
        "post",
        "/v1/payments/release-due",
    ),
    Feature(
        "confirmations_import",
        "Payment confirmations from the finance system",
        "Upload the finance system's file saying which payments were paid and which failed.",
        "payments",
        "post",
        "/v1/payments/confirmations",
    ),
    Feature(
        "card_file_import",
        "Prepaid card transactions and balances",
        "Upload the card provider's file: each card account's transactions and balance; "
        "a balance above what the council lets a person keep is flagged as a surplus.",
        "payments",
        "post",
        "/v1/card-accounts/transactions",
    ),
    Feature(
        "failed_payments",
        "Failed payments",
        "Payments the finance system reported failed, with its reason.",
        "payments",
        "get",
        "/v1/payments",
    ),
    Feature(
        "payments_feed",
        "Payments feed",
        "Released payments after a cursor, for a finance system that pulls them "
        "(GET /v1/payments/feed on the payments service, finance role).",
        "payments",
        "get",
        "/v1/payments/feed",
    ),
    Feature(
        "people_import",
        "Import people (CSV)",
        "Start assessments for people listed in a client extract from the council's records.",
        "assessment",
        "post",
        "/v1/imports/people",
    ),
    Feature(
        "cld_return",
        "Statutory return (CLD)",
        "The client-level data extract for a quarter, checked, and as CSV.",
        "audit",
        "get",
        "/v1/returns/cld.csv",
    ),
    Feature(
        "kpi_csv",
        "KPI figures (CSV)",
        "NI130 and the Lancashire measure as CSV.",
        "audit",
        "get",
        "/v1/returns/kpis.csv",
    ),
)

# Who the services let do each; the portal shows a form only to a role that may use it
# (the service still decides: these only spare people a form that would be refused).
CONFIRMATION_ROLES = frozenset({Role.FINANCE})
PEOPLE_IMPORT_ROLES = frozenset({Role.OPERATIONS})
CLD_ROLES = frozenset({Role.AUDITOR, Role.OPERATIONS, Role.TEAM_MANAGER})
MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # the services' own limit
QUARTER = re.compile(r"^\d{4}-Q[1-4]$")


def quarter_of(day: date) -> str:
    """The calendar quarter a day falls in, as the CLD return names it (2026-Q3: July-September)."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def previous_quarters(day: date, count: int) -> list[str]:
    """This quarter and the ones before it, newest first: the choices for a return."""
    year, number = day.year, (day.month - 1) // 3 + 1
    found = []
    for _ in range(count):
        found.append(f"{year}-Q{number}")
        year, number = (year - 1, 4) if number == 1 else (year, number - 1)
    return found


async def _paths(app: FastAPI, api: Services, service: str) -> set[tuple[str, str]]:
    cache: dict[str, tuple[float, set[tuple[str, str]]]] = app.state.__dict__.setdefault(
        "_openapi_paths", {}
    )
    cached = cache.get(service)
    if cached is not None and time.monotonic() - cached[0] < OPENAPI_TTL_SECONDS:
        return cached[1]
    try:
        found = await api.openapi_paths(service)
    except (httpx.HTTPError, ValueError):  # a service that does not answer offers nothing now
        return set()
    cache[service] = (time.monotonic(), found)
    return found


async def features(app: FastAPI, api: Services) -> tuple[list[Feature], list[Feature]]:
    """(offered, not offered yet) by the services this portal talks to."""
    offered: list[Feature] = []
    missing: list[Feature] = []
    paths: dict[str, set[tuple[str, str]]] = {}
    for feature in FEATURES:
        if feature.service not in paths:
            paths[feature.service] = await _paths(app, api, feature.service)
        target = offered if (feature.method, feature.path) in paths[feature.service] else missing
        target.append(feature)
    return offered, missing
