"""The thin stem that INT8 quantization keeps in float, found on hand-built graphs (no TensorFlow)."""

from __future__ import annotations

import numpy as np
from _onnx import build_model, tensor, value
from onnx import helper

from edgecnn.quantize.stem import stem_nodes


def _conv(name: str, x: str, y: str, c_in: int, c_out: int, group: int = 1) -> tuple[object, object]:
    w = tensor(f"{name}_w", np.ones((c_out, c_in // group, 3, 3), np.float32))
    return helper.make_node("Conv", [x, w.name], [y], name=name, group=group, pads=[1, 1, 1, 1]), w


def _model(nodes: list[object], inits: list[object], channels: int) -> object:
    output = value(nodes[-1].output[0], None)  # type: ignore[attr-defined]
    # unchecked: the output's rank is left unknown (stem_nodes reads only the structure)
    return build_model(nodes, [value("input", ["b", 8, 8, channels])], [output], inits, name="g", check=False)  # type: ignore[arg-type]


def test_rgb_stem_with_rescaling_and_pooling_is_found_and_stops_at_the_next_conv() -> None:
    scale = tensor("scale", 1 / 255, np.float32)
    c1, w1 = _conv("stem", "nchw", "c1", 3, 8)
    c2, w2 = _conv("body", "p1", "c2", 8, 8)
    nodes = [
        helper.make_node("Mul", ["input", "scale"], ["scaled"], name="rescale"),
        helper.make_node("Transpose", ["scaled"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        c1,
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        c2,
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
    ]
    found = stem_nodes(_model(nodes, [scale, w1, w2], 3))
    assert set(found) == {"rescale", "to_nchw", "stem", "relu1", "pool1"}
    assert "body" not in found and "relu2" not in found


def test_wide_and_depthwise_convs_are_not_a_stem() -> None:
    wide, w1 = _conv("wide", "nchw", "c1", 16, 16)
    depthwise, w2 = _conv("dw", "c1", "c2", 16, 16, group=16)  # 1 channel per group, but not an image input
    nodes = [helper.make_node("Transpose", ["input"], ["nchw"], name="t", perm=[0, 3, 1, 2]), wide, depthwise]
    assert stem_nodes(_model(nodes, [w1, w2], 16)) == []


def test_a_branching_stem_keeps_only_the_conv() -> None:
    c1, w1 = _conv("stem", "nchw", "c1", 1, 4)
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], name="t", perm=[0, 3, 1, 2]),
        c1,
        helper.make_node("Relu", ["c1"], ["a"], name="branch_a"),
        helper.make_node("Sigmoid", ["c1"], ["b"], name="branch_b"),
        helper.make_node("Add", ["a", "b"], ["out"], name="join"),
    ]
    assert stem_nodes(_model(nodes, [w1], 1)) == ["stem", "t"]
