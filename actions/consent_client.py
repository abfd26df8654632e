"""The one HTTP client of the consent service (docs/contract.md, `/v1`).

Ids that came from a conversation (a typed `/give_consent{"offer_id": ...}` is as easy to send as
a button press) reach a URL only after a strict check of their shape (:func:`valid_offer_id`,
:func:`valid_consent_id`, :func:`valid_subject_id`), and every path segment is percent-encoded:
`../audit/verify` can never turn a call into another endpoint of the service, made with the
service token. An id of the wrong shape is answered as the service would answer an unknown one,
without a call.

Every call has a connect and a read timeout. Writes carry an Idempotency-Key and are retried a
bounded number of times with the same key after a timeout, a connection error or a 5xx, so a
retry never records twice. Refusals (4xx) are never retried: they come back as
:class:`ConsentRefused` with the service's machine-readable reason.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, Dict, List
from urllib.parse import quote

import requests
import requests.adapters

from bot.pseudonym import pseudonym
from bot.receipt_code import valid_receipt_code
from bot.settings import Settings, get_settings

RETRY_BACKOFF_SECONDS = (0.3, 1.0)
CHANNELS = {"socketio": "web", "line": "line", "rest": "rest"}
# Catalogue identifiers (offers, items: backend/consent_service/catalog/catalog.yml) are
# lower-case snake_case, at most 64 characters (the service's column); subject ids are the hex
# HMAC-SHA256 of the contract; consent ids are the service's UUIDs.
CATALOG_ID = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
SUBJECT_ID = re.compile(r"[0-9a-f]{64}")
# A link code as the service takes it: eight ASCII digits (shown as 1234-5678).
LINK_CODE = re.compile(r"[0-9]{8}")
# A LINE user id sealed by the LINE channel (bot/notice_seal.py): base64url, no padding;
# 32 + 12 + 16 bytes at least (a user id of 33 characters seals to 124 characters).
SEALED = re.compile(r"[A-Za-z0-9_-]{80,512}")
END_REASONS = ("resident", "unfollow")


class Refusal(str, Enum):
    """Every `reason` the consent service refuses with.

    The table "Error reasons" of docs/contract.md; the service's consent_service/errors.py has
    the same list. The two sides share no code, so a test on each side compares its list with
    that table.
    """

    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    MALFORMED_BODY = "malformed_body"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    NO_TERMS = "no_terms"
    UNKNOWN_OFFER = "unknown_offer"
    LEVEL3_NOT_HANDLED = "level3_not_handled"
    FAMILY_DOCTOR_ANSWER_REQUIRED = "family_doctor_answer_required"
    NO_ETHICS_APPROVAL = "no_ethics_approval"
    NO_HEALTH_BENEFIT = "no_health_benefit"
    LEVEL0_NEEDS_NO_CONSENT = "level0_needs_no_consent"
    TERMS_OUTDATED = "terms_outdated"
    ITEM_NOT_IN_OFFER = "item_not_in_offer"
    OFFER_CHANGED = "offer_changed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    ALREADY_CONSENTED = "already_consented"
    CONSENT_NOT_FOUND = "consent_not_found"
    UNKNOWN_RECEIPT = "unknown_receipt"
    INVALID_RECEIPT_CODE = "invalid_receipt_code"
    UNKNOWN_RECEIPT_CODE = "unknown_receipt_code"
    TOO_MANY_WRONG_CODES = "too_many_wrong_codes"
    INVALID_LINK_CODE = "invalid_link_code"
    UNKNOWN_LINK_CODE = "unknown_link_code"
    LINK_CODE_USED = "link_code_used"
    LINK_CODE_EXPIRED = "link_code_expired"
    OWN_LINK_CODE = "own_link_code"
    SAME_CHANNEL = "same_channel"
    ALREADY_LINKED = "already_linked"
    NOT_LINKED = "not_linked"
    NO_LINK_CODE = "no_link_code"
    LINE_RECIPIENT_REQUIRED = "line_recipient_required"
    LINE_RECIPIENT_NOT_ALLOWED = "line_recipient_not_allowed"
    UNKNOWN_TOPIC = "unknown_topic"


class ConsentServiceUnavailable(Exception):
    """The service did not answer usefully (down, slow, 5xx) after every attempt."""


class ConsentRefused(Exception):
    """The service refused the request (4xx) with a machine-readable reason."""

    def __init__(self, status: int, reason: str, consent_id: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.consent_id = consent_id

    @property
    def known(self) -> Refusal | None:
        """The reason as one of the vocabulary, or None for one the contract does not list."""
        try:
            return Refusal(self.reason)
        except ValueError:
            return None


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


def valid_offer_id(value: object) -> bool:
    """Tell whether `value` has the shape of a catalogue id (an offer or an item).

    Args:
        value: An id as it came from a conversation (entity, slot or button payload).

    Returns:
        True for lower-case snake_case of at most 64 characters; False for anything else.
    """
    return isinstance(value, str) and CATALOG_ID.fullmatch(value) is not None


valid_item_id = valid_offer_id


def valid_consent_id(value: object) -> bool:
    """Tell whether `value` is a consent id: a UUID in its canonical lower-case form.

    Args:
        value: An id as it came from a conversation.

    Returns:
        True only for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits, lower case).
    """
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def valid_subject_id(value: object) -> bool:
    """Tell whether `value` is a subject pseudonym (64 lower-case hex digits)."""
    return isinstance(value, str) and SUBJECT_ID.fullmatch(value) is not None


def valid_topic_id(value: object) -> bool:
    """Tell whether `value` has the shape of a notice topic id (lower-case snake_case)."""
    return valid_offer_id(value)


def valid_notice_id(value: object) -> bool:
    """Tell whether `value` has the shape of a notice id (a UUID, as consent ids)."""
    return valid_consent_id(value)


def valid_sealed(value: object) -> bool:
    """Tell whether `value` has the shape of a sealed LINE user id (base64url)."""
    return isinstance(value, str) and SEALED.fullmatch(value) is not None


def _segment(value: str) -> str:
    """One URL path segment, percent-encoded so that it can never be `/`, `..` or a query."""
    return quote(value, safe="")


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
        # One kept-alive connection per worker thread (actions/worker.py) calling at once.
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=max(1, settings.action_worker_threads)
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
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
        attempts: int | None = None,
    ) -> Any:
        attempts = max(1, self.settings.consent_api_attempts if attempts is None else attempts)
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
        """One offer.

        Raises:
            ConsentRefused: 404 `unknown_offer`, without a call, for an id of the wrong shape.
        """
        if not valid_offer_id(offer_id):
            raise ConsentRefused(404, Refusal.UNKNOWN_OFFER.value)
        return dict(self._call("GET", f"/v1/offers/{_segment(offer_id)}"))

    def items(self) -> List[Dict[str, Any]]:
        """Every catalogue item with its level."""
        return list(self._call("GET", "/v1/catalog/items"))

    def terms_version(self) -> str:
        """The version of the terms in force."""
        return str(self.terms()["version"])

    def terms(self) -> Dict[str, Any]:
        """The terms in force: `version`, `sha256` and the text `text_ja`."""
        return dict(self._call("GET", "/v1/terms"))

    def create_consent(self, body: Dict[str, Any], idempotency_key: str) -> Dict[str, Any]:
        """Record a consent (retried with the same key; never twice)."""
        return dict(self._call("POST", "/v1/consents", json=body, idempotency_key=idempotency_key))

    def consents(self, subject: str) -> List[Dict[str, Any]]:
        """A subject's history, active and withdrawn.

        Raises:
            ValueError: `subject` is not a pseudonym (a programming error: never called).
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        return list(self._call("GET", f"/v1/subjects/{_segment(subject)}/consents"))

    def withdraw(self, consent_id: str, subject: str) -> Dict[str, Any]:
        """Withdraw one of the subject's consents (idempotent on the service's side).

        The body always names the subject: the service withdraws the consent only if it is that
        subject's (404 otherwise), so a consent id learnt elsewhere withdraws nothing.

        Raises:
            ConsentRefused: 404 `consent_not_found`, without a call, for an id of the wrong shape.
            ValueError: `subject` is not a pseudonym (a programming error).
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        if not valid_consent_id(consent_id):
            raise ConsentRefused(404, Refusal.CONSENT_NOT_FOUND.value)
        return dict(
            self._call(
                "POST",
                f"/v1/consents/{_segment(consent_id)}/withdraw",
                json={"subject_id": subject},
            )
        )

    def receipt_code(self, code: str, requester: str) -> Dict[str, Any]:
        """What a receipt code refers to: only the offer's name and the consent's status.

        Anyone holding a code may look it up (withdrawal is the safe direction); the service
        answers `receipt_code`, `kind`, `offer_id`, `offer_title_ja` and `status`, nothing else,
        and counts wrong codes per requester (429 `too_many_wrong_codes`).

        Args:
            code: The code in its canonical form `XXXX-XXXX-C` (bot/receipt_code.py).
            requester: The pseudonym of whoever asks (counted for the rate limit).

        Raises:
            ConsentRefused: 422 `invalid_receipt_code`, without a call, for a code that is not
                canonical and checked; else the service's 404/422/429.
            ValueError: `requester` is not a pseudonym (a programming error).
        """
        if not valid_subject_id(requester):
            raise ValueError("not a subject pseudonym")
        if not valid_receipt_code(code):
            raise ConsentRefused(422, Refusal.INVALID_RECEIPT_CODE.value)
        return dict(
            self._call(
                "GET",
                f"/v1/receipt-codes/{_segment(code)}?requester={_segment(requester)}",
            )
        )

    def withdraw_by_code(
        self, code: str, requester: str, channel: str, idempotency_key: str
    ) -> Dict[str, Any]:
        """Withdraw the consent a receipt code names, on behalf of whoever holds the code.

        Args:
            code: The code in its canonical form `XXXX-XXXX-C`.
            requester: The pseudonym of whoever asks (recorded and rate-limited by the service).
            channel: The consent channel the request came from ("line", "web" or "rest").
            idempotency_key: The same key for every retry of this one withdrawal.

        Returns:
            `{"consent_id", "status": "withdrawn", "receipt": {..., "receipt_code"}}`.

        Raises:
            ConsentRefused: 422 `invalid_receipt_code`, without a call, for a code that is not
                canonical and checked; else the service's 404/409/422/429.
            ValueError: `requester` is not a pseudonym or `channel` not a consent channel.
        """
        if not valid_subject_id(requester):
            raise ValueError("not a subject pseudonym")
        if channel not in set(CHANNELS.values()):
            raise ValueError("not a consent channel")
        if not valid_receipt_code(code):
            raise ConsentRefused(422, Refusal.INVALID_RECEIPT_CODE.value)
        return dict(
            self._call(
                "POST",
                f"/v1/receipt-codes/{_segment(code)}/withdraw",
                json={"requester": requester, "channel": channel},
                idempotency_key=idempotency_key,
            )
        )

    def issue_link_code(self, subject: str, channel: str) -> Dict[str, Any]:
        """Issue a one-time code that links this subject with the resident's other channel.

        Args:
            subject: The pseudonym of the resident on this channel.
            channel: The consent channel the code is shown on ("line", "web" or "rest").

        Returns:
            `{"code": "1234-5678", "expires_at": ISO 8601}`; an earlier code of the subject is
            void from now on (so a retried call only replaces the code shown).

        Raises:
            ConsentRefused: 409 `already_linked`.
            ValueError: `subject` is not a pseudonym or `channel` not a consent channel.
        """
        self._check_subject_and_channel(subject, channel)
        return dict(
            self._call(
                "POST",
                f"/v1/subjects/{_segment(subject)}/link-codes",
                json={"channel": channel},
            )
        )

    def redeem_link_code(self, subject: str, channel: str, code: str) -> Dict[str, Any]:
        """Link this subject with the one that issued `code` on another channel.

        A retry of a redemption that succeeded gets the same answer from the service.

        Args:
            subject: The pseudonym of whoever typed the code.
            channel: The consent channel it was typed on.
            code: Eight digits (actions/linking.py finds them in the message).

        Returns:
            `{"linked": true, "partner_channel", "linked_at", "link_id"}`.

        Raises:
            ConsentRefused: 422 `invalid_link_code`, without a call, unless `code` is 8 ASCII
                digits; else the service's reason (`unknown_link_code`, `link_code_expired`,
                `link_code_used`, `same_channel`, `own_link_code`, `already_linked`,
                `too_many_wrong_codes`).
            ValueError: `subject` is not a pseudonym or `channel` not a consent channel.
        """
        self._check_subject_and_channel(subject, channel)
        if LINK_CODE.fullmatch(code) is None:
            raise ConsentRefused(422, Refusal.INVALID_LINK_CODE.value)
        return dict(
            self._call(
                "POST",
                f"/v1/subjects/{_segment(subject)}/links",
                json={"code": code, "channel": channel},
            )
        )

    def unlink(self, subject: str) -> Dict[str, Any]:
        """Undo this subject's link: each channel lists only its own consents again.

        Raises:
            ConsentRefused: 404 `not_linked`.
            ValueError: `subject` is not a pseudonym.
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        return dict(self._call("DELETE", f"/v1/subjects/{_segment(subject)}/links"))

    # -- health notices (issue 17, docs/notices.md) ------------------------------------------

    def notice_topics(self) -> List[Dict[str, Any]]:
        """The topics residents may subscribe to, in the catalogue's order.

        Returns:
            `[{"topic_id", "title_ja", "description_ja", "max_per_month",
            "web_subscription_days"}]`.
        """
        return list(self._call("GET", "/v1/notice-topics"))

    def subscribe(
        self,
        subject: str,
        topic_ids: List[str],
        channel: str,
        sealed_line_user_id: str | None,
        idempotency_key: str,
    ) -> Dict[str, Any]:
        """Subscribe a subject to notice topics (retried with the same key; never twice).

        Args:
            subject: The resident's pseudonym.
            topic_ids: At least one topic id.
            channel: The consent channel ("line", "web" or "rest").
            sealed_line_user_id: For "line", the sealed LINE user id from the message's
                metadata; None for the other channels.
            idempotency_key: The same key for every retry of this one subscription.

        Returns:
            `{"subscriptions": [...], "receipt": {"receipt_id", "kind", "created_at"}}`.

        Raises:
            ConsentRefused: 422 `unknown_topic` without a call for a topic id of the wrong
                shape, `line_recipient_required` / `line_recipient_not_allowed` without a call
                for a recipient that does not fit the channel; else the service's refusal.
            ValueError: `subject` is not a pseudonym or `channel` not a consent channel.
        """
        self._check_subject_and_channel(subject, channel)
        if not topic_ids or not all(valid_topic_id(t) for t in topic_ids):
            raise ConsentRefused(422, Refusal.UNKNOWN_TOPIC.value)
        if channel == "line" and not valid_sealed(sealed_line_user_id):
            raise ConsentRefused(422, Refusal.LINE_RECIPIENT_REQUIRED.value)
        if channel != "line" and sealed_line_user_id is not None:
            raise ConsentRefused(422, Refusal.LINE_RECIPIENT_NOT_ALLOWED.value)
        body = {
            "subject_id": subject,
            "topic_ids": list(dict.fromkeys(topic_ids)),
            "channel": channel,
            "sealed_line_user_id": sealed_line_user_id,
        }
        return dict(
            self._call("POST", "/v1/subscriptions", json=body, idempotency_key=idempotency_key)
        )

    def subscriptions(self, subject: str) -> List[Dict[str, Any]]:
        """A subject's notice subscriptions, active first.

        Raises:
            ValueError: `subject` is not a pseudonym.
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        return list(self._call("GET", f"/v1/subjects/{_segment(subject)}/subscriptions"))

    def end_subscriptions(
        self,
        subject: str,
        topic_ids: List[str] | None,
        reason: str,
        idempotency_key: str,
    ) -> Dict[str, Any]:
        """End a subject's subscriptions to some topics, or to all (`topic_ids` None).

        Args:
            subject: The resident's pseudonym.
            topic_ids: The topics to stop, or None for all of them.
            reason: "resident" (asked to stop) or "unfollow" (blocked the LINE account).
            idempotency_key: The same key for every retry of this one request.

        Returns:
            `{"ended": [topic ids], "receipt": {...} | None}` (None when nothing was active).

        Raises:
            ConsentRefused: 422 `unknown_topic`, without a call, for a topic id of the wrong
                shape; else the service's refusal.
            ValueError: `subject` is not a pseudonym or `reason` not one of the contract's.
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        if reason not in END_REASONS:
            raise ValueError("not an end reason")
        if topic_ids is not None and (
            not topic_ids or not all(valid_topic_id(t) for t in topic_ids)
        ):
            raise ConsentRefused(422, Refusal.UNKNOWN_TOPIC.value)
        body = {
            "topic_ids": None if topic_ids is None else list(dict.fromkeys(topic_ids)),
            "reason": reason,
        }
        return dict(
            self._call(
                "POST",
                f"/v1/subjects/{_segment(subject)}/subscriptions/end",
                json=body,
                idempotency_key=idempotency_key,
            )
        )

    def unseen_notices(self, subject: str) -> List[Dict[str, Any]]:
        """The sent notices of a web/REST subscriber's topics not shown yet (oldest first, ≤ 3).

        Asked at the start of every web chat session, so it is tried once: a slow service
        delays a session by one call at most, and the notices wait for the next session.

        Raises:
            ValueError: `subject` is not a pseudonym.
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        path = f"/v1/subjects/{_segment(subject)}/notices/unseen"
        return list(self._call("GET", path, attempts=1))

    def notices_seen(self, subject: str, notice_ids: List[str]) -> Dict[str, Any]:
        """Record that notices were shown to the subject (so they are never shown again).

        Ids of the wrong shape are left out; with none left, nothing is called.

        Raises:
            ValueError: `subject` is not a pseudonym.
        """
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        ids = [n for n in dict.fromkeys(notice_ids) if valid_notice_id(n)]
        if not ids:
            return {"seen": 0}
        return dict(
            self._call(
                "POST",
                f"/v1/subjects/{_segment(subject)}/notices/seen",
                json={"notice_ids": ids},
            )
        )

    @staticmethod
    def _check_subject_and_channel(subject: str, channel: str) -> None:
        if not valid_subject_id(subject):
            raise ValueError("not a subject pseudonym")
        if channel not in set(CHANNELS.values()):
            raise ValueError("not a consent channel")


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
