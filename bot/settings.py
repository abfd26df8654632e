"""Settings of the Rasa side (assistant, channels and action server), kept in one place.

Values come from the environment first, then from the project's `.env` file (the environment
wins), as docs/contract.md fixes. Nothing is read at import time: call
:func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseSettings, Field, SecretStr, validator

from bot.notice_seal import public_key_bytes

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting the Rasa side reads; each field is the lower-case name of a variable."""

    consent_api_url: str = "http://127.0.0.1:8000"
    # Seconds to wait for a connection and for an answer, and how often a failed call is tried.
    consent_api_connect_timeout: float = 2.0
    consent_api_read_timeout: float = 5.0
    consent_api_attempts: int = 3
    consent_api_token: SecretStr | None = None
    # The offers (the same for every resident) are read from the service at most this often.
    consent_offers_cache_seconds: float = 30.0
    # The action server's event loop never waits on the consent service: the consent actions run
    # their calls in one pool of this many threads (actions/worker.py), so at most this many
    # residents' calls are in flight at once and the others wait for a thread, not the loop.
    action_worker_threads: int = 16
    subject_pseudonym_key: SecretStr | None = None
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
    line_api_data_base_url: str = "https://api-data.line.me"
    # The resident web chat (bot/channels/webchat.py): pages may only connect from these origins;
    # sessions are signed with WEBCHAT_SESSION_SECRET (default: derived from the pseudonym key).
    webchat_allowed_origins: str = "http://localhost:5005,http://127.0.0.1:5005"
    webchat_session_secret: SecretStr | None = None
    webchat_session_days: int = 30
    # State shared by Rasa replicas (bot/shared_state.py): Redis in production, this process's
    # memory when empty. Keys are prefixed so several assistants can share one Redis.
    redis_url: str = ""
    redis_key_prefix: str = "funabashi"
    # Per resident, at most this many messages per window reach the assistant; the first one
    # over is answered with a request to wait, later ones are dropped (0: no limit).
    rate_limit_messages: int = 20
    rate_limit_seconds: int = 60
    # LINE webhooks are answered before they are acknowledged, within this many seconds (then
    # the rest continues in the background); a replica's claim on an event lasts this long.
    line_ack_within_seconds: float = 8.0
    line_event_claim_seconds: float = 30.0
    # A LINE event older than this (its `timestamp`) that is not a redelivery is not answered;
    # answered event ids are remembered this long (no event older than that is answered at all).
    line_event_max_age_seconds: float = 300.0
    line_event_remember_seconds: float = 86_400.0
    # The web chat (bot/channels/webchat.py) under load: at most this many new sessions per
    # client address per window (shared by the replicas), at most this many messages in flight
    # per replica (more are refused with a "busy" event), and the buttons last offered to a
    # session are remembered this long (shared state).
    webchat_sessions_per_client: int = 30
    webchat_sessions_window_seconds: int = 3600
    webchat_max_in_flight: int = 32
    webchat_offered_buttons_seconds: int = 7 * 86_400
    # A consultation memo's print page (issue 18, bot/webchat/memo.py) is served from a random
    # link for this long after the memo was made (shared state); then it answers 410.
    memo_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    # The peers (the reverse proxy) whose X-Real-IP header names the web chat's client.
    webchat_trusted_proxies: str = "127.0.0.1,::1"
    # Production (scripts/prod.py sets it): the page's CSP allows only wss: sockets, and the
    # channel refuses to start with an origin that is not https or is a loopback host.
    webchat_secure_only: bool = False
    # Tracker events of finished sessions, and conversations idle for longer, older than this many
    # days are deleted (bot/retention.py).
    retention_days: float = 90.0
    # The action server accepts calls only with this bearer token (bot/action_server.py); required,
    # at least 43 characters (32 random bytes), checked at start-up (bot/startup.py).
    action_server_token: SecretStr | None = None
    # Rasa's HTTP API (`--enable-api`, development only) answers only with this token; required
    # whenever the API is on, at least 43 characters (bot/server.py, bot/startup.py).
    rasa_api_token: SecretStr | None = None
    # Largest HTTP request body Rasa's server accepts (bytes); larger ones get 413 (bot/server.py).
    rasa_request_max_bytes: int = 1_048_576
    # The city's contact route, offered when the assistant cannot help. Left empty, the assistant
    # points residents to the city's website instead of inventing details.
    city_contact_name: str = ""
    city_contact_phone: str = ""
    city_contact_hours: str = ""
    # A health centre residents without a family doctor can ask (保健センター etc.), offered only
    # when both are set; the assistant never names one it was not given.
    city_health_centre_name: str = ""
    city_health_centre_phone: str = ""
    # Issue 17: the notice sender's X25519 public key (base64url of 32 bytes). When set, the LINE
    # channel seals each resident's LINE user id to it (bot/notice_seal.py) for the notice
    # subscriptions; only the sender holds the private key. Empty: no LINE subscriptions.
    notice_public_key: str | None = None

    @validator("notice_public_key")
    def _notice_key_is_32_bytes(cls, value: str | None) -> str | None:
        """Fail fast on a notice key that is not base64url of exactly 32 bytes."""
        if value is None or not value.strip():
            return None
        public_key_bytes(value)  # raises ValueError, which pydantic reports
        return value.strip()

    class Config:
        """Where pydantic looks for values besides the environment."""

        env_file = str(PROJECT_ROOT / ".env")
        env_file_encoding = "utf-8"
        case_sensitive = False

    def has_city_contact(self) -> bool:
        """Tell whether the city's contact route is fully configured.

        Returns:
            True when name, phone and office hours are all set.
        """
        return all(
            value.strip()
            for value in (self.city_contact_name, self.city_contact_phone, self.city_contact_hours)
        )

    def has_health_centre(self) -> bool:
        """Tell whether a health centre for residents without a family doctor is configured.

        Returns:
            True when its name and phone are both set.
        """
        return all(
            value.strip() for value in (self.city_health_centre_name, self.city_health_centre_phone)
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once and return the same object afterwards.

    Returns:
        The settings of this process.
    """
    return Settings()
