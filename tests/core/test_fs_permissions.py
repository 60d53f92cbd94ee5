"""Artefacts get the permissions a plain write gives under the user's umask, not mkstemp's private 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_onnx

from edgecnn._fs import write_bytes_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    script = "import sys; from edgecnn._fs import write_text_atomic; write_text_atomic(sys.argv[1], 'x')"
    target = tmp_path / "report.json"
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, preexec_fn=lambda: os.umask(umask))
    assert _mode(target) == 0o666 & ~umask


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_models_and_reports_written_by_commands_are_readable_as_a_plain_write_would_be(
    tmp_path: Path, umask: int
) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    out, report = tmp_path / "m.fp16.onnx", tmp_path / "q.json"
    cmd = [sys.executable, "-m", "edgecnn", "quantize", str(model), "--mode", "fp16", "-o", str(out)]
    proc = subprocess.run(
        [*cmd, "--no-speed", "--json", str(report)], capture_output=True, text=True, preexec_fn=lambda: os.umask(umask)
    )
    assert proc.returncode == 0, proc.stderr
    assert _mode(out) == _mode(report) == 0o666 & ~umask
