"""Give an ONNX classifier exported by another tool edgecnn's metadata, so every edgecnn command runs it.

``annotate`` reads the graph's one input (name, dtype, dims), builds ``ModelMetadata`` from what the user
says (labels, layout, size, preprocessing, output kind), checks it against the graph with the runtime's own
contract check (a wrong layout, size or label count is refused, naming the contradiction), and writes an
annotated copy atomically. The source file is never modified.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn._fs import atomic_path, sha256_file
from edgecnn._version import __version__
from edgecnn.errors import MetadataError, UsageError
from edgecnn.runtime.contract import GraphSignature, contract_problems
from edgecnn.runtime.metadata import (
    ColorMode,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
    embed_metadata,
)
from edgecnn.runtime.session import vet_model


@dataclass(frozen=True, slots=True)
class AnnotateConfig:
    """What the user knows about a foreign model.

    Args:
        labels: class names in output order.
        layout: NCHW (PyTorch, most exporters) or NHWC (TensorFlow).
        height, width: the input size the model was trained at.
        color_mode: L or RGB; None: from the graph's channel dimension (1: L, else RGB).
        scale, offset, mean, std: ``((pixel * scale + offset) - mean) / std``, per channel.
        output: softmax (probabilities), logits (edgecnn applies softmax) or sigmoid (one unit, 2 labels).
        resize: Pillow resampling used to reach height x width.
    """

    labels: tuple[str, ...]
    layout: Layout
    height: int
    width: int
    color_mode: ColorMode | None = None
    scale: float = 1.0 / 255.0  # most exporters' models take 0..1 pixels
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    output: OutputKind = OutputKind.softmax
    resize: str = "bilinear"

    def __post_init__(self) -> None:
        import math

        for option, values in (
            ("--scale", (self.scale,)),
            ("--offset", (self.offset,)),
            ("--mean", self.mean or ()),
            ("--std", self.std or ()),
        ):
            if not all(math.isfinite(v) for v in values):
                raise UsageError(f"{option}: expected finite numbers, got {', '.join(map(str, values))}")
        if self.std is not None and any(v == 0 for v in self.std):
            raise UsageError(f"--std: a zero would divide by zero, got {', '.join(map(str, self.std))}")
        if self.scale == 0:
            raise UsageError("--scale: 0 would turn every image into the same input")


def parse_labels(text: str) -> tuple[str, ...]:
    """A labels file (one per line) or a comma-separated list."""
    path = Path(text)
    if path.is_file():
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    elif "," not in text and (path.suffix or "/" in text or "\\" in text):
        raise UsageError(f"--labels: no such labels file {text!r} (give a file, one name per line, or 'a,b,c')")
    else:
        labels = [part.strip() for part in text.split(",")]
    labels = [lab for lab in labels if lab]
    if not labels:
        raise UsageError(f"--labels: no class names in {text!r}")
    return tuple(labels)


def parse_size(text: str) -> tuple[int, int]:
    """'224,224' or '224' -> (height, width)."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise UsageError(f"--size: expected HEIGHT,WIDTH (positive integers), got {text!r}")
    return values[0], values[-1]


def annotate(src: str | Path, dst: str | Path, config: AnnotateConfig) -> ModelMetadata:
    """Write a copy of ``src`` carrying edgecnn metadata to ``dst``; return that metadata.

    Raises:
        ModelError: ``src`` is not a usable ONNX model.
        MetadataError: what ``config`` says contradicts the graph (each contradiction named).
    """
    import onnx

    src, dst = Path(src), Path(dst)
    _, model = vet_model(src)
    meta = _metadata(model, src, config)
    problems = contract_problems(model, meta)
    if problems:
        raise MetadataError(
            f"{src}: the graph contradicts what annotate was told: {'; '.join(problems)}; "
            "check --layout, --size and --labels (and --output) against the model",
            path=src,
        )
    _warn_on_output_kind(model, config.output)
    model = onnx.load(str(src))  # now with any external data, to write one self-contained file
    embed_metadata(model, meta)
    with atomic_path(dst, suffix=".onnx") as tmp:
        onnx.save_model(model, str(tmp))
    return meta


def _metadata(model: Any, src: Path, config: AnnotateConfig) -> ModelMetadata:
    sig = GraphSignature.of(model)
    if len(sig.inputs) != 1:
        names = ", ".join(name for name, _, _ in sig.inputs) or "none"
        raise MetadataError(f"{src}: the graph has {len(sig.inputs)} inputs ({names}); edgecnn runs one", path=src)
    name, dtype, dims = sig.inputs[0]
    channels = _channels(dims, config)
    color = config.color_mode or (ColorMode.L if channels == 1 else ColorMode.RGB)
    for option, values in (("--mean", config.mean), ("--std", config.std)):
        if values is not None and len(values) not in (1, channels):
            raise UsageError(
                f"{option}: {len(values)} values for a {channels}-channel ({color.value}) input; give 1 or {channels}"
            )
    try:
        return ModelMetadata(
            labels=config.labels,
            input=InputSpec(name, config.layout, config.height, config.width, channels, dtype),
            preprocess=PreprocessSpec(
                color_mode=color,
                resize=config.resize,
                scale=config.scale,
                offset=config.offset,
                mean=config.mean,
                std=config.std,
            ),
            output=config.output,
            source={
                "annotated_by": f"edgecnn {__version__}",
                "producer": getattr(model, "producer_name", "") or "unknown",
                "sha256": sha256_file(src),
            },
        )
    except MetadataError as err:
        raise MetadataError(f"{src}: {err}", path=src) from err


_LAST_OP_FOR = {OutputKind.softmax: "Softmax", OutputKind.sigmoid: "Sigmoid"}


def _warn_on_output_kind(model: Any, output: OutputKind) -> None:
    """Say so when the op that makes the output does not look like what ``output`` claims (a cheap guess)."""
    want = _LAST_OP_FOR.get(output)
    name = model.graph.output[0].name if model.graph.output else None
    producer = next((n.op_type for n in model.graph.node if name in n.output), None)
    if want is not None and producer is not None and producer != want:
        warnings.warn(
            f"the graph's output {name!r} comes from a {producer} node, not {want}: if it gives logits, "
            "annotate it with --output logits",
            stacklevel=3,
        )


def _channels(dims: tuple[int | None, ...] | None, config: AnnotateConfig) -> int:
    """The colour mode's channels, else what the graph says at the layout's channel axis, else 3."""
    if config.color_mode is not None:
        return 1 if config.color_mode == ColorMode.L else 3
    axis = {Layout.NCHW: 1, Layout.NHWC: 3}.get(config.layout)
    if dims is not None and axis is not None and len(dims) == 4 and dims[axis] in (1, 3):
        return int(dims[axis])  # type: ignore[arg-type]
    return 3
