"""Where an inference's time goes, by role, from onnxruntime's own profiler — beside the FP32 model an INT8
one was quantized from, so that a user sees why INT8 gains little on their net.

INT8 speeds up convolutions and dense layers; it slows down what it has to requantize around them (the
``QuantizeLinear``/``DequantizeLinear`` nodes left standing, and the element-wise ``QLinear*`` steps of SiLU,
hard-swish and squeeze-excite, each a requantizing pass over the tensor). A net whose time is in those
gains little, and the role table says so in numbers: ``edgecnn bench --profile``.

onnxruntime's profiler (``SessionOptions.enable_profiling``) times every kernel of the optimised graph it
really runs; each profiled node is put in a role by its name in the FP32 graph
(``edgecnn.quantize.anatomy.roles``: onnxruntime's fusions keep the node's name, ``Conv`` → ``QLinearConv``),
else by its op type. Requantization *inside* a ``QLinearConv`` is part of that convolution's kernel and
counts as convolution: a profiler cannot split a kernel.

The core (``profile_ort``, ``classify_node``) also serves ``benchmarks/op_profile.py``'s block profiling.
TF-free: onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import UsageError
from edgecnn.runtime.session import SessionSettings

ROLES = ("convolutions", "dense", "activations", "squeeze-excite", "requantize", "pooling", "layout", "other")

# edgecnn.quantize.anatomy's roles of FP32 nodes -> the profile's coarser roles
_ANATOMY = {
    "stem conv": "convolutions",
    "conv": "convolutions",
    "depthwise conv": "convolutions",
    "pointwise conv": "convolutions",
    "grouped conv": "convolutions",
    "squeeze-excite": "squeeze-excite",
    "hard-swish": "activations",
    "SiLU": "activations",
    "sigmoid": "activations",
    "ReLU / Clip": "activations",
    "pooling": "pooling",
    "dense": "dense",
}
# op types (onnxruntime's optimised graph, float and quantized kernels) -> role, where the name says nothing
_OPS = {
    "convolutions": {
        "Conv",
        "ConvInteger",
        "ConvTranspose",
        "FusedConv",
        "NhwcFusedConv",
        "NhwcQLinearConv",
        "QLinearConv",
        "QLinearConvTranspose",
    },
    "dense": {
        "DynamicQuantizeMatMul",
        "FusedGemm",
        "FusedMatMul",
        "Gemm",
        "MatMul",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "QGemm",
        "QLinearMatMul",
    },
    "activations": {
        "Clip",
        "Elu",
        "Gelu",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "QLinearLeakyRelu",
        "QLinearSigmoid",
        "QuickGelu",
        "Relu",
        "Sigmoid",
        "Tanh",
    },
    "requantize": {"DequantizeLinear", "DynamicQuantizeLinear", "QuantizeLinear"},
    "layout": {"Flatten", "ReorderInput", "ReorderOutput", "Reshape", "Squeeze", "Transpose", "Unsqueeze"},
    "pooling": {
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "MaxPool",
        "NhwcMaxPool",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "ReduceMean",
    },
}
_OP_ROLE = {op: role for role, ops in _OPS.items() for op in ops}
# what onnxruntime's layout transformers append to a node's name
_SUFFIX = re.compile(r"(_token_\d+|:\d+_nchwc|_nchwc)$")


# -- the profiler ----------------------------------------------------------------------------------------------


def _int(attrs: dict[str, Any], key: str, default: int) -> int:
    return int(attrs[key].i) if key in attrs else default


def classify_node(node: Any, weights: dict[str, tuple[int, ...]]) -> str:
    """Op type, with convolutions split by kind (depthwise / pointwise 1×1 / k×k) from the optimized graph."""
    op = node.op_type
    if node.domain == "com.microsoft.nchwc":
        op = f"{op} (NCHWc)"
    if node.op_type not in ("QLinearConv", "Conv", "FusedConv", "ConvInteger"):
        return op
    w_index = 3 if node.op_type == "QLinearConv" else 1
    dims = weights.get(node.input[w_index]) if len(node.input) > w_index else None
    attrs = {a.name: a for a in node.attribute}
    group = _int(attrs, "group", 1)
    if dims is None or len(dims) != 4:
        return f"{op} ?"
    out_ch, _, kh, kw = dims
    stride = max(list(attrs["strides"].ints) or [1]) if "strides" in attrs else 1
    s = f" s{stride}" if stride > 1 else ""
    if group > 1 and group == out_ch:
        return f"{op} depthwise {kh}×{kw}{s}"
    if group == 1 and kh == kw == 1:
        return f"{op} pointwise 1×1{s}"
    return f"{op} {kh}×{kw}{s}" + (f" g{group}" if group > 1 else "")


@dataclass
class OrtProfile:
    """onnxruntime's profile of one model: mean µs per inference of each node of its optimised graph."""

    runs: int
    node_us: dict[str, float]  # mean µs per inference per node, execution order
    node_kind: dict[str, str]  # classify_node's op kind
    run_us: float  # mean model_run duration in the profile
    float_nodes: list[str] = field(default_factory=list)
    graph_ops: dict[str, int] = field(default_factory=dict)
    node_op: dict[str, str] = field(default_factory=dict)  # the node's op type


