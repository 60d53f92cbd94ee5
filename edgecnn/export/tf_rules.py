"""What edgecnn adds to tf2onnx: function inlining it would otherwise skip, and conversion rules it lacks.

**Inlining.** Keras 3's TensorFlow backend runs a grouped convolution (``Conv2D(groups=...)``, which is how
ConvNeXt writes its depthwise convolutions) inside ``tf.function(jit_compile=True)``, because TensorFlow's CPU
kernel for grouped convolutions is broken (``keras/src/backend/tensorflow/nn.py``, ``conv``). ``jit_compile``
marks the function ``_XlaMustCompile`` and ``_noinline``; grappler's function inliner, which both TensorFlow's
freezing (``convert_variables_to_constants_v2``) and tf2onnx run, honours those marks, so the convolution
stays a ``StatefulPartitionedCall`` that tf2onnx cannot convert. The marks only matter for XLA at run time;
``allow_inlining`` removes them from a frozen ``GraphDef`` so that tf2onnx's own grappler pass inlines the
call (TensorFlow does the same for ``api_implements`` in ``_run_inline_graph_optimization``). The Conv2D
inside converts to an ONNX ``Conv`` with ``group`` set.

**Rules.** Handlers in tf2onnx's ``custom_op_handlers`` form ``{tf_op: (func, args)}``, passed to each
conversion (nothing is registered globally):

- ``Erfc``: the exact GELU (``keras.activations.gelu(approximate=False)``, ConvNeXt) is
  ``0.5·x·erfc(-x/√2)`` in TensorFlow. ONNX has ``Erf`` (opset 9 on): ``erfc(x) = 1 - erf(x)``. The absolute
  error of ``1 - erf(x)`` is float32 rounding of a value ≤ 2 (~1e-7); only the *relative* error grows where
  ``erfc`` is tiny, which GELU multiplies by ``x`` and adds to nothing larger than itself.

TensorFlow and tf2onnx are imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Attributes that keep grappler from inlining a function: set by tf.function(jit_compile=True)
# (tensorflow/python/eager/polymorphic_function/attributes.py: NO_INLINE, XLA_COMPILE).
INLINE_BLOCKERS = ("_noinline", "_XlaMustCompile", "_XlaCompile")


def allow_inlining(graph_def: Any) -> list[str]:
    """Remove the no-inline / must-compile marks from every function and call node of ``graph_def``, in place.

    Returns the names of the library functions that carried a mark (empty: nothing changed).
    """
    marked = []
    for function in graph_def.library.function:
        if _strip(function.attr):
            marked.append(function.signature.name)
        for node in function.node_def:
            _strip(node.attr)
    for node in graph_def.node:
        _strip(node.attr)
    return marked


def _strip(attrs: Any) -> bool:
    found = False
    for key in INLINE_BLOCKERS:
        if key in attrs:
            del attrs[key]
            found = True
    return found


def _convert_erfc(ctx: Any, node: Any, name: str, args: Any) -> None:
    """TF ``Erfc(x)`` → ONNX ``Sub(1, Erf(x))`` (``erfc = 1 - erf``), keeping the node's name and output."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(f"{name}/one"), np.array(1, dtype=dtype))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=name)
    shapes, dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(name)
    outputs = [node.output[0]]
    ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=outputs, name=name, shapes=shapes, dtypes=dtypes)


RULES: dict[str, Callable[..., None]] = {"Erfc": _convert_erfc}


def custom_op_handlers() -> dict[str, tuple[Callable[..., None], list[Any]]]:
    """A fresh ``custom_op_handlers`` dict for ``tf2onnx.convert.from_*`` (tf2onnx may add to it)."""
    return {op: (func, []) for op, func in RULES.items()}


def first_opset_with_rule(op: str) -> int | None:
    """The lowest ONNX opset at which tf2onnx (or edgecnn) converts the TF op ``op``; None: at none."""
    if op in RULES:
        return 1
    import tf2onnx.onnx_opset  # noqa: F401  (importing it registers tf2onnx's handlers)
    from tf2onnx import constants, handler

    for version, handlers in enumerate(handler.tf_op.get_opsets().get(constants.ONNX_DOMAIN, [])):
        if op in handlers:
            return version
    return None


__all__ = ["INLINE_BLOCKERS", "RULES", "allow_inlining", "custom_op_handlers", "first_opset_with_rule"]
