"""The calls the LINE channel makes to the Messaging API (reply, push, loading indicator).

The base URL comes from settings (`LINE_API_BASE_URL`), so tests point it at a local server.
Every call has a timeout; pushes carry an `X-Line-Retry-Key` and are retried with the same key,
so a retry never delivers twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Dict, List

import aiohttp

logger = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
PUSH_ATTEMPTS = 3
LOADING_SECONDS = 20


class LineApi:
    """A small async client; create it inside the running event loop."""

    def __init__(self, base_url: str, access_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=TIMEOUT)
        return self._session

    async def _post(self, path: str, body: Dict[str, Any], headers: Dict[str, str]) -> int:
        try:
            async with self._client().post(self.base_url + path, json=body, headers=headers) as r:
                await r.read()
                return r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("LINE API %s failed: %s", path, type(error).__name__)
            return 0

    async def reply(self, reply_token: str, messages: List[Dict[str, Any]]) -> bool:
        """Answer with the webhook event's reply token (usable once, for a short time).

        Returns:
            True when LINE accepted the reply.
        """
        status = await self._post(
            "/v2/bot/message/reply", {"replyToken": reply_token, "messages": messages}, {}
        )
        if status != 200:
            logger.info("LINE reply not accepted (status %s)", status)
        return status == 200

    async def push(self, to: str, messages: List[Dict[str, Any]]) -> bool:
        """Send without a reply token; retried with one X-Line-Retry-Key.

        Returns:
            True when LINE accepted the push (409: an earlier attempt with this key was).
        """
        headers = {"X-Line-Retry-Key": str(uuid.uuid4())}
        for attempt in range(PUSH_ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.5 * attempt)
            status = await self._post(
                "/v2/bot/message/push", {"to": to, "messages": messages}, headers
            )
            if status in (200, 409):
                return True
            if 400 <= status < 500 and status != 429:
                break
        logger.warning("LINE push failed (status %s)", status)
        return False

    async def show_loading(self, chat_id: str) -> None:
        """Show the loading animation while the assistant works (best effort)."""
        await self._post(
            "/v2/bot/chat/loading/start", {"chatId": chat_id, "loadingSeconds": LOADING_SECONDS}, {}
        )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
