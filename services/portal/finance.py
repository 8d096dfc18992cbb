"""The finance page's exports and imports: one list, shown when the service offers them.

Each entry names the service and the path of its endpoint. The page reads each
service's OpenAPI document (cached for a minute) and shows the entries whose endpoint
exists; the others are listed as not offered by this installation yet. A new export or
import is one more entry here (plus, for a form, a few lines in finance.html).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

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
        "reconciliation_import",
        "Payment reconciliation import",
        "Upload the finance system's record of what was paid, to match against releases.",
        "payments",
        "post",
        "/v1/imports/reconciliation",
    ),
    Feature(
        "payments_feed",
        "Payments feed",
        "Released payments after a cursor, for a finance system to collect.",
        "payments",
        "get",
        "/v1/payments/feed",
    ),
    Feature(
        "people_import",
        "Import people (CSV)",
        "Start assessments for people listed in a CSV file from the council's records.",
        "assessment",
        "post",
        "/v1/imports/people",
    ),
    Feature(
        "cld_return",
        "Statutory return (CLD)",
        "The client-level data return for the year, as CSV.",
        "audit",
        "get",
        "/v1/returns/cld",
    ),
    Feature(
        "kpi_csv",
        "KPI figures (CSV)",
        "NI130 and the Lancashire measure as CSV.",
        "audit",
        "get",
        "/v1/kpis/ni130.csv",
    ),
)


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
