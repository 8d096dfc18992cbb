"""The FastAPI app factory every service uses: health, metrics, errors, idempotency, CORS,
a request body size limit, and an OpenAPI document that describes the error answers."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import context
from servicekit.auth import TokenVerifier
from servicekit.db import database_unavailable
from servicekit.errors import DomainError
from servicekit.logging import configure_logging
from servicekit.metrics import REQUEST_LATENCY
from servicekit.problems import (
    PROBLEM_MEDIA_TYPE,
    JsonBodyGuard,
    Problem,
    error_for_status,
    problem,
    validation_problem,
)
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.tracing import configure_tracing

log = structlog.get_logger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-Id"
MAX_BODY_BYTES = 1024 * 1024
"""1 MiB. Real requests are a few KiB (a long support plan, tens of KiB); only a body
padded out to every length limit of a schema at once could be larger."""

MAX_UPLOAD_BYTES = 32 * 1024 * 1024
"""32 MiB, for the routes that take a whole file (create_service_app's upload_paths): a
CareFirst extract of Lancashire's 36,252 people (seed 003) is about 5 MiB."""

MAX_PENCE = 10**12
"""£10,000,000,000: far above any personal budget, far below the 64-bit integer column
(9.2 × 10^18) even after a year's worth of weeks or a return's 500 items are added up."""

RequestPence = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_PENCE,
        description="Money in integer pence (GBP), at most 10^12 (£10bn).",
    ),
]
"""An amount of money a request may carry: contracts.money.Pence with an upper bound, so a
number the database cannot store is refused with 422 naming the field, never a 500."""


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, bool]


def service_app(
    settings: ServiceSettings,
    *,
    metadata: sa.MetaData,
    unit_of_work: type[Any],
    consumers: Callable[[ServiceRuntime[Any]], None],
    title: str,
    description: str,
    routers: list[APIRouter],
    upload_paths: frozenset[str] = frozenset(),
    personal_data_paths: frozenset[str] = frozenset(),
) -> FastAPI:
    """A service's app from its parts: its runtime (tables, unit of work, the migrations
    beside them), its consumers registered on it, and its routes (create_service_app)."""
    runtime: ServiceRuntime[Any] = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations_dir=migrations_beside(unit_of_work),
        unit_of_work=unit_of_work,
    )
    consumers(runtime)
    return create_service_app(
        runtime=runtime,
        title=title,
        description=description,
        routers=routers,
        upload_paths=upload_paths,
        personal_data_paths=personal_data_paths,
    )


def migrations_beside(unit_of_work: type[Any]) -> Path:
    """A service's Alembic migrations: the `migrations` folder of the package that holds
    its unit of work."""
    return Path(inspect.getfile(unit_of_work)).parent / "migrations"


def create_service_app(
    *,
    runtime: ServiceRuntime[Any],
    title: str,
    description: str,
    routers: list[APIRouter],
    upload_paths: frozenset[str] = frozenset(),
    personal_data_paths: frozenset[str] = frozenset(),
) -> FastAPI:
    """The app of one service.

    `upload_paths` take a whole file as the body (MAX_UPLOAD_BYTES); the answers of
    `personal_data_paths` hold personal data, so an Idempotency-Key never keeps them for a
    replay: a retry runs the route again, its rights check included.
    """
    settings = runtime.settings
    configure_logging(runtime.name, settings.log_level)
    configure_tracing(runtime.name)  # FastAPI makes the SERVER span of each request itself

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.token_verifier = settings.token_verifier(
            councils=frozenset(runtime.policies.councils)
        )
        await runtime.start()
        log.info("service_started", port=settings.port)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.runtime = runtime
    for router in routers:
        app.include_router(router)
    _describe_errors_in_openapi(app)

    _answer_every_refusal_as_a_problem(app)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Database and event log are reachable",
        response_model=ReadyOut,
        responses={503: {"model": ReadyOut, "description": "Not ready: see which check failed"}},
    )
    async def readyz() -> JSONResponse:
        checks = await runtime.ready()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Innermost: a body refused here never reaches a route, and still carries the
    # correlation id and counts in the latency histogram.
    app.add_middleware(JsonBodyGuard)
    app.add_middleware(
        RequestContext,
        service=runtime.name,
        idempotency=IdempotencyStore(runtime, personal_data_paths=personal_data_paths),
    )

    # Outside the request middleware, whose idempotency check reads the body; CORS outside
    # that, so a browser can read the 413 too.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=MAX_BODY_BYTES,
        upload_paths=upload_paths,
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[CORRELATION_HEADER],
        )
    return app


