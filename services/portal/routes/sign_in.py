"""Signing in and out, and the home page that sends each user to their first page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from contracts.vocabulary import CITIZEN_ROLES, Role
from services.portal import identity
from services.portal.deps import (
    Form,
    back_to,
    field,
    flash,
    policy_book,
    render,
    settings_of,
)
from services.portal.formatting import words

router = APIRouter()


def _local(target: str) -> str:
    """Where to go after signing in: a path on this portal, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    user = identity.signed_in(request, settings_of(request))
    if user is None:
        return back_to("/sign-in")
    return back_to("/me" if user.is_citizen else "/caseload")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str = "/") -> Response:
    return render(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "councils": policy_book(request).councils,
            "roles": list(Role),
            "next": _local(next),
        },
    )


@router.post("/sign-in")
async def sign_in(request: Request, form: Form) -> Response:
    settings = settings_of(request)
    if not settings.development:
        return render(
            request,
            "error.html",
            {
                "title": "Sign in with your council account",
                "message": "This portal signs you in through your council's identity provider.",
            },
            status_code=400,
        )
    council = field(form, "council")
    user_id = field(form, "user_id")
    person_id = field(form, "person_id") or None
    try:
        role = Role(field(form, "role"))
    except ValueError:
        role = None
    problems = []
    if council not in policy_book(request).councils:
        problems.append("Choose a council.")
    if role is None:
        problems.append("Choose a role.")
    if not user_id:
        problems.append("Enter a user name.")
    if role in CITIZEN_ROLES and not person_id:
        problems.append("A person or their representative must enter the person's id.")
    if problems or role is None:
        for problem in problems:
            flash(request, problem)
        return back_to("/sign-in")
    identity.sign_out(request)
    identity.development_sign_in(
        request,
        settings,
        user_id=user_id,
        role=role,
        council=council,
        person_id=person_id,
    )
    flash(request, f"Signed in as {user_id} ({words(role.value)}).", "success")
    return back_to(_local(field(form, "next", "/")))


@router.post("/sign-out")
async def sign_out(request: Request, form: Form) -> Response:
    identity.sign_out(request)
    return back_to("/sign-in")
