"""How much arithmetic a model does per image, and how fast this machine can do arithmetic at all.

Latency alone does not say whether a model is slow or the machine is: ``count_macs`` reads the
multiply-accumulates out of the ONNX graph (static shapes, batch 1), ``measure_peak`` times the
attainable FP32 / INT8 throughput of onnxruntime itself, and ``fraction_of_peak`` relates the two.
TF-free: only onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto

Shape = tuple[int, ...]
_STD = ("", "ai.onnx")
_MS = "com.microsoft"


@dataclass(frozen=True)
class OpCount:
    """Multiply-accumulates per image (batch 1); ``unknown`` names the nodes whose shapes could not be inferred.

    A non-empty ``unknown`` means ``macs`` is a lower bound, never a guess.
    """

    macs: int
    by_op: dict[str, int] = field(default_factory=dict, hash=False)
    unknown: tuple[str, ...] = ()

    @property
    def ops(self) -> int:
        """Arithmetic operations, one multiply + one add per MAC (the usual "FLOPs" convention)."""
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "ops": self.ops, "by_op": dict(self.by_op), "unknown": list(self.unknown)}


@dataclass(frozen=True)
class _Rule:
    """Where a compute op keeps its operands and how to count it; ``kind`` is conv, convT, matmul or gemm."""

    kind: str
    x: int = 0
    w: int = 1


# (domain, op_type) -> rule. QLinear ops interleave scales and zero points, so their weight sits at 3.
_RULES: dict[tuple[str, str], _Rule] = {
    **{(d, "Conv"): _Rule("conv") for d in _STD},
    **{(d, "ConvInteger"): _Rule("conv") for d in _STD},
    **{(d, "QLinearConv"): _Rule("conv", w=3) for d in _STD},
    **{(d, "ConvTranspose"): _Rule("convT") for d in _STD},
    **{(d, "MatMul"): _Rule("matmul") for d in _STD},
    **{(d, "MatMulInteger"): _Rule("matmul") for d in _STD},
    **{(d, "QLinearMatMul"): _Rule("matmul", w=3) for d in _STD},
    **{(d, "Gemm"): _Rule("gemm") for d in _STD},
    (_MS, "FusedConv"): _Rule("conv"),
    (_MS, "FusedMatMul"): _Rule("matmul"),
    (_MS, "QGemm"): _Rule("gemm", w=3),
    # what onnxruntime's dynamic quantizer emits for MatMul
    (_MS, "DynamicQuantizeMatMul"): _Rule("matmul"),
    (_MS, "MatMulIntegerToFloat"): _Rule("matmul"),
}


def _load_copy(path_or_model: str | Path | ModelProto) -> ModelProto:
    if isinstance(path_or_model, ModelProto):
        model = ModelProto()
        model.CopyFrom(path_or_model)  # never mutate the caller's model
        return model
    # shapes live in the graph, weights' dims in the TensorProto headers: the weights' bytes are not needed
    return onnx.load(str(path_or_model), load_external_data=False)


def _set_batch_1(model: ModelProto) -> set[str]:
    """Pin every graph input's first dim to 1; returns the symbolic names it had (they mean 1 everywhere)."""
    inits = {t.name for t in model.graph.initializer}
    symbols: set[str] = set()
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 0:
            continue
        if dims[0].dim_param:
            symbols.add(dims[0].dim_param)
        dims[0].Clear()
        dims[0].dim_value = 1
    return symbols


def _infer(model: ModelProto) -> ModelProto:
    # data_prop resolves Shape -> Gather/Slice -> Concat -> Reshape chains (Keras' Flatten through tf2onnx)
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # a model onnx cannot infer at all: count what the stored value_info allows
        return model


def _shapes(model: ModelProto, batch_symbols: set[str]) -> dict[str, Shape]:
    """Fully known static shapes by tensor name; a leftover batch symbol counts as 1."""
    out: dict[str, Shape] = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    g = model.graph
    for vi in (*g.input, *g.value_info, *g.output):
        if vi.name in out or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims: list[int] = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.dim_param in batch_symbols:
                dims.append(1)
            else:
                break
        else:
            out[vi.name] = tuple(dims)
    return out


