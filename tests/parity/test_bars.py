"""The parity bars of DESIGN.md, each at its threshold and just beyond, on hand-made probabilities.

A Predictor is any callable batch -> probabilities, so every case here is two fixed arrays: the
"input" is the row index, and each side answers its own rows. Differences are multiples of 2**-24 so
that float32 holds them exactly and "at the bar" really is at the bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx
from typer.testing import CliRunner

from edgecnn.errors import ParityError
from edgecnn.parity import ParityBars, bars_for, compare
from edgecnn.parity.compare import TIE_EPS

ULP = 2.0**-24  # float32 spacing of values in [0.5, 1): differences below are exact


def _predictor(probs: np.ndarray):  # type: ignore[no-untyped-def]
    table = np.asarray(probs, np.float32)
    return lambda x: table[np.asarray(x, int).ravel()]


def _run(ref: np.ndarray, cand: np.ndarray, mode: str, y: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    x = np.arange(len(ref))
    return compare(_predictor(ref), _predictor(cand), x, y, bars=ParityBars.for_mode(mode), batch_size=7)


def _step_below(limit: float) -> float:
    """The largest multiple of ULP that is <= limit (exact in float32 and as a difference)."""
    return np.floor(limit / ULP) * ULP


def _confident(n: int, k: int = 2, seed: int = 0) -> np.ndarray:
    """n rows whose top class (cycling through k) leads by far: no ties, no flips from small changes."""
    p = np.full((n, k), 0.25 / (k - 1), np.float64)
    p[np.arange(n), np.arange(n) % k] = 0.75
    return p


def _flip(p: np.ndarray, rows: int) -> np.ndarray:
    """The first ``rows`` rows answer a different class (their two best swapped)."""
    q = p.copy()
    q[:rows] = q[:rows, ::-1]
    return q


def test_the_bars_are_the_design_numbers() -> None:
    assert ParityBars.for_mode("fp32").to_dict() == {
        "mode": "fp32",
        "min_agreement": 1.0,
        "max_abs_diff": 1e-4,
        "max_accuracy_drop_pp": None,
    }
    assert (ParityBars.for_mode("fp32-gpu").min_agreement, ParityBars.for_mode("fp32-gpu").max_abs_diff) == (1.0, 1e-3)
    fp16 = ParityBars.for_mode("fp16")
    assert (fp16.min_agreement, fp16.max_abs_diff, fp16.max_accuracy_drop_pp) == (0.995, 1e-2, None)
    int8 = ParityBars.for_mode("int8")
    assert (int8.min_agreement, int8.max_abs_diff, int8.max_accuracy_drop_pp) == (0.98, None, 0.5)
    assert ParityBars() == ParityBars.for_mode("fp32")  # compare() without bars uses the strictest


# -- FP32: 100 % top-1 (exact ties excepted), max abs diff <= 1e-4 ----------------------------------
def test_fp32_max_abs_diff_at_the_bar_passes_and_one_step_beyond_fails() -> None:
    ref = _confident(100)  # FP32's exact bar: a verdict needs the stated minimum of 100 samples
    d = _step_below(1e-4)
    at = ref + np.array([[-d, d]])  # every row moves by exactly d
    assert at.max() < 1.0
    report = _run(ref, at, "fp32")
    assert report.max_abs_diff == pytest.approx(d, abs=0) and report.max_abs_diff <= 1e-4
    assert report.passed, report.failures
    beyond = ref.copy()
    beyond[3] += [-(d + ULP), d + ULP]  # one sample, one float32 step over
    report = _run(ref, beyond, "fp32")
    assert report.agreement == 1.0 and report.max_abs_diff > 1e-4
    assert report.failures == [f"max abs diff {report.max_abs_diff:.2e} > 1e-04"]
    with pytest.raises(ParityError, match="max abs diff"):
        report.raise_for_failure()


def test_fp32_one_disagreement_fails_even_with_tiny_differences() -> None:
    ref = _confident(1000)
    ref[7] = [0.5 + 2**-15, 0.5 - 2**-15]  # margin 6.1e-5: not a tie
    cand = ref.copy()
    cand[7] = ref[7, ::-1]  # top-1 flips; the difference (6.1e-5) is within the FP32 bar
    report = _run(ref, cand, "fp32")
    assert report.max_abs_diff <= 1e-4 and report.ties == 0
    assert report.agreement == pytest.approx(0.999)
    assert report.failures == ["top-1 agreement 99.90% < 100.00%"]
    assert report.per_class_disagreements == {"0": 1}


def test_exact_ties_are_excepted_and_a_margin_just_over_tie_eps_is_not() -> None:
    ref = _confident(100)
    half = 2.0**-21  # margin 2**-20 = 9.5e-7 <= TIE_EPS (1e-6): a tie, either answer is right
    assert 2 * half <= TIE_EPS < 4 * half
    ref[4] = [0.5 + half, 0.5 - half]
    ref[5] = [0.5, 0.5]  # a perfect tie
    cand = ref.copy()
    cand[4] = ref[4, ::-1]
    cand[5] = [0.5 - half, 0.5 + half]
    report = _run(ref, cand, "fp32")
    assert report.ties == 2 and report.agreement == 1.0 and report.passed, report.failures
    ref[4] = [0.5 + 2 * half, 0.5 - 2 * half]  # margin 1.9e-6 > TIE_EPS: a real disagreement
    cand[4] = ref[4, ::-1]
    report = _run(ref, cand, "fp32")
    assert report.ties == 1 and report.agreement == pytest.approx(99 / 100)
    assert not report.passed and "top-1 agreement 99.00% < 100.00%" in report.failures


# -- FP16: agreement >= 99.5 %, max abs diff <= 1e-2 ------------------------------------------------
def test_fp16_agreement_at_99_5_passes_and_below_fails() -> None:
    ref = _confident(200)
    ref[:2] = [[0.5 + 2**-10, 0.5 - 2**-10]] * 2  # two near-ties (margin 2e-3) that a small change may flip
    at = _flip(ref, 1)  # 199 / 200 = 99.5 %
    report = _run(ref, at, "fp16")
    assert report.agreement == 0.995 and report.max_abs_diff <= 1e-2
    assert report.passed, report.failures
    beyond = _flip(ref, 2)  # 198 / 200 = 99 %
    report = _run(ref, beyond, "fp16")
    assert report.failures == ["top-1 agreement 99.00% < 99.50%"]
    # the same pair is far over the FP32 bar: the bars differ
    assert not _run(ref, at, "fp32").passed


def test_fp16_max_abs_diff_at_the_bar_passes_and_one_step_beyond_fails() -> None:
    ref = _confident(200)
    d = _step_below(1e-2)
    report = _run(ref, ref + np.array([[-d, d]]), "fp16")
    assert report.max_abs_diff == pytest.approx(d, abs=0) and report.passed, report.failures
    beyond = ref.copy()
    beyond[0] += [-(d + ULP), d + ULP]
    report = _run(ref, beyond, "fp16")
    assert report.max_abs_diff > 1e-2 and report.failures == [f"max abs diff {report.max_abs_diff:.2e} > 1e-02"]


# -- INT8: top-1 agreement >= 98 %, accuracy drop <= 0.5 pp (no bar on the differences) --------------
def test_int8_agreement_at_98_passes_and_below_fails() -> None:
    ref = _confident(1000, k=4)
    report = _run(ref, _flip(ref, 20), "int8")  # 980 / 1000; large differences are allowed
    assert report.agreement == 0.98 and report.max_abs_diff > 0.4
    assert report.passed, report.failures
    report = _run(ref, _flip(ref, 21), "int8")
    assert report.failures == ["top-1 agreement 97.90% < 98.00%"]


def test_int8_accuracy_drop_of_exactly_half_a_point_passes_and_more_fails() -> None:
    ref = _confident(1000, k=4)
    y = ref.argmax(1)  # the reference is always right
    report = _run(ref, _flip(ref, 5), "int8", y)  # 5 of 1000 wrong: 0.5 pp, agreement 99.5 %
    assert report.reference_accuracy == 1.0 and report.candidate_accuracy == 0.995
    assert report.accuracy_delta_pp == pytest.approx(-0.5)
    assert report.passed, report.failures
    report = _run(ref, _flip(ref, 6), "int8", y)  # 0.6 pp
    assert report.agreement >= 0.98
    assert report.failures == ["accuracy drop 0.60 pp > 0.5 pp"]
    with pytest.raises(ParityError, match=r"accuracy drop 0\.60 pp > 0\.5 pp"):
        report.raise_for_failure()


def test_int8_accuracy_is_measured_against_the_labels_not_the_reference() -> None:
    ref = _confident(1000, k=4)
    y = ref.argmax(1)
    y[:10] = (y[:10] + 1) % 4  # the reference is wrong on 10 samples ...
    cand = ref.copy()
    cand[:10] = np.eye(4)[y[:10]] * 0.5 + 0.125  # ... where the candidate is right: it gains 1 pp
    report = _run(ref, cand, "int8", y)
    assert report.accuracy_delta_pp == pytest.approx(1.0) and report.agreement == pytest.approx(0.99)
    assert report.passed, report.failures


# -- which bars: from the candidate's edgecnn.quantization metadata ---------------------------------
def _with_quantization(src: Path, dst: Path, mode: str | None, nudge: float = 0.0) -> Path:
    """A copy of ``src`` with its last layer's weights nudged and ``edgecnn.quantization`` {mode}."""
    import onnx
    from onnx import numpy_helper

    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.metadata import embed_metadata

    model = onnx.load(str(src))
    for i, init in enumerate(model.graph.initializer):
        if init.name == "fc":
            w = numpy_helper.to_array(init)
            w = w + nudge * np.where(np.arange(w.size).reshape(w.shape) % 2, 1.0, -1.0).astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w.astype(np.float32), "fc"))
    meta = read_metadata(src)
    embed_metadata(model, meta.with_quantization({"mode": mode}) if mode else meta)
    onnx.save_model(model, str(dst))
    return dst


