"""Real scores from quantized models: the output head (logits + Softmax/Sigmoid) stays float (issue #24)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx, write_png

from edgecnn import Classifier
from edgecnn.quantize import QuantFormat, QuantizeConfig, quantize
from edgecnn.quantize.head import head_nodes


def score_quality(fp32: np.ndarray, cand: np.ndarray) -> dict[str, float]:
    """The issue's "Done when" numbers: exact zeros, top-3 ties, top-2 order agreement with FP32."""
    top3 = -np.sort(-cand, axis=1)[:, :3]
    order_ref = np.argsort(-fp32, axis=1, kind="stable")[:, :2]
    order = np.argsort(-cand, axis=1, kind="stable")[:, :2]
    return {
        "zeros": float((cand == 0).mean()),
        "ties": float(((top3[:, 0] == top3[:, 1]) | (top3[:, 1] == top3[:, 2])).mean()),
        "top2": float((order == order_ref).all(axis=1).mean()),
    }


def _calibration(root: Path, labels: tuple[str, ...], size: int) -> Path:
    for i, lab in enumerate(labels):
        for j in range(6):
            write_png(root / lab / f"{j}.png", size=(size, size), seed=10 * i + j)
    return root


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
@pytest.mark.parametrize("fmt", [QuantFormat.qdq, QuantFormat.qoperator])
def test_tiny_model_head_is_float(output: str, fmt: QuantFormat, tmp_path: Path) -> None:
    import onnx

    src = make_tiny_onnx(tmp_path / "t.onnx", output=output, size=8)
    labels = Classifier(src).labels
    calib = _calibration(tmp_path / "calib", labels, 8)
    with pytest.warns(UserWarning, match="calibrating on 1[28] samples"):
        r = quantize(src, tmp_path / "t.int8.onnx", QuantizeConfig.int8(format=fmt), calibration=str(calib),
                     measure_speed=False)
    graph = onnx.load(str(r.path)).graph
    producer = {o: n for n in graph.node for o in n.output}
    out = producer[graph.output[0].name]
    assert out.op_type == output.capitalize()  # the graph's output is the float activation, no DequantizeLinear
    logits = producer[out.input[0]]
    assert logits.op_type not in ("DequantizeLinear", "QLinearSoftmax", "QLinearSigmoid"), logits.op_type
    assert r.quantization["float_head"]["nodes"]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    probs = Classifier(r.path).predict(x)
    scores = np.array([p.probabilities for p in probs])
    assert len(np.unique(scores)) > 0.9 * scores.size  # no 1/255 grid


def test_head_nodes_walks_back_through_shape_ops(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    from edgecnn.quantize.head import ensure_node_names

    model = onnx.load(str(make_tiny_onnx(tmp_path / "t.onnx", output="softmax")))
    soft = next(n for n in model.graph.node if n.op_type == "Softmax")
    soft.output[0] = "probs"
    model.graph.node.append(helper.make_node("Identity", ["probs"], ["output"]))
    ensure_node_names(model)
    by_name = {n.name: n.op_type for n in model.graph.node}
    assert sorted(by_name[n] for n in head_nodes(model)) == ["Gemm", "Identity", "Softmax"]
    assert "Conv" not in {by_name[n] for n in head_nodes(model)}


@pytest.mark.filterwarnings("ignore:dynamic quantization of a model with convolutions")
@pytest.mark.parametrize(
    "config",
    [QuantizeConfig.int8(), QuantizeConfig.int8(format=QuantFormat.qoperator), QuantizeConfig.dynamic(),
     QuantizeConfig.fp16()],
    ids=["qdq", "qoperator", "dynamic", "fp16"],
)
def test_mnist_cnn_scores_are_real(config: QuantizeConfig, mnist_onnx: Path, tmp_path: Path) -> None:
    """The issue's bar on 200 test digits: < 1% exact zeros, < 1% top-3 ties, top-2 order ≥ 90% as FP32."""
    from edgecnn.data import load_source

    r = quantize(mnist_onnx, tmp_path / "m.q.onnx", config, calibration="mnist5k", measure_speed=False)
    digits = load_source("mnist5k", split="test", limit=200).x
    fp32 = np.array([p.probabilities for p in Classifier(mnist_onnx).predict(digits)])
    cand = np.array([p.probabilities for p in Classifier(r.path).predict(digits)])
    q = score_quality(fp32, cand)
    assert q["zeros"] < 0.01 and q["ties"] < 0.01 and q["top2"] >= 0.90, q
    assert (fp32.argmax(1) == cand.argmax(1)).mean() >= 0.98
    if config.mode.value == "int8":
        ops = Counter(n.op_type for n in __import__("onnx").load(str(r.path)).graph.node)
        assert ops["Softmax"] == 1 and "QLinearSoftmax" not in ops
