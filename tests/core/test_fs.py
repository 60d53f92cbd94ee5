"""Atomic writes: an interrupted write leaves the previous file intact and no temporary file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecnn._fs import TMP_PREFIX, atomic_path, atomic_write, sha256_file, variant_path, write_text_atomic


def test_atomic_write_replaces_target(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_exception_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_atomic_path_keeps_suffix_for_libraries_that_check_it(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "m.keras", suffix=".keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "m.keras").read_bytes() == b"x"


def test_kill_9_mid_write_leaves_previous_file(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-write leaves the old target untouched (only a stray temp file)."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"previous")
    script = (
        "import sys, time\n"
        "from edgecnn._fs import atomic_write\n"
        "with atomic_write(sys.argv[1]) as fh:\n"
        "    fh.write(b'x' * 1024); fh.flush(); print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert target.read_bytes() == b"previous"
    time.sleep(0.05)
    stray = [p for p in tmp_path.iterdir() if p != target]
    assert len(stray) == 1 and stray[0].name.startswith(TMP_PREFIX + "big.bin.")
    write_text_atomic(target, "next")  # the next write of the same target removes the dead writer's file
    assert sorted(tmp_path.iterdir()) == [target] and target.read_text() == "next"


def test_sha256_and_variant_names(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert variant_path("exported/m.onnx", "int8") == Path("exported/m.int8.onnx")
    assert variant_path("exported/m.fp16.onnx", "int8") == Path("exported/m.fp16.int8.onnx")
