"""Settings of the consent service, read in one place.

Values come from the environment first, then from the project's `.env` (the environment wins),
as docs/contract.md fixes. Nothing is read at import time: use :func:`get_settings`.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE = PROJECT_ROOT / "var" / "consent.db"

# A secret (client token, admin token, audit key) must carry at least 32 random bytes. Written
# in the URL-safe or standard base64 alphabet (`secrets.token_urlsafe(32)`, `openssl rand -base64
# 32`) that is at least 43 characters besides `=` padding (6 bits each); written in hexadecimal
# only (`secrets.token_hex(32)`, `openssl rand -hex 32`) at least 64 characters (4 bits each).
MIN_BASE64_CHARS = 43
MIN_HEX_CHARS = 64
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Used only in development when CONSENT_AUDIT_KEY is unset (production refuses to start without
# the setting): it is public, so it keys the chain against accidents, not against anyone.
DEVELOPMENT_AUDIT_KEY = "development-audit-key-not-secret-set-CONSENT_AUDIT_KEY-in-production"
# Likewise for the staff TOTP secrets when STAFF_TOTP_KEY is unset outside production (`make run`
# writes a random one to new .env files).
DEVELOPMENT_STAFF_TOTP_KEY = "development-staff-totp-key-not-secret-set-STAFF_TOTP_KEY"


class InsecureSettings(ValueError):
    """The settings are not safe to serve with; the message lists every problem."""


def secret_strength_problem(name: str, value: str) -> str | None:
    """Tell why `value` is too weak to be the secret `name`, or None when it is strong enough.

    Args:
        name: The setting's environment variable (for the message).
        value: The secret.

    Returns:
        A sentence naming the setting and the rule, or None.
    """
    generate = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    if _HEX.fullmatch(value):
        if len(value) >= MIN_HEX_CHARS:
            return None
        return (
            f"{name} is {len(value)} hex characters; at least {MIN_HEX_CHARS} (32 random bytes) "
            f"are needed: {generate}."
        )
    if _BASE64.fullmatch(value) and len(value.rstrip("=")) >= MIN_BASE64_CHARS:
        return None
    return (
        f"{name} must be at least {MIN_BASE64_CHARS} base64 characters (32 random bytes) or "
        f"{MIN_HEX_CHARS} hex characters: {generate}."
    )


class Settings(BaseSettings):
    """Every setting of the consent service."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    consent_env: Literal["development", "production"] = Field(
        default="development",
        description=(
            "`production` requires CONSENT_ADMIN_TOKEN and CONSENT_AUDIT_KEY, a password in a "
            "PostgreSQL URL, and the admin token for /docs, /redoc and /openapi.json."
        ),
    )
    consent_database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL the service reads and writes with (in production: the app role, "
            "without DDL); empty means the SQLite file var/consent.db."
        ),
    )
    consent_migration_database_url: str = Field(
        default="",
        description=(
            "URL of the role that owns the schema and runs the migrations; empty means "
            "CONSENT_DATABASE_URL (one role, as in development)."
        ),
    )
    consent_readonly_database_url: str = Field(
        default="",
        description=(
            "The consent database as the read-only analytics role (SELECT only), for the staff "
            "console's reads; its user gets SELECT grants after each migration."
        ),
    )
    consent_db_admin_url: SecretStr | None = Field(
        default=None,
        description=(
            "A PostgreSQL superuser's URL, read only by `db create-roles` (keeps it out of the "
            "command line); never give it to the running service."
        ),
    )
    consent_api_token: SecretStr | None = Field(
        default=None,
        description=(
            "The bearer token of the assistant (the service's client): catalogue reads, and "
            "recording, listing and withdrawing consents of a subject named in the request."
        ),
    )
    consent_admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "The operators' bearer token: audit verification and, in production, the API "
            "documentation. Unset (development only): nothing answers to an admin credential."
        ),
    )
    consent_audit_key: SecretStr | None = Field(
        default=None,
        description=(
            "HMAC-SHA256 key of the audit chain; never stored in the database. Required in "
            "production; development falls back to a public key."
        ),
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
    analytics_source: Literal["sql", "rabbitmq"] = Field(
        default="sql",
        description=(
            "Where `consume` reads Rasa's events: `sql` (the SQL event broker's table, "
            "ANALYTICS_EVENTS_DATABASE_URL; `make run`) or `rabbitmq` (the Pika event broker's "
            "queue; the production profile)."
        ),
    )
    analytics_events_database_url: str = Field(
        default="",
        description=(
            "The SQL event broker's database (its `events` table, read by position); empty "
            "means var/events.db, where endpoints.yml has Rasa write."
        ),
    )
    rabbitmq_url: str = Field(
        default="amqp://127.0.0.1/%2F",
        description=(
            "RabbitMQ of the Pika event broker: amqp://host/vhost, without credentials or port "
            "(the same value endpoints.prod.yml gives Rasa, whose broker adds RABBITMQ_PORT)."
        ),
    )
    rabbitmq_port: int = Field(default=5672, ge=1, le=65535, description="RabbitMQ's port.")
    rabbitmq_username: str = Field(default="guest", description="RabbitMQ user.")
    rabbitmq_password: SecretStr = Field(
        default=SecretStr("guest"), description="RabbitMQ password."
    )
    rabbitmq_queue: str = Field(
        default="funabashi_analytics",
        description="The durable queue Rasa publishes every event to and `consume` reads.",
    )
    rabbitmq_exchange: str = Field(
        default="rasa-exchange", description="The fanout exchange Rasa publishes to."
    )
    analytics_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How long `consume` waits for new events before looking again.",
    )
    analytics_batch_size: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="Events `consume` stores in one transaction (and acknowledges together).",
    )
    analytics_retention_days: int = Field(
        default=400,
        ge=7,
        description=(
            "Days the analytics tables keep an event (deleted by `consume` once an hour and by "
            "`retention`); independent of Rasa's RETENTION_DAYS. Keep it above "
            "(STAFF_HISTORY_WEEKS + 1) x 7 and the 366 days of transcripts the console reaches."
        ),
    )
    staff_cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie only over HTTPS (browsers treat localhost as secure).",
    )
    staff_session_hours: int = Field(default=8, ge=1)
    staff_lockout_attempts: int = Field(default=5, ge=1)
    staff_lockout_minutes: int = Field(default=15, ge=1)
    staff_mask_with_ginza: bool = Field(
        default=True,
        description=(
            "Also mask GiNZA's named entities (names, places, diseases); done once, by "
            "`consume`, when it stores an event (the web app never loads GiNZA)."
        ),
    )
    staff_totp_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key (32 random bytes: 43+ base64 or 64 hex characters) that encrypts the staff "
            "TOTP secrets at rest (AES-256-GCM). Required in production; development falls "
            "back to a public key."
        ),
    )
    staff_idle_minutes: int = Field(
        default=30, ge=1, description="A staff session unused this long ends (idle timeout)."
    )
    staff_login_ip_attempts: int = Field(
        default=10, ge=1, description="Log-in attempts per client address per window."
    )
    staff_login_ip_window_seconds: int = Field(
        default=300, ge=1, description="The window of STAFF_LOGIN_IP_ATTEMPTS."
    )
    staff_login_ip_max_clients: int = Field(
        default=10_000,
        ge=100,
        description="Client addresses the log-in throttle remembers (least recent forgotten).",
    )
    receipt_code_window_seconds: int = Field(
        default=3600,
        ge=60,
        description=(
            "The window in which failed look-ups by receipt code count; failure records older "
            "than it are deleted (at start and by `retention`)."
        ),
    )
    receipt_code_failures_per_requester: int = Field(
        default=5,
        ge=1,
        description="Wrong or unknown receipt codes one requester may try per window (then 429).",
    )
    receipt_code_failures_per_client: int = Field(
        default=100,
        ge=1,
        description=(
            "Wrong or unknown receipt codes one client (the chat, as a whole) may try per "
            "window (then 429 for everyone it serves): the bound on guessing codes."
        ),
    )
    link_code_ttl_seconds: int = Field(
        default=600,
        ge=60,
        le=3600,
        description=(
            "How long a one-time code linking two channels of a resident is valid; codes are "
            "deleted once expired for as long again (on every issue and redemption, at start and "
            "by `retention`)."
        ),
    )
    staff_history_weeks: int = Field(
        default=11,
        ge=1,
        le=53,
        description=(
            "Completed weeks the aggregate views reach back; keep (weeks + 1) x 7 below "
            "RETENTION_DAYS so that no shown week loses data to retention."
        ),
    )
    # The labelling loop (issue 15): the console asks the running assistant whether labelled
    # messages are understood now (Rasa's HTTP API, `POST /model/parse`).
    staff_rasa_url: str = Field(
        default="http://127.0.0.1:5005",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description=(
            "Rasa's HTTP API (served with --enable-api and RASA_API_TOKEN, as `make run` does "
            "on loopback) that the console asks, on 再確認, how the model reads each labelled "
            "message. Unreachable (e.g. the production profile, which serves no HTTP API): the "
            "labels page says so and keeps the last answers."
        ),
    )
    rasa_api_token: SecretStr | None = Field(
        default=None,
        description="Rasa's HTTP API token (the same RASA_API_TOKEN the Rasa server is given).",
    )
    staff_rasa_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of each call to Rasa's HTTP API."
    )
    staff_label_min_confidence: float = Field(
        default=0.55,
        ge=0,
        le=1,
        description=(
            "A labelled message counts as understood when the model parses it to its label "
            "with at least this confidence: the FallbackClassifier threshold of config.yml."
        ),
    )

    # Health notices (issue 17, docs/notices.md). NOTICE_PRIVATE_KEY is not a setting of the
    # service: only `send-notices` reads it (SenderSecrets below).
    line_channel_access_token: SecretStr | None = Field(
        default=None,
        description="The LINE channel access token `send-notices` multicasts with.",
    )
    line_api_base_url: str = Field(
        default="https://api.line.me",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="LINE's Messaging API (a fake platform in tests and e2e).",
    )
    notice_batch_size: int = Field(
        default=500,
        ge=1,
        le=500,
        description="Recipients per multicast call (LINE accepts at most 500).",
    )
    notice_poll_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How long `send-notices` waits before looking for due notices again.",
    )
    notice_http_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of each call to LINE's API."
    )
    notice_quiet_hours: str = Field(
        default="21:00-08:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
        description=(
            "Japan time in which no notice is sent (HH:MM-HH:MM, may wrap midnight); the "
            "console refuses schedules inside it and the sender waits."
        ),
    )
    notice_link_domains: str = Field(
        default="www.city.funabashi.lg.jp",
        description="Comma-separated hosts a notice's link may point to (https only).",
    )
    notice_max_delay_hours: int = Field(
        default=24,
        ge=1,
        le=168,
        description=(
            "An approved notice whose time is more than this many hours past when the sender "
            "first plans it is refused (`too_late`): a stale date must not go out days later."
        ),
    )
    notice_web_subscription_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description=(
            "A web or REST subscription ends (`expired`) this many days after it began: its "
            "subject is the pseudonym of a web chat session (WEBCHAT_SESSION_DAYS at most), "
            "not a lasting account. `retention` ends them; every read treats them as ended."
        ),
    )

    def notice_link_hosts(self) -> frozenset[str]:
        """The hosts of NOTICE_LINK_DOMAINS, lower-case."""
        return frozenset(
            h.strip().lower() for h in self.notice_link_domains.split(",") if h.strip()
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
    def production(self) -> bool:
        """Whether CONSENT_ENV is `production`."""
        return self.consent_env == "production"

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to the SQLite file under var/."""
        return self.consent_database_url or f"sqlite+pysqlite:///{DEFAULT_SQLITE}"

    @property
    def migration_database_url(self) -> str:
        """The schema owner's URL, defaulting to the app's."""
        return self.consent_migration_database_url or self.database_url

    def audit_key(self) -> bytes:
        """The key of the audit chain (the development key when unset outside production).

        Returns:
            The key's UTF-8 bytes.

        Raises:
            InsecureSettings: In production without CONSENT_AUDIT_KEY.
        """
        if self.consent_audit_key is not None:
            return self.consent_audit_key.get_secret_value().encode("utf-8")
        if self.production:
            raise InsecureSettings("CONSENT_AUDIT_KEY is required when CONSENT_ENV=production.")
        return DEVELOPMENT_AUDIT_KEY.encode("utf-8")

    def staff_totp_key_bytes(self) -> bytes:
        """The key material of the staff TOTP secrets (a public one in development when unset).

        Returns:
            The key's UTF-8 bytes (the console derives its AES key from them with HKDF).

        Raises:
            InsecureSettings: In production without STAFF_TOTP_KEY.
        """
        if self.staff_totp_key is not None:
            return self.staff_totp_key.get_secret_value().encode("utf-8")
        if self.production:
            raise InsecureSettings("STAFF_TOTP_KEY is required when CONSENT_ENV=production.")
        return DEVELOPMENT_STAFF_TOTP_KEY.encode("utf-8")

    def serving_problems(self) -> list[str]:
        """Everything that makes these settings unsafe to serve with.

        Every configured secret must carry 32 random bytes (see `secret_strength_problem`);
        production also needs the admin token and the audit key, and a password in every
        PostgreSQL URL.

        Returns:
            One sentence per problem; empty when the service may start.
        """
        problems = []
        secrets = {
            "CONSENT_API_TOKEN": self.consent_api_token,
            "CONSENT_ADMIN_TOKEN": self.consent_admin_token,
            "CONSENT_AUDIT_KEY": self.consent_audit_key,
            "STAFF_TOTP_KEY": self.staff_totp_key,
        }
        for name, secret in secrets.items():
            if secret is None:
                if self.production and name != "CONSENT_API_TOKEN":
                    problems.append(f"{name} is required when CONSENT_ENV=production.")
                continue
            problem = secret_strength_problem(name, secret.get_secret_value())
            if problem:
                problems.append(problem)
        if (
            self.consent_api_token is not None
            and self.consent_admin_token is not None
            and self.consent_api_token.get_secret_value()
            == self.consent_admin_token.get_secret_value()
        ):
            problems.append("CONSENT_ADMIN_TOKEN must differ from CONSENT_API_TOKEN.")
        if self.production:
            urls = {
                "CONSENT_DATABASE_URL": self.database_url,
                "CONSENT_MIGRATION_DATABASE_URL": self.consent_migration_database_url,
                "CONSENT_READONLY_DATABASE_URL": self.consent_readonly_database_url,
            }
            for name, url in urls.items():
                if url and _postgres_without_password(url):
                    problems.append(
                        f"{name} names PostgreSQL without a password; production needs one "
                        "(see `python -m consent_service db create-roles`)."
                    )
        return problems

    def require_safe_to_serve(self) -> None:
        """Fail fast, before serving, when `serving_problems` finds anything.

        Raises:
            InsecureSettings: Listing every problem.
        """
        problems = self.serving_problems()
        if problems:
            raise InsecureSettings(
                "The consent service refuses to start:\n- " + "\n- ".join(problems)
            )

    @property
    def events_database_url(self) -> str:
        """The SQL event broker's database, defaulting to the SQLite file `make run` uses."""
        return (
            self.analytics_events_database_url
            or f"sqlite+pysqlite:///{PROJECT_ROOT / 'var' / 'events.db'}"
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

    def admin_token_digests(self) -> frozenset[str]:
        """SHA-256 digest of the admin token (none when it is unset).

        Returns:
            Hex digests.
        """
        if self.consent_admin_token is None:
            return frozenset()
        return frozenset({token_digest(self.consent_admin_token.get_secret_value())})


def _postgres_without_password(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "postgresql" and not parsed.password


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


class SenderSecrets(BaseSettings):
    """The secret only `python -m consent_service send-notices` reads (issue 17).

    Kept out of :class:`Settings` (which ignores the variable), so that `serve`, the staff
    console and every other command never hold the key, even when it is in `.env`.
    """

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    notice_private_key: SecretStr | None = Field(
        default=None,
        description=(
            "The X25519 private key (base64url, 32 bytes) that opens the sealed LINE user ids "
            "of subscribed residents; `send-notices` refuses to start without it. "
            "`python -m consent_service notices keygen` makes a pair."
        ),
    )

    def private_key(self) -> str:
        """NOTICE_PRIVATE_KEY.

        Returns:
            The key (base64url).

        Raises:
            InsecureSettings: When it is not set.
        """
        if self.notice_private_key is None or not self.notice_private_key.get_secret_value():
            raise InsecureSettings(
                "NOTICE_PRIVATE_KEY is not set: `send-notices` cannot open the recipients' "
                "sealed LINE ids (`python -m consent_service notices keygen` makes a pair)."
            )
        return self.notice_private_key.get_secret_value()


def get_sender_secrets() -> SenderSecrets:
    """Read NOTICE_PRIVATE_KEY from the environment and `.env` (only `send-notices` calls this)."""
    return SenderSecrets()
