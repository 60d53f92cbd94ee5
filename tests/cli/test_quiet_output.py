"""The terminal shows edgecnn's lines only: no TensorFlow start-up chatter, no onnxruntime log, warnings as
one line; ``--debug`` brings the libraries' own output back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.errors import UsageError
from edgecnn.train.fit import output_paths

XDIST_PRIORITY = 1  # five CLI processes, ~1 min: started early, not left as the run's tail (tests/conftest.py)

CHATTER = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard", "[W:onnxruntime", "[E:onnxruntime")
EDGECNN_LINE = ("warning: ", "note: ", "error: ", "WARNING edgecnn", "INFO edgecnn", "ERROR edgecnn")


def foreign_lines(stderr: str) -> list[str]:
    """stderr lines that are not edgecnn's own (a library's log, a native library's chatter, a traceback)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(EDGECNN_LINE)]


def _edgecnn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.needs_tf
@pytest.mark.slow
def test_train_export_quantize_print_no_library_chatter(tmp_path: Path) -> None:
    model = tmp_path / "mlp.keras"
    trained = _edgecnn("train", "mnist-mlp", "--epochs", "1", "--limit", "300", "-o", str(model))
    assert trained.returncode == 0, trained.stderr
    assert model.is_file() and (tmp_path / "history.json").is_file()  # a .keras path is the model itself
    onnx_path = tmp_path / "mlp.onnx"
    exported = _edgecnn("export", str(model), "-o", str(onnx_path), "--samples", "32")
    quantized = _edgecnn("quantize", str(onnx_path), "--mode", "int8", "--calibration", "mnist5k", "--no-speed")
    from edgecnn.runtime.classifier import read_metadata

    assert exported.returncode == 0, exported.stderr
    assert read_metadata(onnx_path).source["keras_path"] == "mlp.keras"  # relative to the ONNX file, no local path
    int8 = tmp_path / "mlp.int8.onnx"
    benched = _edgecnn(
        "bench", str(int8), "--baseline", "tflite", "--baseline", "ort-int8", "--iterations", "5", "--warmup", "1"
    )
    for step in (trained, exported, quantized, benched):
        assert step.returncode == 0, step.stderr
        assert not [c for c in CHATTER if c in step.stderr], step.stderr
    for step in (exported, quantized, benched):  # TensorFlow's deprecations, TFLite's converter, ORT's advice
        assert not foreign_lines(step.stderr), step.stderr
    debug = _edgecnn("--debug", "export", str(model), "-o", str(onnx_path), "--samples", "32")
    # --debug: the libraries' logs are back (TF 2.21 no longer prints its oneDNN note, so its deprecations tell)
    assert debug.returncode == 0 and "is deprecated" in debug.stderr


@pytest.mark.needs_ray
@pytest.mark.slow
def test_classify_on_ray_prints_edgecnn_lines_only(tiny_onnx: Path, tmp_path: Path) -> None:
    from conftest import write_png

    for i in range(4):
        write_png(tmp_path / "photos" / f"{i}.png", seed=i)
    out = tmp_path / "r.csv"
    proc = _edgecnn("classify", str(tmp_path / "photos"), "-m", str(tiny_onnx), "-o", str(out), "--ray", "auto")
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and not foreign_lines(proc.stderr), proc.stderr  # no Ray core / Ray Data lines


def test_keras_output_path_is_the_model_file(tmp_path: Path) -> None:
    assert output_paths("mnist-cnn", tmp_path / "m.keras") == (tmp_path, tmp_path / "m.keras")
    assert output_paths("mnist-cnn", tmp_path) == (tmp_path / "mnist-cnn", tmp_path / "mnist-cnn" / "mnist-cnn.keras")
    (tmp_path / "taken.keras").mkdir()
    with pytest.raises(UsageError, match=r"is a folder; give a new file name ending in \.keras"):
        output_paths("mnist-cnn", tmp_path / "taken.keras")
    with pytest.raises(UsageError, match=r"train writes Keras 3 \.keras files"):
        output_paths("mnist-cnn", tmp_path / "m.h5")


def test_fallback_warning_is_one_line_on_the_terminal(tmp_path: Path) -> None:
    """A Python warning raised inside a command reaches the user as one 'warning: …' line."""
    script = (
        "import sys, warnings\n"
        "from typer.testing import CliRunner\n"
        "import edgecnn.cli._app as a\n"
        "a._quiet_libraries()\n"
        "warnings.warn('FALLBACK: asked for provider cuda, but ...', UserWarning)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "warning: FALLBACK: asked for provider cuda, but ..."
