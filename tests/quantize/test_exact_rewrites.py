"""The exact FP32 rewrites made before INT8 quantization, on hand-built graphs run in onnxruntime."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
from _onnx import build_model, tensor, value
from onnx import helper

from edgecnn.quantize.rewrites import drop_shape_round_trips, fold_input_affine, simplify


def _run(model: object, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return sess.run(None, {"input": x})[0]


def _normalised_stem(mean: list[float]) -> object:
    """Keras' Rescaling + Normalization on an NHWC input, then the stem convolution with zero padding."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Mul", ["input", "rescale"], ["r"], name="rescaling"),
        helper.make_node("Add", ["r", "neg_mean"], ["c"], name="centre"),
        helper.make_node("Mul", ["c", "inv_std"], ["n"], name="normalise"),
        helper.make_node("Transpose", ["n"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["y"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]),
    ]
    inits = [
        tensor("rescale", 1 / 255, np.float32),
        tensor("neg_mean", np.negative(mean).reshape(1, 1, 1, 3), np.float32),
        tensor("inv_std", np.array([1 / 0.229, 1 / 0.224, 1 / 0.225]).reshape(1, 1, 1, 3), np.float32),
        tensor("w", rng.normal(size=(8, 3, 3, 3)), np.float32),
        tensor("b", rng.normal(size=8), np.float32),
    ]
    return build_model(nodes, [value("input", ["batch", 9, 9, 3])], [value("y", ["batch", 8, 5, 5])], inits)


def test_the_input_normalisation_folds_into_the_stem_and_the_answers_stay() -> None:
    x = np.random.default_rng(1).uniform(0, 255, (2, 9, 9, 3)).astype(np.float32)
    for mean, ops_left in (([0.485, 0.456, 0.406], {"Transpose", "Add", "Conv"}), ([0.0] * 3, {"Transpose", "Conv"})):
        model = _normalised_stem(mean)
        before = _run(model, x)
        folded = copy.deepcopy(model)
        assert fold_input_affine(folded) == 3
        assert {n.op_type for n in folded.graph.node} == ops_left  # type: ignore[attr-defined]
        # the border of the padded convolution sees zeros in normalised space on both sides
        np.testing.assert_allclose(_run(folded, x), before, rtol=1e-5, atol=1e-4)


def test_an_input_op_with_a_second_consumer_is_left_alone() -> None:
    model = _normalised_stem([0.5] * 3)
    model.graph.output.append(value("r", ["batch", 9, 9, 3]))  # type: ignore[attr-defined]
    assert fold_input_affine(model) == 0


def test_squeeze_excite_shape_round_trips_are_bypassed() -> None:
    """tf2onnx's GlobalAveragePool → Squeeze → Reshape back to [N, C, 1, 1] before the squeeze convolution."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["gap"], name="squeeze"),
        helper.make_node("Squeeze", ["gap", "axes"], ["flat"], name="squeeze_dims"),
        helper.make_node("Reshape", ["flat", "shape"], ["back"], name="unflatten"),
        helper.make_node("Conv", ["back", "w"], ["y"], name="reduce"),
        helper.make_node("Reshape", ["y", "nhwc"], ["yt"], name="to_nhwc"),  # same rank, new shape: kept
        helper.make_node("Relu", ["yt"], ["out"], name="relu"),
    ]
    inits = [
        tensor("axes", [2, 3], np.int64),
        tensor("shape", [-1, 16, 1, 1], np.int64),
        tensor("nhwc", [-1, 1, 1, 4], np.int64),
        tensor("w", rng.normal(size=(4, 16, 1, 1)), np.float32),
    ]
    model = build_model(nodes, [value("input", ["batch", 16, 5, 5])], [value("out", ["batch", 1, 1, 4])], inits)
    x = rng.normal(size=(3, 16, 5, 5)).astype(np.float32)
    before = _run(model, x)
    done = simplify(model)
    assert done.shape_round_trips == 1 and done.input_affine_ops == 0
    assert [n.op_type for n in model.graph.node] == ["GlobalAveragePool", "Conv", "Reshape", "Relu"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(_run(model, x), before)
    assert drop_shape_round_trips(model) == 0  # nothing left to do