def profile_ort(
    path: str | Path,
    x: np.ndarray,
    work: str | Path,
    iters: int,
    warmup: int = 10,
    settings: SessionSettings | None = None,
    *,
    median: bool = False,
) -> OrtProfile:
    """onnxruntime's profiler on the graph edgecnn runs (the model's session hints; 1 thread unless ``settings``
    say otherwise), over the last ``iters`` of ``warmup + iters`` runs on ``x``: each node's mean time per
    inference, or its median (``median``: a shared machine's stalls then do not land on whichever node they
    hit). ``work``: a folder for the trace and the optimised graph."""
    return profile_interleaved([(path, settings)], x, work, iters, warmup, median=median)[0]


def profile_interleaved(
    models: Sequence[tuple[str | Path, SessionSettings | None]],
    x: np.ndarray,
    work: str | Path,
    iters: int,
    warmup: int = 10,
    *,
    median: bool = False,
) -> list[OrtProfile]:
    """``profile_ort`` of several models at once, their sessions called in turn one inference at a time, so
    that drift on a shared machine hits every model alike (an INT8 model and its FP32 source compared)."""
    opened = [_profiled_session(path, settings, Path(work), i) for i, (path, settings) in enumerate(models)]
    feeds = [{sess.get_inputs()[0].name: x} for sess, _ in opened]
    for _ in range(warmup + iters):
        for (sess, _), feed in zip(opened, feeds, strict=True):
            sess.run(None, feed)
    return [_read_profile(sess, optimized, iters, median) for sess, optimized in opened]


def _profiled_session(path: str | Path, settings: SessionSettings | None, work: Path, index: int) -> tuple[Any, Path]:
    from edgecnn.runtime.session import build_session, session_options

    settings = settings or SessionSettings(threads=1)
    so = session_options(settings)
    so.enable_profiling = True
    so.profile_file_prefix = str(work / f"ort_profile_{index}")  # one trace per session (names carry seconds)
    optimized = work / f"{index}_{Path(path).stem}.optimized.onnx"
    so.optimized_model_filepath = str(optimized)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_session(path, so, disabled_optimizers=settings.disabled_optimizers), optimized


def _read_profile(sess: Any, optimized: Path, iters: int, median: bool) -> OrtProfile:
    import onnx

    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"]
    )
    runs = runs[-iters:]
    start = runs[0]["ts"]
    per_node: dict[str, list[float]] = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        per_node.setdefault(e["name"].removesuffix("_kernel_time"), []).append(e["dur"])
    if median:
        node_us = {n: float(statistics.median(v + [0.0] * (len(runs) - len(v)))) for n, v in per_node.items()}
    else:
        node_us = {n: sum(v) / len(runs) for n, v in per_node.items()}
    opt = onnx.load(str(optimized))
    weights = {t.name: tuple(t.dims) for t in opt.graph.initializer}
    by_name = {n.name: n for n in opt.graph.node}
    kinds = {n: classify_node(by_name[n], weights) if n in by_name else "?" for n in node_us}
    graph_ops: dict[str, int] = defaultdict(int)
    for n in opt.graph.node:
        graph_ops[f"{n.op_type}" + (" (NCHWc)" if n.domain == "com.microsoft.nchwc" else "")] += 1
    floats = [n for n in node_us if kinds[n].startswith(("Conv", "FusedConv", "MatMul", "Gemm"))]
    return OrtProfile(
        runs=len(runs),
        node_us=node_us,
        node_kind=kinds,
        run_us=statistics.fmean(e["dur"] for e in runs),
        float_nodes=floats,
        graph_ops=dict(sorted(graph_ops.items(), key=lambda kv: -kv[1])),
        node_op={n: by_name[n].op_type if n in by_name else "?" for n in node_us},
    )


# -- roles -----------------------------------------------------------------------------------------------------


def named_roles(graph: Any) -> dict[str, str]:
    """FP32 node name -> profile role, from the structure of the graph (SiLU, hard-swish, squeeze-excite)."""
    from edgecnn.quantize.anatomy import roles

    return {name: _ANATOMY.get(role, "other") for name, role in roles(graph).items()}


def role_of(name: str, op: str, named: dict[str, str]) -> str:
    """The profile role of one node of the optimised graph: requantize for Q/DQ, else its FP32 node's role
    (by name, onnxruntime's layout suffixes stripped), else its op type's."""
    if _OP_ROLE.get(op) == "requantize":
        return "requantize"
    role = named.get(name)
    if role is None:
        base = name
        while (stripped := _SUFFIX.sub("", base)) != base:
            base = stripped
        role = named.get(base)
    return role or _OP_ROLE.get(op, "other")


