"""Exit codes that had no test: 4 for a missed bar (export, quantize --accuracy-budget, demo), 3 for
``doctor --gpu`` without a GPU, 1 (with its traceback) for a bug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import make_tiny_onnx
from typer.testing import CliRunner

from edgecnn.cli import app

runner = CliRunner()


def one_line_error(result, fragment: str) -> None:  # type: ignore[no-untyped-def]
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA")
def test_doctor_gpu_without_a_gpu_exit_3() -> None:
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    result = runner.invoke(app, ["doctor", "--gpu"])
    assert result.exit_code == 3
    one_line_error(result, "GPU not usable: ")
    assert "CUDA" in result.stderr and "providers_available" in result.stdout  # the report still printed


# -- a bug is exit 1 with its traceback, never a one-line "error:" -----------------------------------
def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom: a bug in describe_environment")


def test_an_unexpected_error_is_exit_1_and_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgecnn.runtime.environment

    monkeypatch.setattr(edgecnn.runtime.environment, "describe_environment", _boom)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError) and "boom: a bug" in str(result.exception)
    assert "error: " not in result.stderr  # not turned into a user error


def test_an_unexpected_error_prints_its_traceback_from_the_entry_point(tmp_path: Path) -> None:
    script = (
        "import sys, edgecnn.runtime.environment as env\n"
        "def boom(*a, **k):\n"
        "    raise RuntimeError('boom: a bug in describe_environment')\n"
        "env.describe_environment = boom\n"
        "from edgecnn.cli import main\n"
        "sys.argv = ['edgecnn', 'doctor']\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "Traceback" in out.stderr and "RuntimeError" in out.stderr and "boom: a bug" in out.stderr
    assert "error: boom" not in out.stderr


# -- demo: a step that misses its bar is exit 4 -------------------------------------------------------
def test_demo_with_a_failed_step_exit_4(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import edgecnn.demo
    from edgecnn.demo import DemoReport

    def fake_demo(out: Path, **kwargs: object) -> DemoReport:
        rep = DemoReport(files={"onnx": str(out / "m.onnx")})
        rep.steps += [
            {"step": "train", "ok": True, "detail": "98.9%", "seconds": 1.0},
            {"step": "parity fp32", "ok": False, "detail": "top-1 agreement 99.00% — FAIL", "seconds": 1.0},
            {"step": "quantize int8", "ok": False, "detail": "accuracy drop 1.2 pp — FAIL", "seconds": 1.0},
        ]
        return rep

    monkeypatch.setattr(edgecnn.demo, "run_demo", fake_demo)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 4
    one_line_error(result, "demo: a step missed its bar: parity fp32, quantize int8")
    assert json.loads((tmp_path / "d.json").read_text())["passed"] is False


def test_demo_that_passes_exit_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import edgecnn.demo
    from edgecnn.demo import DemoReport

    ok = DemoReport(steps=[{"step": "train", "ok": True, "detail": "", "seconds": 1.0}])
    monkeypatch.setattr(edgecnn.demo, "run_demo", lambda out, **kw: ok)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output


# -- export: a parity miss is exit 4 after the file is written ----------------------------------------
@pytest.mark.needs_tf
@pytest.mark.slow
def test_export_parity_miss_exit_4(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Keras side answers its columns reversed (a conversion that changed the answers): over the FP32 bar."""
    import keras

    import edgecnn.keras_io as keras_io

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    model.save(tmp_path / "m.keras")
    real = keras_io.keras_predictor

    def reversed_predictor(m, output):  # type: ignore[no-untyped-def]
        predict = real(m, output)
        return lambda x: predict(x)[:, ::-1]

    monkeypatch.setattr(keras_io, "keras_predictor", reversed_predictor)
    out = tmp_path / "m.onnx"
    args = ["export", str(tmp_path / "m.keras"), "-o", str(out), "--samples", "16", "--json", str(tmp_path / "e.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 4, result.output
    one_line_error(result, "parity failed (onnx vs keras)")
    assert f"the file was written: {out}; --no-check to accept" in result.stderr
    assert out.is_file() and json.loads((tmp_path / "e.json").read_text())["passed"] is False
    accepted = runner.invoke(app, [*args, "--no-check"])
    assert accepted.exit_code == 0, accepted.output
    assert "FAIL" in accepted.stdout


# -- quantize --accuracy-budget: no configuration within the budget is exit 4 ------------------------
@pytest.mark.slow
def test_quantize_accuracy_budget_miss_exit_4(tmp_path: Path) -> None:
    """Calibrated on black frames, every INT8 configuration clips real inputs and loses accuracy."""
    from PIL import Image

    from edgecnn import Classifier

    model = make_tiny_onnx(tmp_path / "m.onnx", labels=("a", "b", "c"), seed=7)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (300, 1, 1, 3))
    images = np.clip(base + rng.integers(-30, 30, (300, 8, 8, 3)), 0, 255).astype(np.uint8)
    for i, pred in enumerate(Classifier(model).predict(images)):  # labelled by the FP32 model: 100 % accurate
        (tmp_path / "eval" / pred.label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(tmp_path / "eval" / pred.label / f"{i:03d}.png")
    assert len(list((tmp_path / "eval").iterdir())) >= 2
    for label in ("a", "b", "c"):
        (tmp_path / "black" / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8)).save(tmp_path / "black" / label / f"{i}.png")
    out = tmp_path / "m.int8.onnx"
    result = runner.invoke(
        app,
        [
            "quantize",
            str(model),
            "-o",
            str(out),
            "--calibration",
            str(tmp_path / "black"),
            "--samples",
            "12",
            "--eval",
            f"folder:{tmp_path / 'eval'}",
            "--accuracy-budget",
            "0",
        ],
    )
    assert result.exit_code == 4, result.output
    errors = [x for x in result.stderr.splitlines() if x.startswith("error: ")]  # (warnings: 12 samples is few)
    assert len(errors) == 1 and "no INT8 configuration stays within 0.0 pp on folder:" in errors[0], result.stderr
    assert "int8 qdq per-channel minmax" in errors[0]
    assert not out.exists() and not list(tmp_path.glob(".edgecnn-tmp-*"))  # nothing half-kept
