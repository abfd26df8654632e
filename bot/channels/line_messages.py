"""LINE Messaging API rules, as pure functions the LINE channel uses.

Limits (LINE's documentation; the ones in its OpenAPI description are also checked by the tests'
fake server): at most 5 messages per reply or push, a text message of at most 5,000 characters,
at most 13 quick-reply items, labels of at most 20 characters, postback data of at most 300 bytes.

Bubbles of a phone screen (issue 16): a long answer is split into text bubbles that each fit one
phone screen (`BUBBLE_LINES` lines of `BUBBLE_LINE_WIDTH` full-width characters, see
`screen_lines`), at line ends, or at sentence ends inside a line too long for one screen; never
inside a sentence (a single sentence longer than a screen stays whole). A reply holds at most 5
bubbles: only when the answers of one turn together are longer than 5 screens are neighbouring
bubbles merged (longer than a screen, still at most 5,000 characters). Option lists are Rasa
buttons and go out as quick replies, never as text.

Postbacks: the data of every quick-reply button the assistant sends is its Rasa payload followed
by "#" and an HMAC (keyed from `SUBJECT_PSEUDONYM_KEY`, bound to the resident's pseudonym), and
only data with a valid HMAC, or exactly one of the rich menu's own payloads
(bot/line/richmenu.json, entity-free), becomes an intent. Any other postback — forged, replayed
from another resident, or made with an old key — is only text, so no postback can carry
entities the assistant did not put on a button itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List

MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_BYTES = 300
# The shape of the assistant's own button payloads (those put on quick replies).
PAYLOAD = re.compile(r"^/[a-z_]+(\{[^\n]*\})?$")
RICH_MENU = Path(__file__).resolve().parent.parent / "line" / "richmenu.json"
SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA256, 22 base64url characters
SIGNATURE = re.compile(r"[A-Za-z0-9_-]{22}")
Signer = Callable[[str], str]
SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
# A phone screen (issue 16): LINE draws a text bubble at about 70 % of the screen's width, which
# on a phone 360-390 points wide at LINE's default text size holds about 16 full-width characters
# a line; between the header and the input bar (with its quick replies) a small phone (iPhone SE
# class, 4.7") shows about 20 such lines. So a bubble's budget is 20 lines of 16 cells (at most
# 320 full-width characters, fewer with line breaks); a half-width character takes half a cell.
BUBBLE_LINE_WIDTH = 16
BUBBLE_LINES = 20
LINE_BREAKS = re.compile(r"(\n+)")
INLINE_SENTENCE_END = re.compile(r"(?<=[。！？!?])")
# Between the answers of one turn when they share a bubble.
ANSWER_SEPARATOR = "\n\n"


def signature_is_valid(channel_secret: str, body: bytes, signature: str | None) -> bool:
    """Check `X-Line-Signature`: base64 HMAC-SHA256 of the raw body with the channel secret.

    Args:
        channel_secret: The channel secret.
        body: The raw request body, exactly as received.
        signature: The header's value (None when missing).

    Returns:
        True only for a matching signature (compared in constant time).
    """
    if not signature or not channel_secret:
        return False
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.encode("ascii", "replace"))


def postback_payload(data: str) -> str | None:
    """`data` if it has the shape of the assistant's button payloads, or None.

    The shape alone is never trusted for a postback coming back (see `accepted_postback`).
    """
    if len(data.encode("utf-8")) <= MAX_POSTBACK_BYTES and PAYLOAD.match(data):
        return data
    return None


def postback_key(pseudonym_key: str) -> bytes:
    """The key that signs postback data, derived from `SUBJECT_PSEUDONYM_KEY`."""
    return hmac.new(pseudonym_key.encode("utf-8"), b"line-postback-data", hashlib.sha256).digest()


def sign_postback(key: bytes, sender: str, payload: str) -> str:
    """Postback data for `payload` on a button sent to `sender` (a pseudonym).

    Returns:
        `<payload>#<22 base64url characters of HMAC-SHA256(key, sender + LF + payload)>`.
    """
    mac = hmac.new(key, f"{sender}\n{payload}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac[:SIGNATURE_BYTES]).decode().rstrip("=")
    return f"{payload}#{signature}"


def verify_postback(key: bytes, sender: str, data: str) -> str | None:
    """The payload of postback data the assistant signed for `sender`, or None."""
    payload, separator, signature = data.rpartition("#")
    if not separator or not SIGNATURE.fullmatch(signature) or not postback_payload(payload):
        return None
    expected = sign_postback(key, sender, payload).encode("ascii", "replace")
    return payload if hmac.compare_digest(expected, data.encode("utf-8", "replace")) else None


@lru_cache(maxsize=1)
def rich_menu_payloads() -> frozenset[str]:
    """The postback data of the rich menu's areas (read once, on first use)."""
    menu = json.loads(RICH_MENU.read_text(encoding="utf-8"))
    return frozenset(
        area["action"]["data"] for area in menu["areas"] if area["action"].get("type") == "postback"
    )


