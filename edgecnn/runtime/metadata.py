"""The ONNX metadata contract: an exported model describes itself so ``Classifier(path)`` needs nothing else.

Keys live in the model's ``metadata_props`` with JSON values (DESIGN.md, "The model contract"):

* ``edgecnn.labels``        class names in output order
* ``edgecnn.input``         name, layout, height, width, channels, dtype
* ``edgecnn.preprocess``    colour mode, channel order, interpolation, crop mode and crop_pct (timm's data-config
                            vocabulary), scale/offset, mean/std, model_rescales, opt-in fast decode
* ``edgecnn.output``        softmax | sigmoid | logits
* ``edgecnn.source``        sha256 of the Keras file, versions, opset (free-form)
* ``edgecnn.quantization``  quantized variants only: mode, method, per-channel, calibration size and hash
* ``edgecnn.version``       version of this contract

Parsing is strict: untrusted text becomes objects here, so every problem raises MetadataError naming the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from edgecnn.errors import MetadataError

CONTRACT_VERSION = 1
KEY_VERSION = "edgecnn.version"
KEY_LABELS = "edgecnn.labels"
KEY_INPUT = "edgecnn.input"
KEY_PREPROCESS = "edgecnn.preprocess"
KEY_OUTPUT = "edgecnn.output"
KEY_SOURCE = "edgecnn.source"
KEY_QUANTIZATION = "edgecnn.quantization"
REQUIRED_KEYS = (KEY_LABELS, KEY_INPUT, KEY_PREPROCESS, KEY_OUTPUT)


class OutputKind(str, Enum):
    """How the model's raw output becomes probabilities."""

    softmax = "softmax"  # already probabilities over classes
    sigmoid = "sigmoid"  # one unit: P(labels[1]); the engine returns [1-p, p]
    logits = "logits"  # the engine applies softmax


class Layout(str, Enum):
    """Axis order of one input batch. NHW: grayscale without a channel axis (MLPs); NWC: 1-D signals;
    NC: a flat feature vector of ``width`` values (tabular models; not an image)."""

    NHWC = "NHWC"
    NCHW = "NCHW"
    NHW = "NHW"
    NWC = "NWC"
    NC = "NC"


class ColorMode(str, Enum):
    L = "L"
    RGB = "RGB"


class CropMode(str, Enum):
    """How an image of any aspect ratio reaches the input size (timm's ``crop_mode``).

    squash: resize each edge to ``size / crop_pct`` (aspect ratio not kept), then centre-crop ``size``;
    center: resize the shorter side to ``size / crop_pct`` (aspect kept), then centre-crop ``size`` —
    torchvision's ``Resize(256) + CenterCrop(224)`` is center with crop_pct 0.875;
    border: resize the longer side to ``size / crop_pct`` (aspect kept), then pad to ``size`` with the
    mean colour (the pixel value that normalises to 0; black without a mean).
    """

    squash = "squash"
    center = "center"
    border = "border"


class ChannelOrder(str, Enum):
    """Order of the colour channels the model takes (Caffe-era nets: BGR); mean/std are in this order."""

    RGB = "RGB"
    BGR = "BGR"


