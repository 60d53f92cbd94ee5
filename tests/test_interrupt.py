"""kill -9 in the middle of export and quantize: the previous file survives, never a partial one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from edgecnn._fs import TMP_PREFIX


def _kill_when(proc: subprocess.Popen, cond, timeout: float = 120) -> bool:  # type: ignore[type-arg,no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if cond():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False


@pytest.mark.needs_tf
@pytest.mark.slow
def test_kill_9_during_export_keeps_the_previous_model(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecnn", "export", "zoo:catsdogs-cnn", "-o", str(target), "--samples", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed = _kill_when(
        proc, lambda: any(p.name.startswith(TMP_PREFIX) and p.stat().st_size > 0 for p in tmp_path.iterdir())
    )
    assert killed, "export finished before the temporary file was seen"
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["model.onnx"]


@pytest.mark.needs_tf
@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0])
def test_kill_9_during_quantize_never_leaves_a_partial_model(mnist_onnx: Path, tmp_path: Path, delay: float) -> None:
    target = tmp_path / "m.int8.onnx"
    target.write_bytes(b"previous")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecnn",
            "quantize",
            str(mnist_onnx),
            "-o",
            str(target),
            "--calibration",
            "mnist5k",
            "--no-speed",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = time.time()
    _kill_when(proc, lambda: time.time() - start > delay)
    proc.wait()
    data = target.read_bytes()
    if data != b"previous":  # it finished first: then the file must be a whole, valid model
        onnx.checker.check_model(onnx.load(str(target)))
