"""Folding computed reshape targets, checked against onnxruntime on hand-built graphs and a real export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _onnx import INT64, build_model, tensor, value
from onnx import TensorProto, helper, numpy_helper

from edgecnn.export.simplify import SimplifyReport, simplify

FLATTEN_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Slice"}


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {model.graph.input[0].name: x})


def _flatten_model(target: str = "batch_major", allowzero: int | None = None) -> onnx.ModelProto:
    """input [b,4,4,2] → Shape → Gather(0) → Unsqueeze → Concat(…) → Reshape → MatMul: tf2onnx's Flatten."""
    rng = np.random.default_rng(0)
    inits = [
        tensor("zero", 0, np.int64),
        tensor("axes", [0], np.int64),
        tensor("rest", [32], np.int64),
        tensor("two", [2], np.int64),
        tensor("sixteen", [16], np.int64),
        tensor("w", rng.random((32, 3), dtype=np.float32)),
        tensor("w16", rng.random((16, 3), dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["b"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"], name="unsqueeze"),
    ]
    extra = {} if allowzero is None else {"allowzero": allowzero}
    if target == "batch_major":  # [b, 32]
        nodes += [
            helper.make_node("Concat", ["b1", "rest"], ["target"], name="concat", axis=0),
            helper.make_node("Reshape", ["input", "target"], ["flat"], name="reshape", **extra),
            helper.make_node("MatMul", ["flat", "w"], ["output"], name="matmul"),
        ]
    else:  # [b*2, 16]: depends on the batch in another way
        nodes += [
            helper.make_node("Mul", ["b1", "two"], ["b2"], name="double"),
            helper.make_node("Concat", ["b2", "sixteen"], ["target"], name="concat", axis=0),
            helper.make_node("Reshape", ["input", "target"], ["flat"], name="reshape", **extra),
            helper.make_node("MatMul", ["flat", "w16"], ["output"], name="matmul"),
        ]
    props = {"edgecnn.version": "1", "edgecnn.labels": '["a","b","c"]'}
    inputs, outputs = [value("input", ["batch", 4, 4, 2])], [value("output", ["batch", 3])]
    return build_model(nodes, inputs, outputs, inits, name="g", props=props)


def _assert_same_answers(a: onnx.ModelProto, b: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    for batch in (1, 5):
        x = np.random.default_rng(batch).random((batch, *shape), dtype=np.float32)
        for got, want in zip(_run(b, x), _run(a, x), strict=True):
            np.testing.assert_array_equal(got, want)


def test_computed_flatten_becomes_a_constant_reshape_with_identical_answers() -> None:
    model = _flatten_model()
    pristine = model.SerializeToString()
    simple, report = simplify(model)
    onnx.checker.check_model(simple, full_check=True)
    assert [n.op_type for n in simple.graph.node] == ["Reshape", "MatMul"]
    assert report == SimplifyReport({"Concat": 1, "Gather": 1, "Shape": 1, "Unsqueeze": 1}, 1)
    assert report.changed
    assert report.to_dict() == {
        "folded_reshapes": 1,
        "moved_squeezes": 0,
        "removed_nodes": {"Concat": 1, "Gather": 1, "Shape": 1, "Unsqueeze": 1},
    }
    folded = simple.graph.node[0].input[1]
    inits = {t.name: numpy_helper.to_array(t) for t in simple.graph.initializer}
    assert set(inits) == {"w", "w16", "two", "sixteen", folded}  # the Flatten's constants go; never-read ones stay
    assert inits[folded].dtype == np.int64 and inits[folded].tolist() == [-1, 32]
    _assert_same_answers(model, simple, (4, 4, 2))
    assert model.SerializeToString() == pristine  # the input model is left untouched


def test_targets_that_scale_the_batch_are_left_alone() -> None:
    model = _flatten_model("doubled")
    simple, report = simplify(model)
    assert simple is model and not report.changed and report == SimplifyReport()


def test_allowzero_reshapes_are_left_alone() -> None:
    model = _flatten_model(allowzero=1)
    simple, report = simplify(model)
    assert simple is model and not report.changed


def test_a_target_fed_by_a_graph_input_is_left_alone() -> None:
    model = build_model(
        [helper.make_node("Reshape", ["input", "target"], ["output"])],
        [value("input", ["batch", 4, 4, 2]), value("target", [2], INT64)],
        [value("output", ["batch", 32])],
        name="g",
    )
    simple, report = simplify(model)
    assert simple is model and not report.changed


def test_simplify_is_idempotent_and_keeps_everything_else() -> None:
    model = _flatten_model()
    once, first = simplify(model)
    twice, second = simplify(once)
    assert first.changed and not second.changed and twice is once
    for kept in (once, twice):
        assert [(p.key, p.value) for p in kept.metadata_props] == [(p.key, p.value) for p in model.metadata_props]
        assert kept.opset_import == model.opset_import and kept.ir_version == model.ir_version
        assert kept.producer_name == model.producer_name
        assert kept.graph.input == model.graph.input and kept.graph.output == model.graph.output


def test_dead_code_goes_but_names_read_by_subgraphs_stay() -> None:
    """A dead chain is removed; a node whose output only an If branch reads (outer scope) is kept."""
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["scaled"], ["then_out"])],
        "then",
        [],
        [value("then_out", ["batch", 3])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["else_out"])],
        "else",
        [],
        [value("else_out", ["batch", 3])],
    )
    model = build_model(
        [
            helper.make_node("Mul", ["input", "k"], ["scaled"]),  # read only inside then_branch
            helper.make_node("Neg", ["input"], ["dead1"]),
            helper.make_node("Abs", ["dead1"], ["dead2"]),  # dead chain: two sweeps
            helper.make_node("Add", ["dead2", "unused_by_others"], ["dead3"]),
            helper.make_node("If", ["flag"], ["output"], then_branch=then_branch, else_branch=else_branch),
        ],
        [value("input", ["batch", 3]), value("flag", [], TensorProto.BOOL)],
        [value("output", ["batch", 3])],
        [tensor(n, v, np.float32) for n, v in (("k", 2.0), ("unused_by_others", 1.0), ("never_read", 7.0))],
        name="g",
    )
    simple, report = simplify(model)
    onnx.checker.check_model(simple)
    assert [n.op_type for n in simple.graph.node] == ["Mul", "If"]
    assert report.removed_nodes == {"Abs": 1, "Add": 1, "Neg": 1} and report.folded_reshapes == 0
    assert {t.name for t in simple.graph.initializer} == {"k", "never_read"}  # only what became unused goes
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    session = ort.InferenceSession(simple.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"input": x, "flag": np.array(True)})[0], 2 * x)