# Pillow's filters; every one but nearest antialiases when it shrinks (its support widens with the scale
# factor), which is what torchvision's Resize does on PIL images (and on tensors with antialias=True)
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos", "box", "hamming")
RESIZE_METHODS = INTERPOLATIONS  # the name before 0.x: metadata key ``resize``
DTYPES = ("float32", "float16", "uint8")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What one sample looks like to the model (batch axis excluded)."""

    name: str
    layout: Layout
    height: int
    width: int
    channels: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for dim in ("height", "width", "channels"):
            value = getattr(self, dim)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise MetadataError(f"{KEY_INPUT}: {dim} must be a positive integer, got {value!r}")
        if self.dtype not in DTYPES:
            raise MetadataError(f"{KEY_INPUT}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.layout == Layout.NHW and self.channels != 1:
            raise MetadataError(f"{KEY_INPUT}: layout NHW implies channels=1, got {self.channels}")
        if self.layout == Layout.NWC and self.height != 1:
            raise MetadataError(f"{KEY_INPUT}: layout NWC implies height=1, got {self.height}")
        if self.layout == Layout.NC and (self.height, self.channels) != (1, 1):
            raise MetadataError(
                f"{KEY_INPUT}: layout NC (a feature vector of width values) implies height=1, channels=1"
            )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample in the model's layout, batch axis excluded."""
        h, w, c = self.height, self.width, self.channels
        return {
            Layout.NHWC: (h, w, c),
            Layout.NCHW: (c, h, w),
            Layout.NHW: (h, w),
            Layout.NWC: (w, c),
            Layout.NC: (w,),
        }[self.layout]

    @property
    def is_image(self) -> bool:
        return self.layout not in (Layout.NWC, Layout.NC) and self.channels in (1, 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layout": self.layout.value,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "dtype": self.dtype,
        }


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """How a decoded image becomes the model's input (one implementation: ``edgecnn.runtime.preprocess``).

    Geometry: ``crop_mode`` and ``crop_pct`` with the ``interpolation`` filter (Pillow's; antialiased when
    shrinking, except nearest). Values: ``((x * scale + offset) - mean) / std`` on the channels in
    ``channel_order``. ``model_rescales`` records that the model holds a Rescaling layer itself; then
    scale=1, offset=0 and the engine feeds raw 0..255 values. ``fast_decode`` (opt-in) lets a large JPEG
    decode at a reduced DCT scale and a large image shrink by whole factors before the filter: faster on
    big photos, but it moves a real net's probabilities by up to ~1e-2, far past the FP32 bar (1e-4;
    README, "Fast decoding"), so the default decodes and resizes from full resolution, exactly.
    """

    color_mode: ColorMode = ColorMode.RGB
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    model_rescales: bool = False
    crop_mode: CropMode = CropMode.squash
    crop_pct: float = 1.0
    channel_order: ChannelOrder = ChannelOrder.RGB
    fast_decode: bool = False  # exact: the shortcuts' error exceeds the FP32 bar (measured, README)

    def __post_init__(self) -> None:
        for name, enum in (("color_mode", ColorMode), ("crop_mode", CropMode), ("channel_order", ChannelOrder)):
            try:  # accept the enums' string values too ("center", "BGR"), store the enum
                object.__setattr__(self, name, enum(getattr(self, name)))
            except ValueError:
                choices, got = [e.value for e in enum], getattr(self, name)
                raise MetadataError(f"{KEY_PREPROCESS}: {name} must be one of {choices}, got {got!r}") from None
        if self.interpolation not in INTERPOLATIONS:
            raise MetadataError(
                f"{KEY_PREPROCESS}: interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise MetadataError(f"{KEY_PREPROCESS}: {name} must be a finite number, got {value!r}")
        pct = self.crop_pct
        if not isinstance(pct, (int, float)) or isinstance(pct, bool) or not (0.0 < pct <= 1.0):
            raise MetadataError(f"{KEY_PREPROCESS}: crop_pct must be a number in (0, 1], got {pct!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None:
                continue
            if not value or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
            ):
                raise MetadataError(f"{KEY_PREPROCESS}: {name} must be a list of finite numbers, got {value!r}")
        if self.std is not None and any(v == 0 for v in self.std):
            raise MetadataError(f"{KEY_PREPROCESS}: std must not contain 0")
        if (self.mean is None) != (self.std is None):
            raise MetadataError(f"{KEY_PREPROCESS}: give both mean and std, or neither")
        if self.channel_order == ChannelOrder.BGR and self.color_mode != ColorMode.RGB:
            raise MetadataError(f"{KEY_PREPROCESS}: BGR channel_order needs color_mode RGB ({self.color_mode.value})")

    @property
    def resize(self) -> str:
        """The interpolation filter under its old name (metadata key ``resize``)."""
        return self.interpolation

    def to_dict(self) -> dict[str, Any]:
        return {
            "color_mode": self.color_mode.value,
            "channel_order": self.channel_order.value,
            "interpolation": self.interpolation,
            "crop_mode": self.crop_mode.value,
            "crop_pct": self.crop_pct,
            "scale": self.scale,
            "offset": self.offset,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "model_rescales": self.model_rescales,
            "fast_decode": self.fast_decode,
        }

    @classmethod
    def from_dict(cls, pre: Mapping[str, Any]) -> PreprocessSpec:
        """Parse the ``edgecnn.preprocess`` object; older files (key ``resize``, no crop) mean what they meant:
        that filter, squashed to the input size, RGB order (decoded exactly: the old shortcuts broke the bar)."""
        interpolation = pre.get("interpolation", pre.get("resize", "bilinear"))
        if "resize" in pre and "interpolation" in pre and pre["resize"] != pre["interpolation"]:
            raise MetadataError(
                f"{KEY_PREPROCESS}: resize {pre['resize']!r} and interpolation {pre['interpolation']!r} disagree"
            )
        fast = pre.get("fast_decode", False)
        if not isinstance(fast, bool):
            raise MetadataError(f"{KEY_PREPROCESS}: fast_decode must be true or false, got {fast!r}")
        return cls(
            color_mode=pre.get("color_mode", "RGB"),
            interpolation=interpolation,
            scale=pre.get("scale", 1.0 / 255.0),
            offset=pre.get("offset", 0.0),
            mean=_tuple_or_none(pre.get("mean"), "mean"),
            std=_tuple_or_none(pre.get("std"), "std"),
            model_rescales=bool(pre.get("model_rescales", False)),
            crop_mode=pre.get("crop_mode", "squash"),
            crop_pct=pre.get("crop_pct", 1.0),
            channel_order=pre.get("channel_order", "RGB"),
            fast_decode=fast,
        )


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """Everything the runtime needs to feed a model and read its answer."""

    labels: tuple[str, ...]
    input: InputSpec
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    output: OutputKind = OutputKind.softmax
    source: Mapping[str, Any] = field(default_factory=dict)
    quantization: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.labels or not all(isinstance(x, str) for x in self.labels):
            raise MetadataError(f"{KEY_LABELS}: must be a non-empty list of strings")
        if len(set(self.labels)) != len(self.labels):
            raise MetadataError(f"{KEY_LABELS}: class names must be unique")
        if self.output == OutputKind.sigmoid and len(self.labels) != 2:
            raise MetadataError(f"{KEY_LABELS}: a sigmoid output needs exactly 2 labels, got {len(self.labels)}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def with_quantization(self, info: Mapping[str, Any]) -> ModelMetadata:
        """A copy that records how a quantized variant was made."""
        return replace(self, quantization=dict(info))

    def to_props(self) -> dict[str, str]:
        """Serialise to ``metadata_props`` (JSON strings)."""
        props = {
            KEY_VERSION: json.dumps(CONTRACT_VERSION),
            KEY_LABELS: json.dumps(list(self.labels)),
            KEY_INPUT: json.dumps(self.input.to_dict()),
            KEY_PREPROCESS: json.dumps(self.preprocess.to_dict()),
            KEY_OUTPUT: json.dumps(self.output.value),
            KEY_SOURCE: json.dumps(dict(self.source), sort_keys=True, default=str),
        }
        if self.quantization is not None:
            props[KEY_QUANTIZATION] = json.dumps(dict(self.quantization), sort_keys=True, default=str)
        return props

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (for `edgecnn info --json` and reports)."""
        return {key.removeprefix("edgecnn."): json.loads(value) for key, value in self.to_props().items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ModelMetadata:
        """Parse ``metadata_props``; raise MetadataError naming the key for anything missing or invalid."""
        missing = [key for key in REQUIRED_KEYS if key not in props]
        if missing:
            raise MetadataError(
                f"model has no edgecnn metadata ({', '.join(missing)} missing); export it with "
                "'edgecnn export' or pass the metadata explicitly"
            )
        version = _load(props, KEY_VERSION, default=CONTRACT_VERSION)
        if version != CONTRACT_VERSION:
            raise MetadataError(f"{KEY_VERSION}: unsupported contract version {version!r} (this edgecnn reads 1)")
        labels = _load(props, KEY_LABELS)
        if not isinstance(labels, list):
            raise MetadataError(f"{KEY_LABELS}: expected a JSON list, got {type(labels).__name__}")
        inp = _object(props, KEY_INPUT)
        pre = _object(props, KEY_PREPROCESS)
        output = _load(props, KEY_OUTPUT)
        source = _load(props, KEY_SOURCE, default={})
        quant = _load(props, KEY_QUANTIZATION, default=None)
        if not isinstance(source, dict):
            raise MetadataError(f"{KEY_SOURCE}: expected a JSON object")
        if quant is not None and not isinstance(quant, dict):
            raise MetadataError(f"{KEY_QUANTIZATION}: expected a JSON object")
        try:
            input_spec = InputSpec(
                name=_str(inp, "name", KEY_INPUT),
                layout=Layout(inp["layout"]),
                height=inp["height"],
                width=inp["width"],
                channels=inp["channels"],
                dtype=inp.get("dtype", "float32"),
            )
            pre_spec = PreprocessSpec.from_dict(pre)
            return cls(
                labels=tuple(labels),
                input=input_spec,
                preprocess=pre_spec,
                output=OutputKind(output),
                source=source,
                quantization=quant,
            )
        except MetadataError:
            raise
        except KeyError as err:
            raise MetadataError(f"edgecnn metadata: missing field {err}") from err
        except (ValueError, TypeError) as err:
            raise MetadataError(f"edgecnn metadata: {err}") from err


def _load(props: Mapping[str, str], key: str, **kw: Any) -> Any:
    if key not in props:
        if "default" in kw:
            return kw["default"]
        raise MetadataError(f"{key}: missing")
    try:
        return json.loads(props[key])
    except (TypeError, ValueError) as err:
        raise MetadataError(f"{key}: not valid JSON ({err})") from err


def _object(props: Mapping[str, str], key: str) -> dict[str, Any]:
    value = _load(props, key)
    if not isinstance(value, dict):
        raise MetadataError(f"{key}: expected a JSON object, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], field_name: str, key: str) -> str:
    value = obj.get(field_name)
    if not isinstance(value, str) or not value:
        raise MetadataError(f"{key}: {field_name} must be a non-empty string, got {value!r}")
    return value


def _tuple_or_none(value: Any, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if not isinstance(value, list):
        raise MetadataError(f"{KEY_PREPROCESS}: {name} must be a list of numbers, got {value!r}")
    return tuple(value)


def embed_metadata(model: Any, metadata: ModelMetadata) -> None:
    """Write ``metadata`` into an ``onnx.ModelProto`` in place, replacing earlier edgecnn.* keys."""
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith("edgecnn.")]
    del model.metadata_props[:]
    for key, value in [*keep, *metadata.to_props().items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def props_of(model: Any) -> dict[str, str]:
    """``metadata_props`` of an ``onnx.ModelProto`` as a dict."""
    return {p.key: p.value for p in model.metadata_props}
