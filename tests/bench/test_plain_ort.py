"""The yardstick edgecnn's INT8 must never lose to — a plain onnxruntime ``quantize_static`` U8S8 of the
FP32 model in a bare session — built from the FP32 source an INT8 model records, in the same run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx

from edgecnn.bench import Baseline, BenchConfig, run_benchmark
from edgecnn.bench.plain_ort import NAME, fp32_source
from edgecnn.errors import UsageError
from edgecnn.quantize import QuantizeConfig, quantize
from edgecnn.runtime.classifier import read_metadata

SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "mnist"  # 200 real digits, 20 per class
DIGITS = tuple(str(d) for d in range(10))


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    fp32 = make_tiny_onnx(tmp_path / "d.onnx", labels=DIGITS, size=28, channels=1)
    config = QuantizeConfig.int8(calibration_samples=100)
    int8 = quantize(fp32, tmp_path / "d.int8.onnx", config, calibration=SHIPPED, measure_speed=False).path
    return fp32, int8


def test_an_int8_model_records_its_fp32_source(pair: tuple[Path, Path]) -> None:
    fp32, int8 = pair
    meta = read_metadata(int8)
    assert fp32_source(int8, meta) == fp32.resolve()
    assert meta.quantization["source_model"]["sha256"]
    assert fp32_source(fp32, read_metadata(fp32)) == fp32  # an FP32 model is its own source


def test_the_plain_baseline_runs_beside_edgecnn_in_one_run(pair: tuple[Path, Path]) -> None:
    _, int8 = pair
    cfg = BenchConfig(batch_sizes=(1, 8), threads=1, iterations=30, warmup=2, baselines=(Baseline.ort_int8,))
    result = run_benchmark([int8], cfg).to_dict()
    rows = {(r["name"], r["batch"]): r for r in result["steady_state"]}
    assert set(rows) == {(n, b) for n in ("d.int8.onnx", NAME) for b in (1, 8)}
    assert all(r["n"] == 30 and r["p50_ms"] > 0 for r in rows.values())
    # calibrated like edgecnn's INT8: the same source and sample count, recorded in the notes
    assert any(n.startswith(NAME) and "on 100 samples" in n for n in result["notes"])


def test_the_plain_model_answers_like_a_hand_made_one(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Same recipe, same calibration tensors: the runner's answers are those of quantize_static by hand."""
    import onnx
    import onnxruntime as ort

    from edgecnn.bench.plain_ort import bare_session_runner, plain_int8
    from edgecnn.quantize.calibration import load_calibration

    fp32, _ = pair
    meta = read_metadata(fp32)
    calib = load_calibration(SHIPPED, meta, 100)
    path = plain_int8(fp32, calib, tmp_path / "plain.onnx")
    x = calib[:4]
    got = bare_session_runner(path, threads=1).fn(x)[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(got, session.run(None, {session.get_inputs()[0].name: x})[0])
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_missing_source_or_calibration_is_a_usage_error(pair: tuple[Path, Path], tmp_path: Path) -> None:
    fp32, int8 = pair
    moved = Path(shutil.move(int8, tmp_path / "moved.int8.onnx"))
    fp32.unlink()
    with pytest.raises(UsageError, match="needs the FP32 model it was quantized from"):
        fp32_source(moved, read_metadata(moved))
    lone = make_tiny_onnx(tmp_path / "lone.onnx", labels=DIGITS, size=28, channels=1)
    cfg = BenchConfig(iterations=5, warmup=0, baselines=(Baseline.ort_int8,))
    with pytest.raises(UsageError, match="needs calibration data: pass --calibration"):
        run_benchmark([lone], cfg)
