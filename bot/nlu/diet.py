"""DIET that loads for prediction without re-tracing its training step.

Rasa's `RasaModel.load` builds a model's weights by *training it for one step* on an example and
only then loads the trained weights. Tracing DIET's training step (the transformer, the CRF and
their gradients) takes TensorFlow tens of seconds on a small machine, and it is paid at every start
of the Rasa server and every `rasa test`, although prediction never uses it.

`FastLoadingDIETClassifier` trains exactly like Rasa's `DIETClassifier` (same class, same
settings, same weights file); only loading differs: the prediction graph is run once eagerly to
create the variables prediction needs, the trained weights are restored into them, and prediction
is then traced once with those weights. `tests/bot/test_nlu_diet.py` checks that both ways of
loading give the same predictions on the held-out messages. Fine-tuning (`rasa train --finetune`)
falls back to Rasa's own loading, which it needs.

Training can also batch messages of similar length together (`length_bucket_batches`, off by
default). Rasa pads every message of a batch to the batch's longest, and DIET's transformer costs
grow with that padded length: in data/ a message has 10 tokens on average but a random batch of
128 is padded to about 41. With `length_bucket_batches: k`, each epoch's shuffled (and balanced)
sequence is cut into runs of `k` batches, each run is sorted by length and cut into batches, and
the batches are shuffled. The model and its loss are unchanged; only which messages share a batch
differs.
"""

from __future__ import annotations

from typing import Any, Dict, List, Type

import numpy as np
import numpy.typing as npt
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.utils.tensorflow.constants import RUN_EAGERLY, SEQUENCE
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import Data, RasaModelData
from rasa.utils.tensorflow.models import RasaModel

# The component setting: how many batches make one run sorted by length (0: Rasa's batching).
LENGTH_BUCKET_BATCHES = "length_bucket_batches"


def sequence_lengths(data: Data) -> npt.NDArray[np.int64] | None:
    """The number of tokens of each message in `data`, or None without text sequence features."""
    features = data.get(TEXT, {}).get(SEQUENCE) or []
    if not features:
        return None
    return np.array([example.shape[0] for example in features[0]], dtype=np.int64)


def bucketed_order(
    lengths: npt.NDArray[np.int64], batch_size: int, bucket_batches: int
) -> npt.NDArray[np.int64]:
    """A permutation of the messages whose consecutive batches hold messages of similar length.

    Args:
        lengths: The number of tokens of each message, in the epoch's (shuffled) order.
        batch_size: The epoch's batch size.
        bucket_batches: How many batches make one run that is sorted by length.

    Returns:
        Indices into `lengths`: the runs sorted by length (stable, so equal lengths keep the
        shuffled order), cut into batches, the full batches in a random order (`np.random`, which
        Rasa seeds with the component's `random_seed`) and a short batch, if any, last.
    """
    size = max(1, batch_size)
    run = size * max(1, bucket_batches)
    batches: List[npt.NDArray[np.int64]] = []
    for start in range(0, len(lengths), run):
        indices = np.arange(start, min(len(lengths), start + run))
        indices = indices[np.argsort(lengths[indices], kind="stable")]
        batches += [indices[i : i + size] for i in range(0, len(indices), size)]
    if not batches:
        return np.arange(0)
    # Rasa's generator cuts batches at multiples of the batch size, so the one short batch (the
    # last run's remainder) must stay last, or every batch after it would straddle two.
    last = [batches.pop()] if len(batches[-1]) < size else []
    shuffled = [batches[i] for i in np.random.permutation(len(batches))]
    return np.concatenate(shuffled + last)


