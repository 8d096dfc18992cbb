"""Allocation service settings: environment variables prefixed ALLOCATION_."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ALLOCATION_", extra="ignore")

    service_name: str = "allocation"
    port: int = 8002
