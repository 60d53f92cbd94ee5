"""Calibration data for static INT8: real images from any folder (flat or nested, labels not needed) or a
data source, balanced over subfolders/classes when there are some, preprocessed exactly as the model's
metadata says, served through onnxruntime's CalibrationDataReader protocol."""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgecnn.errors import InputError
from edgecnn.runtime.metadata import ModelMetadata

if TYPE_CHECKING:
    from edgecnn.data.inputs import ModelInputs

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_SAMPLES = 256
# onnxruntime's and TFLite's guides suggest about 100 representative samples; fewer gives noisy ranges
RECOMMENDED_MIN_SAMPLES = 100
# below this, MinMax ranges are a handful of images' extremes: refused rather than quietly poor
MIN_CALIBRATION_SAMPLES = 10
CALIBRATION_BATCH = 32  # samples onnxruntime calibrates on at once, at most
# onnxruntime's calibration session holds one batch's activations: ~110 MB a sample for MobileNetV2 at 224×224
# (3.9 GB peak at 32, 1.25 GB at 8, measured); MinMax batches are capped at this many bytes of input (13 samples
# at 224×224×3, all 32 at 28×28). MinMax ranges are minima and maxima over every batch, so the cap leaves them
# unchanged; the histogram methods (entropy, percentile) merge per batch and keep CALIBRATION_BATCH.
MINMAX_BATCH_INPUT_BYTES = 8 << 20


class ArrayReader(CalibrationDataReader):
    """Feeds model inputs one batch at a time: ``get_next() -> {input: batch} | None``.

    ``x``: an array, or ``ModelInputs`` whose batches are made when onnxruntime asks for them (only one exists
    at a time). The sha256 of what was fed is taken on the way (``sha256()``), so that recording it in the
    model's metadata needs no second pass over the images."""

    def __init__(self, input_name: str, x: np.ndarray | ModelInputs, batch_size: int = CALIBRATION_BATCH) -> None:
        from edgecnn.data.inputs import ModelInputs

        self.input_name = input_name
        self.inputs = x if isinstance(x, ModelInputs) else ModelInputs.from_array(x)
        n = len(self.inputs)
        # equal batches: ORT's histogram collectors (entropy, percentile) cannot stack a short last batch
        self.batch_size = max(d for d in range(1, min(batch_size, n) + 1) if n % d == 0)
        self._i = 0
        self._digest = hashlib.sha256()
        self._hashed = 0  # rows fed to the digest, in order

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.inputs):
            return None
        batch = self.inputs.rows(self._i, self._i + self.batch_size)
        if self._i == self._hashed:
            self._digest.update(np.ascontiguousarray(batch).tobytes())
            self._hashed += len(batch)
        self._i += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._i = 0

    def sha256(self) -> str | None:
        """``calibration_hash`` of every input once all were fed (None before)."""
        return self._digest.hexdigest() if self._hashed == len(self.inputs) else None


@dataclass(frozen=True)
class CalibrationSet:
    """The calibration inputs, made batch by batch, and where they came from (recorded in the model's metadata
    and the report)."""

    inputs: ModelInputs
    source: str
    found: int  # image files found in a folder (samples in a source)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of unreadable files
    balanced: str = ""  # "class-balanced", "balanced over subfolders" or "" (one flat folder)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def x(self) -> np.ndarray:
        """Every input as one array (bench baselines, tests); quantization streams ``inputs``."""
        return self.inputs.materialise()

    def describe(self) -> str:
        text = f"{len(self)} samples of {self.source} ({self.found} found"
        if self.skipped:
            text += f", {len(self.skipped)} unreadable skipped"
        return text + (f", {self.balanced})" if self.balanced else ")")


def calibration_batch(meta: ModelMetadata, minmax: bool) -> int:
    """Largest calibration batch for ``meta``'s input: ``CALIBRATION_BATCH``, capped for MinMax so that
    onnxruntime's calibration session holds a few 224×224 samples' activations, not 32 (see above)."""
    if not minmax:
        return CALIBRATION_BATCH
    spec = meta.input
    return minmax_batch(spec.height * spec.width * spec.channels * np.dtype(spec.dtype).itemsize)


