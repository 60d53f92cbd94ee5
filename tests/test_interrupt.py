"""kill -9 while export and quantize write their file: the previous file survives, never a partial one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
from conftest import make_tiny_onnx, write_png

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
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["model.onnx"]


# The child runs the real CLI with onnx.save_model throttled for edgecnn's temporary files only: it writes
# the serialised model in small chunks with a pause after each (a slow disk), so the kill can land while
# the file is being written. Unthrottled, that window lasts well under a millisecond for a small model.
_THROTTLED_CLI = """
import os, sys, time
import onnx
from edgecnn._fs import TMP_PREFIX

real_save = onnx.save_model

def slow_save(proto, f, *args, **kwargs):
    if isinstance(f, (str, os.PathLike)) and os.path.basename(f).startswith(TMP_PREFIX):
        data = proto.SerializeToString()
        with open(f, "wb") as fh:
            for i in range(0, len(data), 256):
                fh.write(data[i : i + 256])
                fh.flush()
                time.sleep(0.2)
        return None
    return real_save(proto, f, *args, **kwargs)

onnx.save_model = slow_save
from edgecnn.cli import main

sys.argv = ["edgecnn", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_kill_9_while_quantize_writes_keeps_the_previous_model(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    for i in range(12):  # calibration's minimum is 10 images
        write_png(tmp_path / "calib" / ("cat", "dog", "bird")[i % 3] / f"{i}.png", seed=i)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "m.int8.onnx"
    target.write_bytes(b"previous")
    args = ["quantize", str(model), "-o", str(target), "--calibration", str(tmp_path / "calib"), "--samples", "12"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _THROTTLED_CLI, *args, "--no-speed"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: list[tuple[str, int]] = []

    def writing() -> bool:
        for p in out_dir.iterdir():
            if p.name.startswith(f"{TMP_PREFIX}{target.name}.{proc.pid}.") and p.stat().st_size > 0:
                seen.append((p.name, p.stat().st_size))
                return True
        return False

    killed = _kill_when(proc, writing)
    assert killed, "quantize exited before its temporary file was seen"
    assert proc.returncode == -signal.SIGKILL  # it died by the kill, not by finishing or failing
    assert seen and seen[0][1] > 0
    assert target.read_bytes() == b"previous"  # the previous file is intact
    leftovers = [p for p in out_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert [p.name for p in leftovers] == [seen[0][0]]  # a killed writer leaves only its temp file ...
    # ... and it was killed mid-write: the temp holds part of a model (the next run's is whole)
    rerun = subprocess.run(
        [sys.executable, "-m", "edgecnn", *args, "--no-speed"], capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    onnx.checker.check_model(onnx.load(str(target)))
    assert 0 < seen[0][1] < target.stat().st_size
    assert [p.name for p in out_dir.iterdir()] == [target.name]  # the next write removed the stale temp
