"""Folding computed reshape targets on hand-built graphs, checked against onnxruntime (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecnn.export.simplify import simplify


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _flatten_model(target: str = "batch_major") -> onnx.ModelProto:
    """input [b,4,4,2] → Shape → Gather(0) → Unsqueeze → Concat(…) → Reshape → MatMul: tf2onnx's Flatten."""
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([32], np.int64), "rest"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
        numpy_helper.from_array(np.array([16], np.int64), "sixteen"),
        numpy_helper.from_array(np.random.default_rng(0).random((32, 3), dtype=np.float32), "w"),
        numpy_helper.from_array(np.random.default_rng(1).random((16, 3), dtype=np.float32), "w16"),
    ]
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["b"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"], name="unsqueeze"),
    ]
    if target == "batch_major":
        nodes += [
            helper.make_node("Concat", ["b1", "rest"], ["target"], name="concat", axis=0),
            helper.make_node("Reshape", ["input", "target"], ["flat"], name="reshape"),
            helper.make_node("MatMul", ["flat", "w"], ["output"], name="matmul"),
        ]
    else:  # [b*2, 16]: depends on the batch in another way
        nodes += [
            helper.make_node("Mul", ["b1", "two"], ["b2"], name="double"),
            helper.make_node("Concat", ["b2", "sixteen"], ["target"], name="concat", axis=0),
            helper.make_node("Reshape", ["input", "target"], ["flat"], name="reshape"),
            helper.make_node("MatMul", ["flat", "w16"], ["output"], name="matmul"),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 4, 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"edgecnn.version": "1"})
    return model


def test_computed_flatten_becomes_a_constant_reshape_with_identical_answers() -> None:
    model = _flatten_model()
    simple, report = simplify(model)
    onnx.checker.check_model(simple)
    assert [n.op_type for n in simple.graph.node] == ["Reshape", "MatMul"]
    assert report.folded_reshapes == 1
    assert report.removed_nodes == {"Shape": 1, "Gather": 1, "Unsqueeze": 1, "Concat": 1}
    assert {t.name for t in simple.graph.initializer} == {"w", "target__folded4"}  # unused constants dropped
    for batch in (1, 5):
        x = np.random.default_rng(batch).random((batch, 4, 4, 2), dtype=np.float32)
        np.testing.assert_array_equal(_run(simple, x), _run(model, x))
    assert [(p.key, p.value) for p in simple.metadata_props] == [("edgecnn.version", "1")]
    assert simple.graph.input == model.graph.input and simple.graph.output == model.graph.output
    assert model.graph.node[0].op_type == "Shape"  # the input model is left untouched


def test_targets_that_scale_the_batch_are_left_alone() -> None:
    model = _flatten_model("doubled")
    simple, report = simplify(model)
    assert not report.changed and simple is model


def test_simplify_is_idempotent() -> None:
    once, _ = simplify(_flatten_model())
    twice, report = simplify(once)
    assert not report.changed and [n.op_type for n in twice.graph.node] == ["Reshape", "MatMul"]


@pytest.mark.needs_tf
def test_export_of_a_convnet_has_no_shape_arithmetic_left(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.export import ExportConfig, export_keras

    report = export_keras("zoo:mnist-cnn", tmp_path / "m.onnx", ExportConfig(parity_samples=16))
    ops = {n.op_type for n in onnx.load(str(report.path)).graph.node}
    assert not ops & {"Shape", "Gather", "Concat", "Slice"}
    assert report.simplified["folded_reshapes"] == 1 and report.passed
