"""classify --ray on a real local multi-node cluster: the local run's rows, each path once, through faults."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _hostile import hostile_folder
from conftest import make_tiny_onnx, write_png
from hostile_models import fails_unless_batch_of
from PIL import Image

from edgecnn import Classifier
from edgecnn.errors import ModelError
from edgecnn.runtime.folder import classify_to_file
from edgecnn.runtime.results import partial_path, read_done_paths

XDIST_PRIORITY = 2  # a Ray cluster's unit of ~2 min: started early, not left as the run's tail (tests/conftest.py)

pytestmark = [pytest.mark.needs_ray, pytest.mark.slow]


def _jsonl(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _stable(error: str | None) -> str | None:
    """The error text, except the one part that varies between runs even locally: images.load_image turns
    Pillow's bomb warning into an error with ``warnings.catch_warnings``, which is not thread-safe, so with
    several decode threads the bomb is reported by either of two checks (two wordings, same verdict)."""
    if error and "possible decompression bomb" in error:
        return error.split(": too large", 1)[0] + ": too large; possible decompression bomb"
    return error


def _photos(root: Path, n: int, size: tuple[int, int] = (48, 40)) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"{i:04d}.png")
    return root


def test_hostile_folder_gives_the_local_rows(ray_cluster, tiny_onnx: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    root = tmp_path / "photos"
    expect = hostile_folder(root)
    local = tmp_path / "local.jsonl"
    classify_to_file(Classifier(tiny_onnx), root, local, batch_size=4, top_k=3)
    remote = tmp_path / "ray.jsonl"
    args = ["classify", str(root), "-m", str(tiny_onnx), "-o", str(remote), "--batch", "4", "--top-k", "3"]
    result = CliRunner().invoke(app, [*args, "--ray", ray_cluster.address, "--ray-actors", "2"])
    assert result.exit_code == 0, result.output
    assert "ray cluster" in result.output and "nodes (used / alive)" in result.output
    want, got = _jsonl(local), _jsonl(remote)
    assert [r["path"] for r in got] == [r["path"] for r in want]  # the same order: the files diff cleanly
    assert len({r["path"] for r in got}) == len(got) == len(expect)
    for w, g in zip(want, got, strict=True):
        assert (g["label"], g["error_type"], _stable(g["error"])) == (w["label"], w["error_type"], _stable(w["error"]))
        if w["score"] is not None:
            assert g["score"] == pytest.approx(w["score"], abs=1e-6)
            assert [lab for lab, _ in g["top_k"]] == [lab for lab, _ in w["top_k"]]
    assert not partial_path(remote).exists()


def test_model_with_external_data_is_shipped(ray_cluster, tmp_path: Path) -> None:
    import onnx

    from edgecnn.cluster import RayConfig, classify_on_ray

    model = onnx.load(str(make_tiny_onnx(tmp_path / "inline.onnx")))
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    onnx.save_model(model, str(ext), save_as_external_data=True, location="m.weights", size_threshold=0)
    root = tmp_path / "imgs"
    for i in range(6):
        write_png(root / f"{i}.png", seed=i)
    out = tmp_path / "r.csv"
    summary = classify_on_ray(ext, root, out, RayConfig(ray_cluster.address, actors=1))
    assert (summary.total, summary.ok) == (6, 6)
    assert summary.cluster is not None and summary.cluster["nodes"] == 3  # head + 2 workers


def test_worker_node_dies_mid_job_every_path_once(ray_cluster, tmp_path: Path) -> None:
    from edgecnn.cluster import RayConfig, classify_on_ray

    n = 800
    model = make_tiny_onnx(tmp_path / "m.onnx", size=32)
    root = _photos(tmp_path / "imgs", n, size=(96, 80))
    seen = {"rows": 0, "replaced": False}

    def on_row(_row: object) -> None:
        seen["rows"] += 1
        if seen["rows"] == 40:  # the job is running on both nodes: kill one, then add a fresh node back
            ray_cluster.replace_worker()
            seen["replaced"] = True

    out = tmp_path / "r.jsonl"
    config = RayConfig(ray_cluster.address, actors=2, rows_per_call=16)
    summary = classify_on_ray(model, root, out, config, batch_size=8, workers=1, on_row=on_row)
    assert seen["replaced"]
    paths = [r["path"] for r in _jsonl(out)]
    assert len(paths) == len(set(paths)) == n == summary.total == summary.ok
    assert paths == sorted(str(p) for p in root.iterdir())
    assert summary.cluster is not None and summary.cluster["nodes_used"] >= 2  # one actor per 1-CPU node


def test_kill_9_driver_then_resume_with_ray(ray_cluster, tmp_path: Path) -> None:
    n = 800  # ~3 of the CLI's 256-row calls: the driver is killed after the first lands, with rows to go
    model = make_tiny_onnx(tmp_path / "m.onnx", size=32)
    root = _photos(tmp_path / "imgs", n, size=(96, 80))
    out = tmp_path / "results.csv"
    args = [str(root), "-m", str(model), "-o", str(out), "--batch", "8", "--workers", "1"]
    args += ["--ray", ray_cluster.address, "--ray-actors", "2"]
    cmd = [sys.executable, "-m", "edgecnn", "classify", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ray_cluster.driver_env())
    part = partial_path(out)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and (not part.exists() or part.stat().st_size < 4000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert part.exists() and not out.exists(), "the run finished (or failed) before it could be killed"
    done_before, _ = read_done_paths(part, "csv")
    assert 0 < len(done_before) < n
    rc = ray_cluster.cli(*args, "--resume")
    assert rc.returncode == 0, rc.stderr
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == n
    assert all(not r["error"] for r in records)
    resumed_line = next(line for line in rc.stdout.splitlines() if "resumed from earlier run" in line)
    assert str(len(done_before)) in resumed_line.split()


def test_model_failing_at_run_time_stops_with_exit_3_rows_kept(ray_cluster, tiny_onnx: Path, tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(12):
        write_png(root / f"{i:02d}.png", seed=i)
    out = tmp_path / "r.jsonl"
    classify_to_file(Classifier(tiny_onnx), root, out)  # a good run, then pretend it stopped after 5 rows
    lines = out.read_text().splitlines(keepends=True)
    partial_path(out).write_text("".join(lines[:5]))
    out.unlink()
    (tmp_path / ".r.jsonl.model.json").unlink()  # a partial file that names no model (or resume would refuse it)
    bad = fails_unless_batch_of(tmp_path, batch=1_000_003)  # no batch is that big: every run fails
    rc = ray_cluster.cli(str(root), "-m", str(bad), "-o", str(out), "--resume", "--ray", ray_cluster.address)
    assert rc.returncode == 3, rc.stderr
    err = rc.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: {bad}: onnxruntime failed while running the model"), err
    assert not out.exists()
    assert partial_path(out).read_text().startswith("".join(lines[:5]))  # the rows already written stay


def test_library_raises_model_error(ray_cluster, tmp_path: Path) -> None:
    from edgecnn.cluster import RayConfig, classify_on_ray

    root = tmp_path / "imgs"
    write_png(root / "a.png")
    model = fails_unless_batch_of(tmp_path, batch=1_000_003, name="f.onnx")
    with pytest.raises(ModelError, match=r"f\.onnx: onnxruntime failed while running the model"):
        classify_on_ray(model, root, tmp_path / "r.csv", RayConfig(ray_cluster.address))


def test_wrong_token_is_refused(ray_cluster, tiny_onnx: Path, tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    write_png(root / "a.png")
    args = [str(root), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv"), "--ray", ray_cluster.address]
    rc = ray_cluster.cli(*args, timeout=120, RAY_AUTH_TOKEN="0" * 64)
    assert rc.returncode == 3, rc.stderr
    last = rc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to Ray at {ray_cluster.address}") and "RAY_AUTH_TOKEN" in last
    assert not os.path.exists(tmp_path / "r.csv")


def test_nan_for_some_images_gives_the_local_error_rows(ray_cluster, tmp_path: Path) -> None:
    from conftest import make_nan_onnx, write_gray

    from edgecnn.cluster import RayConfig, classify_on_ray

    model = make_nan_onnx(tmp_path / "nan.onnx")
    root = tmp_path / "imgs"
    for i, v in enumerate([200, 10, 200, 200, 10, 200]):  # dark (10) images drive the model to NaN
        write_gray(root / f"{i}.png", v)
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    classify_to_file(Classifier(model), root, local)
    summary = classify_on_ray(model, root, remote, RayConfig(ray_cluster.address))
    want, got = _jsonl(local), _jsonl(remote)
    assert [r["error_type"] for r in got] == [r["error_type"] for r in want]
    assert [r["error_type"] for r in got].count("NonFiniteOutput") == 2 and summary.ok == 4
