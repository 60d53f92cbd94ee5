"""Folder classification: every file one row, hostile files as error rows, resume after kill -9."""

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
from _hostile import hostile_folder as _hostile_folder
from conftest import make_tiny_onnx, write_png
from PIL import Image

from edgecnn import Classifier
from edgecnn.errors import InputError
from edgecnn.runtime.folder import classify_to_file
from edgecnn.runtime.results import partial_path, read_done_paths


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bool]]:
    root = tmp_path_factory.mktemp("hostile") / "photos"
    return root, _hostile_folder(root)


def test_every_file_gets_exactly_one_row(tiny_onnx: Path, hostile: tuple[Path, dict[str, bool]]) -> None:
    root, expect = hostile
    rows = list(Classifier(tiny_onnx).classify_folder(root, batch_size=4))
    got = {os.path.relpath(r.path, root): r for r in rows}
    assert len(rows) == len(got) == len(expect)
    assert set(got) == set(expect)
    for name, ok in expect.items():
        assert got[name].ok is ok, (name, got[name])
    assert "decompression bomb" in got["bomb.png"].error
    assert "truncated" in got["truncated.jpg"].error
    assert "empty file" in got["zero.png"].error
    assert "not an image" in got["text.png"].error
    assert got["fifo.png"].error_type == "ImageError"
    assert [r.path for r in rows] == [r.path for r in Classifier(tiny_onnx).classify_folder(root)]  # deterministic


def test_exif_orientation_is_applied(tiny_onnx: Path, hostile: tuple[Path, dict[str, bool]]) -> None:
    from edgecnn.runtime.images import load_image

    root, _ = hostile
    assert load_image(root / "exif_rotated.jpg").size == (40, 60)  # 60×40 stored, rotated 90°


def test_cli_classify_hostile_folder_exit_0(
    tiny_onnx: Path, hostile: tuple[Path, dict[str, bool]], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    root, expect = hostile
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["classify", str(root), "--model", str(tiny_onnx), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(records) == len(expect)
    assert sum(1 for r in records if r["error"]) == sum(1 for ok in expect.values() if not ok)
    assert not partial_path(out).exists()


def test_csv_escapes_formulas_and_newlines(tiny_onnx: Path, tmp_path: Path) -> None:
    root = tmp_path / "names"
    write_png(root / "=cmd().png")
    write_png(root / "line\nbreak.png")
    write_png(root / 'quote".png')
    out = tmp_path / "r.csv"
    classify_to_file(Classifier(tiny_onnx), root, out)
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    paths = sorted(r["path"] for r in records)
    assert len(paths) == 3
    assert any(p.startswith("'") is False and "=cmd()" in p for p in paths)  # inside a folder path: no leading '='
    assert any("line\nbreak" in p for p in paths) and any('quote"' in p for p in paths)
    done, _ = read_done_paths(out, "csv")  # resume reads back exactly the walked paths (escaping: test_results.py)
    assert done == {str(root / n) for n in ("=cmd().png", "line\nbreak.png", 'quote".png')}


def test_missing_folder_is_an_input_error(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        list(Classifier(tiny_onnx).classify_folder(tmp_path / "nope"))


def test_resume_drops_torn_record_and_skips_done(tiny_onnx: Path, tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(10):
        write_png(root / f"{i:02d}.png", seed=i)
    out = tmp_path / "r.jsonl"
    full = classify_to_file(Classifier(tiny_onnx), root, out)
    lines = out.read_text().splitlines(keepends=True)
    partial_path(out).write_text("".join(lines[:4]) + lines[4][:17])  # 4 rows + a torn fifth
    out.unlink()
    resumed = classify_to_file(Classifier(tiny_onnx), root, out, resume=True)
    assert resumed.resumed == 4 and resumed.total == full.total == 10
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(json.loads(x)["path"] for x in lines)


@pytest.mark.slow
def test_kill_9_then_resume_gives_every_path_once(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx", size=64)
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(400):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(root / f"{i:04d}.png")
    out = tmp_path / "results.csv"
    cmd = [
        sys.executable,
        "-m",
        "edgecnn",
        "classify",
        str(root),
        "--model",
        str(model),
        "--out",
        str(out),
        "--batch",
        "8",
        "--workers",
        "1",
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = partial_path(out)
    deadline = time.time() + 60
    while time.time() < deadline and (not part.exists() or part.stat().st_size < 2000):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert part.exists() and not out.exists(), "the run finished before it could be killed"
    done_before, _ = read_done_paths(part, "csv")
    assert 0 < len(done_before) < 400
    rc = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
    assert rc.returncode == 0, rc.stderr
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    paths = [r["path"] for r in records]
    assert len(paths) == 400 and len(set(paths)) == 400
    assert all(not r["error"] for r in records)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_images_never_crash_or_lose_a_row(tiny_onnx: Path, tmp_path: Path) -> None:
    """Byte-mutated PNG/JPEG/GIF files through the folder classifier: one row each, no crash."""
    rng = np.random.default_rng(42)
    root = tmp_path / "fuzz"
    root.mkdir()
    seeds = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF"):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, fmt)
        seeds.append(buf.getvalue())
    for i in range(200):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(int(rng.integers(1, 12))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if i % 7 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        (root / f"{i:03d}.img").write_bytes(bytes(data))
    rows = list(Classifier(tiny_onnx).classify_folder(root))
    assert len(rows) == 200 and len({r.path for r in rows}) == 200
    assert all(r.ok or r.error_type in ("ImageError", "ImageTooLargeError", "InputError") for r in rows)
