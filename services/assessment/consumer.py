"""Assessment's event consumers: none.

Assessment starts the journey (seed 003 step 1a); it acts on requests from people and
practitioners only and consumes no other service's events. `register` is still the one
place a consumer would be added, so create_app stays the same shape in every service.
"""

from __future__ import annotations

from typing import Any

from servicekit.runtime import ServiceRuntime


def register(runtime: ServiceRuntime[Any]) -> None:
    """Add assessment's consumers to the runtime (there are none: it consumes no events)."""
    del runtime
