"""Who is calling: a bearer JWT carrying the user id, role and council.

On the embedded default the services trust a local RS256 key pair kept in the data
directory; `pbj token` mints development tokens with it. Anywhere else (Kafka, PostgreSQL,
environment=production) they verify against the identity provider's JSON Web Key Set
(JWKS) URL, picking the key by the token's `kid`, so the provider can rotate keys without
a restart. docs/security.md describes the threat model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.vocabulary import CITIZEN_ROLES, Role
from servicekit import context
from servicekit.caller import Caller
from servicekit.errors import (
    Forbidden,
    IdentityProviderUnavailable,
    NotFound,
    TokenExpired,
    Unauthenticated,
)

log = structlog.get_logger(__name__)

ISSUER = "pb-journey-dev"
AUDIENCE = "pb-journey"
PRIVATE_KEY_FILE = "dev-signing-key.pem"
PUBLIC_KEY_FILE = "dev-signing-key.pub.pem"

DEFAULT_TOKEN_TTL_SECONDS = 8 * 3600
"""What `pbj token` and the local identity provider mint: a working day."""

MAX_TOKEN_LIFETIME_SECONDS = 12 * 3600
"""The longest a token may live (exp - iat, and exp - now) unless settings say otherwise: a
token that lives for years is a password that can never be changed."""

CLOCK_LEEWAY_SECONDS = 60
"""How far the identity provider's clock may run ahead of the service's (iat, nbf)."""


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
    private_key_pem: bytes | rsa.RSAPrivateKey,
    *,
    user_id: str,
    role: Role,
    council: str,
    person_id: str | None = None,
    ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
    kid: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "role": role.value,
        "council": council,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if person_id is not None:
        claims["person_id"] = person_id
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers=headers)


VERIFIED_TOKENS_KEPT = 4096
"""How many verified tokens a service remembers. A caller sends the same token with every
request for hours; checking its RS256 signature each time (in a worker thread, so a key
set refetch cannot stall the event loop) cost more CPU than the rest of a small read."""


class TokenVerifier:
    """Checks a token against one fixed public key (the development key, or a council's
    static key file).

    A token that passed is remembered until it expires, or until the keys it was checked
    against stop being trusted (`_keys_in_use`), whichever is first; `verified` answers
    from there without the signature check. Refused tokens are never remembered, so every
    refusal is worked out afresh with its reason.
    """

    def __init__(
        self,
        public_key_pem: bytes,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        councils: frozenset[str] | None = None,
        max_lifetime_seconds: float = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self._public_key: Any = public_key_pem
        self._issuer = issuer
        self._audience = audience
        self._councils = councils
        self._max_lifetime = max_lifetime_seconds
        self._verified: dict[str, tuple[Caller, float, object]] = {}

    def _key_for(self, token: str) -> Any:
        return self._public_key

    def _keys_in_use(self) -> object | None:
        """What a remembered token was checked against; it is trusted only while this is
        still the same object. None: keys are in flux, remember nothing."""
        key: object = self._public_key
        return key

    def verified(self, token: str) -> Caller | None:
        """The caller of a token already checked and still good, else None (call verify)."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        actor, expires_at, keys = entry
        if time.time() < expires_at and keys is self._keys_in_use():
            return actor
        self._verified.pop(token, None)
        return None

    def _remember(self, token: str, actor: Caller, expires_at: float, keys: object | None) -> None:
        if keys is None:
            return
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            # The oldest first (dicts keep insertion order); pop may race another thread.
            self._verified.pop(next(iter(self._verified), ""), None)
        self._verified[token] = (actor, expires_at, keys)

    def verify(self, token: str) -> Caller:
        """The caller a token names, or Unauthenticated (TokenExpired) saying why not.

        Real time, not servicekit.clock: a token's life is the identity provider's
        wall-clock time, whatever day the service's rules are told it is.
        """
        key = self._key_for(token)
        keys = self._keys_in_use()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                # iat and nbf are checked below, with leeway for the provider's clock.
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss"],
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as err:
            raise _refusal(err) from err
        actor = self._actor(claims)
        self._remember(token, actor, float(claims["exp"]), keys)
        return actor

    def _actor(self, claims: dict[str, Any]) -> Caller:
        now = time.time()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
        if not all(_is_number(value) for value in (exp, iat, nbf)):
            raise Unauthenticated("the token's exp, iat and nbf must be numbers (seconds)")
        if iat > now + CLOCK_LEEWAY_SECONDS:
            raise Unauthenticated("the token was issued in the future (iat); check the clocks")
        if nbf > now + CLOCK_LEEWAY_SECONDS:
            raise Unauthenticated("the token is not valid yet (nbf)")
        longest = self._max_lifetime
        if exp - iat > longest or exp - now > longest + CLOCK_LEEWAY_SECONDS:
            raise Unauthenticated(
                f"the token lives longer than the {self._max_lifetime / 3600:g} hours this "
                "service accepts; ask for a shorter-lived one"
            )
        sub, role, council = claims["sub"], claims.get("role"), claims.get("council")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("the token names no user (sub)")
        if not isinstance(role, str) or role not in KNOWN_ROLES:
            raise Unauthenticated("the token names no role this service knows")
        if not isinstance(council, str) or not council:
            raise Unauthenticated("the token names no council")
        if self._councils is not None and council not in self._councils:
            raise Unauthenticated("the token names a council this service does not serve")
        person_id = claims.get("person_id")
        if person_id is not None and (not isinstance(person_id, str) or not person_id):
            raise Unauthenticated("the token's person_id is not a person id")
        if Role(role) in CITIZEN_ROLES and not person_id:
            raise Unauthenticated("a person's token must name their person_id")
        return Caller.of(user_id=sub, role=Role(role), council=council, person_id=person_id)


