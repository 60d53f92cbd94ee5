"""Verdicts that mean something: every file of a folder, INCONCLUSIVE below the resolution of the bar (exit 4),
no data for an accuracy verdict is exit 2, random pixels only by name and said to prove nothing (issue #24)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx, write_png
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import CheckFailed, InconclusiveError, ParityError, UsageError
from edgecnn.parity import ParityBars, compare
from edgecnn.parity.compare import samples_needed
from edgecnn.parity.run import run_parity

DIGITS = tuple(str(d) for d in range(10))


def _same(n: int, k: int = 4) -> np.ndarray:
    p = np.full((n, k), 0.1 / (k - 1))
    p[np.arange(n), np.arange(n) % k] = 0.9
    return p.astype(np.float32)


def _run(ref: np.ndarray, cand: np.ndarray, mode: str):  # type: ignore[no-untyped-def]
    return compare(lambda i: ref[np.asarray(i, int)], lambda i: cand[np.asarray(i, int)], np.arange(len(ref)),
                   bars=ParityBars.for_mode(mode))


def test_samples_needed_is_the_resolution_of_the_bar() -> None:
    assert [samples_needed(b) for b in (0.98, 0.995, 0.998, 1.0)] == [50, 200, 500, 100]


@pytest.mark.parametrize(("mode", "needed"), [("int8", 50), ("fp16", 200), ("fp32", 100)])
def test_one_sample_short_is_inconclusive_exit_4_and_enough_passes(mode: str, needed: int) -> None:
    short = _run(_same(needed - 1), _same(needed - 1), mode)
    assert short.agreement == 1.0 and not short.failures
    assert short.verdict == "INCONCLUSIVE" and not short.passed
    with pytest.raises(InconclusiveError, match=f"{needed - 1} samples cannot resolve.*at least {needed} are needed"):
        short.raise_for_failure()
    assert issubclass(InconclusiveError, CheckFailed) and InconclusiveError.exit_code == 4
    assert _run(_same(needed), _same(needed), mode).verdict == "PASS"


def test_a_probability_difference_over_its_bar_fails_on_any_n() -> None:
    ref = _same(10)
    report = _run(ref, ref + np.float32(2e-4) * np.array([1, -1, 0, 0], np.float32), "fp32")
    assert report.verdict == "FAIL"
    with pytest.raises(ParityError, match="max abs diff"):
        report.raise_for_failure()


def test_top5_agreement_is_gated_with_ten_classes() -> None:
    ref = _same(100, k=10)
    cand = ref.copy()
    for i in range(3):  # the reference's answer drops to the candidate's last place
        top = int(ref[i].argmax())
        cand[i] = np.linspace(0.2, 0.01, 10)[np.argsort(np.argsort((np.arange(10) - top - 1) % 10))]
        cand[i, top] = 0.0
    report = _run(ref, cand, "int8")
    assert report.top5_agreement == pytest.approx(0.97)
    assert "top-5 agreement 97.00% < 98.00%" in report.failures and report.verdict == "FAIL"
    assert _run(_same(100, k=4), _same(100, k=4), "int8").top5_agreement is None  # < 10 classes: top-1 only


# -- folders: every file, a split only when asked, and the model's pair -----------------------------
@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A digits model and an 'INT8' copy of it (same weights, int8 bars)."""
    import onnx

    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.metadata import embed_metadata

    root = tmp_path_factory.mktemp("pair")
    ref = make_tiny_onnx(root / "ref.onnx", labels=DIGITS, size=8, channels=1)
    model = onnx.load(str(ref))
    embed_metadata(model, read_metadata(ref).with_quantization({"mode": "int8"}))
    cand = root / "ref.int8.onnx"
    onnx.save_model(model, str(cand))
    return ref, cand


def _digits_folder(root: Path, per_class: int) -> Path:
    for d in range(10):
        for j in range(per_class):
            write_png(root / str(d) / f"{j}.png", size=(8, 8), mode="L", seed=100 * d + j)
    return root


def test_ten_files_are_inconclusive_exit_4(pair: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cand = pair
    folder = _digits_folder(tmp_path / "ten", 1)
    report = run_parity(ref, cand, str(folder))
    assert report.n == 10 and report.verdict == "INCONCLUSIVE"
    result = CliRunner().invoke(app, ["parity", str(ref), str(cand), "--data", str(folder)])
    assert result.exit_code == 4, result.output
    assert "INCONCLUSIVE" in result.stdout and "at least 50 are needed" in result.stderr


def test_a_200_file_folder_counts_200_and_a_split_is_asked_for(pair: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cand = pair
    folder = _digits_folder(tmp_path / "many", 20)
    report = run_parity(ref, cand, f"folder:{folder}")
    assert report.n == 200 and report.verdict == "PASS" and "200 of 200 images" in report.data
    assert report.reference_accuracy is not None  # class subfolders named like the labels
    split = run_parity(ref, cand, str(folder), split=0.3)
    assert split.n == 60 and "a 30% split (seed 0), as asked" in split.data and split.verdict == "PASS"
    result = CliRunner().invoke(app, ["parity", str(ref), str(cand), "--data", str(folder), "--split", "0.2"])
    assert result.exit_code == 4, result.output  # 40 samples cannot resolve 98%
    words = " ".join(result.stdout.replace("│", " ").split())
    assert "as asked" in words and "40" in words and "INCONCLUSIVE" in words


def test_a_flat_unlabelled_folder_is_used_whole(pair: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cand = pair
    for i in range(60):
        write_png(tmp_path / "flat" / f"{i:02d}.png", size=(8, 8), mode="L", seed=i)
    (tmp_path / "flat" / "broken.png").write_bytes(b"not a png")
    report = run_parity(ref, cand, str(tmp_path / "flat"))
    assert report.n == 60 and report.reference_accuracy is None and report.verdict == "PASS"
    assert "1 unreadable skipped" in report.data and "unlabelled" in report.data


def test_no_data_for_an_accuracy_verdict_is_exit_2_and_random_is_said(pair: tuple[Path, Path]) -> None:
    ref, cand = pair
    with pytest.raises(UsageError, match="needs data: pass --data DIR"):
        run_parity(ref, cand)
    result = CliRunner().invoke(app, ["parity", str(ref), str(cand)])
    assert result.exit_code == 2 and "--data random" in result.stderr
    rnd = CliRunner().invoke(app, ["parity", str(ref), str(cand), "--data", "random"])
    assert rnd.exit_code == 0, rnd.output
    words = " ".join(rnd.stdout.replace("│", " ").split())
    assert "PASS (random pixels: a numerical check that" in words and "nothing about accuracy)" in words
    fp32 = run_parity(ref, ref)  # an FP32 candidate without data: a numerical check, said so
    assert fp32.random_data and fp32.n == 100 and fp32.verdict == "PASS"
