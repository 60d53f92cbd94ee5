"""The terminal shows edgecnn's lines only: no TensorFlow start-up chatter, no onnxruntime log, warnings as
one line; ``--debug`` brings the libraries' own output back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.errors import UsageError
from edgecnn.train.fit import output_paths

CHATTER = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard", "[W:onnxruntime", "[E:onnxruntime")


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
    for step in (trained, exported, quantized):
        assert step.returncode == 0, step.stderr
        assert not [c for c in CHATTER if c in step.stderr], step.stderr
    debug = _edgecnn("--debug", "export", str(model), "-o", str(onnx_path), "--samples", "32")
    assert debug.returncode == 0 and "oneDNN custom operations" in debug.stderr  # --debug: back on


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
