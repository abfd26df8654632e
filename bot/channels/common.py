"""What LINE, the web chat and REST share on the way to Rasa (issue 20).

Each channel reads its own input (a signed webhook, a socket.io event, a REST body); from there
the steps are the same and live here:

1. The rate limit first (`admit`): a resident sending more than `RATE_LIMIT_MESSAGES` per
   `RATE_LIMIT_SECONDS` is told once (`too_many_messages`) and the rest of the window is dropped,
   counted across replicas in the shared state (bot/shared_state.py) under
   `<channel namespace>:<sender>` (`rate_key`). Nothing is masked for a dropped message.
2. Then the message is taken in (`take_in`): typed text by `guard.intake` in a worker thread
   (personal details masked, never an intent), a system intent (bot/channels/system_intents.py)
   or a payload the assistant offered as it is (`unmasked`).
3. Rasa receives `guard.rasa_texts` of it (the removal notice first when something was removed),
   each text as one `UserMessage` of the same sender, output channel and channel name
   (`hand_to_rasa`).

The namespaces (`LINE`, `WEB`) are those of the pseudonyms (bot/pseudonym.py: Rasa sees a keyed
pseudonym of a LINE user id, never the id) and of the rate-limit keys; the web chat's sender is a
random server-issued session, REST's whatever the caller sends (a development channel).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Dict

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import intake, rasa_texts
from bot.channels.system_intents import TOO_MANY_MESSAGES, system_message
from bot.privacy import Masked
from bot.settings import Settings
from bot.shared_state import SharedState, rate_verdict, shared_state
from bot.webchat.memo import keep_memo, memo_store

logger = logging.getLogger(__name__)

# The namespaces of a channel's senders: pseudonyms ("line:<user id>") and rate-limit keys.
LINE = "line"
WEB = "web"
# The longest text or payload LINE and the web chat pass on (longer: `message_too_long`).
MAX_TYPED_CHARACTERS = 1000

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


@dataclass(frozen=True)
class Admission:
    """What Rasa receives for one message after the rate limit and intake.

    Attributes:
        texts: The texts, in order; empty when nothing is to be answered.
        over_limit: True when the message was dropped for the rate limit (the resident was
            told already).
    """

    texts: tuple[str, ...] = ()
    over_limit: bool = False


def rate_key(namespace: str, sender: str) -> str:
    """The shared state's rate-limit key of a sender.

    Args:
        namespace: `LINE` or `WEB`.
        sender: The sender Rasa sees (a pseudonym or a session id, never a LINE id).

    Returns:
        `<namespace>:<sender>`.
    """
    return f"{namespace}:{sender}"


def unmasked(text: str) -> Masked:
    """A system intent or a payload the assistant offered: nothing in it to mask.

    Args:
        text: The intent message, e.g. `/greet`.

    Returns:
        The text with no kinds of detail removed.
    """
    return Masked(text, frozenset())


def intake_of(taken: Masked | str) -> Masked | None:
    """Take one message in: typed text through `guard.intake`, an intent as it is.

    Args:
        taken: Typed text (a str), or an intent already decided (`unmasked`).

    Returns:
        The message to hand Rasa with the kinds of detail removed, or None when nothing is left
        of it (blanks only).
    """
    masked = intake(taken) if isinstance(taken, str) else taken
    return masked if masked.text else None


async def take_in(taken: Masked | str) -> Masked | None:
    """`intake_of` in a worker thread for typed text: masking long text never stalls the loop.

    Args:
        taken: Typed text (a str), or an intent already decided (`unmasked`).

    Returns:
        As `intake_of`.
    """
    if isinstance(taken, str):
        return await asyncio.to_thread(intake_of, taken)
    return intake_of(taken)


async def admit(
    state: Callable[[], SharedState],
    settings: Settings,
    key: str | None,
    take: Callable[[], Awaitable[Masked | None]],
) -> Admission:
    """The rate limit, then the intake: what Rasa receives for one message.

    Args:
        state: Returns the channel's shared state (asked only when there is a limit to count).
        settings: `RATE_LIMIT_MESSAGES` and `RATE_LIMIT_SECONDS`.
        key: The sender's `rate_key`, or None for an event no limit may hold back.
        take: Takes the message in (`take_in`); called only when the limit lets it through.

    Returns:
        `too_many_messages` alone for the first message over the limit, nothing (`over_limit`)
        for the next ones, else `guard.rasa_texts` of the message (nothing when `take` found
        nothing to answer).
    """
    verdict = "ok" if key is None else await rate_verdict(state(), settings, key)
    if verdict == "drop":
        return Admission(over_limit=True)
    if verdict == "tell":
        return Admission((system_message(TOO_MANY_MESSAGES),))
    taken = await take()
    return Admission(tuple(rasa_texts(taken))) if taken is not None else Admission()


async def hand_to_rasa(
    on_new_message: OnNewMessage,
    texts: Iterable[str],
    output: OutputChannel,
    sender: str,
    input_channel: str | None,
    metadata: Callable[[], Dict[str, Any] | None] | None = None,
) -> None:
    """Hand Rasa the texts of one message, in order, as messages of one sender.

    Args:
        on_new_message: Rasa's handler.
        texts: What Rasa receives (`Admission.texts`, or a removal notice).
        output: Where the answers go (all texts share it, so one reply holds them all).
        sender: The sender id Rasa keeps (a pseudonym or a session, never a LINE id).
        input_channel: The channel's name (`line`, `socketio`, `rest`).
        metadata: Makes each message's metadata (called once per text); None for none.
    """
    for text in texts:
        await on_new_message(
            UserMessage(
                text,
                output,
                sender,
                input_channel=input_channel,
                metadata=None if metadata is None else metadata(),
            )
        )


class SharedStateChannel:
    """A channel holding the state shared with the other replicas, created when first used."""

    settings: Settings
    _state: SharedState | None = None

    def state(self) -> SharedState:
        """The state shared with the other replicas (created in the running event loop)."""
        if self._state is None:
            self._state = shared_state(self.settings)
        return self._state


def add_health_route(blueprint: Blueprint) -> None:
    """Answer `GET /` of the channel's blueprint with `{"status": "ok"}`.

    Args:
        blueprint: The channel's blueprint (`/webhooks/<channel>/`).
    """

    @blueprint.route("/", methods=["GET"])  # type: ignore[misc]
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})


async def memo_token(
    state: Callable[[], SharedState], settings: Callable[[], Settings], memo: Dict[str, Any]
) -> str | None:
    """Keep a consultation memo (issue 18) for its print page, wherever it was given.

    Args:
        state: Returns the channel's shared state.
        settings: Returns the settings (`REDIS_URL`, `MEMO_TTL_SECONDS`).
        memo: The `doctor_memo` payload (checked with `memo.is_memo` by the caller).

    Returns:
        The page's token, or None when it could not be kept (the memo then goes without a link;
        only the error's type is logged). A failure to get the state or the settings counts.
    """
    try:
        config = settings()
        store = memo_store(state(), config.redis_url)
        return await keep_memo(store, memo, config.memo_ttl_seconds)
    except Exception as error:
        logger.error("Memo not kept: %s", type(error).__name__)
        return None
