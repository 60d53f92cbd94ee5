"""Fold computed Flatten targets into constant reshapes, move 1-D layers' Squeezes, drop what became dead.

The Squeeze rules live in ``edgecnn.export.squeezes``; this module's own rule is the Flatten fold.

Why: tf2onnx writes a Keras ``Flatten`` with a dynamic batch as ``Shape → Cast → Slice/Gather → Concat →
(Cast) → Reshape``. At batch 1 onnxruntime pays one to three microseconds per node, so on small convnets those
six nodes are a visible share of an inference; worse, the ``Shape`` pins an extra NCHW/NHWC reorder of the
last convolution's output. When the target is ``[batch, d1, d2, …]`` with static ``d``, it is exactly
``[-1, d1, d2, …]``: Reshape keeps the element count, so ``-1`` resolves to the batch again.

How it decides: onnx shape inference with data propagation (onnx only: no TensorFlow, nothing is run). A
Reshape is folded only when the inferred output's first axis is provably the input's first axis (the same
symbol, or the same number) and every later axis is a positive number. Anything else is left alone.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgecnn.export.squeezes import sink_squeezes

Dim = int | str | None  # a static size, a symbol, or unknown


@dataclass(frozen=True)
class SimplifyReport:
    """What ``simplify`` changed: nodes removed by op type, and how many Reshapes now read a constant target."""

    removed_nodes: dict[str, int] = field(default_factory=dict)
    folded_reshapes: int = 0
    moved_squeezes: int = 0

    @property
    def changed(self) -> bool:
        return self.folded_reshapes > 0 or self.moved_squeezes > 0 or bool(self.removed_nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folded_reshapes": self.folded_reshapes,
            "moved_squeezes": self.moved_squeezes,
            "removed_nodes": dict(self.removed_nodes),
        }


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """A simplified copy of ``model``; ``model`` itself (same object, untouched) when there is nothing to do.

    Only the folded Reshapes' second inputs, the Squeezes moved by ``sink_squeezes``, the nodes and
    initializers that became unused, and stale ``value_info`` change; opset, IR version, metadata and the
    graph's inputs and outputs stay as they were.
    """
    if model.ir_version < 4 or not _worth_a_look(model.graph):  # IR < 4: initializers must be inputs
        return model, SimplifyReport()
    shapes = _inferred_shapes(model)
    out = copy.deepcopy(model)
    graph = out.graph
    taken = set(_names(graph))
    folds = _foldable_reshapes(model, shapes)
    for index, target in folds.items():
        node = graph.node[index]
        name = _fresh(f"{node.input[1]}__folded", taken)
        graph.initializer.append(numpy_helper.from_array(np.asarray(target, dtype=np.int64), name))
        node.input[1] = name
    ranks = {name: len(dims) for name, dims in shapes.items()}
    outer = _reads_of(g_node for n in graph.node for g in _subgraphs(n) for g_node in g.node)
    moved = sink_squeezes(graph, ranks, lambda base: _fresh(base, taken), outer)
    removed = _remove_dead(graph, read_before=_reads_of(model.graph.node))
    if not folds and not moved and not removed:
        return model, SimplifyReport()
    _drop_stale_value_info(graph)
    counts = Counter(n.op_type for n in removed)
    return out, SimplifyReport(dict(sorted(counts.items())), len(folds), moved)


def _worth_a_look(graph: onnx.GraphProto) -> bool:
    """Whether any rule could apply: skips shape inference and the copy on graphs with nothing to do."""
    ops = {n.op_type for n in graph.node}
    return bool(ops & {"Reshape", "Squeeze", "Unsqueeze"}) or len(_live_nodes(graph)) < len(graph.node)


def _drop_stale_value_info(graph: onnx.GraphProto) -> None:
    """value_info for names no node writes any more, or for names a rewrite gave a new shape, is dropped."""
    written = {o for n in graph.node for o in n.output}
    kept = [v for v in graph.value_info if v.name in written]
    del graph.value_info[:]
    graph.value_info.extend(kept)


def _foldable_reshapes(model: onnx.ModelProto, shapes: dict[str, list[Dim]]) -> dict[int, list[int]]:
    """Node index → constant target ``[-1, d…]`` for each Reshape whose computed target is ``[batch, d…]``."""
    graph = model.graph
    constant = {t.name for t in graph.initializer} | {i.name for i in graph.input}
    constant |= {o for n in graph.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx") for o in n.output}
    candidates = [
        i
        for i, n in enumerate(graph.node)
        if n.op_type == "Reshape"
        and n.domain in ("", "ai.onnx")
        and len(n.input) == 2
        and n.input[1]
        and n.input[1] not in constant
        and not any(a.name == "allowzero" and a.i != 0 for a in n.attribute)
    ]
    folds = {}
    for i in candidates:
        node = graph.node[i]
        src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not src or not dst or len(dst) < 2 or src[0] is None or src[0] != dst[0]:
            continue  # the first axis is not provably the input's batch
        rest = dst[1:]
        if all(isinstance(d, int) and d > 0 for d in rest):
            folds[i] = [-1, *(int(d) for d in rest)]  # type: ignore[arg-type]
    return folds


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, list[Dim]]:
    """Shapes onnx infers from the graph inputs alone (stored value_info and output shapes are not trusted)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.value_info[:]
    for output in probe.graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # a graph onnx cannot infer (unknown ops, > 2 GiB) is not ours to fold
        return {}
    shapes = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        tensor = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor.HasField("shape"):
            shapes[info.name] = [_dim(d) for d in tensor.shape.dim]
    return shapes


