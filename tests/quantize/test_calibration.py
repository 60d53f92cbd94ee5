"""Calibration uses what it is given: all of a set smaller than the default, exact counts when asked."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import make_tiny_onnx

from edgecnn.errors import InputError
from edgecnn.quantize.calibration import DEFAULT_CALIBRATION_SAMPLES, RECOMMENDED_MIN_SAMPLES, load_calibration
from edgecnn.runtime import read_metadata

SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "mnist"  # 200 digits, 20 per class


@pytest.fixture(scope="module")
def digit_meta(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    labels = tuple(str(i) for i in range(10))
    return read_metadata(make_tiny_onnx(tmp_path_factory.mktemp("m") / "d.onnx", labels=labels, size=28, channels=1))


def test_default_calibrates_on_every_image_of_a_smaller_set(digit_meta) -> None:  # type: ignore[no-untyped-def]
    assert DEFAULT_CALIBRATION_SAMPLES > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 200 >= the recommended minimum: no warning
        x = load_calibration(SHIPPED, digit_meta)
    assert x.shape == (200, 28, 28, 1)


def test_explicit_count_is_exact(digit_meta) -> None:  # type: ignore[no-untyped-def]
    x = load_calibration(SHIPPED, digit_meta, 120)
    assert len(x) == 120
    with pytest.raises(InputError, match="asked for 300 samples but it holds 200; add images or lower --samples"):
        load_calibration(SHIPPED, digit_meta, 300)


def test_few_samples_warn(digit_meta) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(UserWarning, match=f"calibrating on 30 samples; about {RECOMMENDED_MIN_SAMPLES}"):
        x = load_calibration(SHIPPED, digit_meta, 30)
    assert len(x) == 30


def test_negative_accuracy_budget_is_a_usage_error(tmp_path: Path) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.quantize import search_within_budget

    with pytest.raises(UsageError, match=">= 0, got -1"):
        search_within_budget(make_tiny_onnx(tmp_path / "m.onnx"), None, -1.0, calibration=None, eval_data="digits")
