"""A code typed alone is understood by its form, not guessed by the classifier.

After "受付番号を送ってください" a resident sends the code alone, typed however they type it
("k7q2 m9xd 3", "Ｋ７Ｑ２－Ｍ９ＸＤ－３"); after being given a linking code on the other channel,
the eight digits. DIET sees a handful of letters and digits it never saw in training and spreads
its confidence over the two code intents and the fallback. The form decides instead: a message
that is, apart from a few framing words ("受付番号は", "です"), exactly one valid receipt code
(`bot.receipt_code`, check symbol included) is `inform_receipt_code`; exactly eight digits is
`inform_link_code`; a run of 7 to 12 letters and digits with a letter and a digit that is no valid
code (a code with a typo, "H42T-WD34-4") is `inform_receipt_code` too, so that the action can say
it was mistyped. Anything else is left as the classifier parsed it.

The component runs after DIET and before the FallbackClassifier, so a code is never "not
understood". It is not trained.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import receipt_code

RECEIPT_CODE_INTENT = "inform_receipt_code"
LINK_CODE_INTENT = "inform_link_code"
# Words that may frame a code typed alone; the rest of the message must be the code.
_FRAME = re.compile(
    r"受付番号|受付ばんごう|うけつけばんごう|連携コード|れんけいコード|番号|コード|"
    r"は|です|でした|を|が|：|:|、|。|！|!|？|\?|\s"
)
_LETTER = re.compile(r"[A-Za-z]")
_EIGHT_DIGITS = re.compile(r"(?:[0-9][\s\-‐‑‒–—―−ー－ｰ]?){7}[0-9]")


def code_intent(text: str) -> str | None:
    """The code intent of a message that is a code typed alone, or None.

    Args:
        text: The message's text.

    Returns:
        `inform_receipt_code`, `inform_link_code`, or None when the message is anything else.
    """
    if len(text) > receipt_code.MAX_CODE_INPUT + 20:
        return None
    normalised = unicodedata.normalize("NFKC", text).strip()
    for match in receipt_code.RUN.finditer(normalised):
        rest = normalised[: match.start()] + normalised[match.end() :]
        if _FRAME.sub("", rest):
            continue
        candidate = match.group()
        if receipt_code.is_valid(candidate):
            return RECEIPT_CODE_INTENT
        if _EIGHT_DIGITS.fullmatch(candidate):
            return LINK_CODE_INTENT
        if _LETTER.search(candidate) and receipt_code.find_code(candidate).mistyped:
            return (
                RECEIPT_CODE_INTENT  # a typo in a code: the action says so (not "not understood")
            )
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class TypedCodeClassifier(GraphComponent):
    """Sets the intent of a message that is a receipt or linking code typed alone."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TypedCodeClassifier:
        """Creates the component (it has no state)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data passes through unchanged."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Gives a code typed alone its intent with full confidence."""
        for message in messages:
            intent = code_intent(message.get(TEXT) or "")
            if intent is None:
                continue
            ranking = [
                ranked
                for ranked in message.get(INTENT_RANKING_KEY) or []
                if ranked.get(INTENT_NAME_KEY) != intent
            ]
            chosen = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen, *ranking], add_to_output=True)
        return messages
