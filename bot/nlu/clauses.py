"""Two questions in one message: classify each clause with the same pipeline (issue 15).

Residents write "レベル2って何？あと同意もしたい" — two things at once. Rasa gives a message one
intent, so the second question would be lost. Two components around the pipeline keep it:

* `ClauseSplitter` (first in the pipeline) splits the text into clauses — after 。？！?! and
  before あと / それと / ついでに / それから when a comma or space precedes them — and, when
  there are two or more, appends one extra message per clause to the batch. Every later
  component (tokenizer, featurizers, DIET, fallback) then processes the clauses exactly as it
  processes the message: the clauses are classified by the same trained classifier, not by a
  second model or by keywords.
* `SecondIntentCollector` (after the FallbackClassifier) takes the clause messages out of the
  batch again and compares their intents. When two clauses are confidently (≥ `threshold`) about
  two different intents that can be answered (not in `ignore_intents`: greetings, yes/no and the
  like), the message's intent becomes the first clause's — the resident's first question is
  answered first — and the second clause's intent is recorded in the parse data as
  `second_intent` ({"name", "confidence", "clause"}). When the whole message was read as a
  greeting, thanks or not understood (`lead_in_intents`) and exactly one clause asks something
  confidently, that question becomes the intent (「こんにちは。情報銀行について知りたい」).
  Otherwise the message is left exactly as the pipeline parsed it.

Training is untouched (both components pass the training data through): the classifier never
sees a split message. The dialogue offers `second_intent` as a button after the first answer
(`bot/nlu/second_question.py`).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# Set on a clause message: the index of its message in the batch and its place among the clauses.
CLAUSE_OF = "clause_of"
SECOND_INTENT = "second_intent"
FALLBACK_INTENT = "nlu_fallback"

# A clause ends after sentence-final punctuation, or before a connective that starts a new topic
# ("あと" but not "あとで" / "あとに" / "あとは…"), when a comma or space stands before it.
_AFTER_PUNCTUATION = r"(?<=[。．？！?!])"
_BEFORE_CONNECTIVE = (
    r"(?:[、，,\s　]+)(?=(?:あと(?![でにのはからまも])|それと(?!も)|ついでに|それから))"
)
_SPLIT = re.compile(f"{_AFTER_PUNCTUATION}|{_BEFORE_CONNECTIVE}")
_EDGE = " \t\r\n　、，,。．？！?!"
# The connective that starts a clause is not part of its question ("あと同意もしたい" is classified
# as "同意もしたい": the connective alone makes the classifier much less sure).
_LEADING_CONNECTIVE = re.compile(r"^(?:あと|それと|ついでに|それから)[、，,\s　]*")


def split_clauses(text: str, min_chars: int = 3) -> List[str]:
    """The clauses of a message, each stripped; clauses shorter than `min_chars` are dropped.

    Args:
        text: The resident's message.
        min_chars: The fewest characters (after stripping punctuation) a clause keeps.

    Returns:
        The clauses in order: one for a message that does not split, none for a short one.
    """
    clauses = []
    parts = _SPLIT.split(text)
    for part in parts:
        clause = part.strip()
        if len(parts) > 1:
            clause = _LEADING_CONNECTIVE.sub("", clause)
        if len(clause.strip(_EDGE)) >= min_chars:
            clauses.append(clause)
    return clauses


def _top_intent(message: Message) -> tuple[str | None, float]:
    """The best intent other than the fallback and its confidence."""
    for ranked in message.get("intent_ranking") or []:
        if ranked.get(INTENT_NAME_KEY) != FALLBACK_INTENT:
            return ranked.get(INTENT_NAME_KEY), float(ranked.get(PREDICTED_CONFIDENCE_KEY, 0.0))
    intent = message.get(INTENT) or {}
    name = intent.get(INTENT_NAME_KEY)
    if name == FALLBACK_INTENT:
        return None, 0.0
    return name, float(intent.get(PREDICTED_CONFIDENCE_KEY, 0.0))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ClauseSplitter(GraphComponent):
    """Adds one message per clause to the batch, so the pipeline classifies each clause."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """`min_clause_chars`: shorter pieces are not clauses; `max_clauses`: at most this many."""
        return {"min_clause_chars": 3, "max_clauses": 3}

    def __init__(self, config: Dict[str, Any]) -> None:
        """Keeps the configuration."""
        self._min_chars = int(config["min_clause_chars"])
        self._max_clauses = int(config["max_clauses"])

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ClauseSplitter:
        """Creates the component (see `GraphComponent.create`)."""
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples are not split."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Returns the messages followed by the clauses of each message that has two or more.

        Args:
            messages: The batch to parse (one message when the server parses a message).

        Returns:
            The same messages, then one new message per clause (marked with `clause_of`).
        """
        clauses: List[Message] = []
        for index, message in enumerate(messages):
            text = message.get(TEXT)
            if not isinstance(text, str) or text.startswith("/") or message.get(CLAUSE_OF):
                continue
            parts = split_clauses(text, self._min_chars)[: self._max_clauses]
            if len(parts) < 2:
                continue
            for position, part in enumerate(parts):
                clauses.append(Message(data={TEXT: part, CLAUSE_OF: [index, position]}))
        return [*messages, *clauses]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SecondIntentCollector(GraphComponent):
    """Takes the clause messages out again and records a second question (`second_intent`)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """`threshold`: a clause's least confidence; `ignore_intents`: never a question."""
        return {
            "threshold": 0.7,
            "ignore_intents": [],
            "answer_first_clause": True,
            # A message read as one of these (a greeting before a question, or not understood
            # as a whole) takes the intent of its one clause that asks something confidently.
            "lead_in_intents": ["greet", "thank", FALLBACK_INTENT],
        }

    def __init__(self, config: Dict[str, Any]) -> None:
        """Keeps the configuration."""
        self._threshold = float(config["threshold"])
        self._ignore = {FALLBACK_INTENT, *config["ignore_intents"]}
        self._answer_first = bool(config["answer_first_clause"])
        self._lead_in = set(config.get("lead_in_intents", []))

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SecondIntentCollector:
        """Creates the component (see `GraphComponent.create`)."""
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples pass through."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Returns the batch without its clause messages, with `second_intent` where found.

        Args:
            messages: The batch as the classifiers left it (messages, then clause messages).

        Returns:
            The original messages only.
        """
        originals = [m for m in messages if not m.get(CLAUSE_OF)]
        by_message: Dict[int, List[Message]] = {}
        for clause in messages:
            marker = clause.get(CLAUSE_OF)
            if marker:
                by_message.setdefault(int(marker[0]), []).append(clause)
        for index, clauses in by_message.items():
            if index < len(originals):
                self._collect(originals[index], clauses)
        return originals

    def _collect(self, message: Message, clauses: List[Message]) -> None:
        """Sets the first clause's question as the intent and the next one as `second_intent`."""
        questions: List[tuple[str, float, Message]] = []
        for clause in sorted(clauses, key=lambda c: int(c.get(CLAUSE_OF)[1])):
            name, confidence = _top_intent(clause)
            if name is None or name in self._ignore or confidence < self._threshold:
                continue
            if all(name != seen for seen, _, _ in questions):
                questions.append((name, confidence, clause))
        whole = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if len(questions) == 1 and whole in self._lead_in:
            # 「こんにちは。情報銀行について知りたい」: the question, not the greeting.
            self._set_intent(message, *questions[0])
            return
        if len(questions) < 2:
            return
        if not self._answer_first:
            # The whole message's intent stays; the first clause asking something else is offered.
            other = [q for q in questions if q[0] != whole]
            if whole in {q[0] for q in questions} and other:
                self._set_second(message, other[0][0], other[0][1], other[0][2])
            return
        (first, first_confidence, first_clause), (second, confidence, clause) = questions[:2]
        if whole != first:
            self._set_intent(message, first, first_confidence, first_clause)
        self._set_second(message, second, confidence, clause)

    @staticmethod
    def _set_intent(message: Message, name: str, confidence: float, clause: Message) -> None:
        """Makes one clause's question the message's intent, with the clause's ranking."""
        message.set(
            INTENT,
            {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence},
            add_to_output=True,
        )
        message.set("intent_ranking", clause.get("intent_ranking"), add_to_output=True)

    @staticmethod
    def _set_second(message: Message, second: str, confidence: float, clause: Message) -> None:
        """Records the second question in the parse data."""
        message.set(
            SECOND_INTENT,
            {
                INTENT_NAME_KEY: second,
                PREDICTED_CONFIDENCE_KEY: confidence,
                "clause": clause.get(TEXT),
            },
            add_to_output=True,
        )
