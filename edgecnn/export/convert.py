"""Keras → ONNX conversion strategies, tried in order; every failure is kept for the final message.

1. ``tf2onnx.frozen_graph``: trace a ``tf.function`` with an explicit ``TensorSpec((None, ...))``, freeze it
   (``convert_variables_to_constants_v2``), let grappler inline the functions Keras marks no-inline
   (``edgecnn.export.tf_rules.allow_inlining``), convert with ``tf2onnx.convert.from_graph_def`` and edgecnn's
   extra rules (``tf_rules.custom_op_handlers``).
2. ``tf2onnx.from_function``: tf2onnx's own freezing of the same function (it repairs a few freezing errors
   that step 1 does not), with the same rules. ``tf2onnx.convert.from_keras`` fails on Keras 3 (KeyError
   'keras_tensor_N'), so it is not a strategy.
3. Keras' own ``model.export(path, format="onnx")`` once the model has been called.

tf2onnx's graph optimizer deep-copies the whole graph before each of its ~36 passes so that a pass that raises
can be skipped (``catch_errors``): a quarter of InceptionResNetV2's conversion, and a copy of every weight per
pass. Strategies 1 and 2 run without that copy first and, only when that raises, again with it
(``_tf2onnx_without_copies``): both give the same graph (``benchmarks/tf2onnx_copies.py`` compares them node by
node; NASNetMobile's differs by a Reshape or two from one tf2onnx run to the next either way, with identical
outputs). InceptionResNetV2 at 75×75 converts in 36 s instead of 67, EfficientNetB0 in 7 s instead of 11; where
a pass does raise (tf2onnx's transpose optimizer on MobileNetV3's hard-swish) the retry costs ~1.5× (4 → 6 s).

A strategy fails by raising; converting "successfully" with TF ops left in the graph (tf2onnx's
``continue_on_error``) counts as a failure too (``UnsupportedOpsError``), and so does a graph that
``onnx.checker`` rejects, so the next strategy gets its turn. When all fail, one ExportError lists each
strategy's failure, the unsupported ops with the Keras layers they come from, and what the user can do.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ExportError

log = logging.getLogger(__name__)
INPUT_NAME = "input"
OUTPUT_NAME = "output"
CALL_OPS = frozenset({"StatefulPartitionedCall", "PartitionedCall"})
CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"  # tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS


@dataclass(frozen=True, slots=True)
class Converted:
    model: Any  # onnx.ModelProto
    strategy: str


@dataclass(frozen=True, slots=True)
class UnsupportedNode:
    """A node the converter left in TensorFlow form: its TF name, op type, and the Keras layer it belongs to."""

    name: str
    op: str
    layer: str | None


class UnsupportedOpsError(ExportError):
    """The converter returned a graph with TF ops that no ONNX runtime can run (``exc.nodes`` lists them)."""

    def __init__(self, message: str, nodes: tuple[UnsupportedNode, ...]) -> None:
        super().__init__(message)
        self.nodes = nodes


def _forward(model: Any) -> tuple[Any, tuple[Any, ...]]:
    import tensorflow as tf

    shape = (None, *tuple(model.inputs[0].shape[1:]))
    spec = (tf.TensorSpec(shape, tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    return forward, spec


def _from_frozen_graph(model: Any, opset: int) -> Any:
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tf2onnx import tf_loader

    from edgecnn.export.tf_rules import allow_inlining, custom_op_handlers

    forward, _ = _forward(model)
    concrete = forward.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    inlinable = allow_inlining(graph_def)
    if inlinable:
        log.info("%d no-inline/XLA functions made inlinable (e.g. %s)", len(inlinable), inlinable[0])
    graph_def = tf_loader.fix_freezing_errors_part2(graph_def)
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in frozen.outputs]
    with tf.device("/cpu:0"):
        proto, _ = _tf2onnx_without_copies(
            tf2onnx.convert.from_graph_def,
            graph_def,
            name=concrete.name,
            input_names=inputs,
            output_names=outputs,
            opset=opset,
            custom_op_handlers=custom_op_handlers(),
        )
    _freeze_captured_inputs(proto, concrete)
    _check_single_input(proto)
    return proto


def _from_function(model: Any, opset: int) -> Any:
    import tf2onnx

    from edgecnn.export.tf_rules import custom_op_handlers

    forward, spec = _forward(model)
    handlers = custom_op_handlers()
    proto, _ = _tf2onnx_without_copies(
        tf2onnx.convert.from_function, forward, input_signature=spec, opset=opset, custom_op_handlers=handlers
    )
    _freeze_captured_inputs(proto, forward.get_concrete_function())
    _check_single_input(proto)
    return proto


def _tf2onnx_without_copies(convert_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``convert_fn(*args, **kwargs)`` with tf2onnx's per-pass graph copies off; when that raises, once more
    with them on (a failing optimizer pass is then skipped, as tf2onnx does by default)."""
    # tf2onnx turns the copies off whenever this variable is set, whatever its value (convert._convert_common)
    saved = os.environ.pop(CATCH_ERRORS, None)
    os.environ[CATCH_ERRORS] = "FALSE"
    try:
        return convert_fn(*args, **kwargs)
    except Exception as err:
        log.info("tf2onnx without per-pass copies failed (%s: %s); converting again with them", type(err).__name__, err)
        del os.environ[CATCH_ERRORS]
        return convert_fn(*args, **kwargs)
    finally:
        os.environ.pop(CATCH_ERRORS, None)
        if saved is not None:
            os.environ[CATCH_ERRORS] = saved


