"""Model inputs made batch by batch from the small source pixels, so a 224×224 net never needs every image
at 224×224 in memory: a ``keras.utils.PyDataset``, which Keras' TensorFlow backend wraps in a ``tf.data``
pipeline with ``prefetch(AUTOTUNE)`` (the next batches are made while the step runs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.data.sources import Dataset, adapt
from edgecnn.runtime.metadata import ModelMetadata

# queue length should Keras use its own worker threads (it does with workers > 1; one worker: tf.data prefetches)
PREFETCH = 2


def model_size(meta: ModelMetadata) -> tuple[tuple[int, int] | None, str | None]:
    """(height, width) and colour mode the model's input needs, both None for signals."""
    if not meta.input.is_image:
        return None, None
    return (meta.input.height, meta.input.width), meta.preprocess.color_mode.value


def input_batch(ds: Dataset, index: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """Rows ``index`` of ``ds`` as the model's float input: resized with ``adapt``, then ``pixels_to_input``."""
    from edgecnn.runtime.preprocess import pixels_to_input

    return pixels_to_input(fit_to_model(ds.subset(index), meta).x, meta)


def fit_to_model(ds: Dataset, meta: ModelMetadata) -> Dataset:
    """``ds``'s pixels at the model's size with the model's own preprocessing (interpolation, crop: the
    runtime's ``fit_image``, as classify applies it). Pixels already at the model's size were fitted as they
    loaded (a folder): fitting again would crop twice."""
    size, color = model_size(meta)
    if size is None or (tuple(ds.x.shape[1:3]) == size and ds.x.shape[-1] == (1 if color == "L" else 3)):
        return ds
    return adapt(ds, image_size=size, color_mode=color, preprocess=meta.preprocess)


def needs_stream(ds: Dataset, meta: ModelMetadata, max_bytes: int = 256 << 20) -> bool:
    """Stream when the pixels must be resized or the whole set as float input would exceed ``max_bytes``;
    small sources already at the model's size (the course nets) keep the plain in-memory path."""
    size, _ = model_size(meta)
    at_size = size is None or ds.x.shape[1:3] == size
    channels = meta.input.channels if meta.input.is_image else ds.x.shape[-1]
    floats = len(ds) * (meta.input.height * meta.input.width * channels if meta.input.is_image else ds.x[0].size)
    return not (at_size and ds.x.shape[-1] == channels) or floats * 4 > max_bytes


def batch_stream(ds: Dataset, meta: ModelMetadata, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` over ``ds``: (input, labels) batches made on demand, reshuffled each epoch
    when ``shuffle`` (seeded)."""
    from edgecnn._optional import require

    keras = require("keras")

    class _Stream(keras.utils.PyDataset):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False, max_queue_size=PREFETCH)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(ds)) if shuffle else np.arange(len(ds))

        def __len__(self) -> int:
            return -(-len(ds) // batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            index = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            return input_batch(ds, index, meta), ds.y[index]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(len(ds))

    return _Stream()


def predict_batches(predict: Any, ds: Dataset, meta: ModelMetadata, batch_size: int) -> np.ndarray:
    """Class probabilities for every row of ``ds``, computed ``batch_size`` rows at a time."""
    from edgecnn.data.sources import iter_batches
    from edgecnn.runtime.preprocess import pixels_to_input

    size, color = model_size(meta)
    out = [
        predict(pixels_to_input(px, meta)) for px, _ in iter_batches(ds, batch_size, image_size=size, color_mode=color)
    ]
    return np.concatenate(out) if out else np.zeros((0, meta.num_classes), np.float32)
