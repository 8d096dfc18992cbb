"""Planning service settings: environment variables prefixed PLANNING_."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PLANNING_", extra="ignore")

    service_name: str = "planning"
    port: int = 8003
