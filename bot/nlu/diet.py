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
"""

from __future__ import annotations

from typing import Any, Type

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.utils.tensorflow.constants import RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel


class FastLoadingDIET(DIET):
    """Rasa's DIET model with a loader that skips tracing the training step."""

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
        # The checkpoint also holds the optimizer's and the training losses' variables, which
        # prediction never creates: leaving those unrestored is expected.
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
    def model_class() -> Type[RasaModel]:
        """The TensorFlow model class this component trains and loads."""
        return FastLoadingDIET
