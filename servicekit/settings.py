"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.auth import PUBLIC_KEY_FILE


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
    jwt_public_key_file: Path | None = Field(
        None, description="PEM public key the bearer tokens are checked with."
    )
    cors_origins: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    metrics_sample_seconds: float = Field(
        5.0, gt=0, description="How often the outbox backlog and consumer lag gauges are read."
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Self:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/{self.service_name}.db"
        if self.event_log_url is None:
            self.event_log_url = f"sqlite:///{self.data_dir}/eventlog.db"
        if self.jwt_public_key_file is None:
            if self.environment == "production":
                raise ValueError(
                    "jwt_public_key_file must be set in production: the development key "
                    "is for the embedded default only"
                )
            self.jwt_public_key_file = self.data_dir / PUBLIC_KEY_FILE
        return self

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