class LengthBucketedBatchGenerator(RasaBatchDataGenerator):
    """Rasa's batch generator, with each epoch's batches holding messages of similar length."""

    def __init__(self, *args: Any, bucket_batches: int = 8, **kwargs: Any) -> None:
        """Same arguments as `RasaBatchDataGenerator`, plus the batches per sorted run."""
        self.bucket_batches = bucket_batches
        super().__init__(*args, **kwargs)

    @classmethod
    def like(
        cls, generator: RasaBatchDataGenerator, bucket_batches: int
    ) -> LengthBucketedBatchGenerator:
        """A bucketing generator with the same data and settings as `generator`."""
        return cls(
            generator.model_data,
            batch_size=generator.batch_size,
            epochs=generator._epochs,
            batch_strategy=generator.batch_strategy,
            shuffle=generator.shuffle,
            drop_small_last_batch=generator.drop_small_last_batch,
            bucket_batches=bucket_batches,
        )

    def _shuffle_and_balance(self, batch_size: int) -> Data:
        data = super()._shuffle_and_balance(batch_size)
        lengths = sequence_lengths(data)
        if lengths is None:
            return data
        order = bucketed_order(lengths, batch_size, self.bucket_batches)
        return RasaModelData._data_for_ids(data, order)


class FastLoadingDIET(DIET):
    """Rasa's DIET model with a loader that skips tracing the training step.

    It is also saved without the optimizer's state: Keras writes every object the model
    tracks, so Rasa's checkpoint holds Adam's two moment estimates beside every weight, about
    twice the weights themselves, which no prediction reads. Fine-tuning (`rasa train
    --finetune`, which uses Rasa's own loader) therefore continues with the optimizer state of
    the one training step that loader takes to build the model, not with the saved one.
    """

    _saving_weights_only = False

    def save(self, model_file_name: str, overwrite: bool = True) -> None:
        """Saves the weights, without the optimizer's state (see the class docstring)."""
        self._saving_weights_only = True
        try:
            super().save(model_file_name, overwrite=overwrite)
        finally:
            self._saving_weights_only = False

    def _trackable_children(self, save_type: str = "checkpoint", **kwargs: Any) -> Dict[str, Any]:
        children: Dict[str, Any] = super()._trackable_children(save_type, **kwargs)
        if self._saving_weights_only:
            children.pop("optimizer", None)
        return children

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Keras' `fit`, with length-bucketed batches when `length_bucket_batches` is set."""
        bucket_batches = int(self.config.get(LENGTH_BUCKET_BATCHES) or 0)
        if bucket_batches > 0 and isinstance(x, RasaBatchDataGenerator):
            x = LengthBucketedBatchGenerator.like(x, bucket_batches)
        return super().fit(x, *args, **kwargs)

    @classmethod
    def load(
        cls,
        model_file_name: str,
        model_data_example: RasaModelData,
        predict_data_example: RasaModelData | None = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        """Loads trained weights for prediction (see `RasaModel.load` for the arguments)."""
        if finetune_mode or predict_data_example is None:
            return super().load(
                model_file_name,
                model_data_example,
                predict_data_example,
                finetune_mode,
                *args,
                **kwargs,
            )
        model = cls(*args, **kwargs)
        # One eager prediction creates every variable prediction reads, without tracing.
        model._run_eagerly = True
        model.run_inference(predict_data_example)
        # The checkpoint also holds the training losses' variables (and, in models saved before
        # `save` left it out, the optimizer's), which prediction never creates: leaving those
        # unrestored is expected.
        model.load_weights(model_file_name).expect_partial()
        # Label embeddings cached by the eager pass came from the untrained weights: drop them,
        # and trace prediction once with the trained ones (as Rasa's loader does).
        model._run_eagerly = bool(kwargs.get("config", {}).get(RUN_EAGERLY))
        model.prepared_for_prediction = False
        model._tf_predict_step = None
        model.run_inference(predict_data_example)
        return model


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class FastLoadingDIETClassifier(DIETClassifier):
    """Rasa's `DIETClassifier`, loading its model with `FastLoadingDIET`."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Rasa's DIET defaults, plus `length_bucket_batches` (0: Rasa's own batching)."""
        return {**DIETClassifier.get_default_config(), LENGTH_BUCKET_BATCHES: 0}

    @staticmethod
    def model_class() -> Type[RasaModel]:
        """The TensorFlow model class this component trains and loads."""
        return FastLoadingDIET
