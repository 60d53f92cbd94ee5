"""Give an ONNX classifier exported by another tool edgecnn's metadata, so every edgecnn command runs it.

``annotate`` reads the graph's one input (name, dtype, dims), builds ``ModelMetadata`` from what the user
says (labels, layout, size, preprocessing, output kind), checks it against the graph with the runtime's own
contract check (a wrong layout, size or label count is refused, naming the contradiction), and writes an
annotated copy atomically. The source file is never modified.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn._fs import atomic_path, sha256_file
from edgecnn._version import __version__
from edgecnn.errors import MetadataError, UsageError
from edgecnn.runtime.contract import GraphSignature, contract_problems
from edgecnn.runtime.metadata import (
    KEY_INPUT,
    KEY_PREPROCESS,
    ChannelOrder,
    ColorMode,
    CropMode,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
    embed_metadata,
)
from edgecnn.runtime.session import vet_model

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnnotateConfig:
    """What the user knows about a foreign model.

    Args:
        labels: class names in output order.
        layout: NCHW (PyTorch, most exporters) or NHWC (TensorFlow); None: inferred from an unambiguous
            graph input shape ([N, 3, 224, 224] is NCHW, [N, 28, 28, 1] NHWC).
        height, width: the input size the model was trained at; None: from the graph (fixed dims only).
        color_mode: L or RGB; None: from the graph's channel dimension (1: L, else RGB).
        scale, offset, mean, std: ``((pixel * scale + offset) - mean) / std``, per channel.
        output: softmax (probabilities), logits (edgecnn applies softmax) or sigmoid (one unit, 2 labels).
        interpolation, crop_mode, crop_pct, channel_order, fast_decode: ``PreprocessSpec``'s fields.
    """

    labels: tuple[str, ...]
    layout: Layout | None = None
    height: int | None = None
    width: int | None = None
    color_mode: ColorMode | None = None
    scale: float = 1.0 / 255.0  # most exporters' models take 0..1 pixels
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    output: OutputKind = OutputKind.softmax
    interpolation: str = "bilinear"
    crop_mode: CropMode = CropMode.squash
    crop_pct: float = 1.0
    channel_order: ChannelOrder = ChannelOrder.RGB
    fast_decode: bool = False


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# the common conventions, as AnnotateConfig fields; explicit options override a preset's values
PRESETS: dict[str, dict[str, Any]] = {
    # torchvision's ImageNet evaluation (references/classification, weights' transforms): Resize(256)
    # + CenterCrop(224), bilinear (antialiased), 0..1 then ImageNet mean/std. timm's nets mostly use
    # bicubic: add --interpolation bicubic (and their crop_pct)
    "torchvision": {
        "interpolation": "bilinear",
        "crop_mode": CropMode.center,
        "crop_pct": 0.875,
        "scale": 1.0 / 255.0,
        "offset": 0.0,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
    },
    # Inception / Keras "tf" mode / MobileNet: [-1, 1] values, central 87.5% crop
    "inception": {
        "interpolation": "bilinear",
        "crop_mode": CropMode.center,
        "crop_pct": 0.875,
        "scale": 1.0 / 127.5,
        "offset": -1.0,
        "mean": None,
        "std": None,
    },
    # Caffe / Keras "caffe" mode (VGG, ResNet50 v1): BGR order, raw 0..255 minus the ImageNet means in BGR
    "caffe": {
        "interpolation": "bilinear",
        "crop_mode": CropMode.center,
        "crop_pct": 0.875,
        "channel_order": ChannelOrder.BGR,
        "scale": 1.0,
        "offset": 0.0,
        "mean": (103.939, 116.779, 123.68),
        "std": (1.0, 1.0, 1.0),
    },
}


def preset_config(preset: str | None, labels: tuple[str, ...], **options: Any) -> AnnotateConfig:
    """An AnnotateConfig from a preset (or none) with the options the user gave (None = not given) on top.

    Raises:
        UsageError: an unknown preset.
    """
    if preset is not None and preset not in PRESETS:
        raise UsageError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = {**PRESETS.get(preset or "", {}), **{k: v for k, v in options.items() if v is not None}}
    return AnnotateConfig(labels=labels, **fields)

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
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a long inline list is no file name (ENAMETOOLONG)
        is_file = False
    if is_file:
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

    A layout or size left None is read off the graph's input shape when it says them unambiguously
    (``inferred_from_graph`` tells the caller which); otherwise UsageError names the flag to give.

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
    probe_output(src, meta)
    model = onnx.load(str(src))  # now with any external data, to write one self-contained file
    embed_metadata(model, meta)
    with atomic_path(dst, suffix=".onnx") as tmp:
        onnx.save_model(model, str(tmp))
    return meta


def inferred_from_graph(src: str | Path, config: AnnotateConfig) -> AnnotateConfig:
    """``config`` with its layout and size filled in from the graph's input shape where it left them None.

    Raises:
        UsageError: the shape does not say them unambiguously; names --layout / --size.
    """
    if config.layout is not None and config.height is not None and config.width is not None:
        return config
    _, model = vet_model(Path(src))
    sig = GraphSignature.of(model)
    dims = sig.inputs[0][2] if len(sig.inputs) == 1 else None
    shape = "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]" if dims else "unknown"
    guess = _layout_and_size(dims, config.layout)
    if guess is None:
        missing = [f for f, v in (("--layout", config.layout), ("--size", config.height)) if v is None]
        raise UsageError(
            f"{src}: the graph's input shape {shape} does not say the {' and '.join(m[2:] for m in missing)} "
            f"unambiguously; give {' and '.join(missing)} (e.g. --layout NCHW --size 224,224)"
        )
    layout, height, width = guess
    return replace(
        config,
        layout=config.layout or layout,
        height=config.height or height,
        width=config.width or width,
    )


def _layout_and_size(dims: tuple[int | None, ...] | None, layout: Layout | None) -> tuple[Layout, int, int] | None:
    """(layout, height, width) from a 4-D input shape with fixed spatial dims and 1 or 3 channels."""
    if dims is None or len(dims) != 4:
        return None
    fits = {
        Layout.NCHW: (dims[1], dims[2], dims[3]),
        Layout.NHWC: (dims[3], dims[1], dims[2]),
    }
    found = [
        (lay, h, w)
        for lay, (c, h, w) in fits.items()
        if (layout is None or layout == lay) and c in (1, 3) and isinstance(h, int) and isinstance(w, int)
    ]
    if len(found) != 1 or found[0][1] < 1 or found[0][2] < 1:
        return None
    return found[0]  # type: ignore[return-value]


# a field of the metadata contract -> the annotate option that sets it, for messages
_FLAGS = {
    f"{KEY_INPUT}: layout": "--layout",
    f"{KEY_INPUT}: height": "--size",
    f"{KEY_INPUT}: width": "--size",
    f"{KEY_INPUT}: channels": "--color",
    f"{KEY_INPUT}: dtype": "the graph's input dtype",
    f"{KEY_PREPROCESS}: interpolation": "--interpolation",
    f"{KEY_PREPROCESS}: crop_pct": "--crop-pct",
    f"{KEY_PREPROCESS}: scale": "--scale",
    f"{KEY_PREPROCESS}: offset": "--offset",
    f"{KEY_PREPROCESS}: mean": "--mean",
    f"{KEY_PREPROCESS}: std": "--std",
    f"{KEY_PREPROCESS}: give both mean and std": "--mean/--std: give both",
    f"{KEY_PREPROCESS}: BGR channel_order": "--channel-order BGR",
}


def _as_flags(message: str) -> str:
    """A contract message in the words of annotate's options (the user typed flags, not metadata keys)."""
    for key, flag in _FLAGS.items():
        if message.startswith(key):
            return flag + message[len(key) :]
    return message


