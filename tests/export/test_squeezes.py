"""Moving tf2onnx's Conv1D Squeezes: same answers as the original graph in onnxruntime, fewer nodes, fusable convs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _onnx import build_model, tensor, value
from onnx import helper

from edgecnn.export.simplify import simplify

RNG = np.random.default_rng(0)


def _conv1d_graph(opset: int = 17, negative: bool = False) -> onnx.ModelProto:
    """tf2onnx's Conv1D(8, k=3) → ReLU → MaxPool1D(2) → Conv1D(4, k=2) → ReLU → GlobalMaxPool1D → Dense(2).

    Input [b, 10, 1] (steps, channels); the convolutions run as 2-D convs on [b, C, 1, steps].
    """
    ax = -2 if negative else 2
    inits = [
        tensor("w1", RNG.standard_normal((8, 1, 1, 3)), np.float32),
        tensor("b1", RNG.standard_normal((8, 1)), np.float32),
        tensor("w2", RNG.standard_normal((4, 8, 1, 2)), np.float32),
        tensor("b2", RNG.standard_normal((4, 1)), np.float32),
        tensor("dense", RNG.standard_normal((4, 2)), np.float32),
        tensor("shape", [-1, 1, 1, 10], np.int64),
    ]
    axes_in = opset >= 13
    if axes_in:
        inits += [tensor(n, [a], np.int64) for n, a in (("ax", ax), ("ax1", 1), ("axg", -1 if negative else 2))]

    def sq(op: str, src: str, dst: str, axis: str = "ax") -> onnx.NodeProto:
        if axes_in:
            return helper.make_node(op, [src, axis], [dst])
        return helper.make_node(op, [src], [dst], axes=[{"ax": ax, "ax1": 1, "axg": -1 if negative else 2}[axis]])

    nodes = [
        sq("Unsqueeze", "input", "x4", "ax1"),
        helper.make_node("Reshape", ["x4", "shape"], ["x"]),
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[1, 3]),
        sq("Squeeze", "c1", "s1"),
        helper.make_node("Add", ["s1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        sq("Unsqueeze", "r1", "u1"),
        helper.make_node("MaxPool", ["u1"], ["p1"], kernel_shape=[1, 2], strides=[1, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], kernel_shape=[1, 2]),
        sq("Squeeze", "c2", "s2"),
        helper.make_node("Add", ["b2", "s2"], ["a2"]),  # constant on the left
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("GlobalMaxPool", ["r2"], ["g"]),
        sq("Squeeze", "g", "flat", "axg"),
        helper.make_node("MatMul", ["flat", "dense"], ["output"]),
    ]
    inputs, outputs = [value("input", ["batch", 10, 1])], [value("output", ["batch", 2])]
    return build_model(nodes, inputs, outputs, inits, name="conv1d", opsets={"": opset}, full_check=True)


def _run(model: onnx.ModelProto, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _assert_same_answers(a: onnx.ModelProto, b: onnx.ModelProto) -> None:
    for batch in (1, 7):
        x = RNG.standard_normal((batch, 10, 1)).astype(np.float32)
        np.testing.assert_allclose(_run(b, x, optimize=False), _run(a, x, optimize=False), rtol=1e-6, atol=1e-6)


def _optimized_ops(model: onnx.ModelProto, tmp_path: Path) -> list[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return _ops(onnx.load(str(tmp_path / "opt.onnx")))


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("negative", [False, True])
def test_conv1d_squeezes_move_out_of_the_way_with_identical_answers(opset: int, negative: bool) -> None:
    model = _conv1d_graph(opset, negative=negative)
    simple, report = simplify(model)
    onnx.checker.check_model(simple, full_check=True)
    assert _ops(simple) == [
        "Reshape", "Conv", "Add", "Relu", "MaxPool", "Conv", "Add", "Relu", "GlobalMaxPool", "Squeeze", "MatMul"
    ]  # fmt: skip
    assert report.moved_squeezes > 0 and report.removed_nodes == {"Squeeze": 2, "Unsqueeze": 2}
    _assert_same_answers(model, simple)
    assert simplify(simple)[0] is simple  # nothing left to do


def test_onnxruntime_fuses_bias_and_relu_into_the_convolutions_afterwards(tmp_path: Path) -> None:
    model = _conv1d_graph()
    before = _optimized_ops(model, tmp_path)
    after = _optimized_ops(simplify(model)[0], tmp_path)
    assert "Squeeze" in before[: before.index("MaxPool")]  # the pattern that blocks fusion is really there
    assert "Relu" in before and "Relu" not in after and "Add" not in after[: after.index("MatMul")]
    assert len(after) < len(before)


def test_a_constant_of_higher_rank_is_left_alone() -> None:
    """[b, 4] + [1, 1, 4] broadcasts to [1, b, 4]: giving the constant an axis would change that, so no move."""
    model = build_model(
        [helper.make_node("Squeeze", ["input", "ax"], ["s"]), helper.make_node("Add", ["s", "c"], ["output"])],
        [value("input", ["batch", 4, 1])],
        [value("output", None)],
        [tensor("ax", [2], np.int64), tensor("c", RNG.standard_normal((1, 1, 4)), np.float32)],
        name="g",
        check=False,  # the output's rank is left unknown on purpose: the checker wants a shape
    )
    simple, report = simplify(model)
    assert simple is model and not report.changed
    assert _run(model, np.ones((3, 4, 1), np.float32)).shape == (1, 3, 4)


def test_a_squeeze_read_twice_or_returned_stays() -> None:
    model = _conv1d_graph()
    model.graph.output.append(value("s1", None))  # s1 is also returned
    model.graph.node.append(helper.make_node("Neg", ["s2"], ["n2"]))  # s2 has a second reader
    model.graph.output.append(value("n2", None))
    simple, _ = simplify(model)
    squeezed = {n.input[0] for n in simple.graph.node if n.op_type == "Squeeze"}
    assert {"c1", "c2"} <= squeezed
    x = RNG.standard_normal((3, 10, 1)).astype(np.float32)
    session = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])  # noqa: E731
    for got, want in zip(session(simple).run(None, {"input": x}), session(model).run(None, {"input": x}), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.needs_tf
def test_a_real_trained_conv1d_export_runs_fused(tmp_path: Path) -> None:
    import keras

    from edgecnn import zoo
    from edgecnn.export import ExportConfig, export_keras

    model = zoo.build("telemetry-conv1d")
    for weight in model.weights:  # non-zero biases: tf2onnx drops an all-zero BiasAdd
        weight.assign(RNG.standard_normal(weight.shape).astype("float32") * 0.1)
    keras.saving.save_model(model, tmp_path / "tel.keras")
    raw = export_keras(tmp_path / "tel.keras", tmp_path / "raw.onnx", ExportConfig(parity_samples=16, simplify=False))
    report = export_keras(tmp_path / "tel.keras", tmp_path / "tel.onnx", ExportConfig(parity_samples=16))
    assert report.passed and report.simplified["moved_squeezes"] > 0
    simple = onnx.load(str(report.path))
    assert "Squeeze" in _ops(onnx.load(str(raw.path)))[:4]
    assert _ops(simple)[:4] == ["Reshape", "Conv", "Add", "Relu"]
    assert "Relu" not in _optimized_ops(simple, tmp_path)  # fused into the convolutions