def _freeze_captured_inputs(proto: Any, concrete: Any) -> None:
    """Turn captured constant tensors that tf2onnx left as graph inputs into initializers.

    Keras 3 layers such as Normalization (inside EfficientNet) hold plain tensors, which the tf.function
    captures; tf2onnx freezes variables only, so those captures surface as extra graph inputs.
    """
    import numpy as np
    from onnx import numpy_helper

    values = {}
    for external, internal in concrete.graph.captures:
        try:
            values[internal.name] = np.asarray(external.numpy())
        except Exception:  # resource handles (variables) were frozen by tf2onnx already; skip them
            continue
    inits = {i.name for i in proto.graph.initializer}
    keep = []
    for value_info in proto.graph.input:
        if value_info.name not in inits and value_info.name in values:
            proto.graph.initializer.append(numpy_helper.from_array(values[value_info.name], value_info.name))
        else:
            keep.append(value_info)
    if len(keep) != len(proto.graph.input):
        del proto.graph.input[:]
        proto.graph.input.extend(keep)


def _check_single_input(proto: Any) -> None:
    """A captured tensor that was not frozen shows up as an extra graph input: the graph is unusable."""
    inits = {i.name for i in proto.graph.initializer}
    extra = [i.name for i in proto.graph.input if i.name not in inits][1:]
    if extra:
        raise ExportError(f"captured tensors became graph inputs instead of constants: {extra[:3]}")


def _keras_export(model: Any, opset: int) -> Any:
    import numpy as np
    import onnx

    shape = (1, *tuple(model.inputs[0].shape[1:]))
    model(np.zeros(shape, np.float32), training=False)
    with tempfile.TemporaryDirectory(prefix="edgecnn-export-") as tmp:
        out = Path(tmp) / "model.onnx"
        model.export(str(out), format="onnx", verbose=False, opset_version=opset)
        proto = onnx.load(str(out))
    _check_single_input(proto)
    return proto


STRATEGIES: tuple[tuple[str, Callable[[Any, int], Any]], ...] = (
    ("tf2onnx.frozen_graph", _from_frozen_graph),
    ("tf2onnx.from_function", _from_function),
    ("keras.export(onnx)", _keras_export),
)


def convert(model: Any, opset: int, *, name: str | None = None) -> Converted:
    """Try each strategy; return the first valid ONNX model, or raise ExportError listing every failure.

    A strategy's result counts only when every node is an ONNX op of ``opset`` and ``onnx.checker`` accepts
    the graph. ``name`` (default: the model's) starts the error message.
    """
    from edgecnn._optional import require

    require("tensorflow")
    require("tf2onnx")
    name = name or getattr(model, "name", "model")
    failures: list[str] = []
    unsupported: list[UnsupportedOpsError] = []
    layers = None
    for strategy_name, strategy in STRATEGIES:
        try:
            proto = strategy(model, opset)
            layers = layers if layers is not None else keras_layer_names(model)
            check_converted(proto, opset, layers, root=getattr(model, "name", None))
        except UnsupportedOpsError as err:
            unsupported.append(err)
            failures.append(f"{strategy_name}: {err}")
            log.info("export strategy %s left unsupported ops: %s", strategy_name, err)
            continue
        except Exception as err:  # converters raise anything; we report each
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            failures.append(f"{strategy_name}: {type(err).__name__}: {first}")
            log.info("export strategy %s failed: %s", strategy_name, err)
            continue
        finally:
            # tf2onnx's graph is a web of cycles (nodes ↔ graph) holding its weights in upb arenas (with its
            # per-pass copies, a retry's: ~1 GB per 100 MB of weights), freed only by a full collection
            gc.collect()
        if failures:
            log.info("%s: converted by %s after %d failed strategies", name, strategy_name, len(failures))
        rename_io(proto)
        return Converted(proto, strategy_name)
    raise ExportError(_failure_message(name, opset, failures, unsupported))


