"""Exact FP32 graph rewrites made before INT8 quantization, where onnxruntime would run the exported graph slowly.

Measured on EfficientNetB0 at 224×224 (``benchmarks/README.md``, "Issue #28"): the Keras input normalisation
(``Rescaling`` + ``Normalization``: a Mul, an Add and a Mul broadcast over the last axis of the NHWC input)
took ~11% of the INT8 inference in onnxruntime — its broadcast over a 3-wide innermost axis runs element by
element — and the squeeze-excite branches' ``Squeeze``/``Reshape`` round trips (tf2onnx's rendering of
Keras' ``GlobalAveragePooling2D`` + ``Reshape``) another ~3%, with a Transpose pair each once onnxruntime
moves the convolutions to NHWC. Both rewrites are exact up to float rounding:

* ``fold_input_affine``: a per-channel affine ``a·x + b`` on the graph input (scalar or last-axis constants),
  followed by the NHWC→NCHW Transpose and the first convolution(s), becomes ``x + b/a`` in NCHW (none when
  ``b`` is 0) and ``a`` is folded into the convolution weights (``conv(pad(a·x + b)) = conv_{W·a}(pad(x + b/a))``,
  the zero padding stays zero).
* ``drop_shape_round_trips``: a chain of Squeeze/Unsqueeze/Reshape/Flatten whose output has its input's shape
  is bypassed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_AFFINE = {"Mul", "Div", "Add", "Sub"}
_SHAPE_ONLY = {"Squeeze", "Unsqueeze", "Reshape", "Flatten"}
NHWC_TO_NCHW = [0, 3, 1, 2]


@dataclass(frozen=True)
class Simplified:
    """What the rewrites changed (recorded in the model's quantization metadata)."""

    input_affine_ops: int = 0  # element-wise input ops folded into the first convolution(s)
    shape_round_trips: int = 0  # shape-only chains bypassed

    def to_dict(self) -> dict[str, int]:
        return {"input_affine_ops": self.input_affine_ops, "shape_round_trips": self.shape_round_trips}


def simplify(model: Any) -> Simplified:
    """Apply the rewrites to ``model`` (an ``onnx.ModelProto``, changed in place)."""
    folded = fold_input_affine(model)
    trips = drop_shape_round_trips(model)
    return Simplified(input_affine_ops=folded, shape_round_trips=trips)


class _Graph:
    """Producer/consumer maps and constant values of a graph (rebuilt after each rewrite)."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inits = {t.name: t for t in graph.initializer}
        self.values = {name: numpy_helper.to_array(t) for name, t in self.inits.items()}
        for n in graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.outputs = {o.name for o in graph.output}

    def only_consumer(self, tensor: str) -> Any | None:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.outputs else None


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _affine_step(node: Any, g: _Graph, x: str, channels: int, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, offset) per channel of one element-wise op applied to ``x`` with a constant; None otherwise."""
    if node.op_type not in _AFFINE or len(node.input) != 2 or x not in node.input:
        return None
    other = node.input[1] if node.input[0] == x else node.input[0]
    if other not in g.values or (node.op_type in ("Div", "Sub") and node.input[0] != x):
        return None
    c = np.asarray(g.values[other], dtype=np.float64)
    if c.size == 1:
        c = np.full(channels, float(c.reshape(())))
    else:  # broadcast along the channel axis only
        shape = [1] * 4
        shape[axis] = channels
        if c.ndim > 4 or c.size != channels or list(np.broadcast_shapes(c.shape, (1,) * 4)) != shape:
            return None
        c = c.reshape(channels)
    one, zero = np.ones(channels), np.zeros(channels)
    if node.op_type == "Mul":
        return c, zero
    if node.op_type == "Div":
        return (1.0 / c, zero) if np.all(c != 0) else None
    return (one, c) if node.op_type == "Add" else (one, -c)


def fold_input_affine(model: Any) -> int:
    """Fold the element-wise input normalisation into the first convolution(s); the number of ops removed."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    g = _Graph(graph)
    inits = set(g.inits)
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        return 0
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[3].HasField("dim_value") or not 1 <= dims[3].dim_value <= 4:
        return 0  # an NHWC image with few channels: the layout tf2onnx exports Keras models in
    channels = dims[3].dim_value
    scale, offset = np.ones(channels), np.zeros(channels)
    removed: list[Any] = []
    tensor, axis, transpose = inputs[0].name, 3, None
    while (node := g.only_consumer(tensor)) is not None:
        if node.op_type == "Transpose" and transpose is None and list(_attr(node, "perm", [])) == NHWC_TO_NCHW:
            transpose, tensor, axis = node, node.output[0], 1
            continue
        step = _affine_step(node, g, tensor, channels, axis)
        if step is None:
            break
        scale, offset = step[0] * scale, step[0] * offset + step[1]
        removed.append(node)
        tensor = node.output[0]
    convs = g.consumers.get(tensor, [])
    if (
        not removed
        or transpose is None
        or tensor in g.outputs
        or not convs
        or np.any(scale == 0)
        or not all(_foldable_conv(c, g, channels) for c in convs)
    ):
        return 0
    # rewire: input → Transpose → (Add b/a) → convolutions with W·a
    transpose.input[0] = inputs[0].name
    feed = transpose.output[0]
    if np.any(offset != 0):
        name = f"{transpose.output[0]}_input_offset"
        add_const = (offset / scale).astype(np.float32).reshape(1, channels, 1, 1)
        graph.initializer.append(numpy_helper.from_array(add_const, name + "_value"))
        add = helper.make_node("Add", [feed, name + "_value"], [name], name=name)
        graph.node.insert(list(graph.node).index(transpose) + 1, add)
        feed = name
    for conv in convs:
        w_name = conv.input[1]
        w = g.values[w_name].astype(np.float64) * scale.reshape(1, channels, 1, 1)
        new = f"{w_name}_input_scaled"
        if new not in {t.name for t in graph.initializer}:
            graph.initializer.append(numpy_helper.from_array(w.astype(g.values[w_name].dtype), new))
        conv.input[1] = new
        conv.input[0] = feed
    for node in removed:
        graph.node.remove(node)
    _drop_unused_initializers(graph)
    onnx.checker.check_model(model)
    log.debug("folded %d input op(s) into %d convolution(s)", len(removed), len(convs))
    return len(removed)


def _foldable_conv(node: Any, g: _Graph, channels: int) -> bool:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[0] == node.input[1]:
        return False
    w = g.values.get(node.input[1])
    if w is None or w.ndim != 4 or w.shape[1] != channels or _attr(node, "group", 1) != 1:
        return False
    return all(c.op_type == "Conv" for c in g.consumers.get(node.input[1], []))


def drop_shape_round_trips(model: Any) -> int:
    """Bypass Squeeze/Unsqueeze/Reshape/Flatten chains whose output shape equals their input's; how many."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as err:  # shapes are an optimisation hint here, not a requirement
        log.debug("shape inference failed (%s): shape round trips kept", err)
        return 0
    shapes: dict[str, list[int | str | None]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    graph = model.graph
    done = 0
    changed = True
    while changed:
        changed = False
        g = _Graph(graph)
        for node in graph.node:
            if node.op_type not in _SHAPE_ONLY:
                continue
            up = g.producer.get(node.input[0])
            if up is not None and up.op_type in _SHAPE_ONLY:
                continue  # start at the first op of a chain
            start = node.input[0]
            chain, tensor = [node], node.output[0]
            while (nxt := g.only_consumer(tensor)) is not None and nxt.op_type in _SHAPE_ONLY:
                chain.append(nxt)
                tensor = nxt.output[0]
            end = _same_shape_end(chain, start, shapes)
            if end is None:
                continue
            if end.output[0] in g.outputs:
                continue
            bypassed = chain[: chain.index(end) + 1]  # every output but the last has one consumer: the next
            for user in g.consumers.get(end.output[0], []):
                for k, name in enumerate(user.input):
                    if name == end.output[0]:
                        user.input[k] = start
            for n in bypassed:
                graph.node.remove(n)
            done += 1
            changed = True
            break
    if done:
        _drop_unused_initializers(graph)
    return done


def _same_shape_end(chain: list[Any], start: str, shapes: dict[str, list[int | str | None]]) -> Any | None:
    """The last op of ``chain`` whose output has ``start``'s shape, or None. Shape-only ops keep the element
    order and count, so equal non-leading dimensions make the leading one equal too: the chain is an identity."""
    first = shapes.get(start)
    if not first or any(not isinstance(d, int) or d <= 0 for d in first[1:]):
        return None
    end = None
    for node in chain:
        out = shapes.get(node.output[0])
        if out is not None and len(out) == len(first) and out[1:] == first[1:]:
            end = node
    return end


def _drop_unused_initializers(graph: Any) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