KNOWN_ROLES = frozenset(role.value for role in Role)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refusal(err: jwt.InvalidTokenError) -> Unauthenticated:
    """What was wrong with a token, in words: never the library's own message."""
    if isinstance(err, jwt.ExpiredSignatureError):
        return TokenExpired("the token has expired; sign in again")
    if isinstance(err, jwt.InvalidSignatureError):
        return Unauthenticated("the token's signature does not match the key it names")
    if isinstance(err, jwt.InvalidAudienceError):
        return Unauthenticated("the token is meant for another audience (aud)")
    if isinstance(err, jwt.InvalidIssuerError):
        return Unauthenticated("the token comes from an issuer this service does not trust (iss)")
    if isinstance(err, jwt.MissingRequiredClaimError):
        return Unauthenticated(f"the token has no {err.claim} claim")
    if isinstance(err, jwt.InvalidAlgorithmError):
        return Unauthenticated("the token is not signed with RS256")
    return Unauthenticated("the bearer token is not a valid signed token")


class JwksTokenVerifier(TokenVerifier):
    """Checks a token against the identity provider's key set, chosen by the token's `kid`.

    The set is cached for `cache_seconds`; a `kid` not in the cached set triggers one
    refetch, at most once every `refetch_cooldown_seconds` (so a stream of made-up kids
    cannot turn the service into a load generator against the provider). A newly rotated
    key is therefore trusted on first sight, and a key the provider removed stops being
    trusted at the next refetch, at most `cache_seconds` later.
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        cache_seconds: float = 300,
        refetch_cooldown_seconds: float = 10,
        timeout_seconds: float = 5,
        councils: frozenset[str] | None = None,
        max_lifetime_seconds: float = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        super().__init__(
            b"",
            issuer=issuer,
            audience=audience,
            councils=councils,
            max_lifetime_seconds=max_lifetime_seconds,
        )
        self.jwks_url = jwks_url
        self._client = jwt.PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=cache_seconds,
            timeout=timeout_seconds,
            cooldown_duration=refetch_cooldown_seconds,
        )

    def _keys_in_use(self) -> object | None:
        # The cached key set itself: a refetch (expiry, or a kid not seen before) replaces
        # it, so a token checked with a key the provider has since retired is checked again.
        cache = self._client.jwk_set_cache
        if cache is None or cache.is_expired():
            return None
        return cache.jwk_set_with_timestamp

    def _key_for(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as err:
            raise Unauthenticated("the bearer token is not a valid signed token") from err
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token's header names no key id (kid)")
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as err:
            log.warning("jwks_unreachable", url=self.jwks_url, reason=str(err)[:200])
            raise IdentityProviderUnavailable(
                "the identity provider's key set could not be fetched, so no token can be "
                "checked just now; try again shortly"
            ) from err
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as err:
            if str(err).startswith("Unable to find a signing key"):
                raise Unauthenticated(
                    "the token is signed with a key the identity provider does not list "
                    "(retired, or never issued)"
                ) from err
            log.warning("jwks_unusable", url=self.jwks_url, reason=str(err)[:200])
            raise IdentityProviderUnavailable(
                "the identity provider's key set could not be read; try again shortly"
            ) from err


_bearer = HTTPBearer(auto_error=False, description="A JWT from the council's IdP or `pbj token`")


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The verified caller; every event the request emits records them as its actor."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    actor = verifier.verified(credentials.credentials)
    if actor is None:
        # In a worker thread: a key set refetch must not stall the event loop.
        actor = await run_in_threadpool(verifier.verify, credentials.credentials)
    # Set in the request's own task (an async dependency), so the route and the unit of
    # work it commits see it.
    context.actor.set(actor.as_record())
    return actor


CurrentActor = Annotated[Caller, Depends(current_actor)]


def require_role(actor: Caller, *roles: Role) -> None:
    """403 unless the actor holds one of the roles."""
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"a {actor.role.value} may not do this; needs one of: {allowed}")


def require_same_council(actor: Caller, council: str) -> None:
    """Another council's record answers 404, so its ids leak nothing."""
    if actor.council != council:
        raise NotFound("not found")


def require_can_see_person(actor: Caller, council: str, person_id: str) -> None:
    """Staff see their council's people; a person or representative only themselves."""
    require_same_council(actor, council)
    if actor.is_citizen and actor.person_id != person_id:
        raise NotFound("not found")