def check_converted(proto: Any, opset: int, layers: Iterable[str] = (), *, root: str | None = None) -> None:
    """Raise UnsupportedOpsError when nodes are not ONNX ops (TF ops tf2onnx left in), ExportError when
    ``onnx.checker`` rejects the graph."""
    import onnx

    imports = {i.domain or "": i.version for i in proto.opset_import}
    known = set(layers)
    nodes = []
    for node in proto.graph.node:
        domain = node.domain or ""
        if domain in ("", "ai.onnx"):
            ok = onnx.defs.has(node.op_type, imports.get("", opset), "")
        else:
            ok = domain in imports and onnx.defs.has(node.op_type, imports[domain], domain)
        if not ok:
            nodes.append(UnsupportedNode(node.name, node.op_type, layer_of(node.name, known, root=root)))
    if nodes:
        raise UnsupportedOpsError(_describe_nodes(nodes), tuple(nodes))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"the converted model fails onnx.checker: {str(err).strip().splitlines()[0]}") from err


def keras_layer_names(model: Any) -> set[str]:
    """Names of every layer of ``model``, nested models and their layers included."""
    names: set[str] = set()
    stack = [model]
    seen: set[int] = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if getattr(layer, "name", None):
            names.add(layer.name)
        stack.extend(getattr(layer, "layers", None) or [])
    return names


_UNIQUIFIED = re.compile(r"_\d+$")


def layer_of(tf_name: str, layers: Iterable[str], *, root: str | None = None) -> str | None:
    """The Keras layer a TF node name comes from: the innermost name scope that is a layer's name.

    TensorFlow uniquifies a scope by appending ``_N`` (``convnext_tiny_1/..._depthwise_conv_1/Conv2D``), so
    a scope matches a layer exactly or once that suffix is dropped. The outermost model (``root``) is only
    the answer when nothing inside matches.
    """
    known = set(layers)
    scopes = tf_name.split("/")[:-1] or [tf_name]
    for scope in reversed(scopes):
        for candidate in (scope, _UNIQUIFIED.sub("", scope)):
            if candidate in known and candidate != root:
                return candidate
    return None


def _describe_nodes(nodes: Iterable[UnsupportedNode]) -> str:
    nodes = list(nodes)
    counts = Counter(n.op for n in nodes)
    parts = []
    for op, count in counts.most_common():
        layers = sorted({n.layer for n in nodes if n.op == op and n.layer})
        where = ""
        if layers:
            shown = ", ".join(repr(x) for x in layers[:3])
            more = f" and {len(layers) - 3} more" if len(layers) > 3 else ""
            where = f" in layer{'s' if len(layers) > 1 else ''} {shown}{more}"
        parts.append(f"{op} ×{count}{where}")
    return "TF ops left unconverted: " + "; ".join(parts)


def _failure_message(name: str, opset: int, failures: list[str], unsupported: list[UnsupportedOpsError]) -> str:
    lines = [f"{name}: no conversion strategy worked (opset {opset}):", *(f"  {f}" for f in failures)]
    if unsupported:
        from edgecnn.export.tf_rules import first_opset_with_rule

        best = min(unsupported, key=lambda e: len(e.nodes))  # the strategy that got furthest
        ops = sorted({n.op for n in best.nodes})
        lines.append("What to do:")
        for op in ops:
            since = None if op in CALL_OPS else first_opset_with_rule(op)
            if op in CALL_OPS:
                advice = "a TensorFlow function call that was not inlined (a tf.function with jit_compile "
                advice += "or a custom call inside the layer); call the ops directly instead"
            elif since is not None and since > opset:
                advice = f"tf2onnx converts it from opset {since}: export with --opset {since}"
            else:
                advice = (
                    "tf2onnx has no conversion rule for it at any opset: rewrite the layer with other ops (keras.ops), "
                    "or add a rule for it to edgecnn/export/tf_rules.py"
                )
            lines.append(f"  {op}: {advice}")
        lines.append("  (--unsafe does not help: it only allows loading model files that can run code)")
    return "\n".join(lines)


def rename_io(proto: Any) -> None:
    """Give the graph the stable IO names 'input' and 'output' (tf2onnx appends ':0' and tensor names)."""
    graph = proto.graph
    for value in [*graph.input, *graph.output]:  # the dynamic batch axis gets a readable name
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    renames = {}
    if len(inputs) == 1 and inputs[0].name != INPUT_NAME:
        renames[inputs[0].name] = INPUT_NAME
    if len(graph.output) == 1 and graph.output[0].name != OUTPUT_NAME:
        renames[graph.output[0].name] = OUTPUT_NAME
    if not renames:
        return
    for value in [*graph.input, *graph.output]:
        if value.name in renames:
            value.name = renames[value.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
    for vi in graph.value_info:
        if vi.name in renames:
            vi.name = renames[vi.name]
