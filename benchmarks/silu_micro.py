"""SiLU and squeeze-excite Mul in INT8 on onnxruntime's CPU EP: the QDQ pattern vs a float island (issue #28).

    python benchmarks/silu_micro.py [THREADS]

One uint8 tensor per shape (EfficientNetB0's SiLU sizes), each variant a one-node-chain model, interleaved
(7 rounds × 80 ms), median per call and ns per element. Variants: the QDQ SiLU edgecnn writes (onnxruntime fuses
it into QLinearSigmoid + QLinearMul), the float island DequantizeLinear → x·Sigmoid(x) (fused to QuickGelu) →
QuantizeLinear, QLinearSigmoid alone, DequantizeLinear + QuantizeLinear alone, the SE channel Mul and a
same-shape Mul.
"""

import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def model(nodes, inputs, outputs, inits, ms=True):
    g = h.make_graph(nodes, "g", inputs, outputs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)])
    return m.SerializeToString()


def sess(b, dis=()):
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    return ort.InferenceSession(b, so, providers=["CPUExecutionProvider"], disabled_optimizers=list(dis))


def c(name, v, dt=np.float32):
    return nh.from_array(np.array(v, dtype=dt), name)


def variants(shape):
    U8 = h.make_tensor_value_info("x", T.UINT8, shape)
    Y8 = h.make_tensor_value_info("y", T.UINT8, shape)
    qp = [
        c("s", 0.05),
        c("z", 128, np.uint8),
        c("so", 0.03),
        c("zo", 10, np.uint8),
        c("ss", 1 / 256),
        c("zs", 0, np.uint8),
    ]
    out = {}
    # QDQ SiLU (what edgecnn makes): DQ -> Sigmoid -> Q, DQ(x) * DQ(sig) -> Q  ==> QLinearSigmoid + QLinearMul
    out["qdq silu (QLinearSigmoid+QLinearMul)"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("Sigmoid", ["xf"], ["sf"]),
            h.make_node("QuantizeLinear", ["sf", "ss", "zs"], ["sq"]),
            h.make_node("DequantizeLinear", ["sq", "ss", "zs"], ["sd"]),
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf2"]),
            h.make_node("Mul", ["xf2", "sd"], ["mf"]),
            h.make_node("QuantizeLinear", ["mf", "so", "zo"], ["y"]),
        ],
        [U8],
        [Y8],
        qp,
    )
    # float island: DQ -> x*sigmoid(x) (ORT fuses to QuickGelu) -> Q
    out["float silu island (DQ QuickGelu Q)"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("Sigmoid", ["xf"], ["sf"]),
            h.make_node("Mul", ["xf", "sf"], ["mf"]),
            h.make_node("QuantizeLinear", ["mf", "so", "zo"], ["y"]),
        ],
        [U8],
        [Y8],
        qp,
    )
    out["only QLinearSigmoid"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("Sigmoid", ["xf"], ["sf"]),
            h.make_node("QuantizeLinear", ["sf", "so", "zo"], ["y"]),
        ],
        [U8],
        [Y8],
        qp,
    )
    out["only DQ+Q"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("QuantizeLinear", ["xf", "so", "zo"], ["y"]),
        ],
        [U8],
        [Y8],
        qp,
    )
    # SE channel mul, gate [1,C,1,1] uint8 input
    C = shape[1]
    G8 = h.make_tensor_value_info("g", T.UINT8, [1, C, 1, 1])
    out["qdq SE mul (QLinearMul bcast)"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("DequantizeLinear", ["g", "ss", "zs"], ["gf"]),
            h.make_node("Mul", ["xf", "gf"], ["mf"]),
            h.make_node("QuantizeLinear", ["mf", "so", "zo"], ["y"]),
        ],
        [U8, G8],
        [Y8],
        qp,
    )
    out["qdq same-shape mul"] = model(
        [
            h.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            h.make_node("DequantizeLinear", ["x", "ss", "zs"], ["gf"]),
            h.make_node("Mul", ["xf", "gf"], ["mf"]),
            h.make_node("QuantizeLinear", ["mf", "so", "zo"], ["y"]),
        ],
        [U8],
        [Y8],
        qp,
    )
    return out


for shape in ([1, 96, 112, 112], [1, 144, 56, 56], [1, 240, 28, 28], [1, 672, 14, 14], [1, 1152, 7, 7]):
    vs = variants(shape)
    ss = {k: sess(b) for k, b in vs.items()}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    g = rng.integers(0, 256, [1, shape[1], 1, 1], dtype=np.uint8)
    feeds = {k: ({"x": x, "g": g} if "SE" in k else {"x": x}) for k in ss}
    times = {k: [] for k in ss}
    for k, s in ss.items():
        s.run(None, feeds[k])
    for _r in range(7):
        for k, s in ss.items():
            t = time.perf_counter()
            n = 0
            while time.perf_counter() - t < 0.08:
                s.run(None, feeds[k])
                n += 1
            times[k].append((time.perf_counter() - t) / n)
    base = np.median(times["qdq silu (QLinearSigmoid+QLinearMul)"])
    n = int(np.prod(shape))
    print(shape, f"{n} elems")
    for k in ss:
        m = np.median(times[k])
        print(f"   {k:40s} {m * 1e6:8.0f} us  {m / base:5.2f}x   {m * 1e9 / n:5.2f} ns/elem")
