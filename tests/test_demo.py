"""The main job end to end, as README's first command runs it (offline, real data, real models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

XDIST_PRIORITY = 2  # the demo end to end, ~1.5 min: started early, not left as the run's tail (tests/conftest.py)


@pytest.mark.needs_tf
@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "demo", "--out", str(out), "--json", str(tmp_path / "demo.json")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "demo.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert {"train", "export", "parity fp32", "quantize int8", "quantize fp16", "bench", "classify"} <= set(steps)
    assert all(s["ok"] for s in report["steps"])
    rows = (out / "sample_results.csv").read_text().splitlines()
    assert len(rows) == 1 + 31 and sum("ImageError" in r for r in rows) == 1
    assert (out / "mnist-cnn.int8.onnx").is_file() and (out / "mnist-cnn" / "confusion.png").is_file()


@pytest.mark.needs_tf
@pytest.mark.slow
def test_demo_that_misses_a_bar_exits_4(tmp_path: Path) -> None:
    """One epoch trains mnist-cnn to ~90 %, under the train step's 97 % bar: the demo runs on, then exits 4."""
    args = ["demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--json", str(tmp_path / "demo.json")]
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "error: demo: a step missed its bar: train" in proc.stderr
    report = json.loads((tmp_path / "demo.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert report["passed"] is False and steps["train"]["ok"] is False and "test accuracy" in steps["train"]["detail"]
    assert steps["classify"]["ok"]  # the later steps still ran
