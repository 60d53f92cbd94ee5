"""Turn images into the model's input exactly as its metadata says; pure numpy + Pillow."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgecnn.errors import InputError
from edgecnn.runtime.images import to_color_mode
from edgecnn.runtime.metadata import InputSpec, Layout, ModelMetadata, PreprocessSpec

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def image_to_pixels(img: Image.Image, meta: ModelMetadata) -> np.ndarray:
    """A decoded image -> uint8 array (H, W, C) at the model's size and colour mode."""
    spec, pre = meta.input, meta.preprocess
    if not spec.is_image:
        raise InputError(f"this model takes {spec.layout.value} signals of shape {spec.sample_shape}, not images")
    img = to_color_mode(img, pre.color_mode.value)
    if img.size != (spec.width, spec.height):
        if img.width > 4 * spec.width and img.height > 4 * spec.height:
            img = img.reduce(max(1, min(img.width // (2 * spec.width), img.height // (2 * spec.height))))
        img = img.resize((spec.width, spec.height), _RESAMPLE[pre.resize])
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != spec.channels:
        if spec.channels == 3 and arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        elif spec.channels == 1 and arr.shape[2] == 3:
            arr = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.uint8)[:, :, None]
    return arr


def pixels_to_input(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """uint8 pixels (N, H, W, C) or (N, H, W) -> the model's float input batch in its layout."""
    spec, pre = meta.input, meta.preprocess
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4 or pixels.shape[1:] != (spec.height, spec.width, spec.channels):
        raise InputError(
            f"expected pixels of shape (N, {spec.height}, {spec.width}, {spec.channels}), got {tuple(pixels.shape)}"
        )
    x = normalise(pixels.astype(np.float32, copy=False), pre)
    return to_layout(x, spec)


def normalise(x: np.ndarray, pre: PreprocessSpec) -> np.ndarray:
    """((x * scale + offset) - mean) / std, in float32."""
    if not pre.model_rescales and (pre.scale != 1.0 or pre.offset != 0.0):
        x = x * np.float32(pre.scale) + np.float32(pre.offset)
    if pre.mean is not None and pre.std is not None:
        x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return x.astype(np.float32, copy=False)


def to_layout(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """NHWC float batch -> the model's layout."""
    if spec.layout == Layout.NCHW:
        x = np.transpose(x, (0, 3, 1, 2))
    elif spec.layout == Layout.NHW:
        x = x[..., 0]
    elif spec.layout == Layout.NWC:
        x = x[:, 0]
    if spec.dtype == "uint8":  # a model that takes raw pixels (the contract forbids scaling for it)
        x = np.clip(np.rint(x), 0, 255)
    return np.ascontiguousarray(x, dtype=np.dtype(spec.dtype))


def check_batch(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Validate a preprocessed batch (or one sample) against the model's input; return it as a batch.

    Raises:
        InputError: wrong rank, shape or dtype; says what the model expects and what it got.
    """
    if not isinstance(x, np.ndarray):
        raise InputError(f"expected a numpy array, got {type(x).__name__}")
    want = spec.sample_shape
    if x.shape == want:
        x = x[None]
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise InputError(
            f"input has shape {tuple(x.shape)}, but the model expects (N, {', '.join(map(str, want))}) "
            f"({spec.layout.value}, {spec.height}x{spec.width}x{spec.channels})"
        )
    if x.dtype.kind not in "fiu":
        raise InputError(f"input has dtype {x.dtype}, but the model expects {spec.dtype}")
    want_dtype = np.dtype(spec.dtype)
    if x.dtype != want_dtype:
        x = x.astype(want_dtype)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InputError("input contains NaN or Inf values; the model's answer would be meaningless")
    return x
