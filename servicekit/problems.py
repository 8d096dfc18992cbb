"""Every refusal as one shape: a problem document (RFC 9457), described in docs/api.md.

`{"type": "urn:pb-journey:problem:<Error>", "title": <the status's name>, "status": <int>,
"detail": <for a person>, "error": <Error>}`, and for bad input `errors`: one
`{"field", "message"}` per field. A refusal never carries what the caller sent, a library's
message or a regular expression: the caller is told what was expected instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:pb-journey:problem:"


class FieldProblem(BaseModel):
    field: str = Field(description="Where in the request, e.g. body.as_of or query.limit.")
    message: str = Field(description="What was expected there.")


class Problem(BaseModel):
    """Every refusal: the reason for a person to read and the name of the rule."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="urn:pb-journey:problem: and the error, e.g. ...:PanelOnly.")
    title: str = Field(description="The HTTP status's name, e.g. Forbidden.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Why the request was refused, written for a case worker.")
    error: str = Field(description="The name of the rule that refused it, e.g. PlanNotSubmitted.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Bad input only: each field and what it should hold."
    )


def problem(
    status: int,
    error: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A problem document; `extensions` adds members of the problem type's own (RFC 9457
    §3.2), such as the refused lines of a file, beside the standard ones."""
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": PROBLEM_TYPE_PREFIX + error,
        "title": _title(status),
        "status": status,
        "detail": detail,
        "error": error,
    }
    if errors is not None:
        body["errors"] = [dict(item) for item in errors]
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


ERROR_FOR_STATUS = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
    422: "InvalidInput",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
"""The error of an answer no rule of ours named (FastAPI's and Starlette's own)."""


def error_for_status(status: int) -> str:
    return ERROR_FOR_STATUS.get(status, "InternalError" if status >= 500 else "BadRequest")


# --- bad input: one message per field, saying what was expected ------------------------------

DATE_EXPECTED = "expected a date like 2026-04-01 (YYYY-MM-DD)"
DATE_TIME_EXPECTED = "expected a date and time like 2026-04-01T09:30:00Z (RFC 3339)"
UUID_EXPECTED = "expected an id like 3fa85f64-5717-4562-b3fc-2c963f66afa6 (a UUID)"

PATTERN_MEANINGS = {
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$": (
        "letters, digits, '-' or '_', 1–64 characters, starting with a letter or digit"
    ),
    r"^[a-z][a-z0-9_]*$": (
        "lower-case letters, digits or '_', starting with a letter (a council like council_a)"
    ),
    r"^[0-9A-Za-z._-]+$": "letters, digits, '.', '_' or '-'",
    r"^policy:[a-z][a-z0-9_]{0,56}$": "'policy:' and a council, e.g. policy:council_a",
    r"^[0-9a-f]{64}$": "64 lower-case hexadecimal digits (a SHA-256)",
    r"^[0-9]{10}$": "10 digits (an NHS number, no spaces)",
    r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$": "a UK postcode like PR1 8XJ",
    r"^\+?[0-9 ()-]{6,20}$": (
        "a telephone number: 6 to 20 digits, spaces, brackets or '-', a '+' first if needed"
    ),
    r"^[^@\s]{1,64}@[^@\s]{1,189}$": "an email address like name@example.org",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}$": (
        "letters, digits, '.', '_', ':' or '-', 1–120 characters, starting with a letter or digit"
    ),
}
"""What each pattern a request field is held to means, in words: the pattern itself is no
help to a case worker. A new pattern without an entry still gets a message, a vaguer one."""

_MESSAGE_FOR_TYPE = {
    "missing": "this field is required",
    "json_invalid": "the body is not valid JSON",
    "date_parsing": DATE_EXPECTED,
    "date_type": DATE_EXPECTED,
    "date_from_datetime_parsing": DATE_EXPECTED,
    "date_from_datetime_inexact": DATE_EXPECTED,
    "datetime_parsing": DATE_TIME_EXPECTED,
    "datetime_type": DATE_TIME_EXPECTED,
    "datetime_from_date_parsing": DATE_TIME_EXPECTED,
    "datetime_object_invalid": DATE_TIME_EXPECTED,
    "timezone_aware": DATE_TIME_EXPECTED,
    "uuid_parsing": UUID_EXPECTED,
    "uuid_type": UUID_EXPECTED,
    "uuid_version": UUID_EXPECTED,
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_parsing_size": "expected a whole number of a size this service can hold",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "string_unicode": "expected text",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "list_type": "expected a list",
    "extra_forbidden": "this field is not one this request takes",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's errors (a RequestValidationError's or a ValidationError's `errors()`) as
    fields and what each expects."""
    return [{"field": _field(item.get("loc", ())), "message": _message(item)} for item in errors]


