"""Fold computed reshape targets into constants and drop the nodes that only computed them.

Why: tf2onnx writes a Keras ``Flatten`` with a dynamic batch as ``Shape → Gather/Slice → Concat → Cast →
Reshape``. At batch 1 onnxruntime pays about a microsecond per node, so on the course's small convnets
those 6–8 nodes are a fifth of an INT8 inference; worse, the ``Shape`` pins an extra layout transpose of
the last convolution's output. The target shape of such a Reshape is ``[batch, d1, d2, …]`` with static
``d``: that is exactly ``[-1, d1, d2, …]``.

How it decides, without trusting symbolic shape inference: the candidate shape tensors are made extra
graph outputs and the model is run by onnxruntime at two batch sizes; a target that reads ``[b, d…]``
at both (first element the batch, the rest equal) is replaced by the constant ``[-1, d…]``. Anything
else is left alone. Onnx/onnxruntime only: no TensorFlow.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBE_BATCHES = (1, 3)


@dataclass(frozen=True)
class SimplifyReport:
    folded_reshapes: int = 0
    removed_nodes: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.folded_reshapes > 0

    def to_dict(self) -> dict[str, Any]:
        return {"folded_reshapes": self.folded_reshapes, "removed_nodes": dict(self.removed_nodes)}


def simplify(model: Any) -> tuple[Any, SimplifyReport]:
    """A simplified copy of ``model`` (an ``onnx.ModelProto`` with one input whose first axis is the batch)."""
    graph = model.graph
    constants = {t.name for t in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output
    }
    candidates = [
        i
        for i, n in enumerate(graph.node)
        if n.op_type == "Reshape"
        and len(n.input) == 2
        and n.input[1] not in constants
        and not any(a.name == "allowzero" and a.i == 1 for a in n.attribute)
    ]
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if not candidates or len(inputs) != 1:
        return model, SimplifyReport()
    targets = _probe_targets(model, inputs[0], sorted({graph.node[i].input[1] for i in candidates}))
    if targets is None:
        return model, SimplifyReport()
    from onnx import numpy_helper

    out = copy.deepcopy(model)  # same node order: candidates index into it
    folded = 0
    for i in candidates:
        node = out.graph.node[i]
        const = _batch_major(targets[node.input[1]])
        if const is None:
            continue
        name = f"{node.input[1]}__folded{i}"
        out.graph.initializer.append(numpy_helper.from_array(np.asarray(const, dtype=np.int64), name))
        node.input[1] = name
        folded += 1
    if not folded:
        return model, SimplifyReport()
    before = Counter(n.op_type for n in out.graph.node)
    _remove_dead(out)
    after = Counter(n.op_type for n in out.graph.node)
    return out, SimplifyReport(folded, {k: v for k, v in (before - after).items() if v})


def _probe_targets(model: Any, graph_input: Any, names: list[str]) -> dict[str, list[np.ndarray]] | None:
    """Values of the tensors ``names`` at each probe batch size, computed by onnxruntime (None if it cannot)."""
    import onnx
    import onnxruntime as ort

    probe = copy.deepcopy(model)
    del probe.graph.value_info[:]
    for name in names:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    dims = graph_input.type.tensor_type.shape.dim
    if not dims or any(not d.HasField("dim_value") for d in dims[1:]):
        return None
    elem = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
        values: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for batch in PROBE_BATCHES:
            x = np.zeros((batch, *[d.dim_value for d in dims[1:]]), dtype=elem)
            outs = session.run(names, {graph_input.name: x})
            for name, value in zip(names, outs, strict=True):
                values[name].append(np.asarray(value))
    except Exception:  # a graph onnxruntime cannot run as-is is not ours to simplify
        return None
    return values


def _batch_major(values: list[np.ndarray]) -> list[int] | None:
    """``[-1, d…]`` when each probe's target is ``[batch, d…]`` with the same ``d``; else None."""
    rests = []
    for batch, value in zip(PROBE_BATCHES, values, strict=True):
        flat = [int(v) for v in np.asarray(value).reshape(-1)]
        if len(flat) < 2 or flat[0] != batch or any(v <= 0 for v in flat[1:]):
            return None
        rests.append(flat[1:])
    if any(r != rests[0] for r in rests):
        return None
    return [-1, *rests[0]]


def _remove_dead(model: Any) -> None:
    """Drop nodes none of whose outputs are used, then initializers nothing reads."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
            for attr in node.attribute:  # subgraphs (If/Loop) read outer names
                for g in [attr.g, *attr.graphs]:
                    for sub in g.node:
                        needed.update(i for i in sub.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = needed
    kept_init = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_init)
    kept_vi = [v for v in graph.value_info if v.name in used]
    del graph.value_info[:]
    graph.value_info.extend(kept_vi)
