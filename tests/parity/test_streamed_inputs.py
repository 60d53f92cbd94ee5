"""Parity and INT8 calibration make model input one batch at a time (issue 27): a 224×224 net never needs the
whole test split as one float array (1,000 mnist5k digits: 600 MB). Each test counts the images fitted to the
model before and while batches are asked for, and checks the answers equal the whole-array path's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_exacting_onnx

from edgecnn.data import Dataset
from edgecnn.runtime.metadata import ModelMetadata

LIMIT = 150  # three parity batches of 64: 64, 64, 22


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RGB model whose preprocessing crops, filters bicubic and flips to BGR: mnist5k's 28×28 grey
    digits must be fitted, not just scaled, so a batch made the wrong way shows."""
    return make_exacting_onnx(tmp_path_factory.mktemp("m") / "m.onnx", size=20, labels=tuple("0123456789"))


@pytest.fixture
def fitted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images in each call of ``adapt`` that resizes to a size (the model's), in call order."""
    from edgecnn.data import sources

    calls: list[int] = []
    real = sources.adapt

    def counting(ds, **kw):  # type: ignore[no-untyped-def]
        if kw.get("image_size") is not None:
            calls.append(len(ds))
        return real(ds, **kw)

    monkeypatch.setattr(sources, "adapt", counting)
    return calls


def _meta(model: Path) -> ModelMetadata:
    from edgecnn.runtime import read_metadata

    return read_metadata(model)


def _whole_array(meta: ModelMetadata, split: str) -> tuple[np.ndarray, np.ndarray]:
    """What parity (test split) and calibration (train split) built before: every image fitted at once."""
    from edgecnn.data import load_source
    from edgecnn.runtime.preprocess import pixels_to_input

    size = (meta.input.height, meta.input.width)
    ds = load_source("mnist5k", split=split, image_size=size, color_mode="RGB", preprocess=meta.preprocess)
    return pixels_to_input(ds.x, meta), ds.y


def _digits_like(n: int = LIMIT) -> Dataset:
    """Grey 28×28 uint8 "digits" (random pixels): a source at its own size, as mnist5k is stored."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)
    return Dataset("digits-like", x, rng.integers(0, 10, size=n).astype(np.int64), tuple("0123456789"))


def test_source_inputs_fit_one_batch_at_a_time_and_equal_the_whole_array(model: Path, fitted: list[int]) -> None:
    from edgecnn.data.inputs import source_inputs
    from edgecnn.data.sources import adapt
    from edgecnn.runtime.preprocess import pixels_to_input

    meta, ds = _meta(model), _digits_like()
    inputs = source_inputs(ds, meta)
    assert fitted == []  # made lazily: nothing fitted until a batch is asked for
    batches = inputs.batches(64)
    assert next(batches).shape == (64, 20, 20, 3) and fitted == [64]
    streamed = inputs.materialise()
    assert fitted == [64, 64, 64, 22]  # never more than one batch at the model's size
    whole = pixels_to_input(adapt(ds, image_size=(20, 20), color_mode="RGB", preprocess=meta.preprocess).x, meta)
    assert streamed.dtype == np.float32 and np.array_equal(streamed, whole)
    assert inputs.sha256() == hashlib.sha256(whole.tobytes()).hexdigest()


def test_the_calibration_reader_makes_each_batch_when_onnxruntime_asks(model: Path, fitted: list[int]) -> None:
    from edgecnn.data.inputs import source_inputs
    from edgecnn.quantize.calibration import ArrayReader, calibration_hash

    meta = _meta(model)
    inputs = source_inputs(_digits_like(120), meta)
    reader = ArrayReader("input", inputs)
    assert fitted == [] and reader.sha256() is None
    fed = []
    while (batch := reader.get_next()) is not None:
        assert fitted[-1] == reader.batch_size == 30  # the largest divisor of 120 up to 32: one batch at a time
        fed.append(batch["input"])
    assert len(fitted) == 4 and reader.sha256() == calibration_hash(np.concatenate(fed))
    assert calibration_hash(inputs) == reader.sha256()  # the streamed hash of the same tensors


@pytest.mark.slow  # parses mnist5k (~1-2 s) and fits whole splits for the old path
def test_parity_inputs_are_made_batch_by_batch_and_equal_the_whole_array(model: Path, fitted: list[int]) -> None:
    from edgecnn.parity.run import stream_inputs

    meta = _meta(model)
    inputs = stream_inputs(meta, "mnist5k", limit=LIMIT)
    assert fitted == [1]  # one sample made to prove the source fits the model; nothing else yet
    first = next(iter(inputs.batches(64)))
    assert fitted == [1, 64] and first.shape == (64, 20, 20, 3)
    streamed = inputs.materialise()
    assert max(fitted) == 64 and sum(fitted[2:]) == LIMIT  # the whole pass: batches of 64, never the set
    whole, y = _whole_array(meta, "test")
    assert np.array_equal(streamed, whole[:LIMIT]) and np.array_equal(inputs.labels, y[:LIMIT])


@pytest.mark.slow
def test_compare_runs_both_predictors_per_batch_with_the_old_answers(model: Path, fitted: list[int]) -> None:
    from edgecnn.parity import compare
    from edgecnn.parity.run import stream_inputs
    from edgecnn.runtime.classifier import Classifier

    meta = _meta(model)
    clf = Classifier(model, provider="cpu")
    seen: list[int] = []

    def reference(x: np.ndarray) -> np.ndarray:  # a different predictor, so that the report has numbers
        seen.append(len(x))
        return clf(x[:, ::-1]) if x.ndim == 4 else clf(x)

    inputs = stream_inputs(meta, "mnist5k", limit=LIMIT)
    streamed = compare(reference, clf, inputs, inputs.labels, meta.labels, data="d").to_dict()
    assert seen == [64, 64, 22] and max(fitted) == 64
    whole, y = _whole_array(meta, "test")
    assert streamed == compare(reference, clf, whole[:LIMIT], y[:LIMIT], meta.labels, data="d").to_dict()
    assert streamed["max_abs_diff"] > 0  # the comparison compared something
    clf.close()


@pytest.mark.slow
def test_calibration_from_mnist5k_is_fed_lazily_and_hashes_what_it_fed(model: Path, fitted: list[int]) -> None:
    from edgecnn.data import load_source, sample_balanced
    from edgecnn.quantize.calibration import ArrayReader, calibration_hash, load_calibration_set
    from edgecnn.runtime.preprocess import pixels_to_input

    meta = _meta(model)
    cal = load_calibration_set("mnist5k", meta, 120)
    assert fitted == [1]  # nothing fitted beyond the probe until onnxruntime asks
    reader = ArrayReader("input", cal.inputs)
    batches = []
    while (batch := reader.get_next()) is not None:
        assert fitted[-1] == reader.batch_size == 30  # the largest divisor of 120 up to 32: one batch at a time
        batches.append(batch["input"])
    assert len(fitted) == 1 + 4
    # the old path: the whole train split fitted at once, then the balanced 120 of it
    size = (meta.input.height, meta.input.width)
    train = load_source("mnist5k", split="train", image_size=size, color_mode="RGB", preprocess=meta.preprocess)
    expected = pixels_to_input(sample_balanced(train, 120, seed=0).x, meta)
    assert np.array_equal(np.concatenate(batches), expected)
    assert reader.sha256() == calibration_hash(expected) == calibration_hash(cal.inputs)


def test_a_source_that_cannot_fit_the_model_fails_before_any_model_runs(model: Path) -> None:
    from edgecnn.errors import InputError
    from edgecnn.parity.run import stream_inputs

    with pytest.raises(InputError, match="1-D signals"):
        stream_inputs(_meta(model), "telemetry")
