"""What the current request or event is part of, carried without threading it through calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
actor: ContextVar[str | None] = ContextVar("actor", default=None)
"""The verified caller of the current request (`role:user_id`), set by servicekit.auth."""


def current_correlation_id() -> str:
    """The id tying this work to the request or event that began it (a new one if none)."""
    value = correlation_id.get()
    if value is None:
        value = str(uuid.uuid4())
        correlation_id.set(value)
    return value


@contextmanager
def caused_by(*, correlation: str, causation: str | None) -> Iterator[None]:
    """Within the block, events emitted carry these correlation and causation ids."""
    corr_token = correlation_id.set(correlation)
    cause_token = causation_id.set(causation)
    try:
        yield
    finally:
        correlation_id.reset(corr_token)
        causation_id.reset(cause_token)