def _metadata(model: Any, src: Path, config: AnnotateConfig) -> ModelMetadata:
    sig = GraphSignature.of(model)
    if len(sig.inputs) != 1:
        names = ", ".join(name for name, _, _ in sig.inputs) or "none"
        raise MetadataError(f"{src}: the graph has {len(sig.inputs)} inputs ({names}); edgecnn runs one", path=src)
    name, dtype, dims = sig.inputs[0]
    config = inferred_from_graph(src, config)
    assert config.layout is not None and config.height is not None and config.width is not None
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
                interpolation=config.interpolation,
                scale=config.scale,
                offset=config.offset,
                mean=config.mean,
                std=config.std,
                crop_mode=config.crop_mode,
                crop_pct=config.crop_pct,
                channel_order=config.channel_order,
                fast_decode=config.fast_decode,
            ),
            output=config.output,
            source={
                "annotated_by": f"edgecnn {__version__}",
                "producer": getattr(model, "producer_name", "") or "unknown",
                "sha256": sha256_file(src),
            },
        )
    except MetadataError as err:
        raise MetadataError(f"{src}: {_as_flags(str(err))}", path=src) from err


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


PROBE_SAMPLES = 4


def probe_output(src: Path, meta: ModelMetadata) -> None:
    """Run a few random images through the graph and refuse outputs that cannot be what ``meta`` declares
    (a logits graph annotated softmax answers "scores" of 7.24). Skipped when the graph cannot run here
    (custom ops, an input the probe cannot build): the first real batch is checked again anyway.

    Raises:
        MetadataError: the outputs are not probabilities though declared softmax/sigmoid.
    """
    import numpy as np

    from edgecnn.runtime.contract import check_output_values
    from edgecnn.runtime.preprocess import pixels_to_input
    from edgecnn.runtime.session import build_session

    spec = meta.input
    if meta.output == OutputKind.logits or not spec.is_image:
        return
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (PROBE_SAMPLES, spec.height, spec.width, spec.channels), dtype=np.uint8)
    try:
        session = build_session(src)
        raw = session.run(None, {spec.name: pixels_to_input(pixels, meta)})[0]
    except Exception as err:  # the probe is a bonus: a graph it cannot run is checked on its first batch
        log.info("annotate: could not run a probe input through %s (%s); output values not checked", src, err)
        return
    check_output_values(raw, meta, src)


def _channels(dims: tuple[int | None, ...] | None, config: AnnotateConfig) -> int:
    """The colour mode's channels, else what the graph says at the layout's channel axis, else 3."""
    if config.color_mode is not None:
        return 1 if config.color_mode == ColorMode.L else 3
    axis = {Layout.NCHW: 1, Layout.NHWC: 3}.get(config.layout)
    if dims is not None and axis is not None and len(dims) == 4 and dims[axis] in (1, 3):
        return int(dims[axis])  # type: ignore[arg-type]
    return 3
