"""A small local identity provider, for trials and tests only.

It keeps RS256 key pairs in a directory, serves their public halves as a JSON Web Key Set
(JWKS) over HTTP on the loopback interface, and mints tokens with the current key (its
`kid` in the header), so the services can run exactly as in production: verifying
against a JWKS URL, with key rotation. It has no login, no users and no revocation; a
council runs its own identity provider (Entra ID, Keycloak, ...) and gives the services
that provider's JWKS URL.

Layout of the directory: `keys/<kid>.pem` (private keys, 0600) and `current` (the kid new
tokens are signed with). The HTTP server reads the directory on every request, so
`pbj idp rotate` in another process takes effect at once.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from contracts.vocabulary import Role
from servicekit.auth import AUDIENCE, ensure_dev_keys, mint_token

IDP_ISSUER = "pb-journey-local-idp"
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_PORT = 8009


@dataclass(frozen=True)
class LocalIdentityProvider:
    """Key pairs on disk; the JWKS they make; tokens signed with the current one."""

    directory: Path
    issuer: str = IDP_ISSUER
    audience: str = AUDIENCE

    @property
    def _keys(self) -> Path:
        return self.directory / "keys"

    def ensure(self) -> str:
        """Create the first key pair if there is none; return the current kid."""
        current = self.directory / "current"
        if current.exists():
            return current.read_text().strip()
        return self.rotate()

    def rotate(self, *, retire_others: bool = False) -> str:
        """Add a new key pair and sign with it from now on; the old keys stay in the set
        (tokens already issued still verify) unless `retire_others`."""
        self._keys.mkdir(parents=True, exist_ok=True)
        kid = f"k-{secrets.token_hex(6)}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = self._keys / f"{kid}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        pending = self.directory / "current.new"
        pending.write_text(kid)
        pending.replace(self.directory / "current")  # the server never reads half a kid
        if retire_others:
            for other in self.kids():
                if other != kid:
                    self.retire(other)
        return kid

    def retire(self, kid: str) -> None:
        """Take a key out of the set: tokens signed with it stop verifying once a service
        refetches the set (at most its JWKS cache time later)."""
        current = self.directory / "current"
        if current.exists() and current.read_text().strip() == kid:
            raise ValueError(f"{kid} is the current signing key; rotate before retiring it")
        path = self._keys / f"{kid}.pem"
        if not path.exists():
            raise ValueError(f"no key {kid}")
        path.unlink()

    def kids(self) -> list[str]:
        return sorted(p.stem for p in self._keys.glob("*.pem")) if self._keys.exists() else []

    def private_key(self, kid: str) -> bytes:
        return (self._keys / f"{kid}.pem").read_bytes()

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.kids():
            path = self._keys / f"{kid}.pem"
            try:
                jwk = _public_jwk(path, path.stat().st_mtime_ns)
            except FileNotFoundError:  # retired while we listed
                continue
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def mint(
        self,
        *,
        user_id: str,
        role: Role,
        council: str,
        person_id: str | None = None,
        ttl_seconds: int = 8 * 3600,
        kid: str | None = None,
    ) -> str:
        """A token signed with the current key (or the named one)."""
        kid = kid or self.ensure()
        return mint_token(
            self.private_key(kid),
            user_id=user_id,
            role=role,
            council=council,
            person_id=person_id,
            ttl_seconds=ttl_seconds,
            kid=kid,
            issuer=self.issuer,
            audience=self.audience,
        )

    def service_env(self, prefix: str, jwks_url: str) -> dict[str, str]:
        """The settings a service needs to trust this provider."""
        return {
            f"{prefix}_JWKS_URL": jwks_url,
            f"{prefix}_JWT_ISSUER": self.issuer,
            f"{prefix}_JWT_AUDIENCE": self.audience,
        }


@functools.lru_cache(maxsize=64)
def _public_jwk(path: Path, mtime_ns: int) -> dict[str, Any]:
    """The public half of a key file as a JWK (parsing a PEM key is slow, so cached)."""
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return jwk


class JwksServer:
    """Serves the provider's JWKS on 127.0.0.1 from a background thread."""

    def __init__(self, idp: LocalIdentityProvider, port: int = 0) -> None:
        self.idp = idp
        self.requests_served = 0
        idp.ensure()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != JWKS_PATH:
                    self.send_error(404)
                    return
                body = json.dumps(server.idp.jwks()).encode()
                server.requests_served += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)


def idp_directory(data_dir: Path) -> Path:
    return data_dir / "idp"


TRUST_FILE = "trust.json"


def record_trust(data_dir: Path, jwks_url: str | None) -> None:
    """Note which signer the services started from `data_dir` trust, so `pbj token`,
    `pbj demo` and the other commands mint tokens those services accept."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / TRUST_FILE).write_text(json.dumps({"jwks_url": jwks_url}))


def trusted_jwks_url(data_dir: Path) -> str | None:
    path = data_dir / TRUST_FILE
    if not path.exists():
        return None
    url = json.loads(path.read_text()).get("jwks_url")
    return str(url) if url else None


def mint_for(
    data_dir: Path,
    *,
    user_id: str,
    role: Role,
    council: str,
    person_id: str | None = None,
    ttl_seconds: int = 8 * 3600,
) -> str:
    """A token the services started from `data_dir` accept: signed by the local identity
    provider when they verify against its JWKS, else with the development key."""
    if trusted_jwks_url(data_dir) is not None:
        return LocalIdentityProvider(idp_directory(data_dir)).mint(
            user_id=user_id,
            role=role,
            council=council,
            person_id=person_id,
            ttl_seconds=ttl_seconds,
        )
    private_path, _ = ensure_dev_keys(data_dir)
    return mint_token(
        private_path.read_bytes(),
        user_id=user_id,
        role=role,
        council=council,
        person_id=person_id,
        ttl_seconds=ttl_seconds,
    )
