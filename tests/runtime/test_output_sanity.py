"""Output sanity: a model declared softmax/sigmoid whose answers cannot be probabilities is refused (exit 3,
naming --output logits) on its first batch; NaN rows are skipped; a quantized softmax ~0.01 off is accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_nan_onnx, make_tiny_onnx, write_png

from edgecnn import Classifier
from edgecnn.errors import MetadataError
from edgecnn.runtime.contract import output_value_problem
from edgecnn.runtime.metadata import OutputKind


def _relabel(src: Path, dst: Path, output: OutputKind, scale: float | None = None) -> Path:
    """``src`` with its edgecnn.output rewritten (and its output multiplied by ``scale``)."""
    import dataclasses

    import onnx
    from onnx import helper, numpy_helper

    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.metadata import embed_metadata

    model = onnx.load(str(src))
    if scale is not None:
        last = model.graph.node[-1]
        last.output[0] = "unscaled"
        model.graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), "scale"))
        model.graph.node.append(helper.make_node("Mul", ["unscaled", "scale"], ["output"]))
    embed_metadata(model, dataclasses.replace(read_metadata(src), output=output))
    onnx.save_model(model, str(dst))
    return dst


def test_problem_rules() -> None:
    soft = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert output_value_problem(soft, OutputKind.softmax) is None
    assert output_value_problem(soft * 1.01, OutputKind.softmax) is None  # an INT8 softmax ~0.01 off
    assert "sum to 1.1" in output_value_problem(soft * 1.1, OutputKind.softmax)  # type: ignore[operator]
    assert "outside [0, 1]" in output_value_problem(np.array([[7.24, -1.0]]), OutputKind.softmax)  # type: ignore[operator]
    assert "outside [0, 1]" in output_value_problem(np.array([[1.5]]), OutputKind.sigmoid)  # type: ignore[operator]
    assert output_value_problem(np.array([[7.24, 11.35]]), OutputKind.logits) is None
    assert output_value_problem(np.array([[np.nan, np.nan], [0.3, 0.7]]), OutputKind.softmax) is None  # rows skipped


def test_a_logits_model_declared_softmax_is_refused_on_its_first_batch(tmp_path: Path) -> None:
    bad = _relabel(make_tiny_onnx(tmp_path / "l.onnx", output="logits"), tmp_path / "bad.onnx", OutputKind.softmax)
    clf = Classifier(bad, provider="cpu")  # loading is fine: only its answers tell
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(MetadataError, match=r"declared softmax .*not probabilities.*--output logits"):
        clf.predict(x)


def test_sigmoid_outside_0_1_is_refused(tmp_path: Path) -> None:
    src = make_tiny_onnx(tmp_path / "s.onnx", output="sigmoid")
    bad = _relabel(src, tmp_path / "bad.onnx", OutputKind.sigmoid, scale=3.0)
    x = np.full((2, 8, 8, 3), 255, np.uint8)
    assert Classifier(src).predict(x)  # the real sigmoid passes
    with pytest.raises(MetadataError, match=r"declared sigmoid .*outside \[0, 1\]"):
        Classifier(bad).predict(np.random.default_rng(1).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8))


def test_a_softmax_a_little_off_is_accepted_and_more_refused(tmp_path: Path) -> None:
    src = make_tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    Classifier(_relabel(src, tmp_path / "ok.onnx", OutputKind.softmax, scale=0.99)).predict(x)  # INT8-like
    with pytest.raises(MetadataError, match="sum to"):
        Classifier(_relabel(src, tmp_path / "off.onnx", OutputKind.softmax, scale=0.8)).predict(x)


def test_nan_rows_are_skipped_by_the_check(tmp_path: Path) -> None:
    clf = Classifier(make_nan_onnx(tmp_path / "n.onnx"), provider="cpu")
    x = np.stack([np.full((8, 8, 1), v, np.float32) for v in (0.0, 0.9)])
    probs, ok = clf.predict_rows(x)
    assert ok.tolist() == [False, True] and abs(probs[1].sum() - 1) < 1e-5


def test_classify_cli_exits_3_naming_output_logits(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    bad = _relabel(make_tiny_onnx(tmp_path / "l.onnx", output="logits"), tmp_path / "bad.onnx", OutputKind.softmax)
    for i in range(3):
        write_png(tmp_path / "imgs" / f"{i}.png", seed=i)
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "imgs"), "-m", str(bad), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 3 and "--output logits" in res.output, res.output
