"""Parity between two model files on a data source: the library behind ``edgecnn parity``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.errors import UsageError
from edgecnn.parity.compare import EXACT_BAR_MIN_SAMPLES, ParityBars, ParityReport, Predictor, bars_for, compare
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.metadata import ModelMetadata, OutputKind
from edgecnn.runtime.preprocess import pixels_to_input

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
    """Model inputs for a parity check: real data when a source is named, random pixels for ``None``/``"random"``.

    A folder counts every file it holds (flat folders are unlabelled; class subfolders give labels), unless
    ``split`` asks for a seeded, class-stratified fraction of it; a named source gives its test split.
    Returns (x, y or None, description). A named source that cannot load raises InputError: a parity
    claim must never quietly fall back to random data.
    """
    if limit is not None and limit < 1:
        from edgecnn.errors import UsageError

        raise UsageError(f"--limit must be >= 1, got {limit}")
    spec = meta.input
    if data is not None and data != RANDOM:
        from edgecnn.data.folders import is_folder_spec, load_folder_images

        if is_folder_spec(data):
            return load_folder_images(data, meta, limit=limit, seed=seed, split=split)
        from edgecnn.data import load_source

        ds = load_source(
            data,
            split="test",
            seed=seed,
            image_size=(spec.height, spec.width) if spec.is_image else None,
            color_mode=meta.preprocess.color_mode.value if spec.is_image else None,
            preprocess=meta.preprocess,
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
    x, y, described = sample_inputs(meta, data, limit=limit, seed=seed, split=split)
    ref = load_predictor(reference, meta, unsafe=unsafe)
    report = compare(
        ref,
        cand,
        x,
        y,
        meta.labels,
        bars,
        names=(str(reference), str(candidate)),
        data=described,
        random_data=is_random(data),
    )
    return report
