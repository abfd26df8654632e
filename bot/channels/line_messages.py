"""LINE Messaging API rules, as pure functions the LINE channel uses.

Limits (LINE's documentation; the ones in its OpenAPI description are also checked by the tests'
fake server): at most 5 messages per reply or push, a text message of at most 5,000 characters,
at most 13 quick-reply items, labels of at most 20 characters, postback data of at most 300 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any, Dict, Iterable, List

MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_BYTES = 300
# Only payloads of the assistant's own buttons are accepted back as postbacks.
PAYLOAD = re.compile(r"^/[a-z_]+(\{[^\n]*\})?$")
SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")


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
    """The payload of one of the assistant's own buttons, or None for anything else."""
    if len(data.encode("utf-8")) <= MAX_POSTBACK_BYTES and PAYLOAD.match(data):
        return data
    return None


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


def _merge(texts: List[str]) -> List[str]:
    """Join neighbouring texts (blank line between) until at most MAX_MESSAGES remain."""
    texts = list(texts)
    while len(texts) > MAX_MESSAGES:
        best = min(range(len(texts) - 1), key=lambda i: len(texts[i]) + len(texts[i + 1]))
        joined = texts[best] + "\n\n" + texts[best + 1]
        if len(joined) > MAX_TEXT:
            break
        texts[best : best + 2] = [joined]
    return texts


def quick_reply(buttons: Iterable[Dict[str, Any]]) -> Dict[str, Any] | None:
    """Rasa buttons as a LINE quick reply of postback actions (at most 13, labels ≤ 20).

    Buttons whose payload is too long for postback data are left out.
    """
    items = []
    for button in buttons:
        payload = str(button.get("payload", ""))
        label = str(button.get("title", ""))[:MAX_LABEL]
        if not label or postback_payload(payload) is None:
            continue
        items.append(
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": label,
                    "data": payload,
                    "displayText": label,
                },
            }
        )
        if len(items) == MAX_QUICK_REPLIES:
            break
    return {"items": items} if items else None


def to_line_messages(rasa_messages: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """Turn Rasa's answers into batches of LINE text messages.

    Texts are split under 5,000 characters and merged so that a batch has at most 5 messages;
    all buttons become a quick reply on the last message (where LINE shows it). The first batch
    goes out as the reply; any further one (only for very long answers) is pushed.

    Args:
        rasa_messages: What Rasa's output channel collected (`text`, `buttons`, ...).

    Returns:
        Batches of at most 5 LINE message objects; empty when there is nothing to send.
    """
    texts: List[str] = []
    buttons: List[Dict[str, Any]] = []
    for message in rasa_messages:
        if message.get("text"):
            texts.extend(split_text(str(message["text"])))
        buttons.extend(message.get("buttons") or [])
    texts = _merge(texts)
    messages: List[Dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
    reply = quick_reply(buttons)
    if messages and reply:
        messages[-1]["quickReply"] = reply
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]
