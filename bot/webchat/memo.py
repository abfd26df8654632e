"""The consultation memo's print page (相談メモ, issue 18), served by the web chat channel.

`action_doctor_memo` (actions/memo.py) sends the memo as a custom payload `{"doctor_memo": {...}}`
made only of domain.yml's wording and the offer's facts — no name, no health value, no identifier
of the resident. A channel keeps it in the shared state (bot/shared_state.py: Redis in production,
memory in `make run`) under a random token of 256 bits for `MEMO_TTL_SECONDS`, and links to

- `GET /webhooks/socketio/memo/<token>`: the page, HTML built by a Jinja template with autoescape
  (never by concatenation), large type, print CSS for A4 and for phones, the CSP of the chat page;
  each kanji word carries its reading as `<ruby>`, shown when the resident uses furigana (the
  chat's 「ふりがな」 switch, kept in the browser, read by memo.js; or `?furigana=1`);
- after the token expired (or for a token never issued): 410 with a page saying the memo expired
  and how to get a new one (`utter_fragment_memo_expired`).

The page is public to whoever holds the link, like a printed sheet: that is why it holds nothing
about the resident. The token is not derived from the session or the resident.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import jinja2
import yaml
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import get_settings
from bot.shared_state import MemoryState, SharedState
from bot.webchat.furigana import furigana

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DOMAIN = HERE.parent.parent / "domain.yml"
PAYLOAD_KEY = "doctor_memo"
TOKEN_BYTES = 32
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
STATE_PREFIX = "memo:"
ASSETS = {
    "memo.css": "text/css; charset=utf-8",
    "memo.js": "text/javascript; charset=utf-8",
}
# What a memo payload must hold to be kept and shown (strings only; see actions/memo.py).
TEXT_FIELDS = ("title", "intro", "terms", "date", "note", "link_label")


def is_memo(payload: Any) -> bool:
    """Tell whether a custom payload is a well-formed memo (texts only, in the known shape)."""
    if not isinstance(payload, dict):
        return False
    if not all(isinstance(payload.get(k), str) for k in TEXT_FIELDS):
        return False
    sections = payload.get("sections")
    return isinstance(sections, list) and all(
        isinstance(s, dict)
        and isinstance(s.get("heading"), str)
        and isinstance(s.get("lines"), list)
        and all(isinstance(line, str) for line in s["lines"])
        for s in sections
    )


_process_memos: MemoryState | None = None


def memo_store(state: SharedState, redis_url: str) -> SharedState:
    """Where memos are kept: the channels' shared state with Redis, else one store per process.

    Without Redis (`make run`) each channel has its own in-memory state; the memo a LINE answer
    links to must still be found by the web chat's page in the same process, as Redis makes it
    found across replicas in production.

    Args:
        state: The channel's shared state.
        redis_url: `REDIS_URL` ("" when unset).

    Returns:
        The state to keep and read memos in.
    """
    global _process_memos
    if redis_url:
        return state
    if _process_memos is None:
        _process_memos = MemoryState()
    return _process_memos


def new_token() -> str:
    """A random, unguessable token (256 bits, URL-safe, 43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


async def keep_memo(state: SharedState, memo: Dict[str, Any], seconds: float) -> str:
    """Keep `memo` in the shared state for `seconds` under a new token.

    Args:
        state: The channels' shared state.
        memo: The memo payload (actions/memo.py).
        seconds: How long its link works (`MEMO_TTL_SECONDS`).

    Returns:
        The token of its link.
    """
    token = new_token()
    await state.keep(STATE_PREFIX + token, json.dumps(memo, ensure_ascii=False), seconds)
    return token


async def kept_memo(state: SharedState, token: str) -> Dict[str, Any] | None:
    """The memo kept under `token`, or None (expired, never issued, or not a token)."""
    if not TOKEN.fullmatch(token):
        return None
    raw = await state.kept(STATE_PREFIX + token)
    if raw is None:
        return None
    memo = json.loads(raw)
    return memo if is_memo(memo) else None


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _ruby(text: str) -> List[Tuple[str, str | None]]:
    return [(surface, reading) for surface, reading in furigana(text)]


def render_memo(memo: Dict[str, Any], with_furigana: bool = False) -> str:
    """The memo's page (escaped by the template), every text as segments for `<ruby>`.

    Args:
        memo: A memo payload (see :func:`is_memo`).
        with_furigana: Show the readings from the start (`?furigana=1`, e.g. at the counter).

    Returns:
        The HTML page.
    """
    page = {
        "title": _ruby(memo["title"]),
        "intro": _ruby(memo["intro"]),
        "sections": [
            {"heading": _ruby(s["heading"]), "lines": [_ruby(line) for line in s["lines"]]}
            for s in memo["sections"]
        ],
        "terms": _ruby(memo["terms"]),
        "date": _ruby(memo["date"]),
        "note": _ruby(memo["note"]),
    }
    return (
        _environment()
        .get_template("memo.html")
        .render(page=page, plain_title=memo["title"], furigana=with_furigana)
    )


@functools.lru_cache(maxsize=1)
def expired_text() -> str:
    """What the page says once a memo expired (`utter_fragment_memo_expired` in domain.yml)."""
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    return str(domain["responses"]["utter_fragment_memo_expired"][0]["text"])


def render_expired() -> str:
    """The page of an expired or unknown memo link."""
    return _environment().get_template("memo_expired.html").render(text=expired_text())


def add_memo_routes(
    blueprint: Blueprint,
    state: Callable[[], SharedState],
    headers: Callable[[Request], Dict[str, str]],
) -> None:
    """Serve the memo page and its two files from the web chat's blueprint.

    Args:
        blueprint: The web chat channel's blueprint (`/webhooks/socketio`).
        state: Returns the channels' shared state.
        headers: The chat page's security headers (CSP) for a request.
    """

    @blueprint.route("/memo/<token:str>", methods=["GET"])  # type: ignore[misc]
    async def memo_page(request: Request, token: str) -> HTTPResponse:
        page_headers = {**headers(request), "Cache-Control": "no-store"}
        if token in ASSETS:
            return response.raw(
                (HERE / token).read_bytes(),
                content_type=ASSETS[token],
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )
        try:
            memo = await kept_memo(memo_store(state(), get_settings().redis_url), token)
        except Exception as error:  # the shared state is down: say so rather than "expired"
            logger.error("Memo not read: %s", type(error).__name__)
            return response.json({"reason": "unavailable"}, status=503)
        if memo is None:
            return response.html(render_expired(), status=410, headers=page_headers)
        with_furigana = request.args.get("furigana") == "1"
        return response.html(render_memo(memo, with_furigana), headers=page_headers)
