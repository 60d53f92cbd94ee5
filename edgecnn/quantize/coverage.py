"""Op coverage of the graph onnxruntime really runs (after its optimisations), not the file on disk."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

# kernels that run INT8 (QDQ fusions keep the node name: Conv -> QLinearConv of the same name)
INT8_KERNELS = frozenset(
    {
        "QLinearConv",
        "QLinearMatMul",
        "QGemm",
        "QLinearAdd",
        "QLinearMul",
        "QLinearConcat",
        "QLinearGlobalAveragePool",
        "QLinearAveragePool",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearSoftmax",
        "QLinearWhere",
        "ConvInteger",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
    }
)
FLOAT_COMPUTE = ("Conv", "FusedConv", "NchwcConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose")


def optimized_graph(path: str | Path, threads: int = 1) -> Any:
    """The graph onnxruntime runs on CPU after ORT_ENABLE_EXTENDED optimisation (the model's session hints on).

    (EXTENDED keeps the graph portable for saving; the ALL level only adds layout transforms.)
    """
    import onnx
    import onnxruntime as ort

    from edgecnn.runtime.session import build_session

    with tempfile.TemporaryDirectory(prefix="edgecnn-opt-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(out)
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        build_session(path, so)  # with the model's session hints: as the engine will run it
        return onnx.load(str(out)).graph


def coverage(path: str | Path, optimized: Any = None) -> dict[str, Any]:
    """How many compute nodes run as quantized kernels, and which float ones remain (``optimized``: the
    graph ``optimized_graph(path)`` gives, when the caller has it already)."""
    ops = Counter(n.op_type for n in (optimized or optimized_graph(path)).node)
    quant = {k: v for k, v in ops.items() if k in INT8_KERNELS}
    floating = {k: v for k, v in ops.items() if k in FLOAT_COMPUTE}
    return {
        "quantized_ops": quant,
        "float_ops": floating,
        "quantized": sum(quant.values()),
        "float": sum(floating.values()),
        "ops": dict(ops.most_common()),
    }
