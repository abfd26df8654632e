"""Offer the second question of a two-question message once the first is answered (issue 15).

`bot/nlu/clauses.py` leaves the first question as the message's intent and records the second
in the parse data as `second_intent`. The rules answer the first question as they answer it
anywhere; this policy is Rasa's `RulePolicy` with one addition: where the rules would now wait
for the resident (`action_listen`), it first says `utter_offer_second_<intent>` — 「もう一つの
ご質問『…』についても答えますか？」 with one button whose payload is the second intent — and
waits after that. The offers are a fixed table of responses in `domain.yml`, one per intent that
can be offered; an intent without one is not offered. Nothing is offered after an answer that
opened a step-by-step procedure (`not_after`: consent, withdrawal, linking), inside a form, or
twice for one message.
"""

from __future__ import annotations

from typing import Any, Dict

from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import (
    ACTION_EXTRACT_SLOTS,
    ACTION_LISTEN_NAME,
    ACTION_SESSION_START_NAME,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

OFFER_PREFIX = "utter_offer_second_"
_NOT_AN_ANSWER = {ACTION_LISTEN_NAME, ACTION_EXTRACT_SLOTS, ACTION_SESSION_START_NAME}


def second_intent(user: UserUttered) -> str | None:
    """The second question's intent recorded by `SecondIntentCollector`, if any."""
    second = (user.parse_data or {}).get("second_intent")
    name = second.get("name") if isinstance(second, dict) else None
    return str(name) if name else None


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class SecondQuestionRulePolicy(RulePolicy):
    """`RulePolicy` that offers a message's second question before waiting for the resident."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """RulePolicy's settings, and `not_after`: first intents after which nothing is offered."""
        return {**RulePolicy.get_default_config(), "not_after": []}

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """The rules' prediction, with the offer put in front of their next `action_listen`."""
        prediction = super().predict_action_probabilities(tracker, domain, rule_only_data, **kwargs)
        user = tracker.get_last_event_for(UserUttered)
        if user is None or tracker.active_loop_name:
            return prediction
        wanted = second_intent(user)
        if not wanted or user.intent_name in self.config["not_after"]:
            return prediction
        offer = f"{OFFER_PREFIX}{wanted}"
        if offer not in domain.responses:
            return prediction
        since = self._actions_since(tracker, user)
        if since and since[-1] == offer:
            return self._rule_prediction(
                self._prediction_result(ACTION_LISTEN_NAME, tracker, domain), "second_question"
            )
        answered = any(name not in _NOT_AN_ANSWER for name in since)
        if any(str(name).startswith(OFFER_PREFIX) for name in since) or not answered:
            return prediction
        best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
        if domain.action_names_or_texts[best] != ACTION_LISTEN_NAME:
            return prediction
        return self._rule_prediction(
            self._prediction_result(offer, tracker, domain), "second_question"
        )

    @staticmethod
    def _actions_since(tracker: DialogueStateTracker, user: UserUttered) -> list[str]:
        """The names of the actions run after the resident's message `user`, in order."""
        names: list[str] = []
        for event in reversed(tracker.events):
            if event is user:
                break
            if isinstance(event, ActionExecuted) and event.action_name:
                names.append(event.action_name)
        return names[::-1]
