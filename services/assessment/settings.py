"""Assessment service settings: environment variables prefixed ASSESSMENT_."""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings
from services.assessment.sealing import MASTER_KEY_FILE, MasterKey


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASSESSMENT_", extra="ignore")

    service_name: str = "assessment"
    port: int = 8001
    personal_data_master_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes: the master key that wraps each person's "
        f"data key. Default (development only): data_dir/{MASTER_KEY_FILE}, made on first use.",
    )
    retention_today: date | None = Field(
        None,
        description="Take this date as today in the retention check before an erasure "
        "(rehearsals and tests); refused in production.",
    )

    @model_validator(mode="after")
    def _no_development_keys_in_production(self) -> Self:
        if self.environment == "production":
            if self.personal_data_master_key is None:
                raise ValueError(
                    "personal_data_master_key must be set in production: the key file in "
                    "data_dir is for the embedded default only"
                )
            if self.retention_today is not None:
                raise ValueError("retention_today is for rehearsals and tests, not production")
        return self

    def master_key(self) -> MasterKey:
        if self.personal_data_master_key is not None:
            return MasterKey.from_base64(self.personal_data_master_key.get_secret_value())
        return MasterKey.from_file(self.data_dir / MASTER_KEY_FILE)