def minmax_batch(sample_bytes: int) -> int:
    """MinMax calibration batch for samples of ``sample_bytes`` of input (see ``MINMAX_BATCH_INPUT_BYTES``)."""
    return max(1, min(CALIBRATION_BATCH, MINMAX_BATCH_INPUT_BYTES // max(1, sample_bytes)))


def load_calibration(source: str | Path, meta: ModelMetadata, samples: int | None = None, seed: int = 0) -> np.ndarray:
    """Model inputs for calibration from a folder or a data source (never its test split); see
    ``load_calibration_set``, which also says what was skipped."""
    return load_calibration_set(source, meta, samples, seed).x


def load_calibration_set(
    source: str | Path, meta: ModelMetadata, samples: int | None = None, seed: int = 0
) -> CalibrationSet:
    """Model inputs for calibration: any folder of images (flat or nested, labels not needed) or a data source.

    ``samples=None`` takes up to ``DEFAULT_CALIBRATION_SAMPLES``, or every sample of a smaller set (it says
    so, and warns with the numbers below ``RECOMMENDED_MIN_SAMPLES``); an explicit ``samples`` is exact.
    A folder's unreadable files are skipped and counted; subfolders, when there are several, are sampled in
    turn (class-balanced when they are classes).

    Raises:
        InputError: no images, fewer than ``MIN_CALIBRATION_SAMPLES`` readable ones, or fewer than explicitly
        asked — never a silent fall back to random data.
    """
    from edgecnn.data.folders import is_folder_spec

    if is_folder_spec(source):
        cal = _from_folder(source, meta, samples, seed)
    else:
        cal = _from_source(str(source), meta, samples, seed)
    n = len(cal)
    if n < MIN_CALIBRATION_SAMPLES:
        raise InputError(
            f"calibration source {source}: only {n} readable samples ({cal.describe()}); at least "
            f"{MIN_CALIBRATION_SAMPLES} are needed and about {RECOMMENDED_MIN_SAMPLES} recommended",
            path=str(source),
        )
    if n < RECOMMENDED_MIN_SAMPLES:
        warnings.warn(
            f"calibration source {source}: calibrating on {n} samples; about {RECOMMENDED_MIN_SAMPLES} "
            f"representative images give steadier INT8 ranges ({cal.describe()})",
            UserWarning,
            stacklevel=3,
        )
    return cal


def _from_folder(source: str | Path, meta: ModelMetadata, samples: int | None, seed: int) -> CalibrationSet:
    from edgecnn.data.folders import read_folder

    want = samples if samples is not None else DEFAULT_CALIBRATION_SAMPLES
    imgs = read_folder(source, meta, max_images=want, seed=seed)
    if samples is not None and len(imgs) < samples:
        skipped = f" ({len(imgs.skipped)} unreadable skipped)" if imgs.skipped else ""
        raise InputError(
            f"calibration source {source}: asked for {samples} samples but it holds {len(imgs)}{skipped}; "
            "add images or lower --samples",
            path=str(source),
        )
    if samples is None and len(imgs) < want:
        log.info("calibration folder %s holds %d readable images: calibrating on all of them", source, len(imgs))
    for path, why in imgs.skipped:
        log.warning("calibration: skipped %s (%s)", path, why)
    from edgecnn.data.inputs import ModelInputs, pixel_inputs

    # uint8 pixels at the model's size for at most ``want`` images; the float input is made per batch
    return CalibrationSet(
        inputs=pixel_inputs(imgs.pixels, meta) if len(imgs) else ModelInputs.from_array(imgs.pixels.astype(np.float32)),
        source=str(source),
        found=imgs.found,
        skipped=imgs.skipped,
        balanced="balanced over subfolders" if len({Path(f).parent for f in imgs.files}) > 1 else "",
    )


def _from_source(spec: str, meta: ModelMetadata, samples: int | None, seed: int) -> CalibrationSet:
    from edgecnn.data import load_source, sample_balanced
    from edgecnn.data.inputs import source_inputs

    # at the source's own size (mnist5k: 28×28): the samples chosen are fitted to the model batch by batch
    ds = load_source(spec, split="train", seed=seed)
    if samples is None:
        samples = min(DEFAULT_CALIBRATION_SAMPLES, len(ds))
        if samples < DEFAULT_CALIBRATION_SAMPLES:
            log.info("calibration source %s holds %d samples: calibrating on all of them", spec, samples)
    if len(ds) < samples:
        raise InputError(
            f"calibration source {spec}: asked for {samples} samples but it holds {len(ds)}; "
            "add images or lower --samples",
            path=spec,
        )
    inputs = source_inputs(sample_balanced(ds, samples, seed=seed), meta)
    inputs.rows(0, 1)  # a source that cannot become this model's input fails here, before quantization starts
    return CalibrationSet(inputs=inputs, source=spec, found=len(inputs), balanced="class-balanced")


def calibration_hash(x: np.ndarray | ModelInputs) -> str:
    """sha256 of the exact tensors used, recorded in the model's metadata (streamed for ``ModelInputs``)."""
    if not isinstance(x, np.ndarray):
        return x.sha256()
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
