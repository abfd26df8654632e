"""「もっと詳しく」 (issue 16): the rest of a long answer that was split in two.

The longest explanations of the scheme are said in two parts: `utter_X` is the short answer
(the core facts, with a first button 「もっと詳しく」 whose payload is
`/ask_more_details{"more_of": "utter_X"}`) and `utter_X_more` is the rest. Short and more
together say exactly what the one long answer said. Which responses are split is read from the
domain alone: a response `utter_X` is split when `utter_X_more` exists.

`action_more_details` answers `ask_more_details`, in this order of precedence:

1. the entity `more_of` of the latest message (the button), when it names a split response →
   that response's rest, even if the button belongs to an older answer;
2. else the latest split response said since the resident's previous message (a typed
   「もっと詳しく」 right after the short answer) → its rest;
3. else, while a consent read-back waits for its yes → what `action_show_terms` does (the rest
   of the notice and the terms), so a typed 「もっと詳しく」 at a read-back still shows them;
4. else `utter_more_details_which`: which topic?

A consent notice, read-back or receipt is never split (a resident must see the whole notice
before the yes); a forged `more_of` naming such a response has no rest and falls through.
All wording is in domain.yml.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import ActionShowTerms
from actions.consent_states import State, state_of
from actions.worker import ServiceAction

MORE_OF = "more_of"
MORE_SUFFIX = "_more"
RESPONSE_PREFIX = "utter_"
WHICH = "utter_more_details_which"
# Sent by the channels before the resident's own message (issue 19): not a message of the
# resident's, so the answer before it is still the answer to the previous turn.
CHANNEL_INTENTS = frozenset({"personal_detail_removed"})


def rest_of(response: str | None, domain: Dict[str, Any]) -> str | None:
    """The response with the rest of a split answer, if `response` is a split one.

    Args:
        response: A response name (from a button's entity or a bot event; may be anything).
        domain: The domain the action received.

    Returns:
        `<response>_more` when `response` is an `utter_` response of the domain and
        `<response>_more` is one too; else None.
    """
    if not isinstance(response, str) or not response.startswith(RESPONSE_PREFIX):
        return None
    responses = domain.get("responses") or {}
    rest = response + MORE_SUFFIX
    if response in responses and rest in responses:
        return rest
    return None


def _said(event: Dict[str, Any]) -> str | None:
    """The response name an event says was uttered: a bot message's or an `utter_` action's."""
    if event.get("event") == "bot":
        name = (event.get("metadata") or {}).get("utter_action")
        return str(name) if name else None
    if event.get("event") == "action":
        name = event.get("name")
        return str(name) if isinstance(name, str) and name.startswith(RESPONSE_PREFIX) else None
    return None


def _previous_turn(tracker: Tracker) -> Iterator[Dict[str, Any]]:
    """The events of the answer to the previous turn, latest first.

    They are the events between the resident's previous message and the latest one (a message
    the channel sends on the resident's behalf does not count as one), within the session.
    """
    seen_latest = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "session_started":
            return
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent in CHANNEL_INTENTS:
                continue
            if seen_latest:
                return
            seen_latest = True
            continue
        if seen_latest:
            yield event


def rest_to_say(tracker: Tracker, domain: Dict[str, Any]) -> str | None:
    """The rest to say for the latest message, by the button's entity or the previous answer.

    Args:
        tracker: The conversation; its latest message asked for more details.
        domain: The domain the action received.

    Returns:
        The `utter_X_more` response to say, or None when neither the entity `more_of` nor the
        answer to the previous turn names a split answer.
    """
    for value in tracker.get_latest_entity_values(MORE_OF):
        rest = rest_of(value, domain)
        if rest:
            return rest
    for event in _previous_turn(tracker):
        rest = rest_of(_said(event), domain)
        if rest:
            return rest
    return None


class ActionMoreDetails(ServiceAction):
    """`ask_more_details`: the rest of a split answer, the terms at a read-back, or which topic.

    A service action because at a read-back it shows the terms, which come from the consent
    service (the same step as `action_show_terms`).
    """

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_more_details"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Say the rest the latest message asks for (see the module's order of precedence).

        Args:
            dispatcher: Where the answers go.
            tracker: The conversation.
            domain: The domain the action received (its responses tell which answers are split).

        Returns:
            The events of the step: none, or those of `action_show_terms` at a read-back.
        """
        rest = rest_to_say(tracker, domain)
        if rest:
            dispatcher.utter_message(response=rest)
            return []
        if state_of(tracker) is State.CONFIRMING:
            return ActionShowTerms().step(dispatcher, tracker, domain)
        dispatcher.utter_message(response=WHICH)
        return []