def test_a_graph_without_computed_targets_is_returned_as_is(tiny_onnx: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    simple, report = simplify(model)
    assert simple is model and report.to_dict() == {"folded_reshapes": 0, "moved_squeezes": 0, "removed_nodes": {}}


@pytest.mark.slow
@pytest.mark.needs_tf
def test_a_real_tf2onnx_convnet_loses_its_shape_arithmetic(tmp_path: Path) -> None:
    from edgecnn.export import ExportConfig, export_keras

    raw = export_keras("zoo:mnist-cnn", tmp_path / "raw.onnx", ExportConfig(parity_samples=16, simplify=False))
    model = onnx.load(str(raw.path))
    assert {n.op_type for n in model.graph.node} & FLATTEN_OPS, "tf2onnx no longer computes the Flatten target"
    simple, report = simplify(model)
    onnx.checker.check_model(simple)
    assert report.folded_reshapes == 1 and sum(report.removed_nodes.values()) >= 4
    assert not {n.op_type for n in simple.graph.node} & FLATTEN_OPS
    assert len(simple.graph.node) == len(model.graph.node) - sum(report.removed_nodes.values())
    assert simple.metadata_props == model.metadata_props
    _assert_same_answers(model, simple, (28, 28, 1))


@pytest.mark.slow
@pytest.mark.needs_tf
def test_export_simplifies_by_default(tmp_path: Path) -> None:
    from edgecnn.export import ExportConfig, export_keras

    report = export_keras("zoo:mnist-cnn", tmp_path / "m.onnx", ExportConfig(parity_samples=16))
    assert not {n.op_type for n in onnx.load(str(report.path)).graph.node} & FLATTEN_OPS
    assert report.simplified["folded_reshapes"] == 1 and report.passed
