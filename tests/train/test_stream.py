"""Streaming inputs: batches resized on the fly from the small source pixels equal the materialised path."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn import zoo
from edgecnn.data.sources import Dataset, adapt, iter_batches
from edgecnn.errors import UsageError
from edgecnn.runtime.preprocess import pixels_to_input
from edgecnn.train.stream import input_batch, needs_stream, predict_batches


@pytest.fixture
def digits28() -> Dataset:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (23, 28, 28, 1), dtype=np.uint8)
    return Dataset("synthetic", pixels, np.arange(23) % 10, tuple("0123456789"))


def test_iter_batches_equals_adapt_of_the_whole_set(digits28: Dataset) -> None:
    whole = adapt(digits28, image_size=(32, 32), color_mode="RGB")
    batches = list(iter_batches(digits28, 7, image_size=(32, 32), color_mode="RGB"))
    assert [len(y) for _, y in batches] == [7, 7, 7, 2]
    assert all(x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8 for x, _ in batches)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), whole.x)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), digits28.y)
    with pytest.raises(UsageError, match="batch size must be >= 1"):
        next(iter_batches(digits28, 0, image_size=None, color_mode=None))


def test_input_batch_is_the_model_input(digits28: Dataset) -> None:
    meta = zoo.metadata_for("mobilenetv2", input_size=32)
    index = np.array([3, 5, 8])
    x = input_batch(digits28, index, meta)
    expected = pixels_to_input(adapt(digits28.subset(index), image_size=(32, 32), color_mode="RGB").x, meta)
    assert x.shape == (3, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x, expected)


def test_needs_stream(digits28: Dataset) -> None:
    assert not needs_stream(digits28, zoo.metadata_for("mnist-cnn"))  # at the model's size: plain arrays
    assert needs_stream(digits28, zoo.metadata_for("mobilenetv2", input_size=32))  # resized: streamed
    assert needs_stream(digits28, zoo.metadata_for("mnist-cnn"), max_bytes=1000)  # too big to materialise


def test_predict_batches_sees_every_row_once(digits28: Dataset) -> None:
    meta = zoo.metadata_for("mobilenetv2", input_size=32)
    seen: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        assert x.shape[1:] == (32, 32, 3)
        return np.full((len(x), 10), 0.1, np.float32)

    probs = predict_batches(predict, digits28, meta, 10)
    assert seen == [10, 10, 3] and probs.shape == (23, 10)
