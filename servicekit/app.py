"""The FastAPI app factory every service uses: health, metrics, errors, idempotency, CORS."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import IntegrityError

from servicekit import context
from servicekit.auth import TokenVerifier
from servicekit.errors import DomainError
from servicekit.logging import configure_logging
from servicekit.metrics import REQUEST_LATENCY
from servicekit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-Id"


def create_service_app(
    *,
    runtime: ServiceRuntime[Any],
    title: str,
    description: str,
    routers: list[APIRouter],
) -> FastAPI:
    settings = runtime.settings
    configure_logging(runtime.name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.token_verifier = TokenVerifier(settings.public_key_path.read_bytes())
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
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[CORRELATION_HEADER],
        )

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, err: DomainError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(err), "error": type(err).__name__}, status_code=err.status_code
        )

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get("/readyz", tags=["operations"], summary="Database and event log are reachable")
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

    idempotency = IdempotencyStore(runtime)

    @app.middleware("http")
    async def around_request(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        correlation = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        token = context.correlation_id.set(correlation[:100])
        started = time.perf_counter()
        try:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key and request.method in MUTATING_METHODS:
                response = await idempotency.run_once(request, key, call_next)
            else:
                response = await call_next(request)
        finally:
            context.correlation_id.reset(token)
        route = request.scope.get("route")
        REQUEST_LATENCY.labels(
            runtime.name,
            request.method,
            getattr(route, "path", "unmatched"),
            str(response.status_code),
        ).observe(time.perf_counter() - started)
        response.headers[CORRELATION_HEADER] = correlation
        return response

    return app


class IdempotencyStore:
    """Replays the stored response when a mutating call is retried with the same key.

    A placeholder row is claimed before the call runs, so two concurrent retries cannot
    both act; only successful responses are kept, so a corrected retry can go through.
    """

    def __init__(self, runtime: ServiceRuntime[Any]) -> None:
        self._runtime = runtime
        self._table: sa.Table = runtime.idempotency

    @staticmethod
    def _caller(request: Request) -> str | None:
        """The verified caller, so a retry with a freshly minted token still matches."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            actor = request.app.state.token_verifier.verify(token)
        except HTTPException:
            return None
        return f"{actor.council}:{actor.user_id}"

    async def run_once(
        self, request: Request, key: str, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if len(key) > 200:
            return JSONResponse({"detail": "Idempotency-Key is longer than 200 characters"}, 422)
        caller = self._caller(request)
        if caller is None:  # no valid token: the route itself answers 401
            return await call_next(request)
        body = await request.body()
        scope = f"{request.method} {request.url.path} {caller}"
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
                    return JSONResponse(
                        {"detail": "this Idempotency-Key was used for a different request"}, 422
                    )
                if existing.status_code == 0:
                    return JSONResponse(
                        {"detail": "a request with this Idempotency-Key is still running"}, 409
                    )
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
                return JSONResponse(
                    {"detail": "a request with this Idempotency-Key is still running"}, 409
                )
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        async with self._runtime.database.sessions() as session:
            where = (table.c.scope == scope) & (table.c.key == key)
            if 200 <= response.status_code < 300:
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


def runtime_from(request: Request) -> ServiceRuntime[Any]:
    """FastAPI dependency: the runtime of the app serving this request."""
    runtime: ServiceRuntime[Any] = request.app.state.runtime
    return runtime
