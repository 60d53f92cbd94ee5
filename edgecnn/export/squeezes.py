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
    while True:
        done = _one_pass(graph, ranks, fresh, outer_reads)
        if not done:
            return total
        total += done


def _one_pass(graph: onnx.GraphProto, ranks: dict[str, int], fresh: Fresh, outer_reads: set[str]) -> int:
    inits = {t.name: t for t in graph.initializer}
    pinned = {o.name for o in graph.output} | outer_reads
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name:
                readers.setdefault(name, []).append(i)

    def only_reader(name: str) -> int | None:
        if name in pinned or len(readers.get(name, ())) != 1:
            return None
        return readers[name][0]

    for i, node in enumerate(graph.node):
        if not _is(node, "Squeeze", "Unsqueeze"):
            continue
        j = only_reader(node.output[0])
        if j is None:
            continue
        done = _rewrite(graph, i, j, inits, ranks, fresh, readers, pinned, only_reader)
        if done:
            return done  # indices and reader maps are stale now
    return 0


def _rewrite(
    graph: onnx.GraphProto,
    i: int,
    j: int,
    inits: dict[str, onnx.TensorProto],
    ranks: dict[str, int],
    fresh: Fresh,
    readers: dict[str, list[int]],
    pinned: set[str],
    only_reader: Callable[[str], int | None],
) -> int:
    """Apply the first rule that fits node ``i`` (a Squeeze or Unsqueeze) and its only reader ``j``."""
    node, nxt = graph.node[i], graph.node[j]
    if node.op_type == "Unsqueeze":
        return _unsqueeze_reshape(node, nxt, inits)
    x = node.input[0]
    axes = _axes(node, inits, ranks.get(x))
    if axes is None:
        return 0
    cancels = _is(nxt, "Unsqueeze") and _axes(nxt, inits, ranks.get(x)) == axes
    if cancels and nxt.output[0] not in pinned and readers.get(nxt.output[0]):
        for k in readers[nxt.output[0]]:
            _rename_input(graph.node[k], nxt.output[0], x)
        return 1
    if _is(nxt, *ACTIVATIONS) and len(nxt.input) == 1:
        return _swap(graph, i, j, x, axes, ranks, fresh, inits, constant=None)
    if _is(nxt, *BINARY) and len(nxt.input) == 2:
        other = nxt.input[1] if nxt.input[0] == node.output[0] else nxt.input[0]
        if other in inits:
            return _swap(graph, i, j, x, axes, ranks, fresh, inits, constant=other)
    if _is(nxt, *GLOBAL_POOLS):
        return _pool_then_squeeze(graph, i, j, x, axes, ranks, fresh, inits, only_reader)
    return 0


def _swap(
    graph: onnx.GraphProto,
    i: int,
    j: int,
    x: str,
    axes: tuple[int, ...],
    ranks: dict[str, int],
    fresh: Fresh,
    inits: dict[str, onnx.TensorProto],
    constant: str | None,
) -> int:
    """``Squeeze@i → f@j`` becomes ``f'@i → Squeeze@j``: f' reads x (and a constant with size-1 axes at ``axes``)."""
    squeeze, op = graph.node[i], graph.node[j]
    rank = ranks.get(x)
    if rank is None:
        return 0
    inputs = [x]
    if constant is not None:
        value = numpy_helper.to_array(inits[constant])
        squeezed_rank = rank - len(axes)
        if value.ndim > squeezed_rank:
            return 0
        value = value.reshape((1,) * (squeezed_rank - value.ndim) + value.shape)
        for a in axes:  # ascending: each insert lands at its final position
            value = np.expand_dims(value, a)
        name = fresh(f"{constant}__unsqueezed")
        graph.initializer.append(numpy_helper.from_array(value, name))
        commutes = op.op_type in ("Add", "Mul")  # onnxruntime fuses Conv → Add only with the conv output first
        inputs = [x, name] if commutes or op.input[0] == squeeze.output[0] else [name, x]
    moved = onnx.NodeProto()
    moved.CopyFrom(op)
    del moved.input[:]
    moved.input.extend(inputs)
    moved.output[0] = fresh(f"{op.output[0]}__unsqueezed")
    ranks[moved.output[0]] = rank
    after = onnx.NodeProto()
    after.CopyFrom(squeeze)
    after.input[0] = moved.output[0]
    after.output[0] = op.output[0]
    graph.node[i].CopyFrom(moved)
    graph.node[j].CopyFrom(after)
    return 1


def _pool_then_squeeze(
    graph: onnx.GraphProto,
    i: int,
    j: int,
    x: str,
    axes: tuple[int, ...],
    ranks: dict[str, int],
    fresh: Fresh,
    inits: dict[str, onnx.TensorProto],
    only_reader: Callable[[str], int | None],
) -> int:
    """``Squeeze(A) → GlobalPool → Squeeze(all spatial axes)`` becomes ``GlobalPool → Squeeze(all spatial axes)``."""
    rank = ranks.get(x)
    pool = graph.node[j]
    k = only_reader(pool.output[0])
    if rank is None or k is None or min(axes) < 2:
        return 0
    last = graph.node[k]
    if not _is(last, "Squeeze") or _axes(last, inits, rank - len(axes)) != tuple(range(2, rank - len(axes))):
        return 0
    pool.input[0] = x
    pool.output[0] = fresh(f"{pool.output[0]}__unsqueezed")
    ranks[pool.output[0]] = rank
    new_axes = tuple(range(2, rank))
    if len(last.input) > 1:  # opset 13+: axes is an input
        name = fresh("squeeze_spatial_axes")
        graph.initializer.append(numpy_helper.from_array(np.array(new_axes, np.int64), name))
        del last.input[:]
        last.input.extend([pool.output[0], name])
    else:
        last.input[0] = pool.output[0]
        for attr in last.attribute:
            if attr.name == "axes":
                del attr.ints[:]
                attr.ints.extend(new_axes)
    return 1


def _unsqueeze_reshape(unsqueeze: onnx.NodeProto, reshape: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> int:
    """A Reshape to a constant target without 0s ignores its input's shape: skip the Unsqueeze before it."""
    if not _is(reshape, "Reshape") or reshape.input[0] != unsqueeze.output[0] or len(reshape.input) < 2:
        return 0
    target = inits.get(reshape.input[1])
    if target is None or (numpy_helper.to_array(target) == 0).any():
        return 0
    reshape.input[0] = unsqueeze.input[0]
    return 1


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