def test_bars_for_reads_the_quantization_mode() -> None:
    from edgecnn.runtime.metadata import InputSpec, Layout, ModelMetadata

    meta = ModelMetadata(labels=("a", "b"), input=InputSpec("input", Layout.NHWC, 4, 4, 1))
    assert bars_for(None).mode == bars_for(meta).mode == "fp32"
    assert bars_for(meta, gpu=True).mode == "fp32-gpu"
    for mode in ("int8", "fp16", "dynamic"):
        bars = bars_for(meta.with_quantization({"mode": mode, "method": "minmax"}), gpu=True)
        assert bars == ParityBars.for_mode(mode) and bars.mode == mode


def test_run_parity_picks_the_bars_from_the_candidates_metadata(tmp_path: Path) -> None:
    from edgecnn.parity import run_parity

    ref = make_tiny_onnx(tmp_path / "ref.onnx")
    nudge = 0.02  # moves probabilities by a few 1e-3: over the FP32 bar, within FP16's, same top-1
    plain = run_parity(ref, _with_quantization(ref, tmp_path / "plain.onnx", None, nudge))
    fp16 = run_parity(ref, _with_quantization(ref, tmp_path / "fp16.onnx", "fp16", nudge), "random", limit=200)
    int8 = run_parity(ref, _with_quantization(ref, tmp_path / "int8.onnx", "int8", nudge), "random")
    assert [r.bars.mode for r in (plain, fp16, int8)] == ["fp32", "fp16", "int8"]
    assert plain.agreement == fp16.agreement == int8.agreement == 1.0
    assert 1e-4 < plain.max_abs_diff == fp16.max_abs_diff < 1e-2
    assert not plain.passed and "max abs diff" in plain.failures[0]
    assert fp16.passed and int8.passed, (fp16.failures, int8.failures)