def role_times(prof: OrtProfile, named: dict[str, str]) -> dict[str, dict[str, float]]:
    """Role -> {"us": mean µs per inference, "nodes": count}, every role of ``ROLES`` present."""
    out = {r: {"us": 0.0, "nodes": 0} for r in ROLES}
    for name, us in prof.node_us.items():
        row = out[role_of(name, prof.node_op.get(name, "?"), named)]
        row["us"] += us
        row["nodes"] += 1
    return out


# -- the bench section -----------------------------------------------------------------------------------------


def float_source(path: Path, meta: Any) -> tuple[Path | None, str | None]:
    """(the FP32 model to profile beside ``path``, None) or (None, why there is none)."""
    if not meta.quantization:
        return None, "this is a float model: there is no other side to profile it against"
    from edgecnn.bench.plain_ort import fp32_source

    try:
        return fp32_source(path, meta), None
    except UsageError as err:
        return None, f"no float model to compare with: {err}"


def _side(label: str, path: Path, prof: OrtProfile, named: dict[str, str]) -> dict[str, Any]:
    total = sum(prof.node_us.values())
    roles = role_times(prof, named)
    top = sorted(prof.node_us.items(), key=lambda kv: -kv[1])[:5]
    return {
        "label": label,
        "path": str(path),
        "runs": prof.runs,
        "model_run_us": prof.run_us,
        "node_sum_us": total,
        "roles": {r: {**v, "pct": 100 * v["us"] / total if total else 0.0} for r, v in roles.items()},
        "top_nodes": [
            {"node": n, "op": prof.node_kind[n], "role": role_of(n, prof.node_op.get(n, "?"), named), "us": us}
            for n, us in top
        ],
        "graph_ops": prof.graph_ops,
    }


def profile_model(path: str | Path, x: np.ndarray, settings: SessionSettings, runs: int = 50) -> dict[str, Any]:
    """The ``profile`` section of a bench report for one model: time per role from onnxruntime's profiler,
    and the same for the FP32 model it was quantized from when its metadata records that source (else
    ``float_note`` says why not).

    ``settings``: the session settings the model is benched with (threads, optimisation level); the float
    model gets the same, without the quantized model's disabled optimizers.
    """
    import onnx

    from edgecnn.runtime.classifier import read_metadata

    path = Path(path)
    meta = read_metadata(path)
    fp32, note = float_source(path, meta)
    graph = onnx.load(str(fp32 or path), load_external_data=False).graph
    named = named_roles(graph)  # the FP32 graph's names: what the quantized graph's fused nodes keep
    label = str((meta.quantization or {}).get("mode", "fp32"))
    models: list[tuple[Path, SessionSettings]] = [(path, settings)]
    if fp32 is not None:  # the same settings, without the quantized model's disabled optimizers: its own hints
        models.append((fp32, replace(settings, disabled_optimizers=None)))
    with tempfile.TemporaryDirectory(prefix="edgecnn-profile-") as tmp:
        profiles = profile_interleaved(models, x, tmp, runs, warmup=5, median=True)
    labels = (label, "fp32")[: len(models)]
    sides = [_side(lab, p, prof, named) for lab, (p, _), prof in zip(labels, models, profiles, strict=True)]
    return {
        "model": str(path),
        "batch": len(x),
        "threads": settings.threads,
        "runs": runs,
        "sides": sides,
        "float_note": note,
        "method": "onnxruntime profiler (enable_profiling), CPU provider, the models called in turn; median "
        f"kernel µs per inference over the last {runs} of {runs + 5} runs; roles by FP32 node name, else op type",
    }


def role_rows(section: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows: role, then µs and % per side, then (two sides) float ÷ quantized time; only roles that ran."""
    sides = section["sides"]
    rows = []
    for role in ROLES:
        cells = [role]
        if all(s["roles"][role]["nodes"] == 0 for s in sides):
            continue
        for s in sides:
            r = s["roles"][role]
            cells += [f"{r['us']:,.1f}", f"{r['pct']:.0f}%"]
        if len(sides) == 2:
            q, f = sides[0]["roles"][role]["us"], sides[1]["roles"][role]["us"]
            cells.append(f"{f / q:.2f}×" if q > 0 and f > 0 else "—")
        rows.append(tuple(cells))
    total = ["total"]
    for s in sides:
        total += [f"{s['node_sum_us']:,.1f}", "100%"]
    if len(sides) == 2:
        q, f = sides[0]["node_sum_us"], sides[1]["node_sum_us"]
        total.append(f"{f / q:.2f}×" if q > 0 else "—")
    rows.append(tuple(total))
    return rows


def role_columns(section: dict[str, Any]) -> tuple[str, ...]:
    cols = ["role"]
    for s in section["sides"]:
        cols += [f"{s['label']} µs", f"{s['label']} %"]
    if len(section["sides"]) == 2:
        cols.append(f"{section['sides'][1]['label']} ÷ {section['sides'][0]['label']}")
    return tuple(cols)