def accepted_postback(data: str, verify: Callable[[str], str | None] | None) -> str | None:
    """The intent a postback may become: a signed button's payload or a rich-menu payload.

    Args:
        data: The postback data LINE delivered.
        verify: Checks the data's signature for this resident (`verify_postback` bound to the
            key and the sender); None accepts only the rich menu.

    Returns:
        The payload, or None when the postback is neither.
    """
    payload = verify(data) if verify is not None else None
    if payload is None and data in rich_menu_payloads():
        payload = data
    return payload


def split_text(text: str, limit: int = MAX_TEXT) -> List[str]:
    """Split a long text at sentence ends so that every part has at most `limit` characters.

    Args:
        text: The text.
        limit: The maximum length of a part.

    Returns:
        The parts (a sentence longer than `limit` is cut hard).
    """
    if len(text) <= limit:
        return [text]
    parts: List[str] = []
    current = ""
    for sentence in (s for s in SENTENCE_END.split(text) if s):
        while len(sentence) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(sentence[:limit])
            sentence = sentence[limit:]
        if len(current) + len(sentence) > limit:
            parts.append(current)
            current = sentence
        else:
            current += sentence
    if current:
        parts.append(current)
    return parts


def screen_lines(text: str) -> int:
    """How many lines of a phone screen a text takes in a LINE bubble.

    Args:
        text: The text.

    Returns:
        Its lines, each wrapped at `BUBBLE_LINE_WIDTH` cells (a blank line counts as one).
    """
    return sum(max(1, math.ceil(_cells(line) / BUBBLE_LINE_WIDTH)) for line in text.split("\n"))


def _cells(line: str) -> float:
    return sum(1.0 if unicodedata.east_asian_width(ch) in "FWA" else 0.5 for ch in line)


def _pieces(text: str) -> List[tuple[str, str]]:
    """The text's lines, with the line breaks before each; too long a line by its sentences."""
    pieces: List[tuple[str, str]] = []
    parts = LINE_BREAKS.split(text.strip("\n"))
    for i in range(0, len(parts), 2):
        separator = parts[i - 1] if i else ""
        line = parts[i]
        if screen_lines(line) <= BUBBLE_LINES:
            pieces.append((separator, line))
            continue
        sentences = [s for s in INLINE_SENTENCE_END.split(line) if s]
        pieces.append((separator, sentences[0]))
        pieces.extend(("", sentence) for sentence in sentences[1:])
    return pieces


def split_bubbles(text: str) -> List[tuple[str, str]]:
    """Split an answer into bubbles of a phone screen, at line or sentence ends.

    Args:
        text: One answer's text.

    Returns:
        (separator, bubble) pairs: the separator is what stood before the bubble in the text
        ("" for the first, else line breaks or "" after a sentence end), so that joining
        separator + bubble gives the text back. A bubble is longer than a screen only when
        a single sentence is; it is cut (at 5,000 characters) only when that sentence is longer
        than LINE allows.
    """
    bubbles: List[tuple[str, str]] = []
    separator, current = "", ""
    for before, piece in _pieces(text):
        if not current:
            separator, current = (before if bubbles else ""), piece
        elif screen_lines(current + before + piece) <= BUBBLE_LINES:
            current += before + piece
        else:
            bubbles.append((separator, current))
            separator, current = before, piece
    if current:
        bubbles.append((separator, current))
    return [
        (separator if j == 0 else "", part)
        for separator, bubble in bubbles
        for j, part in enumerate(split_text(bubble))
    ]


def _merge(bubbles: List[tuple[str, str]], room: int = MAX_MESSAGES) -> List[str]:
    """Merge neighbouring bubbles, smallest pair first, until at most `room` remain.

    A merge never makes a text longer than LINE's 5,000 characters; when no pair fits any more,
    the rest is packed in order, so a further batch is pushed only for answers that long.
    """
    merged = list(bubbles)
    while len(merged) > max(room, 1):
        best = min(range(1, len(merged)), key=lambda i: len(merged[i - 1][1]) + len(merged[i][1]))
        (before, left), (between, right) = merged[best - 1], merged[best]
        if len(left) + len(between) + len(right) > MAX_TEXT:
            return _pack(merged)
        merged[best - 1 : best + 1] = [(before, left + between + right)]
    return [text for _, text in merged]


def _pack(bubbles: List[tuple[str, str]]) -> List[str]:
    """Pack bubbles in order into texts of at most MAX_TEXT characters."""
    texts: List[str] = []
    for separator, bubble in bubbles:
        if texts and len(texts[-1]) + len(separator) + len(bubble) <= MAX_TEXT:
            texts[-1] += separator + bubble
        else:
            texts.append(bubble)
    return texts