def _dim(d: onnx.TensorShapeProto.Dimension) -> Dim:
    if d.HasField("dim_value"):
        return int(d.dim_value)
    return d.dim_param or None


def _live_nodes(graph: onnx.GraphProto) -> list[int]:
    """Indices of the nodes left after repeatedly dropping those whose outputs no live node or graph output reads."""
    live = list(range(len(graph.node)))
    outputs = {o.name for o in graph.output}
    while True:
        needed = outputs | _reads_of(graph.node[i] for i in live)
        keep = [i for i in live if any(o and o in needed for o in graph.node[i].output)]
        if len(keep) == len(live):
            return live
        live = keep


def _remove_dead(graph: onnx.GraphProto, read_before: set[str]) -> list[onnx.NodeProto]:
    """Drop dead nodes, the initializers only they read, and value_info of what is gone; return the dropped nodes."""
    live = _live_nodes(graph)
    if len(live) == len(graph.node):
        return []
    kept = set(live)
    removed = [copy.deepcopy(n) for i, n in enumerate(graph.node) if i not in kept]
    nodes = [copy.deepcopy(graph.node[i]) for i in live]
    del graph.node[:]
    graph.node.extend(nodes)
    read_now = _reads_of(graph.node)
    pinned = {i.name for i in graph.input} | {o.name for o in graph.output}
    unused = {t.name for t in graph.initializer if t.name in read_before and t.name not in read_now | pinned}
    if unused:
        kept_inits = [t for t in graph.initializer if t.name not in unused]
        del graph.initializer[:]
        graph.initializer.extend(kept_inits)
    gone = unused | {o for n in removed for o in n.output}
    if any(v.name in gone for v in graph.value_info):
        kept_info = [v for v in graph.value_info if v.name not in gone]
        del graph.value_info[:]
        graph.value_info.extend(kept_info)
    return removed


def _reads_of(nodes: Iterable[onnx.NodeProto]) -> set[str]:
    """Every name the nodes read, including names their subgraphs (If, Loop, Scan) read from outer scopes."""
    reads: set[str] = set()
    for node in nodes:
        reads.update(i for i in node.input if i)
        for graph in _subgraphs(node):
            reads |= _reads_of(graph.node)
            reads.update(o.name for o in graph.output)
    return reads


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _names(graph: onnx.GraphProto) -> Iterator[str]:
    """Every tensor name in the graph and its subgraphs, so a new initializer cannot shadow one."""
    for info in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        yield info.name
    for node in graph.node:
        yield from node.input
        yield from node.output
        for sub in _subgraphs(node):
            yield from _names(sub)


def _fresh(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name
