"""The zoo registry: TF-free specs (data) mapped to builder functions that import Keras when called."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edgecnn.errors import UsageError
from edgecnn.runtime.metadata import (
    ColorMode,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
)


@dataclass(frozen=True, slots=True)
class ZooSpec:
    """A course architecture, described without TensorFlow."""

    name: str
    input_shape: tuple[int, ...]  # without the batch axis
    params: int | None  # as printed by model.summary() in the course material
    output: OutputKind
    labels: tuple[str, ...]
    layout: Layout
    preprocess: PreprocessSpec
    source: str  # where the architecture comes from in the course
    data: str  # default data source for training
    layers: str = ""
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "adam"
    epochs: int = 5
    batch_size: int = 64
    reported_accuracy: str = "—"
    options: tuple[str, ...] = ()  # builder options a user may set: input_size, alpha, weights
    extra: dict[str, Any] = field(default_factory=dict)

    def sized(self, input_size: int | None) -> ZooSpec:
        """This spec at a square ``input_size`` (the keras.applications nets); itself when None.

        Raises:
            UsageError: the architecture has a fixed input.
        """
        if input_size is None or (input_size, input_size) == self.input_shape[:2]:
            return self
        if "input_size" not in self.options:
            raise UsageError(f"{self.name} has a fixed input {'×'.join(map(str, self.input_shape))}; drop --input-size")
        smallest = int(self.extra.get("min_input_size", 1))
        if input_size < smallest:
            raise UsageError(f"{self.name}: --input-size must be >= {smallest}, got {input_size}")
        return replace(self, input_shape=(input_size, input_size, *self.input_shape[2:]))

    def builder_options(self, **options: Any) -> dict[str, Any]:
        """The options given (None = the builder's default) as builder kwargs; UsageError for one it lacks."""
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            takes = ", ".join("--" + k.replace("_", "-") for k in self.options) or "no options"
            raise UsageError(f"{self.name} does not take {flags} (it takes {takes})")
        return given

    @property
    def input_spec(self) -> InputSpec:
        shape = self.input_shape
        if self.layout == Layout.NHW:
            h, w, c = shape[0], shape[1], 1
        elif self.layout == Layout.NWC:
            h, w, c = 1, shape[0], shape[1]
        else:
            h, w, c = shape
        return InputSpec(name="input", layout=self.layout, height=h, width=w, channels=c)

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            labels=self.labels,
            input=self.input_spec,
            preprocess=self.preprocess,
            output=self.output,
            source={"zoo": self.name},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "output": self.output.value,
            "layout": self.layout.value,
            "classes": len(self.labels),
            "data": self.data,
            "layers": self.layers,
            "source": self.source,
            "reported_accuracy": self.reported_accuracy,
            "options": list(self.options),
        }


_SPECS: dict[str, ZooSpec] = {}
_BUILDERS: dict[str, Callable[..., Any]] = {}


def register(spec: ZooSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``builder`` under ``spec.name`` (a collision warns and replaces)."""

    def wrap(builder: Callable[..., Any]) -> Callable[..., Any]:
        if spec.name in _SPECS:
            warnings.warn(f"zoo: {spec.name!r} registered twice; the later one wins", stacklevel=2)
        _SPECS[spec.name] = spec
        _BUILDERS[spec.name] = builder
        return builder

    return wrap


def names(pattern: str | None = None) -> list[str]:
    """Registered names in table order, optionally filtered by a shell pattern ('mnist-*')."""
    found = list(_SPECS)
    return [n for n in found if fnmatch.fnmatch(n, pattern)] if pattern else found


def get_spec(name: str) -> ZooSpec:
    """The spec of ``name``; UsageError listing the known names otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UsageError(f"unknown zoo model {name!r}; known: {', '.join(_SPECS)}") from None


def builder(name: str) -> Callable[..., Any]:
    get_spec(name)
    return _BUILDERS[name]


GRAY = PreprocessSpec(color_mode=ColorMode.L, interpolation="bilinear", scale=1.0 / 255.0, offset=0.0)
RGB = PreprocessSpec(color_mode=ColorMode.RGB, interpolation="bilinear", scale=1.0 / 255.0, offset=0.0)
RGB_RAW = PreprocessSpec(color_mode=ColorMode.RGB, interpolation="bilinear", scale=1.0, offset=0.0, model_rescales=True)
SIGNAL = PreprocessSpec(color_mode=ColorMode.L, interpolation="bilinear", scale=1.0 / 255.0, offset=0.0)
