"""Assessment's event consumers: none of its own.

Assessment starts the journey (seed 003 step 1a); it acts on requests from people and
practitioners and consumes no other service's journey events. The one event it follows,
PolicyAdopted (a council's new questionnaire from a date), is followed by servicekit's
runtime for every service whose database has the adopted_policies table (ADR 10).
`register` is still the one place a consumer would be added, so create_app stays the same
shape in every service.
"""

from __future__ import annotations

from typing import Any

from servicekit.runtime import ServiceRuntime


def register(runtime: ServiceRuntime[Any]) -> None:
    """Add assessment's consumers to the runtime (none beyond the runtime's own)."""
    del runtime
