"""Settings of the consent service, read in one place.

Values come from the environment first, then from the project's `.env` (the environment wins),
as ../shared/docs/contract.md fixes. Nothing is read at import time: use :func:`get_settings`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE = PROJECT_ROOT / "var" / "consent.db"


class Settings(BaseSettings):
    """Every setting of the consent service."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    consent_database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means the SQLite file var/consent.db."
    )
    consent_api_token: SecretStr | None = Field(
        default=None, description="The bearer token of the assistant (the service's client)."
    )
    consent_api_extra_token_sha256: str = Field(
        default="",
        description="Comma-separated hex SHA-256 digests of further client tokens.",
    )
    consent_catalog_path: Path = Field(
        default=Path(__file__).resolve().parent / "catalog" / "catalog.yml",
        description="The catalogue loaded on first start (and by `catalog load`).",
    )
    consent_auto_migrate: bool = Field(
        default=True, description="Apply database migrations and load the catalogue at start."
    )
    consent_idempotency_ttl_hours: int = Field(default=24 * 7, ge=1)
    staff_tracker_database_url: str = Field(
        default="", description="Rasa's tracker store, read-only; empty means var/rasa.db."
    )
    staff_cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie only over HTTPS (browsers treat localhost as secure).",
    )
    staff_session_hours: int = Field(default=8, ge=1)
    staff_lockout_attempts: int = Field(default=5, ge=1)
    staff_lockout_minutes: int = Field(default=15, ge=1)
    staff_mask_with_ginza: bool = Field(
        default=True, description="Also mask GiNZA's named entities (names, places, diseases)."
    )

    @model_validator(mode="after")
    def _require_a_token(self) -> Settings:
        if not self.consent_api_token and not self.consent_api_extra_token_sha256.strip():
            raise ValueError(
                "CONSENT_API_TOKEN is not set: every call but /health needs a client token "
                "(`make run` writes a development one to .env)."
            )
        return self

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to the SQLite file under var/."""
        return self.consent_database_url or f"sqlite+pysqlite:///{DEFAULT_SQLITE}"

    @property
    def tracker_database_url(self) -> str:
        """Rasa's tracker store, defaulting to the SQLite file `make run` uses."""
        return (
            self.staff_tracker_database_url
            or f"sqlite+pysqlite:///{PROJECT_ROOT / 'var' / 'rasa.db'}"
        )

    def client_token_digests(self) -> frozenset[str]:
        """SHA-256 digests of every accepted client token; the tokens themselves are not kept.

        Returns:
            Hex digests.
        """
        digests = {d.strip().lower() for d in self.consent_api_extra_token_sha256.split(",")}
        if self.consent_api_token:
            digests.add(token_digest(self.consent_api_token.get_secret_value()))
        return frozenset(d for d in digests if d)


def token_digest(token: str) -> str:
    """Hash a bearer token the way the service stores and compares it.

    Args:
        token: The token as the client sends it.

    Returns:
        The hex SHA-256 digest.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once.

    Returns:
        The settings of this process.
    """
    return Settings()