def quick_reply(
    buttons: Iterable[Dict[str, Any]], sign: Signer | None = None
) -> Dict[str, Any] | None:
    """Rasa buttons as a LINE quick reply of postback actions (at most 13, labels ≤ 20).

    Args:
        buttons: Rasa's buttons (`title`, `payload`).
        sign: Turns a payload into the postback data (`sign_postback` for the resident);
            None sends the payload as it is.

    Returns:
        The quick reply, or None without buttons. Buttons whose payload is not one of the
        assistant's or whose data would be too long for LINE are left out.
    """
    items = []
    for button in buttons:
        payload = str(button.get("payload", ""))
        label = str(button.get("title", ""))[:MAX_LABEL]
        if not label or postback_payload(payload) is None:
            continue
        data = sign(payload) if sign is not None else payload
        if len(data.encode("utf-8")) > MAX_POSTBACK_BYTES:
            continue
        items.append(
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": label,
                    "data": data,
                    "displayText": label,
                },
            }
        )
        if len(items) == MAX_QUICK_REPLIES:
            break
    return {"items": items} if items else None


def to_line_messages(
    rasa_messages: List[Dict[str, Any]], sign: Signer | None = None
) -> List[List[Dict[str, Any]]]:
    """Turn Rasa's answers into batches of LINE text messages.

    Each answer's text is split into bubbles of a phone screen (`split_bubbles`), and bubbles are
    merged only so that a batch has at most 5 messages; all buttons become a quick reply on the
    last message (where LINE shows it). The first batch goes out as the reply; any further one
    (only for answers longer than 5 x 5,000 characters) is pushed.

    Args:
        rasa_messages: What Rasa's output channel collected (`text`, `buttons`, ...).
        sign: Turns a button's payload into its postback data (see `quick_reply`).

    Returns:
        Batches of at most 5 LINE message objects; empty when there is nothing to send.
    """
    bubbles: List[tuple[str, str]] = []
    buttons: List[Dict[str, Any]] = []
    flex: List[Dict[str, Any]] = []
    for message in rasa_messages:
        if message.get("text") and str(message["text"]).strip("\n"):
            parts = split_bubbles(str(message["text"]))
            if bubbles:  # a new answer starts a new bubble
                parts[0] = (ANSWER_SEPARATOR, parts[0][1])
            bubbles.extend(parts)
        buttons.extend(message.get("buttons") or [])
        flex.extend(memo_flex_of(message))
    texts = _merge(bubbles, MAX_MESSAGES - len(flex))  # a memo's Flex goes in the same reply
    messages: List[Dict[str, Any]] = [{"type": "text", "text": t} for t in texts] + flex
    reply = quick_reply(buttons, sign)
    if messages and reply:
        messages[-1]["quickReply"] = reply
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]


# ---- the consultation memo (issue 18) -------------------------------------------------------
MEMO_PAYLOAD = "doctor_memo"
MAX_ALT_TEXT = 400
MAX_URI = 1000


def _flex_text(text: str, **style: Any) -> Dict[str, Any]:
    return {"type": "text", "text": text, "wrap": True, **style}


def memo_flex(memo: Dict[str, Any], url: str | None = None) -> Dict[str, Any]:
    """The consultation memo as a Flex message for a phone screen, with its print link.

    Args:
        memo: The `doctor_memo` payload of action_doctor_memo (actions/memo.py): texts only.
        url: The link of its print page (https in production; http or https only), if any.

    Returns:
        One LINE Flex message (a bubble of size giga: title, intro, sections, terms, date, note,
        and a button opening the print page).
    """
    body: List[Dict[str, Any]] = [
        _flex_text(str(memo["title"]), weight="bold", size="lg"),
        _flex_text(str(memo["intro"]), size="md", margin="md"),
    ]
    for section in memo["sections"]:
        body.append({"type": "separator", "margin": "lg"})
        body.append(_flex_text(str(section["heading"]), weight="bold", size="md", margin="lg"))
        body += [_flex_text(f"・{line}", size="md", margin="sm") for line in section["lines"]]
    body.append({"type": "separator", "margin": "lg"})
    body += [
        _flex_text(str(memo["terms"]), size="md", margin="lg", weight="bold"),
        _flex_text(str(memo["date"]), size="md", margin="sm"),
        _flex_text(str(memo["note"]), size="sm", margin="md"),
    ]
    bubble: Dict[str, Any] = {
        "type": "bubble",
        "size": "giga",
        "body": {"type": "box", "layout": "vertical", "contents": body},
    }
    if url and url.startswith(("https://", "http://")) and len(url) <= MAX_URI:
        label = str(memo["link_label"])[:MAX_LABEL]
        bubble["footer"] = {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {"type": "uri", "label": label, "uri": url},
                }
            ],
        }
    return {"type": "flex", "altText": str(memo["title"])[:MAX_ALT_TEXT], "contents": bubble}


def memo_flex_of(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The Flex message of a Rasa message carrying a memo (`custom.doctor_memo`), if any.

    The LINE channel puts the memo's print link in `custom.doctor_memo_url` (bot/channels/line.py).
    """
    custom = message.get("custom")
    if not isinstance(custom, dict) or not isinstance(custom.get(MEMO_PAYLOAD), dict):
        return []
    url = custom.get("doctor_memo_url")
    return [memo_flex(custom[MEMO_PAYLOAD], url if isinstance(url, str) else None)]