def _answer_every_refusal_as_a_problem(app: FastAPI) -> None:
    """One handler per kind of refusal, each answering a problem document (docs/api.md)."""

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, err: DomainError) -> JSONResponse:
        return problem(err.status_code, type(err).__name__, str(err), headers=err.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        # FastAPI's and Starlette's own answers (an unknown path, a method not allowed).
        return problem(
            err.status_code,
            error_for_status(err.status_code),
            str(err.detail),
            headers=err.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, err: RequestValidationError) -> JSONResponse:
        return validation_problem(err)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, err: Exception) -> JSONResponse:
        """The last guard behind the models' bounds: a value the database cannot hold.

        SQLite refuses integers beyond 64 bits with OverflowError, PostgreSQL with a
        DataError, and date arithmetic past year 9999 overflows too. The unit of work rolls
        back what it had not committed, so nothing was written; the caller gets 422, not
        500. Every request field is bounded so this should never answer: the API fuzz
        test (tests/test_api_fuzz.py) fails if it does.
        """
        log.warning(
            "value_out_of_range",
            path=request.url.path,
            error=type(err).__name__,
            reason=str(err).splitlines()[0][:200] if str(err) else "",
        )
        return problem(
            422,
            "ValueOutOfRange",
            "a value in the request is out of the range this service can store or compute "
            "with (numbers up to 9,223,372,036,854,775,807, dates up to 9999-12-31)",
        )

    @app.exception_handler(IntegrityError)
    async def collided(request: Request, err: IntegrityError) -> JSONResponse:
        """Two requests wrote the same row at once and the database kept one of them.

        The unit of work rolled the loser back whole, so nothing of it was written; the
        caller tries again and then meets the winner's state (or an Idempotency-Key's
        replay). A constraint no race can break is a defect, but answering it as a
        conflict still writes nothing and tells no lie about it.
        """
        log.warning(
            "write_collided",
            path=request.url.path,
            reason=str(err.orig).splitlines()[0][:200] if err.orig else "",
        )
        return problem(
            409, "Conflict", "another request changed this at the same moment; try again"
        )

    @app.exception_handler(sa.exc.DBAPIError)
    @app.exception_handler(sa.exc.TimeoutError)
    @app.exception_handler(ConnectionError)
    async def database_error(request: Request, err: Exception) -> JSONResponse:
        """A database that is down or restarting is the caller's to retry, not a bug.

        The unit of work rolled back whatever it had not committed, so nothing was
        written; the caller is told to come back, as load balancers and the journey
        clients already do for 503. Any other database error is a defect: 500.
        """
        if not database_unavailable(err):
            log.error("database_error", path=request.url.path, exc_info=err)
            return internal_error_response()
        log.warning(
            "database_unavailable",
            path=request.url.path,
            error=type(err).__name__,
            reason=str(err).splitlines()[0][:200] if str(err) else "",
        )
        return database_unavailable_response()

    @app.exception_handler(Exception)
    async def defect(_: Request, err: Exception) -> JSONResponse:
        # Starlette logs it and raises it on after this answer is sent.
        return internal_error_response()


def internal_error_response() -> JSONResponse:
    return problem(
        500, "InternalError", "the service could not answer this request; the fault is logged"
    )


class RequestContext:
    """Around every HTTP request: its correlation id (taken from X-Correlation-Id or made up,
    set for the logs and events of the request, and sent back), Idempotency-Key replays of
    mutating calls, and the request latency histogram.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which runs the app in a task of
    its own and streams its answer back through a memory channel: that cost more CPU per
    request than a bare FastAPI endpoint spends on the whole request.
    """

    def __init__(self, app: ASGIApp, service: str, idempotency: IdempotencyStore) -> None:
        self.app = app
        self.service = service
        self.idempotency = idempotency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation = _header(scope, CORRELATION_HEADER_KEY) or str(uuid.uuid4())
        correlation_value = correlation.encode("latin-1")
        started = time.perf_counter()
        status = 0

        async def send_with_correlation(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (key, value)
                    for key, value in message.get("headers", ())
                    if key.lower() != CORRELATION_HEADER_KEY
                ]
                headers.append((CORRELATION_HEADER_KEY, correlation_value))
                message = {**message, "headers": headers}
                route = scope.get("route")
                REQUEST_LATENCY.labels(
                    self.service,
                    scope["method"],
                    getattr(route, "path", "unmatched"),
                    str(status),
                ).observe(time.perf_counter() - started)
            await send(message)

        token = context.correlation_id.set(correlation[:100])
        try:
            key = _header(scope, IDEMPOTENCY_HEADER_KEY)
            if key and scope["method"] in MUTATING_METHODS:
                request = Request(scope, receive)
                try:
                    response = await self.idempotency.run_once(
                        request, key, lambda request: _captured(self.app, request)
                    )
                except (sa.exc.DBAPIError, sa.exc.TimeoutError, ConnectionError) as err:
                    # Claiming and releasing the key need the database too. A claim made
                    # before it went down stays "still running" (409) for a retry (ADR 0007).
                    if not database_unavailable(err):
                        raise
                    response = database_unavailable_response()
                await response(scope, receive, send_with_correlation)
            else:
                await self.app(scope, receive, send_with_correlation)
        finally:
            context.correlation_id.reset(token)


