"""Which parts of a quantized network run as INT8 kernels, which stay float, and why — by role.

A user quantizing a MobileNet asks "are my depthwise convolutions INT8? the squeeze-excite? hard-swish?",
not "how many QLinearConv nodes are there". Roles are read from the FP32 graph the quantizer saw (node
names survive quantization), what the quantizer did from the QDQ file, and what really runs from the graph
onnxruntime builds (its QDQ fusions keep the node's name: ``Conv`` → ``QLinearConv`` of the same name).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.quantize.coverage import INT8_KERNELS, optimized_graph

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_SHAPE_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Shape", "Gather", "Concat", "Identity"}
# element-wise ops that make up an activation or a squeeze-excite gate in exported Keras graphs
_GATE_OPS = {"Add", "Sub", "Mul", "Div", "Clip", "Relu", "Sigmoid", "HardSigmoid", "HardSwish"}
_POOLS = {"GlobalAveragePool", "ReduceMean"}

ROLE_ORDER = (
    "stem conv",
    "conv",
    "depthwise conv",
    "pointwise conv",
    "grouped conv",
    "squeeze-excite",
    "hard-swish",
    "SiLU",
    "sigmoid",
    "residual Add",
    "Concat",
    "pooling",
    "dense",
    "ReLU / Clip",
    "softmax",
    "other",
)


@dataclass
class RoleRow:
    """One role of the network: how many of its nodes run INT8, float, or were folded away."""

    role: str
    nodes: int = 0
    int8: int = 0
    float: int = 0
    folded: int = 0
    kernels: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "nodes": self.nodes,
            "int8": self.int8,
            "float": self.float,
            "folded": self.folded,
            "kernels": dict(self.kernels),
            "float_reasons": dict(self.reasons),
        }


def _graph_maps(graph: Any) -> tuple[dict[str, Any], dict[str, list[Any]], set[str], dict[str, tuple[int, ...]]]:
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for n in graph.node:
        for name in n.input:
            consumers[name].append(n)
    weights = {t.name: tuple(t.dims) for t in graph.initializer}
    constants = set(weights) | {out for n in graph.node if n.op_type == "Constant" for out in n.output}
    return producer, consumers, constants, weights


def _activation_inputs(node: Any, constants: set[str]) -> list[str]:
    return [i for i in node.input if i and i not in constants]


def _chain_to(
    start: str, target: str, producer: dict[str, Any], constants: set[str], allowed: set[str], depth: int
) -> list[Any] | None:
    """The nodes on a path from ``target`` to ``start`` through ``allowed`` ops (None when there is none)."""
    node = producer.get(start)
    if start == target:
        return []
    if node is None or depth == 0 or node.op_type not in allowed:
        return None
    for name in _activation_inputs(node, constants):
        path = _chain_to(name, target, producer, constants, allowed, depth - 1)
        if path is not None:
            return [node, *path]
    return None


def roles(graph: Any) -> dict[str, str]:
    """Node name → role, from the structure of an FP32 graph (a ModelProto or GraphProto)."""
    graph = getattr(graph, "graph", graph)
    producer, _, constants, weights = _graph_maps(graph)
    out: dict[str, str] = {}
    for node in graph.node:  # activations and squeeze-excite first: they claim their element-wise nodes
        if node.op_type not in ("Mul", "Div") or len(_activation_inputs(node, constants)) != 2:
            continue
        a, b = _activation_inputs(node, constants)
        for x, gate in ((a, b), (b, a)):
            chain = _chain_to(gate, x, producer, constants, _GATE_OPS, 6)
            if chain is not None:  # x * f(x): an activation
                kind = "SiLU" if any(n.op_type == "Sigmoid" for n in chain) else "hard-swish"
                for n in (node, *chain):
                    out.setdefault(n.name, kind)
                break
            se = _chain_to(gate, x, producer, constants, _GATE_OPS | _SHAPE_OPS | _POOLS | {"Conv"}, 12)
            if se is not None and any(n.op_type in _POOLS for n in se):  # x * gate(pool(x)): squeeze-excite
                for n in (node, *se):
                    if n.op_type not in _SHAPE_OPS:  # data movement is not compute of any role
                        out.setdefault(n.name, "squeeze-excite")
                break
    for node in graph.node:
        if node.name in out:
            continue
        op = node.op_type
        if op == "Conv":
            out[node.name] = _conv_role(node, weights)
        elif op in ("Gemm", "MatMul"):
            out[node.name] = "dense"
        elif op == "Add" and len(_activation_inputs(node, constants)) == 2:
            out[node.name] = "residual Add"
        elif op == "Concat" and len(_activation_inputs(node, constants)) >= 2:
            out[node.name] = "Concat"
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
            out[node.name] = "pooling"
        elif op in ("Relu", "Clip", "LeakyRelu"):
            out[node.name] = "ReLU / Clip"
        elif op in ("Sigmoid", "HardSigmoid"):
            out[node.name] = "sigmoid"
        elif op == "HardSwish":
            out[node.name] = "hard-swish"
        elif op == "Softmax":
            out[node.name] = "softmax"
    return out


def _conv_role(node: Any, weights: dict[str, tuple[int, ...]]) -> str:
    w = weights.get(node.input[1]) if len(node.input) > 1 else None
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    if w is None or len(w) < 3:
        return "conv"
    in_per_group = w[1]
    if group > 1:
        return "depthwise conv" if in_per_group == 1 else "grouped conv"
    if all(k == 1 for k in w[2:]):
        return "pointwise conv"
    return "conv"


def anatomy(
    fp32: Any,
    quantized: str | Path,
    *,
    stem: list[str] | tuple[str, ...] = (),
    excluded_nodes: tuple[str, ...] = (),
    excluded_op_types: tuple[str, ...] = (),
    head: tuple[str, ...] = (),
    float_roles: tuple[str, ...] = (),
    optimized: Any = None,
) -> list[RoleRow]:
    """Per role of ``fp32`` (the graph that was quantized): INT8 / float / folded counts and float reasons.

    ``optimized``: the graph onnxruntime builds for ``quantized`` (``coverage.optimized_graph``), when the
    caller has it already."""
    import onnx

    fp32_graph = getattr(fp32, "graph", fp32)
    node_roles = roles(fp32_graph)
    stem_set, excluded = set(stem), set(excluded_nodes)
    qgraph = onnx.load(str(quantized), load_external_data=False).graph
    q_producer = {out: n for n in qgraph.node for out in n.output}
    q_nodes = {n.name: n for n in qgraph.node if n.op_type not in _QDQ}
    ran = {n.name: n.op_type for n in (optimized or optimized_graph(quantized)).node}
    rows: dict[str, RoleRow] = {}
    for node in fp32_graph.node:
        role = node_roles.get(node.name)
        if role is None:
            continue
        if node.name in stem_set and role in ("conv", "pointwise conv"):
            role = "stem conv"
        row = rows.setdefault(role, RoleRow(role))
        row.nodes += 1
        kernel = ran.get(node.name)
        if kernel is None:
            row.folded += 1  # fused into a neighbour (BatchNorm/bias into Conv, ReLU/Clip into the Q range)
            continue
        row.kernels[kernel] += 1
        if kernel in INT8_KERNELS:
            row.int8 += 1
            continue
        row.float += 1
        qnode = q_nodes.get(node.name)
        fed_int8 = qnode is not None and any(
            getattr(q_producer.get(i), "op_type", "") == "DequantizeLinear" for i in qnode.input
        )
        if role in float_roles:
            why = f"{role} kept in float (float_roles)"
        elif node.name in head:
            why = "output head kept in float: real probabilities, not steps of 1/255"
        else:
            why = _why_float(node, fed_int8, stem_set, excluded, set(excluded_op_types))
        row.reasons[why] += 1
    return [rows[r] for r in ROLE_ORDER if r in rows]


def _why_float(node: Any, fed_int8: bool, stem: set[str], excluded: set[str], ex_types: set[str]) -> str:
    if node.name in stem:
        return "float stem: thin 1–4-channel input, faster in FP32 (quantize it with float_stem=False)"
    if node.name in excluded:
        return "excluded by name (exclude_nodes)"
    if node.op_type in ex_types:
        return f"op type {node.op_type} excluded (exclude_op_types)"
    if fed_int8:
        return (
            f"onnxruntime has no INT8 {node.op_type} kernel on CPU: "
            "it runs in float between DequantizeLinear and QuantizeLinear"
        )
    return f"onnxruntime's quantizer leaves {node.op_type} in float (no QDQ rule for it here)"


def render_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Table rows from ``RoleRow.to_dict()``s: role, nodes, int8, float, folded, kernels, why float."""
    table = []
    for r in rows:
        kernels = ", ".join(f"{k}×{v}" for k, v in Counter(r["kernels"]).most_common())
        why = "; ".join(r["float_reasons"]) or "—"
        cells = (r["role"], r["nodes"], r["int8"], r["float"], r["folded"])
        table.append((*map(str, cells), kernels or "—", why))
    return table