@pytest.mark.parametrize("mode", ["int8", "fp16"])
def test_a_quantized_model_that_misses_its_bar_is_rejected_exit_4(tmp_path: Path, mode: str) -> None:
    from edgecnn.cli import app
    from edgecnn.parity import run_parity

    ref = make_tiny_onnx(tmp_path / "ref.onnx")
    other = make_tiny_onnx(tmp_path / "other.onnx", seed=1)  # another network: answers differ
    cand = _with_quantization(other, tmp_path / f"cand.{mode}.onnx", mode)
    report = run_parity(ref, cand, "random", limit=200)
    assert report.bars.mode == mode and report.agreement < 0.98
    with pytest.raises(ParityError, match=r"parity failed .*top-1 agreement"):
        report.raise_for_failure()
    result = CliRunner().invoke(app, ["parity", str(ref), str(cand), "--data", "random", "--limit", "200"])
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: parity failed") and "top-1 agreement" in result.stderr
    assert f"{mode}: top-1 agreement" in result.stdout  # the bars shown are the candidate's
    assert "random pixels" in result.stdout and "proves" in result.stdout


def test_unknown_quantization_mode_gets_no_bar() -> None:
    from edgecnn.errors import MetadataError
    from edgecnn.parity.compare import ParityBars

    with pytest.raises(MetadataError, match="unknown mode 'int4'"):
        ParityBars.for_mode("int4")
