"""Who is calling: a bearer JWT carrying the user id, role and council.

On the embedded default the services trust a local RS256 key pair kept in the data
directory; `pbj token` mints development tokens with it. Production verifies against the
council's key set (see the trust work in docs/security.md once it lands).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.vocabulary import CITIZEN_ROLES, Role

ISSUER = "pb-journey-dev"
AUDIENCE = "pb-journey"
PRIVATE_KEY_FILE = "dev-signing-key.pem"
PUBLIC_KEY_FILE = "dev-signing-key.pub.pem"


@dataclass(frozen=True)
class Actor:
    """The caller as every state change records them."""

    user_id: str
    role: Role
    council: str
    person_id: str | None = None

    @property
    def is_citizen(self) -> bool:
        return self.role in CITIZEN_ROLES

    def as_record(self) -> str:
        return f"{self.role.value}:{self.user_id}"


def ensure_dev_keys(data_dir: Path) -> tuple[Path, Path]:
    """Create the local signing key pair once; return (private, public) paths."""
    private_path = data_dir / PRIVATE_KEY_FILE
    public_path = data_dir / PUBLIC_KEY_FILE
    if not private_path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path, public_path


def mint_token(
    private_key_pem: bytes,
    *,
    user_id: str,
    role: Role,
    council: str,
    person_id: str | None = None,
    ttl_seconds: int = 8 * 3600,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "role": role.value,
        "council": council,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if person_id is not None:
        claims["person_id"] = person_id
    return jwt.encode(claims, private_key_pem, algorithm="RS256")


class TokenVerifier:
    def __init__(self, public_key_pem: bytes) -> None:
        self._public_key = public_key_pem

    def verify(self, token: str) -> Actor:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise HTTPException(
                401, "the token has expired", {"WWW-Authenticate": "Bearer"}
            ) from err
        except jwt.InvalidTokenError as err:
            raise HTTPException(
                401, f"invalid token: {err}", {"WWW-Authenticate": "Bearer"}
            ) from err
        try:
            role = Role(claims["role"])
            council = str(claims["council"])
        except (KeyError, ValueError) as err:
            raise HTTPException(401, "the token names no known role and council") from err
        person_id = claims.get("person_id")
        if role in CITIZEN_ROLES and not person_id:
            raise HTTPException(401, "a person's token must name their person_id")
        return Actor(user_id=str(claims["sub"]), role=role, council=council, person_id=person_id)


_bearer = HTTPBearer(auto_error=False, description="A JWT from `pbj token` or the council's IdP")


def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_role(actor: Actor, *roles: Role) -> None:
    """403 unless the actor holds one of the roles."""
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise HTTPException(403, f"a {actor.role.value} may not do this; needs one of: {allowed}")


def require_same_council(actor: Actor, council: str) -> None:
    """Another council's record answers 404, so its ids leak nothing."""
    if actor.council != council:
        raise HTTPException(404, "not found")


def require_can_see_person(actor: Actor, council: str, person_id: str) -> None:
    """Staff see their council's people; a person or representative only themselves."""
    require_same_council(actor, council)
    if actor.is_citizen and actor.person_id != person_id:
        raise HTTPException(404, "not found")
