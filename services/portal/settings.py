"""Portal settings: environment variables prefixed PORTAL_."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SESSION_SECRET_FILE = "portal-session-secret"
SERVICE_NAMES = ("assessment", "allocation", "planning", "payments", "audit")


class Settings(BaseSettings):
    """The portal keeps no data of its own: only where the services are and how to sign in."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(
        Path("var"), description="Where the development signing key (and session secret) live."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    policies_dir: Path = Path("policies")
    assessment_url: str = "http://127.0.0.1:8001"
    allocation_url: str = "http://127.0.0.1:8002"
    planning_url: str = "http://127.0.0.1:8003"
    payments_url: str = "http://127.0.0.1:8004"
    audit_url: str = "http://127.0.0.1:8005"
    session_secret: str | None = Field(
        None, description="Signs the session cookie; development keeps one in data_dir."
    )
    secure_cookies: bool = Field(False, description="Send the session cookie over HTTPS only.")
    access_token_header: str = Field(
        "X-Forwarded-Access-Token",
        description="Production: the header the council's auth proxy puts the user's token in.",
    )
    target_percent: dict[str, float] = Field(
        default_factory=dict,
        description="A council's target share of people with a personal budget (NI130), "
        'e.g. {"lancashire": 74}.',
    )
    default_target_percent: float = Field(
        30.0,
        description="Putting People First's milestone: 30% of eligible people on a personal "
        "budget by April 2011 (seed 001 §9.4).",
    )
    request_timeout_seconds: float = 15.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.environment == "production" and not self.session_secret:
            raise ValueError("session_secret must be set in production")
        return self

    @property
    def service_urls(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_url").rstrip("/") for name in SERVICE_NAMES}

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def session_key(self) -> str:
        """The configured secret, or (development only) one kept in the data directory."""
        if self.session_secret:
            return self.session_secret
        path = self.data_dir / SESSION_SECRET_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    def target_for(self, council: str) -> float:
        return self.target_percent.get(council, self.default_target_percent)
