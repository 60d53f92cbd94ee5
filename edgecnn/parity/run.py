"""Parity between two model files on a data source: the library behind ``edgecnn parity``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.parity.compare import ParityBars, ParityReport, Predictor, bars_for, compare
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.metadata import ModelMetadata, OutputKind
from edgecnn.runtime.preprocess import pixels_to_input

RANDOM_SAMPLES = 64


def sample_inputs(
    meta: ModelMetadata, data: str | None, *, limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Model inputs for a parity check: real labelled data when a source is named, else random pixels.

    Returns (x, y or None, description). A named source that cannot load raises InputError: a parity
    claim must never quietly fall back to random data.
    """
    if limit is not None and limit < 1:
        from edgecnn.errors import UsageError

        raise UsageError(f"--limit must be >= 1, got {limit}")
    spec = meta.input
    if data:
        from edgecnn.data import load_source

        ds = load_source(
            data,
            split="test",
            seed=seed,
            image_size=(spec.height, spec.width) if spec.is_image else None,
            color_mode=meta.preprocess.color_mode.value if spec.is_image else None,
            limit=limit,
        )
        return pixels_to_input(ds.x, meta), ds.y, f"{data} (test split, {len(ds)} samples)"
    rng = np.random.default_rng(seed)
    n = limit or RANDOM_SAMPLES
    pixels = rng.integers(0, 256, size=(n, spec.height, spec.width, spec.channels), dtype=np.uint8)
    return pixels_to_input(pixels, meta), None, f"random pixels ({n} samples)"


def load_predictor(path: str | Path, meta: ModelMetadata, *, unsafe: bool = False) -> Predictor:
    """A Predictor for a .keras/.h5/SavedModel (Keras, needs TF) or an .onnx file (the engine)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return Classifier(p, provider="cpu")
    from edgecnn.export.keras_io import keras_predictor, load_keras

    # an export that appended a Softmax to a logits model: the Keras side still answers logits
    kind = OutputKind.logits if meta.source.get("softmax_appended") else meta.output
    return keras_predictor(load_keras(p, unsafe=unsafe), kind)


def run_parity(
    reference: str | Path,
    candidate: str | Path,
    data: str | None = None,
    *,
    limit: int | None = None,
    bars: ParityBars | None = None,
    unsafe: bool = False,
    seed: int = 0,
) -> ParityReport:
    """Compare ``candidate`` (.onnx) against ``reference`` (.keras or .onnx) on ``data``'s test split.

    Bars default to the candidate's kind (FP32, FP16 or INT8, from its metadata).

    Raises:
        ModelError, InputError: unreadable models or data. (A failed bar is in the report; call
        ``raise_for_failure()``.)
    """
    cand = Classifier(candidate, provider="cpu")
    meta = cand.metadata
    if data is None:
        src = meta.source.get("data")
        from edgecnn.data.sources import OFFLINE

        data = src if isinstance(src, str) and (src in OFFLINE or src.startswith("folder:")) else None
    x, y, described = sample_inputs(meta, data, limit=limit, seed=seed)
    ref = load_predictor(reference, meta, unsafe=unsafe)
    report = compare(
        ref,
        cand,
        x,
        y,
        meta.labels,
        bars or bars_for(meta),
        names=(str(reference), str(candidate)),
        data=described,
    )
    return report
