"""Where the portal gets the signed-in user's bearer token: the one place that decides.

Development: a sign-in page mints a token as `pbj token` does (`pbj.idp.mint_for`: the
development key on the embedded default, the local trial identity provider's key when the
services check the key set it serves) and keeps it in the signed session cookie.
Production: the council's identity provider signs people in; an
authenticating proxy in front of the portal passes each request's access token in a
header (`PORTAL_ACCESS_TOKEN_HEADER`, default X-Forwarded-Access-Token). The services
verify every token; the portal reads its claims only to choose what to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request

from contracts.vocabulary import CITIZEN_ROLES, Role
from pbj.idp import mint_for
from services.portal.settings import Settings

SESSION_TOKEN = "token"


@dataclass(frozen=True)
class SignedIn:
    """Who is using the portal, as their token says."""

    token: str
    user_id: str
    role: Role
    council: str
    person_id: str | None

    @property
    def is_citizen(self) -> bool:
        return self.role in CITIZEN_ROLES


def _claims(token: str) -> dict[str, Any]:
    # Not verified here: the services verify the token on every call the portal makes.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def signed_in(request: Request, settings: Settings) -> SignedIn | None:
    """The current user, or None when nobody is signed in (or the token is unreadable)."""
    if settings.development:
        token = request.session.get(SESSION_TOKEN)
    else:
        token = request.headers.get(settings.access_token_header)
    if not token:
        return None
    try:
        claims = _claims(token)
        return SignedIn(
            token=token,
            user_id=str(claims["sub"]),
            role=Role(claims["role"]),
            council=str(claims["council"]),
            person_id=claims.get("person_id"),
        )
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


def development_sign_in(
    request: Request,
    settings: Settings,
    *,
    user_id: str,
    role: Role,
    council: str,
    person_id: str | None,
) -> None:
    """Mint a trial token the running services accept and keep it in the session."""
    request.session[SESSION_TOKEN] = mint_for(
        settings.data_dir,
        user_id=user_id,
        role=role,
        council=council,
        person_id=person_id if role in CITIZEN_ROLES else None,
    )


def sign_out(request: Request) -> None:
    request.session.clear()