CORRELATION_HEADER_KEY = CORRELATION_HEADER.lower().encode()
IDEMPOTENCY_HEADER_KEY = IDEMPOTENCY_HEADER.lower().encode()


async def _captured(app: ASGIApp, request: Request) -> Response:
    """Run the app on a request whose body was already read; its whole answer as a Response."""
    body = await request.body()
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    first = {"type": "http.request", "body": body, "more_body": False}
    await app(request.scope, _replay([first], None, request.receive), capture)
    response = Response(b"".join(chunks), status_code=status)
    response.raw_headers = headers
    return response


class BodySizeLimit:
    """Refuse a request body over `max_bytes` with 413 before any route or middleware reads it.

    A declared Content-Length over the limit is refused at once; otherwise the body is read
    (at most `max_bytes` + one chunk) and handed on, so a chunked upload cannot get past.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        upload_paths: frozenset[str] = frozenset(),
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope["path"] in self.upload_paths else self.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        correlation = _header(scope, CORRELATION_HEADER.lower().encode()) or str(uuid.uuid4())
        response = problem(
            413,
            "RequestTooLarge",
            f"the request body is larger than {limit} bytes ({limit // 1024} KiB), the most "
            "this service accepts",
            headers={CORRELATION_HEADER: correlation[:100], "Connection": "close"},
        )
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    """A receive that hands back what was already read, then carries on with the real one."""
    pending = list(messages) + ([last] if last is not None else [])

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


ERROR_REF = "#/components/schemas/Error"
_ERROR_ANSWERS = {
    "400": "The body could not be read",
    "401": "No bearer token, or one that is not valid (Unauthenticated, TokenExpired)",
    "403": "The caller's role or approval limit does not allow this",
    "404": "Not found (or another council's record, or another person's)",
    "409": "A stale expected_version, an illegal state change, or a write that collided",
    "413": "The request body is larger than the service accepts",
    "422": "Bad input (InvalidInput with each field, InvalidJson, ControlCharacter), or the "
    "rule that refused it",
}
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable_response() -> JSONResponse:
    return problem(
        503,
        "DatabaseUnavailable",
        "the service's database is not answering; nothing was changed, try again in "
        f"{DATABASE_RETRY_AFTER_SECONDS} seconds",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def _describe_errors_in_openapi(app: FastAPI) -> None:
    """Declare the error answers every route can give, so the document says what they look like.

    Every refusal is a problem document (servicekit.problems, docs/api.md) of the media
    type application/problem+json, FastAPI's 422 included. Routes behind a bearer token can
    answer 401, 403 and 404; state changes 409; routes with a body 400 (unreadable), 413
    (too large) and 422. A route that answers a body of its own with an error status (a
    file import's report) keeps it as application/json beside the problem.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Error"] = problem_schema
        for item in document.get("paths", {}).values():
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    _add_error_answers(method, operation)
        for unused in ("HTTPValidationError", "ValidationError"):
            if unused not in json.dumps(document.get("paths", {})):
                schemas.pop(unused, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_answers(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    codes: list[str] = []
    if operation.get("security"):
        codes += ["401", "403", "404", "422"]
    if method.upper() in MUTATING_METHODS:
        codes.append("409")
    if "requestBody" in operation:
        codes += ["400", "413", "422"]
    if operation.get("parameters"):
        codes.append("422")
    error = {"$ref": ERROR_REF}
    for code in dict.fromkeys(codes):
        declared = responses.setdefault(code, {"description": _ERROR_ANSWERS.get(code, "")})
        content = declared.setdefault("content", {})
        own = content.get("application/json", {}).get("schema")
        if own is None or own in (error, {"$ref": _FASTAPI_VALIDATION_REF}):
            content.pop("application/json", None)
            if code in _ERROR_ANSWERS:
                declared["description"] = _ERROR_ANSWERS[code]
        content[PROBLEM_MEDIA_TYPE] = {"schema": error}


class IdempotencyStore:
    """Replays the stored response when a mutating call is retried with the same key.

    A placeholder row is claimed before the call runs, so two concurrent retries cannot
    both act; only successful responses are kept, so a corrected retry can go through.

    A key belongs to the whole identity that used it (subject, role, council and person)
    and to the method and path: a replay hands an answer only to a caller who was given
    it already, as the route's rights check did. The answer of a route in
    `personal_data_paths` is never kept: there the key only stops two copies running at
    once, and a retry runs the route (and its rights check) again. A path may name its
    parameters as routes do (`/v1/assessments/{assessment_id}/financial-assessment`).
    """

    def __init__(
        self, runtime: ServiceRuntime[Any], *, personal_data_paths: frozenset[str] = frozenset()
    ) -> None:
        self._runtime = runtime
        self._table: sa.Table = runtime.idempotency
        self._personal_data = [
            re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$")
            for path in personal_data_paths
        ]

    def _holds_personal_data(self, path: str) -> bool:
        return any(pattern.match(path) for pattern in self._personal_data)

    @staticmethod
    async def _caller(request: Request) -> str | None:
        """The verified caller, so a retry with a freshly minted token still matches."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        verifier: TokenVerifier = request.app.state.token_verifier
        actor = verifier.verified(token)
        if actor is None:
            try:
                # In a worker thread: a key set refetch must not stall the event loop.
                actor = await run_in_threadpool(verifier.verify, token)
            except DomainError:
                return None
        return json.dumps(
            [actor.council, actor.role.value, actor.person_id, actor.user_id],
            separators=(",", ":"),
        )

    async def run_once(
        self, request: Request, key: str, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if len(key) > 200:
            return problem(
                422, "IdempotencyKeyTooLong", "the Idempotency-Key is longer than 200 characters"
            )
        caller = await self._caller(request)
        if caller is None:  # no valid token: the route itself answers 401
            return await call_next(request)
        body = await request.body()
        scope = _fits(f"{request.method} {request.url.path} {caller}", SCOPE_LENGTH)
        request_hash = hashlib.sha256(body).hexdigest()
        table = self._table
        async with self._runtime.database.sessions() as session:
            existing = (
                await session.execute(
                    sa.select(table).where(table.c.scope == scope, table.c.key == key)
                )
            ).first()
            if existing is not None:
                if existing.request_hash != request_hash:
                    return problem(
                        422,
                        "IdempotencyKeyReused",
                        "this Idempotency-Key was already used for a request with another "
                        "body; use a new key for a new request",
                    )
                if existing.status_code == 0:
                    return _still_running()
                return Response(
                    existing.body,
                    status_code=existing.status_code,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            try:
                await session.execute(
                    table.insert().values(
                        scope=scope,
                        key=key,
                        request_hash=request_hash,
                        status_code=0,
                        body=b"",
                        created_at=datetime.now(UTC),
                    )
                )
                await session.commit()
            except IntegrityError:
                return _still_running()
        response = await call_next(request)
        content = bytes(response.body)
        keep = 200 <= response.status_code < 300
        keep = keep and not self._holds_personal_data(request.url.path)
        async with self._runtime.database.sessions() as session:
            where = (table.c.scope == scope) & (table.c.key == key)
            if keep:
                await session.execute(
                    table.update()
                    .where(where)
                    .values(status_code=response.status_code, body=content)
                )
            else:
                await session.execute(table.delete().where(where))
            await session.commit()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(
            content,
            status_code=response.status_code,
            headers=headers,
            media_type=response.media_type,
        )


def _still_running() -> JSONResponse:
    return problem(
        409,
        "IdempotencyKeyInUse",
        "a request with this Idempotency-Key is still running; try again when it has answered",
    )


SCOPE_LENGTH = 200  # the idempotency table's scope column


def _fits(text: str, length: int) -> str:
    """The text, or when longer than the column its start and a hash of the whole: a long
    path (or user id) must not overflow a PostgreSQL VARCHAR and answer 500."""
    if len(text) <= length:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[: length - len(digest) - 1]}#{digest}"


def runtime_from(request: Request) -> ServiceRuntime[Any]:
    """The runtime of the app serving this request. As a dependency, take `request_runtime`."""
    runtime: ServiceRuntime[Any] = request.app.state.runtime
    return runtime


async def request_runtime(request: Request) -> ServiceRuntime[Any]:
    """FastAPI dependency: the runtime of the app serving this request.

    `async` although it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    thread, a hop that cost about 0.5 ms of CPU per request, more than a whole request to a
    bare FastAPI route."""
    return runtime_from(request)
