"""Length-bucketed DIET batches (`length_bucket_batches` in bot/nlu/diet.py).

Each epoch must still show every message exactly once, with Rasa's batch size, and the batches
must hold messages of similar length (less padding), in a random order.
"""

from __future__ import annotations

from typing import Any, List

import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf
from rasa.utils.tensorflow.constants import BALANCED, SEQUENCE
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import FeatureArray, RasaModelData

from bot.nlu.diet import (
    LENGTH_BUCKET_BATCHES,
    FastLoadingDIET,
    FastLoadingDIETClassifier,
    LengthBucketedBatchGenerator,
    bucketed_order,
    sequence_lengths,
)


def padding(lengths: npt.NDArray[np.int64], order: npt.NDArray[np.int64], batch_size: int) -> int:
    """Padded tokens when `order` is cut into batches of `batch_size`."""
    total = 0
    for start in range(0, len(order), batch_size):
        batch = lengths[order[start : start + batch_size]]
        total += int(batch.max()) * len(batch) - int(batch.sum())
    return total


def test_the_order_is_a_permutation_with_sorted_batches_and_less_padding() -> None:
    np.random.seed(1)
    lengths = np.random.randint(1, 60, size=1000)
    order = bucketed_order(lengths, batch_size=64, bucket_batches=4)
    assert sorted(order.tolist()) == list(range(1000))
    # 1000 = 15 full batches and a short one (last): every batch the generator cuts is sorted.
    batches = [order[i : i + 64] for i in range(0, 1000, 64)]
    assert len(batches[-1]) == 1000 % 64
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)
    assert padding(lengths, order, 64) < padding(lengths, np.arange(1000), 64) / 2


def test_one_batch_per_run_keeps_rasas_batches_and_only_reorders_them() -> None:
    np.random.seed(2)
    lengths = np.random.randint(1, 30, size=200)
    order = bucketed_order(lengths, batch_size=50, bucket_batches=1)
    groups = {frozenset(order[i : i + 50].tolist()) for i in range(0, 200, 50)}
    assert groups == {frozenset(range(i, i + 50)) for i in range(0, 200, 50)}


def test_the_batch_order_is_random_but_follows_the_seed() -> None:
    lengths = np.arange(400) % 37
    np.random.seed(3)
    first = bucketed_order(lengths, 20, 4)
    np.random.seed(3)
    assert np.array_equal(first, bucketed_order(lengths, 20, 4))
    np.random.seed(4)
    assert not np.array_equal(first, bucketed_order(lengths, 20, 4))


def test_no_messages_gives_an_empty_order() -> None:
    assert bucketed_order(np.array([], dtype=np.int64), 8, 2).size == 0


def model_data(lengths: List[int]) -> RasaModelData:
    """Text sequence features of the given lengths; the label is the message's index modulo 3."""
    sequences = np.empty(len(lengths), dtype=object)
    for i, length in enumerate(lengths):
        sequences[i] = np.full((length, 2), float(i), dtype=np.float32)
    labels = np.array([[i % 3] for i in range(len(lengths))], dtype=np.float32)
    return RasaModelData(
        label_key="label",
        label_sub_key="ids",
        data={
            "text": {"sequence": [FeatureArray(sequences, number_of_dimensions=3)]},
            "label": {"ids": [FeatureArray(labels, number_of_dimensions=2)]},
        },
    )


@pytest.mark.parametrize("strategy", [SEQUENCE, BALANCED])
def test_the_generator_shows_every_message_in_batches_of_similar_length(strategy: str) -> None:
    np.random.seed(5)
    lengths = np.random.randint(1, 40, size=300).tolist()
    data = model_data(lengths)
    rasa = RasaBatchDataGenerator(data, batch_size=32, epochs=3, batch_strategy=strategy)
    ours = LengthBucketedBatchGenerator.like(rasa, bucket_batches=4)
    for _epoch in range(2):
        seen: List[int] = []
        padded = 0
        for index in range(len(ours)):
            features, _ = ours[index]
            dense = features[0]  # (batch, longest, 2): each message is filled with its index
            padded += dense.shape[0] * dense.shape[1]
            seen += [int(row[0, 0]) for row in dense]
        epoch_lengths = sequence_lengths(ours._data)
        assert epoch_lengths is not None
        if strategy == SEQUENCE:
            assert sorted(seen) == list(range(300))
        else:  # balancing repeats rare labels, as Rasa's does; every message is still there
            assert set(seen) == set(range(300))
        rasa_padded = sum(rasa[i][0][0].shape[0] * rasa[i][0][0].shape[1] for i in range(len(rasa)))
        assert padded < rasa_padded
        ours.on_epoch_end()
        rasa.on_epoch_end()


def test_the_setting_defaults_to_rasas_batching() -> None:
    assert FastLoadingDIETClassifier.get_default_config()[LENGTH_BUCKET_BATCHES] == 0


@pytest.mark.parametrize("setting, bucketed", [(0, False), (None, False), (8, True)])
def test_fit_swaps_the_generator_only_when_set(
    monkeypatch: pytest.MonkeyPatch, setting: Any, bucketed: bool
) -> None:
    received: List[Any] = []
    monkeypatch.setattr(tf.keras.Model, "fit", lambda self, x=None, *a, **k: received.append(x))
    model = FastLoadingDIET.__new__(FastLoadingDIET)
    object.__setattr__(model, "config", {LENGTH_BUCKET_BATCHES: setting})
    generator = RasaBatchDataGenerator(model_data([3, 5, 7, 9]), batch_size=2, epochs=1)
    model.fit(generator, epochs=1)
    [given] = received
    assert isinstance(given, LengthBucketedBatchGenerator) is bucketed
    if bucketed:
        assert given.bucket_batches == 8 and given.batch_size == generator.batch_size
