"""The kinds of refusal every service's domain errors fall into, and their HTTP statuses.

Each service has one DomainError base; its subclasses also inherit one of these kinds,
so the app factory maps them to a status without any HTTP code below `api.py`. The
answer is a problem document (RFC 9457, docs/api.md) whose `error` is the class name, so a
class is named for the rule that refused.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A rule refused the action. The message is written for a case worker."""

    status_code = 422
    headers: ClassVar[dict[str, str]] = {}
    """Sent with the answer, e.g. WWW-Authenticate with a 401."""


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


class Unauthenticated(DomainError):
    """No bearer token, or one this service does not accept."""

    status_code = 401
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class TokenExpired(Unauthenticated):
    """A token that was good once: the caller signs in again."""


class IdentityProviderUnavailable(DomainError):
    """The key set tokens are checked against cannot be fetched just now."""

    status_code = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class InvalidCursor(Invalid):
    def __init__(self) -> None:
        super().__init__("the cursor is not one this service gave out; start from the first page")


class StaleVersion(Conflict):
    """The record changed since the caller (or this transaction) read it."""

    def __init__(self, what: str, expected: int, actual: int | None = None) -> None:
        now = "" if actual is None else f", it is now version {actual}"
        super().__init__(
            f"someone changed {what} meanwhile (you had version {expected}{now}); reload it "
            "and try again"
        )


def require_version(what: str, expected: int | None, actual: int) -> None:
    """Refuse a change made against a version the caller no longer holds (None: no check)."""
    if expected is not None and expected != actual:
        raise StaleVersion(what, expected, actual)


class UnknownCouncil(Invalid):
    """The caller's council has no policy in this deployment.

    422 everywhere, not 404: nothing the URL names is missing, and 404 is what this API
    answers for another council's record, to keep its existence hidden; a council with no
    policy is a fault of the request's context that operations can fix (by adding the
    council's policy file), not a record to look for. Not 403 either: no role would be
    allowed it.
    """

    def __init__(self, council: str) -> None:
        super().__init__(f"council {council!r} has no policy in this deployment")