def _attr(node: NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _conv_out(node: NodeProto, x: Shape, w: Shape) -> Shape | None:
    """Conv output shape from the input and weight shapes (used where onnx cannot infer it: contrib ops)."""
    if len(x) != len(w) or len(x) < 3:
        return None
    k = tuple(_attr(node, "kernel_shape", w[2:]))
    n = len(k)
    strides = tuple(_attr(node, "strides", (1,) * n))
    dil = tuple(_attr(node, "dilations", (1,) * n))
    pads = tuple(_attr(node, "pads", (0,) * (2 * n)))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    spatial = []
    for i in range(n):
        eff = dil[i] * (k[i] - 1) + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(-(-x[2 + i] // strides[i]))
        elif auto_pad == "VALID":
            spatial.append((x[2 + i] - eff) // strides[i] + 1)
        else:
            spatial.append((x[2 + i] + pads[i] + pads[i + n] - eff) // strides[i] + 1)
    return (x[0], w[0], *spatial) if all(s > 0 for s in spatial) else None


def _matmul_out(a: Shape, b: Shape, trans_a: bool = False, trans_b: bool = False) -> Shape | None:
    """numpy.matmul broadcasting (1-D operands promoted, then dropped), with FusedMatMul's transposes."""
    if not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if trans_a:
        a2 = (*a2[:-2], a2[-1], a2[-2])
    if trans_b:
        b2 = (*b2[:-2], b2[-1], b2[-2])
    if a2[-1] != b2[-2]:
        return None
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        return None
    out = [*batch, a2[-2], b2[-1]]
    if len(b) == 1:
        out.pop()
    if len(a) == 1:
        out.pop(-1 if len(b) == 1 else -2)
    return tuple(out)


def _inner_dim(a: Shape, trans_a: bool) -> int:
    """K of a matmul-like op, read off its left operand."""
    if len(a) == 1:
        return a[0]
    return a[-2] if trans_a else a[-1]


def _count(node: NodeProto, rule: _Rule, shapes: dict[str, Shape]) -> tuple[int, Shape | None] | None:
    """(MACs, output shape) of one compute node, or None when its shapes are not known."""

    def get(i: int) -> Shape | None:
        return shapes.get(node.input[i]) if i < len(node.input) and node.input[i] else None

    x, w = get(rule.x), get(rule.w)
    y = shapes.get(node.output[0]) if node.output else None
    if x is None or w is None:
        return None
    if rule.kind == "convT":
        # every input element scatters into C_out/group outputs per kernel tap; weight is [C_in, C_out/g, *k]
        if len(w) < 3:
            return None
        return math.prod(x) * w[1] * math.prod(w[2:]), y
    trans_a = bool(_attr(node, "transA", 0))
    trans_b = bool(_attr(node, "transB", 0))
    if rule.kind == "conv":
        y = y or _conv_out(node, x, w)
        if y is None or len(w) < 3:
            return None
        # weight is [C_out, C_in/group, *k]: each output element costs C_in/group * prod(k) MACs
        return math.prod(y) * w[1] * math.prod(w[2:]), y
    if rule.kind == "gemm":
        if len(x) != 2 or len(w) != 2:
            return None
        m = x[1] if trans_a else x[0]
        n = w[0] if trans_b else w[1]
        y = y or (m, n)
    else:  # matmul
        y = y or _matmul_out(x, w, trans_a, trans_b)
        if y is None:
            return None
    # every output element (batch dims included) is a dot product of length K
    return math.prod(y) * _inner_dim(x, trans_a), y


def _set_shape(model: ModelProto, name: str, shape: Shape) -> None:
    """Record an output shape onnx could not infer (contrib op) so inference can carry it downstream."""
    for vi in model.graph.value_info:
        if vi.name == name:
            model.graph.value_info.remove(vi)
            break
    # the element type is irrelevant to counting; FLOAT keeps the value_info valid
    model.graph.value_info.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape)))


def count_macs(path_or_model: str | Path | ModelProto) -> OpCount:
    """Multiply-accumulates per image (batch 1) of an ONNX model, from its statically inferred shapes.

    Counts Conv / ConvInteger / QLinearConv / ConvTranspose, MatMul / MatMulInteger / QLinearMatMul / Gemm and
    onnxruntime's FusedConv / FusedMatMul / QGemm; everything else (activations, pooling, Q/DQ) is treated as
    free, which is the convention model cards use. FP32, FP16, QDQ and QOperator exports of one network give
    the same count. Nodes whose shapes stay unknown are skipped and named in ``OpCount.unknown``.
    """
    model = _load_copy(path_or_model)
    symbols = _set_batch_1(model)
    nodes = [(i, n, _RULES.get((n.domain, n.op_type))) for i, n in enumerate(model.graph.node)]
    compute = [(i, n, r) for i, n, r in nodes if r is not None]
    results: dict[int, tuple[int, Shape | None] | None] = {}
    # onnx infers no contrib op: compute their output shapes here and infer again, until nothing new is learnt
    for _ in range(1 + sum(1 for _, n, _r in compute if n.domain == _MS)):
        inferred = _infer(model)
        shapes = _shapes(inferred, symbols)
        results = {i: _count(n, r, shapes) for i, n, r in compute}
        learnt = False
        for i, n, _r in compute:
            res = results[i]
            if n.domain == _MS and res is not None and res[1] is not None and n.output[0] not in shapes:
                _set_shape(model, n.output[0], res[1])
                learnt = True
        if not learnt:
            break
    by_op: dict[str, int] = {}
    unknown: list[str] = []
    for i, n, _r in compute:
        res = results[i]
        if res is None:
            unknown.append(n.name or f"{n.op_type}#{i}")
            continue
        by_op[n.op_type] = by_op.get(n.op_type, 0) + res[0]
    return OpCount(macs=sum(by_op.values()), by_op=by_op, unknown=tuple(unknown))


# -- attainable peak --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peak:
    """Attainable arithmetic throughput of onnxruntime on this machine (2 ops per MAC)."""

    fp32_gflops: float
    int8_gops: float
    threads: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matmul_model(n: int, integer: bool, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A one-node n x n @ n x n model (weights as initializer, as in a real network) and its input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    if integer:
        a = rng.integers(0, 128, (n, n), dtype=np.uint8)  # u8 activations, s8 weights: the VNNI-friendly pair
        b = rng.integers(-64, 64, (n, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        a_t, y_t = TensorProto.UINT8, TensorProto.INT32
    else:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        a_t, y_t = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("a", a_t, [n, n])],
        [helper.make_tensor_value_info("y", y_t, [n, n])],
        [numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgecnn-peak")
    model.ir_version = 8
    return model.SerializeToString(), a


def _best_seconds(fn: Callable[[], object], budget_s: float, min_runs: int = 3) -> tuple[float, int]:
    """Fastest of repeated calls within ``budget_s`` (at least ``min_runs``): the attainable, not the typical."""
    fn()  # warm-up: first-run allocations and weight prepacking are not arithmetic
    best, runs = math.inf, 0
    start = time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best, runs


def measure_peak(threads: int = 1, seconds: float = 0.5, *, n: int = 1024) -> Peak:
    """Measure the attainable FP32 and INT8 peak of onnxruntime's CPU kernels with ``threads`` threads.

    Measured, not looked up: microarchitecture tables (cores x GHz x FMA width) lie on VMs, where clocks,
    SMT siblings, AVX-512 and VNNI are whatever the hypervisor grants, and they ignore what onnxruntime's
    kernels actually reach. A large n x n MatMul (FP32) and MatMulInteger (u8 x s8 -> s32) through the same
    runtime that serves the model is the ceiling a CNN's latency can fairly be compared with. Each kernel gets
    half of ``seconds`` of timed runs (at least 3, best one kept); session creation and warm-up are extra.
    """
    import onnxruntime as ort

    from edgecnn.runtime.session import build_session

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    ops = 2.0 * n**3
    rates: list[float] = []
    runs: list[int] = []
    for integer in (False, True):
        blob, a = _matmul_model(n, integer)
        sess = build_session(blob, so)
        feed = {"a": a}
        best, k = _best_seconds(lambda s=sess, f=feed: s.run(None, f), seconds / 2)
        rates.append(ops / best / 1e9)
        runs.append(k)
    method = (
        f"onnxruntime {ort.__version__} CPUExecutionProvider, intra_op_num_threads={threads}: "
        f"MatMul f32 and MatMulInteger u8xs8 {n}x{n}x{n}, 2 ops/MAC, best of {runs[0]} / {runs[1]} runs"
    )
    return Peak(fp32_gflops=rates[0], int8_gops=rates[1], threads=threads, method=method)


def fraction_of_peak(ops_per_image: float, images_per_second: float, peak_gops: float) -> float:
    """Achieved ops/s over the attainable peak: how much of the machine a model's throughput actually uses."""
    if peak_gops <= 0:
        raise ValueError(f"peak_gops must be > 0, got {peak_gops}")
    if ops_per_image < 0 or images_per_second < 0:
        raise ValueError("ops_per_image and images_per_second must be >= 0")
    return ops_per_image * images_per_second / (peak_gops * 1e9)


__all__ = ["OpCount", "Peak", "count_macs", "fraction_of_peak", "measure_peak"]
