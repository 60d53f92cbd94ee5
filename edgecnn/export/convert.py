"""Keras → ONNX conversion strategies, tried in order; every failure is kept for the final message.

1. ``tf2onnx.convert.from_function`` on a ``tf.function`` with an explicit ``TensorSpec((None, ...))``:
   works on Keras 3 (``tf2onnx.convert.from_keras`` fails there with KeyError 'keras_tensor_N').
2. Keras' own ``model.export(path, format="onnx")`` once the model has been called.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ExportError

log = logging.getLogger(__name__)
INPUT_NAME = "input"
OUTPUT_NAME = "output"


@dataclass(frozen=True, slots=True)
class Converted:
    model: Any  # onnx.ModelProto
    strategy: str


def _from_function(model: Any, opset: int) -> Any:
    import tensorflow as tf
    import tf2onnx

    shape = (None, *tuple(model.inputs[0].shape[1:]))
    spec = (tf.TensorSpec(shape, tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=opset)
    _freeze_captured_inputs(proto, forward.get_concrete_function())
    _check_single_input(proto)
    return proto


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
    ("tf2onnx.from_function", _from_function),
    ("keras.export(onnx)", _keras_export),
)


def convert(model: Any, opset: int) -> Converted:
    """Try each strategy; return the first ONNX model, or raise ExportError listing every failure."""
    from edgecnn._optional import require

    require("tensorflow")
    require("tf2onnx")
    failures = []
    for name, strategy in STRATEGIES:
        try:
            proto = strategy(model, opset)
        except Exception as err:  # converters raise anything; we report each
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            failures.append(f"{name}: {type(err).__name__}: {first}")
            log.info("export strategy %s failed: %s", name, err)
            continue
        rename_io(proto)
        return Converted(proto, name)
    raise ExportError("no conversion strategy worked:\n  " + "\n  ".join(failures))


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
