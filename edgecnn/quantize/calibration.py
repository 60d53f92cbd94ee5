"""Calibration data for static INT8: real images, class-balanced, preprocessed exactly as the model's
metadata says, served through onnxruntime's CalibrationDataReader protocol."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgecnn.errors import InputError
from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.runtime.preprocess import pixels_to_input

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_SAMPLES = 256
# onnxruntime's and TFLite's guides suggest about 100 representative samples; fewer gives noisy ranges
RECOMMENDED_MIN_SAMPLES = 100


class ArrayReader(CalibrationDataReader):
    """Feeds preprocessed samples one batch at a time: ``get_next() -> {input: batch} | None``."""

    def __init__(self, input_name: str, x: np.ndarray, batch_size: int = 32) -> None:
        self.input_name = input_name
        self.x = x
        # equal batches: ORT's histogram collectors (entropy, percentile) cannot stack a short last batch
        self.batch_size = max(d for d in range(1, min(batch_size, len(x)) + 1) if len(x) % d == 0)
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.x):
            return None
        batch = self.x[self._i : self._i + self.batch_size]
        self._i += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._i = 0


def load_calibration(source: str | Path, meta: ModelMetadata, samples: int | None = None, seed: int = 0) -> np.ndarray:
    """Class-balanced model inputs from a folder or data source (never its test split).

    ``samples=None`` takes up to ``DEFAULT_CALIBRATION_SAMPLES``, or every sample of a smaller source (it
    says so, and warns below ``RECOMMENDED_MIN_SAMPLES``); an explicit ``samples`` is exact.

    Raises:
        InputError: empty folder, unreadable images, or fewer samples than explicitly asked — never a
        silent fall back to random data.
    """
    from edgecnn.data import load_source, sample_balanced

    spec = str(source)
    if Path(spec).is_dir():
        spec = f"folder:{spec}"
    split = "all" if spec.startswith("folder:") else "train"  # a calibration folder is calibration-only
    image = meta.input.is_image
    ds = load_source(
        spec,
        split=split,
        seed=seed,
        image_size=(meta.input.height, meta.input.width) if image else None,
        color_mode=meta.preprocess.color_mode.value if image else None,
        preprocess=meta.preprocess,
    )
    if samples is None:
        samples = min(DEFAULT_CALIBRATION_SAMPLES, len(ds))
        if samples < DEFAULT_CALIBRATION_SAMPLES:
            log.info("calibration source %s holds %d samples: calibrating on all of them", source, samples)
    if len(ds) < samples:
        raise InputError(
            f"calibration source {source}: asked for {samples} samples but it holds {len(ds)}; "
            "add images or lower --samples",
            path=str(source),
        )
    if len(ds.class_names) != meta.num_classes:
        raise InputError(
            f"calibration source {source}: {len(ds.class_names)} classes but the model has {meta.num_classes}",
            path=str(source),
        )
    if samples < RECOMMENDED_MIN_SAMPLES:
        warnings.warn(
            f"calibration source {source}: calibrating on {samples} samples; about {RECOMMENDED_MIN_SAMPLES} "
            "representative images give steadier INT8 ranges",
            UserWarning,
            stacklevel=2,
        )
    ds = sample_balanced(ds, samples, seed=seed)
    return pixels_to_input(ds.x, meta)


def calibration_hash(x: np.ndarray) -> str:
    """sha256 of the exact tensors used, recorded in the model's metadata."""
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
