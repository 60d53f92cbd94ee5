"""Parity between two model files on a data source: the library behind ``edgecnn parity``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecnn.errors import UsageError
from edgecnn.parity.compare import EXACT_BAR_MIN_SAMPLES, ParityBars, ParityReport, Predictor, bars_for, compare
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.metadata import ModelMetadata, OutputKind

if TYPE_CHECKING:
    from edgecnn.data.inputs import ModelInputs

RANDOM = "random"  # --data random: random pixels, asked for by name
RANDOM_SAMPLES = EXACT_BAR_MIN_SAMPLES  # enough to resolve even FP32's exact bar


def is_random(data: str | None) -> bool:
    return data is None or data == RANDOM


def sample_inputs(
    meta: ModelMetadata,
    data: str | None,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``stream_inputs`` as one array: (x, y or None, description), for callers that need the whole array
    (certify's subprocesses, benchmarks). Parity itself streams."""
    inputs = stream_inputs(meta, data, limit=limit, seed=seed, split=split)
    return inputs.materialise(), inputs.labels, inputs.description


def stream_inputs(
    meta: ModelMetadata,
    data: str | None,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: float | None = None,
) -> ModelInputs:
    """Model inputs for a parity check, made one batch at a time: real data when a source is named, random
    pixels for ``None``/``"random"``.

    A folder counts every file it holds (flat folders are unlabelled; class subfolders give labels), unless
    ``split`` asks for a seeded, class-stratified fraction of it; a named source gives its test split, kept at
    its own size (mnist5k: 28×28) and fitted to the model batch by batch. A named source that cannot load
    raises InputError here (its first sample is made once to prove it): a parity claim must never quietly
    fall back to random data.
    """
    from edgecnn.data.inputs import pixel_inputs, source_inputs

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    spec = meta.input
    if data is not None and data != RANDOM:
        from edgecnn.data.folders import is_folder_spec, load_folder_pixels

        if is_folder_spec(data):
            pixels, y, described = load_folder_pixels(data, meta, limit=limit, seed=seed, split=split)
            return pixel_inputs(pixels, meta, y, described)
        from edgecnn.data import load_source

        # at the source's own size: no image_size, no preprocess (a crop would apply here, then again below)
        ds = load_source(data, split="test", seed=seed, limit=limit)
        inputs = source_inputs(ds, meta, f"{data} (test split, {len(ds)} samples)")
        inputs.rows(0, 1)  # a source that cannot become this model's input fails here, before any model runs
        return inputs
    rng = np.random.default_rng(seed)
    n = limit or RANDOM_SAMPLES
    pixels = rng.integers(0, 256, size=(n, spec.height, spec.width, spec.channels), dtype=np.uint8)
    return pixel_inputs(pixels, meta, None, f"random pixels ({n} samples)")


def load_predictor(path: str | Path, meta: ModelMetadata, *, unsafe: bool = False) -> Predictor:
    """A Predictor for a .keras/.h5/SavedModel (Keras, needs TF) or an .onnx file (the engine)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return Classifier(p, provider="cpu")
    from edgecnn.keras_io import keras_predictor, load_keras

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
    split: float | None = None,
) -> ParityReport:
    """Compare ``candidate`` (.onnx) against ``reference`` (.keras or .onnx) on ``data``.

    ``data``: a folder (every file; ``split`` for a fraction), a source (its test split), ``"random"`` (random
    pixels, asked for by name), or None: the model's own offline source; without one, FP32 candidates are
    checked on random pixels (a numerical proof of the conversion) and quantized ones need data.
    Bars default to the candidate's kind (FP32, FP16 or INT8, from its metadata).

    Raises:
        UsageError: an accuracy verdict (INT8, FP16) without data.
        ModelError, InputError: unreadable models or data. (A failed or inconclusive bar is in the report;
        call ``raise_for_failure()``.)
    """
    cand = Classifier(candidate, provider="cpu")
    meta = cand.metadata
    bars = bars or bars_for(meta)
    if data is None:
        src = meta.source.get("data")
        from edgecnn.data.sources import OFFLINE

        data = src if isinstance(src, str) and (src in OFFLINE or src.startswith("folder:")) else None
    if data is None and not bars.mode.startswith("fp32"):
        raise UsageError(
            f"{candidate}: a {bars.mode} model's parity is an accuracy verdict and needs data: pass --data DIR "
            "(a folder of images; class subfolders add accuracy) or --data SOURCE; --data random checks on "
            "random pixels, which proves nothing about accuracy"
        )
    if split is not None and not 0.0 < split < 1.0:
        raise UsageError(f"--split is the fraction of the folder to use, between 0 and 1 (exclusive), got {split}")
    inputs = stream_inputs(meta, data, limit=limit, seed=seed, split=split)
    ref = load_predictor(reference, meta, unsafe=unsafe)
    report = compare(
        ref,
        cand,
        inputs,
        inputs.labels,
        meta.labels,
        bars,
        names=(str(reference), str(candidate)),
        data=inputs.description,
        random_data=is_random(data),
    )
    return report
