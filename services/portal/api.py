"""The portal: server-rendered pages over the five services' APIs, with no database.

Every page calls the services with the signed-in user's bearer token (identity.py) and
shows what they answer; every form posts to the portal, which calls the service and
redirects back with the service's reason when it refuses (Post/Redirect/Get). The pages
are routers by area in `routes/`; what they share is in `deps.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from services.portal import identity
from services.portal.clients import ServiceError, Services
from services.portal.deps import FormExpired, SignInNeeded, StaffOnly, back_to, render
from services.portal.formatting import long_date, money, plain, words
from services.portal.routes import (
    approvals,
    assessments,
    cards,
    caseload,
    citizen,
    finance,
    health,
    imports,
    payments,
    performance,
    person,
    plans,
    reviews,
    sign_in,
)
from services.portal.settings import Settings

HERE = Path(__file__).parent
SESSION_MAX_AGE_SECONDS = 8 * 3600
ROUTERS = (
    health,
    sign_in,
    caseload,
    assessments,
    person,
    plans,
    payments,
    cards,
    approvals,
    reviews,
    finance,
    imports,
    performance,
    citizen,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services(settings.service_urls, settings.request_timeout_seconds)
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(
        title="PB Journey: portal",
        description="Pages for case workers, managers, finance and the people they support.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.policies = PolicyBook.from_directory(settings.policies_dir)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(money=money, long_date=long_date, words=words, plain=plain)
    templates.env.globals.update(Role=Role)
    app.state.templates = templates
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_key(),
        session_cookie="pbj_portal",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInNeeded, _sign_in_first)
    app.add_exception_handler(StaffOnly, _to_own_page)
    app.add_exception_handler(FormExpired, _form_expired)
    app.add_exception_handler(ServiceError, _service_refused)
    for area in ROUTERS:
        app.include_router(area.router)
    return app


async def _sign_in_first(request: Request, _: Exception) -> Response:
    return back_to(f"/sign-in?next={quote(request.url.path)}")


async def _to_own_page(request: Request, _: Exception) -> Response:
    return back_to("/me")


async def _form_expired(request: Request, _: Exception) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "This form has expired",
            "message": "Go back, reload the page and try again.",
        },
        status_code=403,
    )


async def _service_refused(request: Request, err: Exception) -> Response:
    assert isinstance(err, ServiceError)
    if err.status == 401:
        identity.sign_out(request)
        return back_to("/sign-in")
    status = err.status if err.status in (403, 404, 409, 422) else 502
    return render(
        request,
        "error.html",
        {"title": "Something stopped this page", "message": err.message},
        status_code=status,
    )
