"""The kinds of refusal every service's domain errors fall into, and their HTTP statuses.

Each service has one DomainError base; its subclasses also inherit one of these kinds,
so the app factory maps them to a status without any HTTP code below `api.py`.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the action. The message is written for a case worker."""

    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """An illegal state change or a stale version."""

    status_code = 409


class Forbidden(DomainError):
    """The caller's role or approval limit does not allow this."""

    status_code = 403


class Invalid(DomainError):
    status_code = 422
