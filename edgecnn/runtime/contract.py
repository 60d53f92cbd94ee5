"""The graph must agree with its metadata before anything runs: a model that contradicts itself is refused.

``edgecnn.*`` metadata is text anyone can edit; the graph is what onnxruntime will really run. A label list
longer than the output, a layout that does not match the input's dimensions, a second graph input or a
dtype the graph does not take would otherwise give silent wrong answers or onnxruntime crashes mid-run.
``check_contract`` compares them once, at load, and raises one MetadataError listing every disagreement
and how to fix it. Pure: it reads an ``onnx.ModelProto`` (already vetted), never creates a session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import MetadataError, ModelFormatError
from edgecnn.runtime.metadata import InputSpec, Layout, ModelMetadata, OutputKind

# ONNX TensorProto element types edgecnn can feed or read
_ELEM_NAMES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}
_OUTPUT_DTYPES = ("float32", "float16", "float64")
# operator domains onnxruntime implements itself (anything else needs a native custom-op library)
_ORT_DOMAINS = {
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.preview",
    "ai.onnx.preview.training",
    "ai.onnx.training",
    "com.microsoft",
    "com.microsoft.experimental",
    "com.microsoft.nchwc",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
}
_FIX = "re-export the model with 'edgecnn export', or correct its edgecnn.* metadata"


@dataclass(frozen=True, slots=True)
class GraphSignature:
    """What the graph really takes and gives (``None`` for a symbolic or unknown dimension)."""

    inputs: tuple[tuple[str, str, tuple[int | None, ...] | None], ...]  # name, dtype, dims (None: no shape)
    outputs: tuple[tuple[str, str, tuple[int | None, ...] | None], ...]

    @classmethod
    def of(cls, model: Any) -> GraphSignature:
        graph = model.graph
        initializers = {i.name for i in graph.initializer}
        return cls(
            inputs=tuple(_describe(v) for v in graph.input if v.name not in initializers),
            outputs=tuple(_describe(v) for v in graph.output),
        )


def _describe(value_info: Any) -> tuple[str, str, tuple[int | None, ...] | None]:
    t = value_info.type
    if not t.HasField("tensor_type"):
        return value_info.name, "not a tensor", None
    dtype = _ELEM_NAMES.get(t.tensor_type.elem_type, f"onnx type {t.tensor_type.elem_type}")
    if not t.tensor_type.HasField("shape"):
        return value_info.name, dtype, None
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.tensor_type.shape.dim)
    return value_info.name, dtype, dims


def _show(dims: tuple[int | None, ...] | None) -> str:
    return "unknown shape" if dims is None else "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"


def _layout_guess(dims: tuple[int | None, ...], spec: InputSpec) -> str:
    """Which other layout would explain ``dims`` (for an actionable message)."""
    for layout in Layout:
        try:
            other = InputSpec(spec.name, layout, spec.height, spec.width, spec.channels, spec.dtype)
        except MetadataError:
            continue
        if layout != spec.layout and _dims_match(dims[1:], other.sample_shape):
            return f" (that is {layout.value}: set edgecnn.input.layout to {layout.value!r})"
    return ""


def _dims_match(dims: tuple[int | None, ...], want: tuple[int, ...]) -> bool:
    return len(dims) == len(want) and all(d is None or d == w for d, w in zip(dims, want, strict=True))


def contract_problems(model: Any, meta: ModelMetadata) -> list[str]:
    """Every disagreement between the graph and ``meta`` (empty: they agree)."""
    sig = GraphSignature.of(model)
    problems: list[str] = []
    spec = meta.input
    if len(sig.inputs) != 1:
        names = ", ".join(name for name, _, _ in sig.inputs) or "none"
        problems.append(f"the graph has {len(sig.inputs)} inputs ({names}); edgecnn runs models with exactly one")
    else:
        name, dtype, dims = sig.inputs[0]
        if name != spec.name:
            problems.append(f"edgecnn.input.name is {spec.name!r} but the graph's input is {name!r}")
        if dtype != spec.dtype:
            problems.append(f"edgecnn.input.dtype is {spec.dtype} but the graph's input {name!r} takes {dtype}")
        want = spec.sample_shape
        if dims is not None:
            if len(dims) != len(want) + 1:
                problems.append(
                    f"the graph's input {name!r} is {_show(dims)} (rank {len(dims)}), but edgecnn.input says "
                    f"{spec.layout.value} {'x'.join(map(str, want))} (rank {len(want) + 1})"
                )
            elif not _dims_match(dims[1:], want):
                problems.append(
                    f"the graph's input {name!r} is {_show(dims)}, but edgecnn.input says {spec.layout.value} "
                    f"[N, {', '.join(map(str, want))}]{_layout_guess(dims, spec)}"
                )
    if spec.dtype == "uint8" and not _feeds_raw_pixels(meta):
        problems.append("edgecnn.input.dtype uint8 takes raw pixels: edgecnn.preprocess must not scale or normalise")
    if not sig.outputs:
        problems.append("the graph has no output")
        return problems
    out_name, out_dtype, out_dims = sig.outputs[0]
    if out_dtype not in _OUTPUT_DTYPES:
        problems.append(f"the graph's output {out_name!r} is {out_dtype}; edgecnn reads float scores")
    want_width = 1 if meta.output == OutputKind.sigmoid else meta.num_classes
    if out_dims is not None:
        rest = out_dims[1:]  # (N,) is one score per sample; (N, K) or (N, 1, K) is K
        if not out_dims or sum(1 for d in rest if d not in (1, None)) > 1:
            problems.append(f"the graph's output {out_name!r} is {_show(out_dims)}; a classifier answers [N, classes]")
        elif None not in rest and math.prod(rest) != want_width:  # a symbolic width is checked on the first answer
            problems.append(_width_problem(out_name, math.prod(rest), meta))  # type: ignore[arg-type]
    return problems


def _width_problem(name: str, width: int, meta: ModelMetadata) -> str:
    if meta.output == OutputKind.sigmoid:
        return (
            f"edgecnn.output is sigmoid (one unit for 2 labels) but the graph's output {name!r} has {width} "
            f"scores per sample; a {width}-class model says softmax or logits with {width} labels"
        )
    if width == 1:
        return (
            f"the graph's output {name!r} has 1 score per sample but edgecnn.labels has {meta.num_classes} "
            "labels; a one-unit binary model says edgecnn.output 'sigmoid' with 2 labels"
        )
    return (
        f"edgecnn.labels has {meta.num_classes} labels but the graph's output {name!r} has {width} scores "
        "per sample; give exactly one label per output"
    )


def _feeds_raw_pixels(meta: ModelMetadata) -> bool:
    pre = meta.preprocess
    scales = not pre.model_rescales and (pre.scale != 1.0 or pre.offset != 0.0)
    return not scales and pre.mean is None


def check_contract(model: Any, meta: ModelMetadata, path: str | Path) -> None:
    """Raise one MetadataError naming every way the graph contradicts ``meta``."""
    problems = contract_problems(model, meta)
    if problems:
        raise MetadataError(f"{path}: the model contradicts its metadata: {'; '.join(problems)}; {_FIX}", path=path)


def check_runtime_output(raw: Any, meta: ModelMetadata, path: str | Path) -> None:
    """The output's width (where the graph left it symbolic) and its values (probabilities, if it says so)
    checked on the first real answer."""
    width = 1 if raw.ndim == 1 else int(raw.size // max(1, raw.shape[0]))
    want = 1 if meta.output == OutputKind.sigmoid else meta.num_classes
    if width != want:
        raise MetadataError(
            f"{path}: the model contradicts its metadata: {_width_problem('output', width, meta)}; {_FIX}", path=path
        )
    check_output_values(raw, meta, path)


SUM_TOLERANCE = 0.05  # a softmax row may sum to 1 ± this (quantized softmax: ~0.01 off) and still be one
RANGE_TOLERANCE = 1e-3  # probabilities may stray this far outside [0, 1] (float rounding, quantized outputs)


def output_value_problem(raw: Any, kind: OutputKind) -> str | None:
    """Why ``raw`` (one batch of the model's outputs) cannot be ``kind`` probabilities, or None.

    Softmax rows must be in [0, 1] and sum to 1 ± ``SUM_TOLERANCE``; sigmoid outputs must be in [0, 1].
    Rows with NaN/Inf are skipped (they are that input's error row, not the model's declaration).
    """
    import numpy as np

    if kind == OutputKind.logits:
        return None
    arr = np.asarray(raw, np.float64)
    flat = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr[:, None]
    flat = flat[np.isfinite(flat).all(axis=1)]
    if not flat.size:
        return None
    lo, hi = float(flat.min()), float(flat.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        return f"values from {lo:.4g} to {hi:.4g}, outside [0, 1]"
    if kind == OutputKind.softmax:
        sums = flat.sum(axis=1)
        worst = float(sums[np.argmax(np.abs(sums - 1))])
        if abs(worst - 1) > SUM_TOLERANCE:
            return f"rows that sum to {worst:.4g}, not 1"
    return None


def check_output_values(raw: Any, meta: ModelMetadata, path: str | Path) -> None:
    """Refuse a model whose answers cannot be what its metadata declares (a logits model called softmax).

    Raises:
        MetadataError: the outputs are not probabilities; names ``--output logits`` as the likely fix.
    """
    problem = output_value_problem(raw, meta.output)
    if problem:
        raise MetadataError(
            f"{path}: declared {meta.output.value} (edgecnn.output) but its outputs are not probabilities: "
            f"{problem}; if the graph ends in logits, annotate it with --output logits "
            "(edgecnn annotate MODEL --output logits) so edgecnn applies the softmax",
            path=path,
        )


def read_graph_metadata(model: Any, path: str | Path) -> ModelMetadata:
    """Parse the edgecnn metadata of a vetted ``ModelProto`` and check it against the graph.

    Raises:
        MetadataError: missing/invalid metadata, or metadata the graph contradicts.
    """
    from edgecnn.runtime.metadata import props_of

    try:
        meta = ModelMetadata.from_props(props_of(model))
    except MetadataError as err:
        raise MetadataError(f"{path}: {err}", path=path) from err
    check_contract(model, meta, path)
    return meta


def check_supported_opsets(model: Any, path: str | Path) -> None:
    """Refuse an IR version or opset newer than this onnxruntime understands, or a custom-op domain.

    onnxruntime's own refusal is a multi-line C++ message; this one says which and what to do.
    """
    import onnx

    max_ir = onnx.IR_VERSION
    if model.ir_version > max_ir:
        raise ModelFormatError(
            f"{path}: ONNX IR version {model.ir_version} is newer than this edgecnn's onnx supports ({max_ir}); "
            "upgrade onnx/onnxruntime or re-export with an older opset",
            path=path,
        )
    used = {n.domain for n in model.graph.node} | {n.domain for f in model.functions for n in f.node}
    custom = sorted(used - _ORT_DOMAINS - {f.domain for f in model.functions})
    if custom:
        raise ModelFormatError(
            f"{path}: the model needs custom operators from domain(s) {custom}, which edgecnn does not load "
            "(custom-op libraries run native code); re-export it with standard ONNX operators",
            path=path,
        )
    max_opset = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version > max_opset:
            raise ModelFormatError(
                f"{path}: the model uses opset {o.version}, newer than this installation supports ({max_opset}); "
                "upgrade onnxruntime or re-export with --opset 17",
                path=path,
            )
