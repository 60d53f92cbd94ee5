"""Op coverage of the graph onnxruntime really runs (after its optimisations), not the file on disk."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from edgecnn.quantize.anatomy import INT8_KERNELS

FLOAT_COMPUTE = ("Conv", "FusedConv", "NchwcConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose")


def optimized_ops(path: str | Path, threads: int = 1) -> Counter[str]:
    """Op histogram of the graph onnxruntime runs on CPU after ORT_ENABLE_EXTENDED optimisation.

    (EXTENDED keeps the graph portable for saving; the ALL level only adds layout transforms.)
    """
    import onnx
    import onnxruntime as ort

    from edgecnn.runtime.session import session_hints

    with tempfile.TemporaryDirectory(prefix="edgecnn-opt-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(out)
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        hints = session_hints(onnx.load(str(path), load_external_data=False))  # as the engine will run it
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], **hints)
        model = onnx.load(str(out))
    return Counter(n.op_type for n in model.graph.node)


def coverage(path: str | Path) -> dict[str, Any]:
    """How many compute nodes run as quantized kernels, and which float ones remain."""
    ops = optimized_ops(path)
    quant = {k: v for k, v in ops.items() if k in INT8_KERNELS}
    floating = {k: v for k, v in ops.items() if k in FLOAT_COMPUTE}
    return {
        "quantized_ops": quant,
        "float_ops": floating,
        "quantized": sum(quant.values()),
        "float": sum(floating.values()),
        "ops": dict(ops.most_common()),
    }
