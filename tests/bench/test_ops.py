"""MAC counting against hand arithmetic on tiny onnx.helper graphs, the measured peak, fraction of peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from _onnx import build_model, tensor, value
from conftest import make_tiny_onnx
from onnx import TensorProto, helper

from edgecnn.bench.ops import OpCount, Peak, count_macs, fraction_of_peak, measure_peak


def _model(nodes, inputs, outputs, inits, *, ms: bool = False) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    """Unchecked: most outputs leave their shape unknown, which is what count_macs must infer."""
    opsets = {"": 17, "com.microsoft": 1} if ms else {"": 17}
    return build_model(nodes, inputs, outputs, inits, name="t", opsets=opsets, check=False)


def _w(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> onnx.TensorProto:
    return tensor(name, np.ones(shape, dtype=dtype))


def test_conv3x3_no_padding() -> None:
    # 2 -> 4 channels, 3x3 kernel, 8x8 input, pads 0: output 4 x 6 x 6, each output = 2 * 9 MACs
    m = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 0, 0])],
        [value("x", [1, 2, 8, 8])],
        [value("y", [1, 4, 6, 6])],
        [_w("w", (4, 2, 3, 3))],
    )
    c = count_macs(m)
    assert c.macs == 4 * 6 * 6 * 2 * 9 == 2592
    assert c.by_op == {"Conv": 2592} and c.unknown == ()
    assert c.ops == 2 * 2592
    assert c.to_dict() == {"macs": 2592, "ops": 5184, "by_op": {"Conv": 2592}, "unknown": []}


def test_conv_strided_same_padding_from_attributes() -> None:
    # stride 2, pads 1, 3x3 on 9x9: out = (9 + 2 - 3) // 2 + 1 = 5 -> 8 x 5 x 5 outputs, 3 * 9 MACs each
    m = _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])],
        [value("x", [1, 3, 9, 9])],
        [value("y", None)],
        [_w("w", (8, 3, 3, 3)), _w("b", (8,))],
    )
    assert count_macs(m).macs == 8 * 5 * 5 * 3 * 9


def test_matmul_dense() -> None:
    # [1, 784] x [784, 128]: M=1, K=784, N=128
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [1, 784])],
        [value("y", [1, 128])],
        [_w("w", (784, 128))],
    )
    c = count_macs(m)
    assert c.macs == 1 * 784 * 128 == 100352 and c.by_op == {"MatMul": 100352}


def test_matmul_batched_counts_batch_dims_of_the_output() -> None:
    # [1, 3, 5, 7] x [7, 2] -> [1, 3, 5, 2]: 3*5*2 dot products of length 7
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [1, 3, 5, 7])],
        [value("y", None)],
        [_w("w", (7, 2))],
    )
    assert count_macs(m).macs == 3 * 5 * 2 * 7


def test_gemm_with_transposed_weight() -> None:
    # A [1, 64], B stored [10, 64] with transB=1: M=1, K=64, N=10 (bias adds are not MACs)
    m = _model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        [value("x", [1, 64])],
        [value("y", [1, 10])],
        [_w("w", (10, 64)), _w("b", (10,))],
    )
    assert count_macs(m).macs == 1 * 64 * 10 == 640


def test_depthwise_and_grouped_conv() -> None:
    # depthwise: 6 channels, group 6, weight [6, 1, 3, 3], 10x10 pads 1 -> 6 x 10 x 10 outputs, 1 * 9 MACs each
    # grouped: 6 -> 12 channels, group 3, weight [12, 2, 1, 1] -> 12 x 10 x 10 outputs, 2 * 1 MACs each
    m = _model(
        [
            helper.make_node("Conv", ["x", "dw"], ["d"], group=6, pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["d", "gw"], ["y"], group=3),
        ],
        [value("x", [1, 6, 10, 10])],
        [value("y", None)],
        [_w("dw", (6, 1, 3, 3)), _w("gw", (12, 2, 1, 1))],
    )
    assert count_macs(m).macs == 6 * 10 * 10 * 9 + 12 * 10 * 10 * 2 == 5400 + 2400


def test_conv_transpose() -> None:
    # 4 -> 2 channels, 3x3, stride 2 on 5x5: each of 4*5*5 input elements hits 2 * 9 outputs
    m = _model(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
        [value("x", [1, 4, 5, 5])],
        [value("y", None)],
        [_w("w", (4, 2, 3, 3))],
    )
    assert count_macs(m).macs == 4 * 5 * 5 * 2 * 9


def _qparams(prefix: str, zp_dtype: type = np.uint8) -> list[onnx.TensorProto]:
    return [
        tensor(f"{prefix}_s", 0.1, np.float32),
        tensor(f"{prefix}_zp", 0, zp_dtype),
    ]


def test_qlinearconv_and_qlinearmatmul() -> None:
    # QOperator: QLinearConv(x, xs, xzp, w, ws, wzp, ys, yzp) 2 -> 4 ch 3x3 on 8x8 pads 0: 4*6*6 * 2*9
    # then QLinearMatMul(a, as, azp, b, ...) on the [1, 144] flattening with b [144, 10]: 144 * 10
    nodes = [
        helper.make_node("QLinearConv", ["x", "x_s", "x_zp", "w", "w_s", "w_zp", "y_s", "y_zp"], ["c"]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("QLinearMatMul", ["f", "y_s", "y_zp", "b", "b_s", "b_zp", "o_s", "o_zp"], ["o"]),
    ]
    inits = [
        _w("w", (4, 2, 3, 3), np.int8),
        _w("b", (144, 10), np.int8),
        *_qparams("x"),
        *_qparams("w", np.int8),
        *_qparams("y"),
        *_qparams("b", np.int8),
        *_qparams("o"),
    ]
    m = _model(nodes, [value("x", [1, 2, 8, 8], TensorProto.UINT8)], [value("o", [1, 10], TensorProto.UINT8)], inits)
    onnx.checker.check_model(m)
    c = count_macs(m)
    assert c.by_op == {"QLinearConv": 4 * 6 * 6 * 2 * 9, "QLinearMatMul": 144 * 10}
    assert c.macs == 2592 + 1440


def test_qdq_counts_the_conv_like_fp32() -> None:
    # QuantizeLinear/DequantizeLinear around the Conv of test_conv3x3_no_padding: same 2592 MACs, Q/DQ are free
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_zp"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_s", "x_zp"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "w_s", "w_zp"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["y"]),
    ]
    inits = [_w("wq", (4, 2, 3, 3), np.int8), *_qparams("x"), *_qparams("w", np.int8)]
    m = _model(nodes, [value("x", [1, 2, 8, 8])], [value("y", None)], inits)
    assert count_macs(m).by_op == {"Conv": 2592}


def test_symbolic_batch_is_counted_per_image_and_model_untouched() -> None:
    # batch 'b': [b, 784] x [784, 128] counts one image, and a stale value_info using 'b' also resolves to 1
    m = _model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["r", "w"], ["y"])],
        [value("x", ["b", 784])],
        [value("y", ["b", 128])],
        [_w("w", (784, 128))],
    )
    m.graph.value_info.append(value("r", ["b", 784]))
    assert count_macs(m).macs == 784 * 128
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "b"  # the caller's model is not modified


def test_fixed_batch_above_one_is_pinned_to_one() -> None:
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [32, 784])],
        [value("y", None)],
        [_w("w", (784, 128))],
    )
    assert count_macs(m).macs == 784 * 128


def test_contrib_fused_ops_and_shapes_downstream_of_them() -> None:
    # FusedConv (com.microsoft) 2 -> 4 ch 3x3 on 8x8: 2592; onnx cannot infer it, count_macs computes its output
    # [1, 4, 6, 6] so that Flatten -> FusedMatMul [1, 144] x [144, 10] (1440) -> Gemm [1, 10] x [10, 3] (30) resolve
    nodes = [
        helper.make_node("FusedConv", ["x", "w"], ["c"], domain="com.microsoft", activation="Relu"),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("FusedMatMul", ["f", "b"], ["o"], domain="com.microsoft", alpha=1.0),
        helper.make_node("Gemm", ["o", "g"], ["y"]),
    ]
    inits = [_w("w", (4, 2, 3, 3)), _w("b", (144, 10)), _w("g", (10, 3))]
    m = _model(nodes, [value("x", [1, 2, 8, 8])], [value("y", None)], inits, ms=True)
    c = count_macs(m)
    assert c.by_op == {"FusedConv": 2592, "FusedMatMul": 144 * 10, "Gemm": 10 * 3} and c.unknown == ()


def test_qgemm_weight_at_position_3() -> None:
    # QGemm(A, a_s, a_zp, B, b_s, b_zp, C, y_s, y_zp), transB: A [1, 64], B [10, 64] -> 64 * 10
    inputs = ["x", "x_s", "x_zp", "w", "w_s", "w_zp", "", "y_s", "y_zp"]
    nodes = [helper.make_node("QGemm", inputs, ["y"], domain="com.microsoft", transB=1)]
    inits = [_w("w", (10, 64), np.int8), *_qparams("x"), *_qparams("w", np.int8), *_qparams("y")]
    m = _model(nodes, [value("x", [1, 64], TensorProto.UINT8)], [value("y", None, TensorProto.UINT8)], inits, ms=True)
    assert count_macs(m).by_op == {"QGemm": 640}


def test_unknown_shapes_are_skipped_and_named() -> None:
    # the Conv's input comes out of an op nobody can infer: skipped and named; the MatMul after it still counts
    nodes = [
        helper.make_node("Mystery", ["x"], ["m"], domain="org.example", name="mystery"),
        helper.make_node("Conv", ["m", "w"], ["c"], name="conv_after_mystery"),
        helper.make_node("MatMul", ["x2", "w2"], ["y"]),
    ]
    m = _model(
        nodes,
        [value("x", [1, 2, 8, 8]), value("x2", [1, 5])],
        [value("c", None), value("y", None)],
        [_w("w", (4, 2, 3, 3)), _w("w2", (5, 3))],
    )
    m.opset_import.append(helper.make_opsetid("org.example", 1))
    c = count_macs(m)
    assert c.unknown == ("conv_after_mystery",) and c.by_op == {"MatMul": 15} and c.macs == 15


def test_from_path_with_tiny_onnx(tmp_path: Path) -> None:
    # conftest's tiny convnet: Conv 3 -> 4 ch 3x3 pads 1 on 8x8 (4*8*8 * 3*9) + Gemm [1, 4] x [4, 3]
    path = make_tiny_onnx(tmp_path / "tiny.onnx")
    c = count_macs(path)
    assert c.by_op == {"Conv": 4 * 8 * 8 * 3 * 9, "Gemm": 4 * 3} and c.macs == 6912 + 12
    assert count_macs(str(path)) == c


def test_fp16_model_counts_the_same() -> None:
    m = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        [value("x", ["n", 2, 8, 8], TensorProto.FLOAT16)],
        [value("y", None, TensorProto.FLOAT16)],
        [_w("w", (4, 2, 3, 3), np.float16)],
    )
    assert count_macs(m).macs == 2592


def test_measure_peak_returns_positive_rates() -> None:
    p = measure_peak(threads=1, seconds=0.1)
    assert isinstance(p, Peak) and p.threads == 1
    assert p.fp32_gflops > 0 and p.int8_gops > 0
    d = p.to_dict()
    assert set(d) == {"fp32_gflops", "int8_gops", "threads", "method"} and "MatMulInteger" in d["method"]
    with pytest.raises(ValueError):
        measure_peak(threads=0)


def test_fraction_of_peak_arithmetic() -> None:
    # 5.6 Mop/image at 1000 images/s = 5.6 Gop/s; against a 56 Gop/s peak that is 10 %
    assert fraction_of_peak(5.6e6, 1000.0, 56.0) == pytest.approx(0.1)
    assert fraction_of_peak(0.0, 1000.0, 1.0) == 0.0
    with pytest.raises(ValueError):
        fraction_of_peak(1.0, 1.0, 0.0)


def test_opcount_is_frozen() -> None:
    c = OpCount(macs=3, by_op={"Conv": 3})
    with pytest.raises(AttributeError):
        c.macs = 4  # type: ignore[misc]
    assert hash(c) == hash(OpCount(macs=3, by_op={"Conv": 99}))  # by_op is left out of the hash