def in_words(errors: Sequence[Mapping[str, Any]]) -> str:
    """The same, as one line: `field: message; ...`."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in field_problems(errors))


def validation_problem(err: RequestValidationError) -> JSONResponse:
    errors = field_problems(err.errors())
    if any(item.get("type") == "json_invalid" for item in err.errors()):
        return problem(422, "InvalidJson", "the body is not valid JSON", errors=errors)
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return problem(422, "InvalidInput", f"{shown}{more}", errors=errors)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"] and len(parts) > 1 and not isinstance(loc[1], str):
        parts = parts[:1]  # json_invalid: the position in the text, not a field
    return ".".join(parts) or "body"


def _message(item: Mapping[str, Any]) -> str:
    kind = str(item.get("type", ""))
    if kind == "string_pattern_mismatch":
        pattern = str((item.get("ctx") or {}).get("pattern", ""))
        meaning = PATTERN_MEANINGS.get(pattern)
        return f"expected {meaning}" if meaning else "is not in the form this field takes"
    if kind in _MESSAGE_FOR_TYPE:
        return _MESSAGE_FOR_TYPE[kind]
    # pydantic's own words for bounds, lengths and choices ("Input should be less than or
    # equal to 200") name the rule, never the input.
    message = str(item.get("msg", "is not valid"))
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message[:500]


# --- JSON that Python reads but no one should send --------------------------------------------

_SUSPECT = (b"NaN", b"Infinity", b"\\u")
"""What a body must contain for the careful reading below to find anything: a non-finite
number or an escaped character. Raw control characters in a string already make it
invalid JSON, which the route's own parsing refuses."""

_ALLOWED_CONTROLS = frozenset("\t\n\r")


class _NotANumber:
    """Stands in for NaN, Infinity and -Infinity while the body is searched."""


_NOT_A_NUMBER = _NotANumber()


def json_body_problem(body: bytes) -> JSONResponse | None:
    """422 for a JSON body holding NaN or Infinity, a lone UTF-16 surrogate or a control
    character, naming the field; None for any other body.

    Python's JSON reader takes all three, but no other reader should have to: NaN is not
    JSON, a lone surrogate is not text (it cannot even be written back as UTF-8), and a
    control character in a name or a note is never meant.
    """
    if not any(token in body for token in _SUSPECT):
        return None
    try:
        value = json.loads(body, parse_constant=lambda _: _NOT_A_NUMBER)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8): the route says so itself
        return None
    for path, leaf in _walk(value, ("body",)):
        field = ".".join(path)
        if isinstance(leaf, _NotANumber) or (isinstance(leaf, float) and not math.isfinite(leaf)):
            return _bad_json(
                "InvalidJson", field, "NaN and Infinity are not numbers JSON allows; send a number"
            )
        if isinstance(leaf, str):
            for char in leaf:
                if "\ud800" <= char <= "\udfff":
                    return _bad_json(
                        "InvalidJson",
                        field,
                        "holds half of a UTF-16 surrogate pair on its own, which is not text; "
                        "send the whole character",
                    )
                if char < " " and char not in _ALLOWED_CONTROLS:
                    return _bad_json(
                        "ControlCharacter",
                        field,
                        f"holds the control character U+{ord(char):04X}; text may hold tabs "
                        "and line breaks but no other control characters",
                    )
    return None


def _bad_json(error: str, field: str, message: str) -> JSONResponse:
    return problem(422, error, f"{field}: {message}", errors=[{"field": field, "message": message}])


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every key and leaf with its path, depth first, without recursion: a body nested as
    deep as the JSON reader allows must not overflow the stack here."""
    pending: list[tuple[tuple[str, ...], Any]] = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, dict):
            children = []
            for key, child in item.items():
                name = _printable(key)
                yield (*where, name), key  # a key can be as bad as a value
                children.append(((*where, name), child))
            pending.extend(reversed(children))
        elif isinstance(item, list):
            pending.extend(reversed([((*where, str(i)), child) for i, child in enumerate(item)]))
        else:
            yield where, item


def _printable(key: str) -> str:
    """A key as it may be shown back: without the very characters being refused."""
    return "".join(char if _printable_char(char) else "?" for char in key[:100])


def _printable_char(char: str) -> bool:
    return char >= " " and not "\ud800" <= char <= "\udfff"


class JsonBodyGuard:
    """Refuse, before any route reads it, a JSON body that `json_body_problem` finds fault with.

    The body comes from BodySizeLimit in one message, so reading it here costs nothing more
    than the search, and most bodies are passed on after a scan for three byte strings.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if not _may_be_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replaying([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = json_body_problem(body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replaying([whole], receive), send)


def _may_be_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type":
            media = bytes(value).split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # FastAPI reads a body without a Content-Type as JSON


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands back what was already read, then carries on with the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
