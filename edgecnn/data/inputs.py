"""Model input made one batch at a time, for parity and INT8 calibration.

Why: a 224×224×3 float32 input is 600 KB a sample, so the 1,000 mnist5k test digits as one array are 600 MB
and a folder of 5,000 photos 3 GB. ``ModelInputs`` keeps the small source (mnist5k at 28×28 uint8, 3 MB) and
makes the float input of the rows asked for on demand, with the same ``adapt`` / ``pixels_to_input`` code the
whole-array path used: a batch made here equals the same rows of the old array, bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgecnn.data.sources import Dataset
    from edgecnn.runtime.metadata import ModelMetadata

DEFAULT_BATCH = 64  # parity's batch (``compare``): the same slices as the whole-array path


@dataclass(frozen=True)
class ModelInputs:
    """``n`` samples of a model's input, made on demand: ``make(index)`` returns the float input of rows
    ``index`` (sorted row numbers); ``labels`` (all of them, small) when known."""

    n: int
    make: Callable[[np.ndarray], np.ndarray]
    labels: np.ndarray | None = None
    description: str = ""

    def __len__(self) -> int:
        return self.n

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The model input of rows ``start`` to ``stop`` (exclusive)."""
        return self.make(np.arange(start, min(stop, self.n)))

    def batches(self, size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
        """Consecutive batches of ``size`` rows (the last one shorter), each made when it is asked for."""
        for start in range(0, self.n, size):
            yield self.rows(start, start + size)

    def materialise(self, size: int = DEFAULT_BATCH) -> np.ndarray:
        """Every row as one array (what the whole-array path returned): for small sets and callers that need
        an array (a subprocess, a test)."""
        parts = list(self.batches(size))
        return np.concatenate(parts) if parts else self.make(np.arange(0))

    def sha256(self, size: int = DEFAULT_BATCH) -> str:
        """sha256 of the exact tensors, streamed: equals ``sha256(materialise().tobytes())``."""
        digest = hashlib.sha256()
        for batch in self.batches(size):
            digest.update(np.ascontiguousarray(batch).tobytes())
        return digest.hexdigest()

    @classmethod
    def from_array(cls, x: np.ndarray, labels: np.ndarray | None = None, description: str = "") -> ModelInputs:
        """Inputs already made (an array a caller holds)."""
        return cls(len(x), lambda index: x[index], labels, description)


def pixel_inputs(
    pixels: np.ndarray, meta: ModelMetadata, labels: np.ndarray | None = None, description: str = ""
) -> ModelInputs:
    """uint8 pixels already at the model's size (a folder's images, random pixels): only the float
    conversion (``pixels_to_input``, a quarter of the memory more per sample) is made per batch."""
    from edgecnn.runtime.preprocess import pixels_to_input

    return ModelInputs(len(pixels), lambda index: pixels_to_input(pixels[index], meta), labels, description)


def source_inputs(ds: Dataset, meta: ModelMetadata, description: str = "") -> ModelInputs:
    """A data source at its own size (mnist5k: 28×28×1): each batch is resized and converted with ``adapt``
    (the model's interpolation and crop) and then ``pixels_to_input``, as ``load_source(image_size=…)``
    followed by ``pixels_to_input`` did for the whole set at once."""
    from edgecnn.data.sources import adapt
    from edgecnn.runtime.preprocess import pixels_to_input

    image = meta.input.is_image
    size = (meta.input.height, meta.input.width) if image else None
    color = meta.preprocess.color_mode.value if image else None

    def make(index: np.ndarray) -> np.ndarray:
        part = adapt(ds.subset(index), image_size=size, color_mode=color, preprocess=meta.preprocess)
        return pixels_to_input(part.x, meta)

    return ModelInputs(len(ds), make, ds.y, description)
