"""Keep a quantized model's output head real: the logits and the Softmax/Sigmoid over them stay float.

Why: quantized, the final Softmax answers on a 1/255 grid (mnist-cnn: 8.7 of 10 probabilities exactly 0 per
image, top-2 order agreeing with FP32 on 18% of images) and quantized logits fall on a coarse grid with exact
ties inside the top-5. Applications threshold, rank and calibrate on these numbers. The head is one small
matrix product and an element-wise activation: keeping its output in float costs nothing measurable
(README "Real scores from INT8"), while the weights of the last matrix product stay INT8 where the format allows.

How, per format:
- QDQ: quantize as usual, then remove the QuantizeLinear/DequantizeLinear pairs on the head's tensors (the
  logits, the shape-only ops after them, the activation's output). onnxruntime then fuses the DequantizeLinear
  inputs of the last Gemm/MatMul into an INT8 kernel with a float output.
- QOperator: the activation and the node producing the logits are excluded from quantization.
- FP16: the same nodes are kept in float32 (``node_block_list`` of the converter).
- dynamic INT8 quantizes weights only and outputs float already: nothing to do.
"""

from __future__ import annotations

from typing import Any

ACTIVATIONS = {"Softmax", "Sigmoid", "LogSoftmax"}
# ops that only move or reshape the values between the logits and the graph output
PASSTHROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}
# ops that produce logits (a bias Add after a MatMul belongs to the logits too)
LOGITS_OPS = {"Gemm", "MatMul", "Conv", "Add", "QGemm", "MatMulInteger"}


def _index(graph: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    producer: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.output:
            producer[name] = node
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def _head(graph: Any) -> list[Any]:
    """The output head's nodes, from each graph output back to the logits: shape-only ops, the activation
    (Softmax/Sigmoid), more shape-only ops, and the logits' producer (with the MatMul before a bias Add)."""
    producer, _ = _index(graph)
    weights = {t.name for t in graph.initializer}
    found: list[Any] = []

    def back(tensor: str) -> Any:
        node = producer.get(tensor)
        while node is not None and node.op_type in PASSTHROUGH:
            found.append(node)
            node = producer.get(node.input[0])
        return node

    for out in graph.output:
        node = back(out.name)
        if node is not None and node.op_type in ACTIVATIONS:
            found.append(node)
            node = back(node.input[0])
        if node is not None and node.op_type in LOGITS_OPS:
            found.append(node)
            if node.op_type == "Add":  # MatMul + bias
                src = next((producer.get(i) for i in node.input if i not in weights and i in producer), None)
                if src is not None and src.op_type == "MatMul":
                    found.append(src)
    return list({id(n): n for n in found}.values())


def head_nodes(model: Any) -> list[str]:
    """Names of the output head's nodes (see ``_head``); unnamed nodes need ``ensure_node_names`` first."""
    return [n.name for n in _head(getattr(model, "graph", model)) if n.name]


def head_tensors(model: Any) -> set[str]:
    """The float tensors of the head: the logits and everything computed from them up to the outputs."""
    return {t for node in _head(getattr(model, "graph", model)) for t in node.output}


def ensure_node_names(model: Any) -> None:
    """Give unnamed nodes a stable name (quantizers and converters select nodes by name)."""
    graph = getattr(model, "graph", model)
    used = {n.name for n in graph.node if n.name}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def dequantize_head(model: Any, tensors: set[str]) -> int:
    """Remove QuantizeLinear→DequantizeLinear pairs on ``tensors`` in a QDQ graph; returns the pairs removed.

    A graph output that was renamed behind such a pair (``output`` ← DequantizeLinear ← QuantizeLinear ←
    ``output_QuantizeLinear_Input``) gets its name back on the tensor that feeds the pair.
    """
    graph = model.graph
    producer, consumers = _index(graph)
    outputs = {o.name for o in graph.output}
    drop: list[Any] = []
    rename: dict[str, str] = {}
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        src = q.input[0]
        if src not in tensors and not _renamed_output(src, q, consumers, outputs):
            continue
        dqs = consumers.get(q.output[0], [])
        if not dqs or any(d.op_type != "DequantizeLinear" for d in dqs):
            continue
        drop.append(q)
        for dq in dqs:
            drop.append(dq)
            rename[dq.output[0]] = src
    if not drop:
        return 0
    # a DequantizeLinear that wrote a graph output: the float tensor takes the output's name instead
    for dq_out, src in list(rename.items()):
        if dq_out in outputs:
            node = producer[src]
            node.output[list(node.output).index(src)] = dq_out
            for other in graph.node:
                for i, name in enumerate(other.input):
                    if name == src:
                        other.input[i] = dq_out
            for k, v in rename.items():
                if v == src:
                    rename[k] = dq_out
    drop_ids = {id(n) for n in drop}
    keep = [n for n in graph.node if id(n) not in drop_ids]
    for node in keep:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(keep)
    return len(drop) // 2


def _renamed_output(src: str, q: Any, consumers: dict[str, list[Any]], outputs: set[str]) -> bool:
    """``src`` feeds a Q→DQ pair that writes a graph output (the quantizer renamed the output this way)."""
    dqs = consumers.get(q.output[0], [])
    return any(d.op_type == "DequantizeLinear" and d.output[0] in outputs for d in dqs)


def plan_float_head(graph: Any, fmt: str) -> tuple[list[str], set[str]]:
    """(nodes to exclude from quantization, tensors whose Q/DQ pairs to remove afterwards) for ``fmt``.

    QDQ excludes the activation only (the last matrix product keeps INT8 weights and inputs; its output
    pair is removed afterwards); QOperator and FP16 exclude the activation and the logits' producer.
    """
    nodes = [n for n in _head(graph) if n.name]
    if fmt == "qdq":
        return [n.name for n in nodes if n.op_type in ACTIVATIONS | PASSTHROUGH], head_tensors(graph)
    return [n.name for n in nodes], set()


def named(path: Any, tmp: Any) -> Any:
    """``path``, or a copy in ``tmp`` whose nodes all have names (quantizers exclude nodes by name)."""
    import onnx

    model = onnx.load(str(path))
    if all(n.name for n in model.graph.node):
        return path
    ensure_node_names(model)
    out = tmp / "named.onnx"
    onnx.save_model(model, str(out))
    return out


def finish_float_head(path: Any, tensors: set[str]) -> int:
    """Remove the head's Q/DQ pairs from the QDQ model at ``path`` (in place); returns the pairs removed."""
    import onnx

    if not tensors:
        return 0
    model = onnx.load(str(path))
    removed = dequantize_head(model, tensors)
    if removed:
        onnx.save_model(model, str(path))
    return removed


def restore_output_types(original: Any, converted: Any) -> int:
    """Give graph outputs back their original element type; returns how many were fixed.

    onnxconverter-common's float16 converter, asked to keep IO types and to block the head's nodes, casts a
    blocked node's float32 output to float16 and declares the graph output float16 (measured with
    onnxconverter-common 1.16 on mnist-cnn: 22% of probabilities became exactly 0). The Cast it put there
    is turned back into a float32 one.
    """
    want = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    fixed = 0
    for out in converted.graph.output:
        elem = want.get(out.name)
        if elem is None or out.type.tensor_type.elem_type == elem:
            continue
        out.type.tensor_type.elem_type = elem
        for node in converted.graph.node:
            if node.op_type == "Cast" and out.name in node.output:
                for attr in node.attribute:
                    if attr.name == "to":
                        attr.i = elem
        fixed += 1
    return fixed
