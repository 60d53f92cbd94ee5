"""Hand-built ONNX test graphs: the boilerplate every such test repeated, in one place.

Tests that need a graph with an exact shape (a stem, a squeeze, a NaN path, a foreign model without
metadata) build it with ``onnx.helper`` instead of converting Keras: no TensorFlow, milliseconds, and
the graph is exactly what the test names. What stays in the test is the graph itself (nodes,
shapes, weights); what lives here is how it becomes a model: opset 17, IR version 8 (the newest the
pinned onnxruntime loads), a producer name, optional edgecnn metadata, the checker, the save.

Import it as tests import their other siblings: ``from _onnx import build_model, tensor, value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    from edgecnn.runtime.metadata import ModelMetadata

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def tensor(name: str, array: Any, dtype: Any = None) -> onnx.TensorProto:
    """An initializer from anything numpy takes (``tensor("k", 2.0, np.float32)``), named as nodes read it."""
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def value(name: str, shape: Sequence[int | str] | None, elem: int = FLOAT) -> onnx.ValueInfoProto:
    """A graph input/output: ``value("input", ["batch", 8, 8, 3])``; ``shape=None`` leaves the rank unknown."""
    return helper.make_tensor_value_info(name, elem, shape)


def build_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    name: str = "test",
    opsets: Mapping[str, int] | None = None,
    producer: str = "edgecnn-tests",
    ir_version: int | None = 8,
    metadata: ModelMetadata | None = None,
    props: Mapping[str, str] | None = None,
    check: bool = True,
    full_check: bool = False,
) -> onnx.ModelProto:
    """One model from a graph's parts, checked unless told not to.

    Args:
        opsets: domain -> version; the default ``{"": 17}`` is the opset edgecnn exports.
        ir_version: 8 so the pinned onnxruntime loads it; ``None`` keeps onnx's own (newest) default.
        metadata: the edgecnn contract, embedded as ``edgecnn.export`` does.
        props: raw ``metadata_props`` (for tests of malformed metadata the contract cannot express).
        check: ``False`` for graphs the checker rejects on purpose (unknown domains, missing shapes).
    """
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    domains = {"": 17} if opsets is None else opsets
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains.items()], producer_name=producer
    )
    if ir_version is not None:
        model.ir_version = ir_version
    if props:
        helper.set_model_props(model, dict(props))
    if metadata is not None:
        from edgecnn.runtime.metadata import embed_metadata

        embed_metadata(model, metadata)
    if check:
        onnx.checker.check_model(model, full_check=full_check)
    return model


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Write ``model`` to ``path`` (parents made) and return the path, so builders can end in one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path
