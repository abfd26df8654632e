"""DIET's weights are saved without the optimizer's state, and still load and predict the same.

Trains a tiny `FastLoadingDIETClassifier` through Rasa's component API (whitespace tokens,
bag-of-words features), persists it, and loads it back both the fast way and Rasa's way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import tensorflow as tf
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.diet_classifier import DIET
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.diet import FastLoadingDIETClassifier

EXAMPLES = {
    "greet": ["hello there", "hi friend", "good morning", "hello friend"],
    "bye": ["bye now", "see you later", "good night", "bye friend"],
    "ask": ["what is a level", "what are levels", "explain the level", "which level"],
}


def _featurized(
    storage: LocalModelStorage, context: ExecutionContext
) -> Tuple[TrainingData, WhitespaceTokenizer, CountVectorsFeaturizer]:
    messages = [
        Message.build(text=text, intent=intent)
        for intent, texts in EXAMPLES.items()
        for text in texts
    ]
    data = TrainingData(messages)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    tokenizer.process_training_data(data)
    featurizer = CountVectorsFeaturizer.create(
        CountVectorsFeaturizer.get_default_config(), storage, Resource("cvf"), context
    )
    featurizer.train(data)
    featurizer.process_training_data(data)
    return data, tokenizer, featurizer


def _predict(
    classifier: FastLoadingDIETClassifier,
    tokenizer: WhitespaceTokenizer,
    featurizer: CountVectorsFeaturizer,
) -> List[Tuple[str, float]]:
    messages = [Message.build(text=t) for texts in EXAMPLES.values() for t in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    classifier.process(messages)
    return [(m.get("intent")["name"], m.get("intent")["confidence"]) for m in messages]


def test_the_saved_weights_hold_no_optimizer_state_and_predict_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    data, tokenizer, featurizer = _featurized(storage, context)
    config: Dict[str, Any] = {
        **FastLoadingDIETClassifier.get_default_config(),
        "epochs": 3,
        "random_seed": 1,
        "entity_recognition": False,
    }
    resource = Resource("diet")
    trained = FastLoadingDIETClassifier.create(config, storage, resource, context)
    trained.train(data)
    before = _predict(trained, tokenizer, featurizer)

    with storage.read_from(resource) as directory:
        [index] = list(directory.glob("*.tf_model.index"))
        names = [name for name, _ in tf.train.list_variables(str(index)[: -len(".index")])]
    assert not [name for name in names if "optimizer" in name.lower()], names
    assert any("embed" in name for name in names), names  # the weights themselves are there

    fast = FastLoadingDIETClassifier.load(config, storage, resource, context)
    assert _predict(fast, tokenizer, featurizer) == pytest.approx(before)

    # Rasa's own loader (which fine-tuning uses) restores the same weights.
    monkeypatch.setattr(FastLoadingDIETClassifier, "model_class", staticmethod(lambda: DIET))
    rasas = FastLoadingDIETClassifier.load(config, storage, resource, context)
    assert _predict(rasas, tokenizer, featurizer) == pytest.approx(before)
