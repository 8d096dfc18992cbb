"""What every page of the portal shares: who is signed in, the services' client, the posted
form (once its CSRF token checks), the council's policy, rendering and redirecting.

The routers under `routes/` take these as FastAPI dependencies (`User`, `Staff`, `Api`,
`Form`) and helpers; `api.create_app` puts what they read on `app.state`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from contracts.policy import Policy, PolicyBook
from servicekit import clock
from services.portal import finance, identity
from services.portal.clients import ServiceError, Services
from services.portal.identity import SignedIn
from services.portal.settings import Settings

T = TypeVar("T")


class SignInNeeded(Exception):
    """No one is signed in (or the sign-in has ended): go to the sign-in page."""


class StaffOnly(Exception):
    """A person or representative opened a staff page: their own page is /me."""


class FormExpired(Exception):
    """The form's CSRF token is missing or not this session's."""


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_user(request: Request) -> SignedIn:
    user = identity.signed_in(request, settings_of(request))
    if user is None:
        raise SignInNeeded
    return user


def current_staff(request: Request) -> SignedIn:
    user = current_user(request)
    if user.is_citizen:
        raise StaffOnly
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form, once its CSRF token matches the session's; closed after the request
    (an uploaded file is spooled to a temporary file until then)."""
    form = await request.form()
    try:
        sent = form.get("csrf_token")
        expected = request.session.get("csrf")
        if not isinstance(sent, str) or not isinstance(expected, str):
            raise FormExpired
        if not hmac.compare_digest(sent, expected):
            raise FormExpired
        yield form
    finally:
        await form.close()


User = Annotated[SignedIn, Depends(current_user)]
Staff = Annotated[SignedIn, Depends(current_staff)]
Api = Annotated[Services, Depends(services_of)]
Form = Annotated[FormData, Depends(checked_form)]


def today() -> date:
    """Today by the one clock: the default dates forms offer and the pages' "due by"."""
    return clock.today()


def flash(request: Request, text: str, kind: str = "error") -> None:
    messages = list(request.session.get("flash", []))
    messages.append({"kind": kind, "text": text})
    request.session["flash"] = messages


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    user = identity.signed_in(request, settings_of(request))
    messages = request.session.pop("flash", [])
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf_token": csrf_token(request),
            "messages": messages,
            "development": settings_of(request).development,
            "today": today(),
            **context,
        },
        status_code=status_code,
    )


async def optional(call: Awaitable[T]) -> T | None:
    """A section the user may not be allowed to see, or that does not exist yet: None."""
    try:
        return await call
    except ServiceError as err:
        if err.status in (403, 404):
            return None
        raise


def policy_book(request: Request) -> PolicyBook:
    book: PolicyBook = request.app.state.policies
    return book


def policy_for(request: Request, council: str) -> Policy | None:
    try:
        return policy_book(request).current(council)
    except Exception:  # a council this portal has no policy file for
        return None


async def uploaded(request: Request, form: FormData) -> bytes | None:
    """The chosen file's bytes; None (with the reason flashed) when there is none to send."""
    chosen = form.get("file")
    if not isinstance(chosen, UploadFile) or not chosen.filename:
        flash(request, "Choose a CSV file to upload.")
        return None
    content = await chosen.read(finance.MAX_UPLOAD_BYTES + 1)
    if not content.strip():
        flash(request, f"The file {chosen.filename} is empty.")
        return None
    if len(content) > finance.MAX_UPLOAD_BYTES:
        flash(request, f"The file {chosen.filename} is larger than 32 MB: split it.")
        return None
    return content


def download(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
