"""The one HTTP client of the consent service (../shared/docs/contract.md, `/v1`).

Every call has a connect and a read timeout. Writes carry an Idempotency-Key and are retried a
bounded number of times with the same key after a timeout, a connection error or a 5xx, so a
retry never records twice. Refusals (4xx) are never retried: they come back as
:class:`ConsentRefused` with the service's machine-readable reason.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, List

import requests

from bot.pseudonym import pseudonym
from bot.settings import Settings, get_settings

RETRY_BACKOFF_SECONDS = (0.3, 1.0)
CHANNELS = {"socketio": "web", "line": "line", "rest": "rest"}


class ConsentServiceUnavailable(Exception):
    """The service did not answer usefully (down, slow, 5xx) after every attempt."""


class ConsentRefused(Exception):
    """The service refused the request (4xx) with a machine-readable reason."""

    def __init__(self, status: int, reason: str, consent_id: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.consent_id = consent_id


def subject_id(settings: Settings, channel: str, sender_id: str) -> str:
    """The subject pseudonym of a sender, as the contract fixes it.

    Args:
        settings: Where the key (`SUBJECT_PSEUDONYM_KEY`) comes from.
        channel: The consent channel ("line", "web" or "rest").
        sender_id: The sender id the channel gave Rasa.

    Returns:
        hex(HMAC-SHA256(key, "<channel>:<sender_id>")); the raw sender id never leaves here.
    """
    return pseudonym(settings, channel, sender_id)


def consent_channel(input_channel: str | None) -> str:
    """Map Rasa's input channel name onto the consent service's channel."""
    return CHANNELS.get(input_channel or "rest", "rest")


@dataclass
class ConsentClient:
    """Calls the consent service. Create one per process; it keeps connections alive."""

    settings: Settings
    session: requests.Session
    # (fetched at, offers): the list of offers is read at most every CONSENT_OFFERS_CACHE_SECONDS.
    _offers: tuple[float, List[Dict[str, Any]]] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ConsentClient:
        """A client configured from settings (no I/O happens until the first call)."""
        settings = settings or get_settings()
        session = requests.Session()
        if settings.consent_api_token is not None:
            token = settings.consent_api_token.get_secret_value()
            session.headers["Authorization"] = f"Bearer {token}"
        return cls(settings=settings, session=session)

    def _url(self, path: str) -> str:
        return self.settings.consent_api_url.rstrip("/") + path

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        attempts = max(1, self.settings.consent_api_attempts)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        timeout = (
            self.settings.consent_api_connect_timeout,
            self.settings.consent_api_read_timeout,
        )
        for attempt in range(attempts):
            if attempt:
                time.sleep(RETRY_BACKOFF_SECONDS[min(attempt - 1, len(RETRY_BACKOFF_SECONDS) - 1)])
            try:
                response = self.session.request(
                    method, self._url(path), json=json, headers=headers, timeout=timeout
                )
            except (requests.ConnectionError, requests.Timeout):
                continue
            if response.status_code >= 500:
                continue
            if response.status_code >= 400:
                raise _refusal(response)
            return response.json()
        raise ConsentServiceUnavailable(f"{method} {path} failed {attempts} times")

    def offers(self) -> List[Dict[str, Any]]:
        """All offers, with levels, benefits, approval and whether they can be consented to.

        The list is the same for every resident and changes only with the catalogue, so it is
        kept for `CONSENT_OFFERS_CACHE_SECONDS` (0: always asked): after a push notification
        thousands of residents ask for it within minutes. A consent is still checked by the
        service when it is submitted, so a list a few seconds old can never record a wrong one.
        """
        ttl = self.settings.consent_offers_cache_seconds
        now = time.monotonic()
        if ttl > 0 and self._offers is not None and now - self._offers[0] < ttl:
            return copy.deepcopy(self._offers[1])
        offers = list(self._call("GET", "/v1/offers"))
        self._offers = (now, offers)
        return copy.deepcopy(offers)

    def offer(self, offer_id: str) -> Dict[str, Any]:
        """One offer."""
        return dict(self._call("GET", f"/v1/offers/{offer_id}"))

    def items(self) -> List[Dict[str, Any]]:
        """Every catalogue item with its level."""
        return list(self._call("GET", "/v1/catalog/items"))

    def terms_version(self) -> str:
        """The version of the terms in force."""
        return str(self._call("GET", "/v1/terms")["version"])

    def create_consent(self, body: Dict[str, Any], idempotency_key: str) -> Dict[str, Any]:
        """Record a consent (retried with the same key; never twice)."""
        return dict(self._call("POST", "/v1/consents", json=body, idempotency_key=idempotency_key))

    def consents(self, subject: str) -> List[Dict[str, Any]]:
        """A subject's history, active and withdrawn."""
        return list(self._call("GET", f"/v1/subjects/{subject}/consents"))

    def withdraw(self, consent_id: str, subject: str) -> Dict[str, Any]:
        """Withdraw one of the subject's consents (idempotent on the service's side)."""
        return dict(
            self._call("POST", f"/v1/consents/{consent_id}/withdraw", json={"subject_id": subject})
        )


def _refusal(response: requests.Response) -> ConsentRefused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else body
    reason = str(detail.get("reason") or f"http_{response.status_code}")
    return ConsentRefused(response.status_code, reason, detail.get("consent_id"))


@lru_cache(maxsize=1)
def get_client() -> ConsentClient:
    """The process's client, created on first use (one keep-alive session per process)."""
    return ConsentClient.from_settings()
