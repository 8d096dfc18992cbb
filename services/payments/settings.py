"""Payments service settings: environment variables prefixed PAYMENTS_."""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    service_name: str = "payments"
    port: int = 8004
    recoup_today: date | None = Field(
        None,
        description="Take this date as today when deciding whether a recoup notice's period "
        "to respond is over (rehearsals and tests); refused in production.",
    )

    @model_validator(mode="after")
    def _no_rehearsal_dates_in_production(self) -> Self:
        if self.environment == "production" and self.recoup_today is not None:
            raise ValueError("recoup_today is for rehearsals and tests, not production")
        return self
