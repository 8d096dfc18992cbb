"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.auth import (
    AUDIENCE,
    ISSUER,
    MAX_TOKEN_LIFETIME_SECONDS,
    PUBLIC_KEY_FILE,
    JwksTokenVerifier,
    TokenVerifier,
)


class ServiceSettings(BaseSettings):
    """Read from the environment with the service's prefix, e.g. ALLOCATION_PORT."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(Path("var"), description="SQLite files and the local signing key.")
    database_url: str | None = Field(None, description="Default: a SQLite file in data_dir.")
    event_log_url: str | None = Field(
        None, description="sqlite:///PATH (embedded, the default) or kafka://HOST:PORT."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    policies_dir: Path = Path("policies")
    jwks_url: str | None = Field(
        None,
        description="The identity provider's JSON Web Key Set URL; tokens must carry a kid. "
        "Required anywhere but the embedded default.",
    )
    jwt_issuer: str = Field(ISSUER, description="The `iss` every token must carry.")
    jwt_audience: str = Field(AUDIENCE, description="The `aud` every token must carry.")
    jwks_cache_seconds: float = Field(
        300, gt=0, description="How long a fetched key set is trusted before it is fetched again."
    )
    jwks_refetch_cooldown_seconds: float = Field(
        10, ge=0, description="At most one refetch for an unknown kid in this many seconds."
    )
    jwt_public_key_file: Path | None = Field(
        None,
        description="A council's static PEM public key (no rotation); the JWKS URL is "
        "preferred. Unset with no JWKS URL: the development key in data_dir.",
    )
    max_token_lifetime_seconds: int = Field(
        MAX_TOKEN_LIFETIME_SECONDS,
        gt=0,
        description="The longest a token may live: exp - iat, and exp - now. A token the "
        "identity provider issues for longer is refused.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    metrics_sample_seconds: float = Field(
        5.0, gt=0, description="How often the outbox backlog and consumer lag gauges are read."
    )
    consumer_batch: int = Field(
        100,
        ge=1,
        le=1000,
        description="Events a consumer applies in one transaction (ADR 15); 1 applies each "
        "in its own, as before batching.",
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Self:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/{self.service_name}.db"
        if self.event_log_url is None:
            self.event_log_url = f"sqlite:///{self.data_dir}/eventlog.db"
        if self.jwt_public_key_file is None and self.jwks_url is None:
            self.jwt_public_key_file = self.data_dir / PUBLIC_KEY_FILE
        if self.trusts_development_key:
            elsewhere = self._not_embedded_default()
            if elsewhere:
                raise ValueError(
                    f"refusing to trust the development signing key: {elsewhere}. The "
                    "development key is for the embedded default (SQLite and the embedded "
                    "event log, environment=development) only; set the JWKS_URL setting to "
                    "the identity provider's key set (`pbj idp serve` for a trial)"
                )
        return self

    @property
    def trusts_development_key(self) -> bool:
        """True when tokens would be checked with the key `pbj token` signs with."""
        if self.jwks_url is not None or self.jwt_public_key_file is None:
            return False
        return self.jwt_public_key_file.resolve() == (self.data_dir / PUBLIC_KEY_FILE).resolve()

    def _not_embedded_default(self) -> str:
        reasons = []
        if self.environment == "production":
            reasons.append("environment is production")
        if not self.log_url.startswith("sqlite:"):
            reasons.append(f"the event log is {self.log_url.split(':', 1)[0]}")
        if not self.db_url.startswith("sqlite"):
            reasons.append(f"the database is {self.db_url.split(':', 1)[0]}")
        return ", ".join(reasons)

    def token_verifier(self, *, councils: frozenset[str] | None = None) -> TokenVerifier:
        """The verifier these settings call for (read at start-up). `councils`: the ones
        this deployment serves (its policy book's); a token naming any other is refused."""
        if self.jwks_url is not None:
            return JwksTokenVerifier(
                self.jwks_url,
                issuer=self.jwt_issuer,
                audience=self.jwt_audience,
                cache_seconds=self.jwks_cache_seconds,
                refetch_cooldown_seconds=self.jwks_refetch_cooldown_seconds,
                councils=councils,
                max_lifetime_seconds=self.max_token_lifetime_seconds,
            )
        return TokenVerifier(
            self.public_key_path.read_bytes(),
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            councils=councils,
            max_lifetime_seconds=self.max_token_lifetime_seconds,
        )

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def log_url(self) -> str:
        assert self.event_log_url is not None
        return self.event_log_url

    @property
    def public_key_path(self) -> Path:
        assert self.jwt_public_key_file is not None
        return self.jwt_public_key_file
