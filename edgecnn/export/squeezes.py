"""Move the Squeezes tf2onnx writes around 1-D layers out of the way, so onnxruntime can fuse what they split.

Why: tf2onnx writes a Keras ``Conv1D`` as ``Unsqueeze → Conv (2-D) → Squeeze → Add(bias) → Relu → Unsqueeze →
MaxPool …``. The Squeeze between the convolution and its bias and activation stops onnxruntime's Conv+Add and
Conv+Relu fusions, and each 3-D stretch makes its NCHWc layout pass reorder the tensor out of and back into
blocked layout. On the telemetry Conv1D net that is 17 nodes where 10 do the same work.

What it does, each a rewrite with identical answers:

- ``Squeeze(x, A) → f`` with ``f`` elementwise (an activation, or Add/Sub/Mul/Div with a constant) becomes
  ``f' → Squeeze(A)``: the constant gets size-1 axes at ``A`` so it broadcasts exactly as before.
- ``Squeeze(x, A) → Unsqueeze(A)`` cancels: readers of the Unsqueeze read ``x``.
- ``Squeeze(x, A) → GlobalPool → Squeeze(B)`` that drops every spatial axis pools ``x`` and squeezes them all.
- ``Unsqueeze(x) → Reshape(constant target)`` reshapes ``x`` directly.

A Squeeze is moved only when it has exactly one reader, that reader is in the main graph, and its output is
not a graph output; axes must be constants. Anything else is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

ACTIVATIONS = frozenset(
    {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Abs", "Neg"}
)
BINARY = frozenset({"Add", "Sub", "Mul", "Div"})
GLOBAL_POOLS = frozenset({"GlobalMaxPool", "GlobalAveragePool"})

Fresh = Callable[[str], str]


def sink_squeezes(graph: onnx.GraphProto, ranks: dict[str, int], fresh: Fresh, outer_reads: set[str]) -> int:
    """Rewrite ``graph`` in place; return how many rewrites were made (dead nodes are left for the caller).

    ``ranks`` maps tensor names to their inferred rank (updated for names this creates); ``fresh`` makes a
    new unique tensor name; ``outer_reads`` are names read inside subgraphs, which are never rewired.
    """
    total = 0
    while done := _Pass(graph, ranks, fresh, outer_reads).first_rewrite():
        total += done  # one rewrite per pass: node indices and reader maps go stale after it
    return total


class _Pass:
    """One scan of the graph with its readers, constants and pinned names; applies the first rule that fits."""

    def __init__(self, graph: onnx.GraphProto, ranks: dict[str, int], fresh: Fresh, outer_reads: set[str]) -> None:
        self.graph, self.ranks, self.fresh = graph, ranks, fresh
        self.inits = {t.name: t for t in graph.initializer}
        self.pinned = {o.name for o in graph.output} | outer_reads
        self.readers: dict[str, list[int]] = {}
        for i, node in enumerate(graph.node):
            for name in node.input:
                if name:
                    self.readers.setdefault(name, []).append(i)

    def only_reader(self, name: str) -> int | None:
        if name in self.pinned or len(self.readers.get(name, ())) != 1:
            return None
        return self.readers[name][0]

    def first_rewrite(self) -> int:
        for i, node in enumerate(self.graph.node):
            j = self.only_reader(node.output[0]) if _is(node, "Squeeze", "Unsqueeze") else None
            if j is not None and self.rewrite(i, j):
                return 1
        return 0

    def rewrite(self, i: int, j: int) -> bool:
        """Apply the first rule that fits node ``i`` (a Squeeze or Unsqueeze) and its only reader ``j``."""
        node, nxt = self.graph.node[i], self.graph.node[j]
        if node.op_type == "Unsqueeze":
            return _unsqueeze_reshape(node, nxt, self.inits)
        x = node.input[0]
        axes = _axes(node, self.inits, self.ranks.get(x))
        if axes is None:
            return False
        cancels = _is(nxt, "Unsqueeze") and _axes(nxt, self.inits, self.ranks.get(x)) == axes
        if cancels and nxt.output[0] not in self.pinned and self.readers.get(nxt.output[0]):
            for k in self.readers[nxt.output[0]]:
                _rename_input(self.graph.node[k], nxt.output[0], x)
            return True
        if _is(nxt, *ACTIVATIONS) and len(nxt.input) == 1:
            return self.swap(i, j, x, axes, constant=None)
        if _is(nxt, *BINARY) and len(nxt.input) == 2:
            other = nxt.input[1] if nxt.input[0] == node.output[0] else nxt.input[0]
            return other in self.inits and self.swap(i, j, x, axes, constant=other)
        if _is(nxt, *GLOBAL_POOLS):
            return self.pool_then_squeeze(j, x, axes)
        return False

    def swap(self, i: int, j: int, x: str, axes: tuple[int, ...], constant: str | None) -> bool:
        """``Squeeze@i → f@j`` becomes ``f'@i → Squeeze@j``; f' reads x (and the constant, given 1s at ``axes``)."""
        squeeze, op = self.graph.node[i], self.graph.node[j]
        rank = self.ranks.get(x)
        if rank is None:
            return False
        inputs = [x]
        if constant is not None:
            value = numpy_helper.to_array(self.inits[constant])
            squeezed_rank = rank - len(axes)
            if value.ndim > squeezed_rank:
                return False
            value = value.reshape((1,) * (squeezed_rank - value.ndim) + value.shape)
            for a in axes:  # ascending: each insert lands at its final position
                value = np.expand_dims(value, a)
            name = self.fresh(f"{constant}__unsqueezed")
            self.graph.initializer.append(numpy_helper.from_array(value, name))
            commutes = op.op_type in ("Add", "Mul")  # onnxruntime fuses Conv → Add only with the conv output first
            inputs = [x, name] if commutes or op.input[0] == squeeze.output[0] else [name, x]
        moved = onnx.NodeProto()
        moved.CopyFrom(op)
        del moved.input[:]
        moved.input.extend(inputs)
        moved.output[0] = self.fresh(f"{op.output[0]}__unsqueezed")
        self.ranks[moved.output[0]] = rank
        after = onnx.NodeProto()
        after.CopyFrom(squeeze)
        after.input[0] = moved.output[0]
        after.output[0] = op.output[0]
        self.graph.node[i].CopyFrom(moved)
        self.graph.node[j].CopyFrom(after)
        return True

    def pool_then_squeeze(self, j: int, x: str, axes: tuple[int, ...]) -> bool:
        """``Squeeze(A) → GlobalPool → Squeeze(spatial axes)`` becomes ``GlobalPool → Squeeze(spatial axes)``."""
        rank = self.ranks.get(x)
        pool = self.graph.node[j]
        k = self.only_reader(pool.output[0])
        if rank is None or k is None or min(axes) < 2:
            return False
        last = self.graph.node[k]
        pooled_rank = rank - len(axes)
        if not _is(last, "Squeeze") or _axes(last, self.inits, pooled_rank) != tuple(range(2, pooled_rank)):
            return False
        pool.input[0] = x
        pool.output[0] = self.fresh(f"{pool.output[0]}__unsqueezed")
        self.ranks[pool.output[0]] = rank
        new_axes = tuple(range(2, rank))
        if len(last.input) > 1:  # opset 13+: axes is an input
            name = self.fresh("squeeze_spatial_axes")
            self.graph.initializer.append(numpy_helper.from_array(np.array(new_axes, np.int64), name))
            del last.input[:]
            last.input.extend([pool.output[0], name])
        else:
            last.input[0] = pool.output[0]
            for attr in last.attribute:
                if attr.name == "axes":
                    del attr.ints[:]
                    attr.ints.extend(new_axes)
        return True


def _unsqueeze_reshape(unsqueeze: onnx.NodeProto, reshape: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    """A Reshape to a constant target without 0s ignores its input's shape: skip the Unsqueeze before it."""
    if not _is(reshape, "Reshape") or reshape.input[0] != unsqueeze.output[0] or len(reshape.input) < 2:
        return False
    target = inits.get(reshape.input[1])
    if target is None or (numpy_helper.to_array(target) == 0).any():
        return False
    reshape.input[0] = unsqueeze.input[0]
    return True


def _axes(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], rank: int | None) -> tuple[int, ...] | None:
    """A Squeeze's or Unsqueeze's axes, sorted and non-negative; None when they are not constant.

    ``rank`` is the rank of the Squeeze's input or the Unsqueeze's output (needed only for negative axes).
    """
    if len(node.input) > 1 and node.input[1]:
        tensor = inits.get(node.input[1])
        if tensor is None:
            return None
        raw: Sequence[int] = [int(a) for a in numpy_helper.to_array(tensor).ravel()]
    else:
        found = [list(a.ints) for a in node.attribute if a.name == "axes"]
        if not found:
            return None  # Squeeze without axes drops every size-1 axis: depends on shapes
        raw = found[0]
    if any(a < 0 for a in raw):
        if rank is None:
            return None
        raw = [a + rank if a < 0 else a for a in raw]
    return tuple(sorted(raw))


def _is(node: onnx.NodeProto, *ops: str) -> bool:
    return node.op_type in ops and node.domain in ("", "ai.onnx")


def _rename_input(node: onnx.NodeProto, old: str, new: str) -> None:
    for k, name in enumerate(node.input):
        if name == old:
            node.input[k] = new
