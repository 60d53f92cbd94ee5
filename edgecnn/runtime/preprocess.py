"""Turn images into the model's input exactly as its metadata says; pure numpy + Pillow.

The one implementation of ``PreprocessSpec``: decode (``load_pixels``; the opt-in fast-decode shortcuts
bounded by ``FAST_DECODE_GAP``), geometry (``fit_image``: colour mode, interpolation, crop mode and
crop_pct, torchvision's rounding), then values (``pixels_to_input``: channel order, scale/offset,
mean/std, layout). Every path calls these: Classifier and classify (local and Ray), serve, parity,
calibration, ``quantize --eval``, bench baselines and training's data sources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from edgecnn.errors import InputError
from edgecnn.runtime.images import load_image, to_color_mode
from edgecnn.runtime.metadata import ChannelOrder, CropMode, InputSpec, Layout, ModelMetadata, PreprocessSpec

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# Fast decoding (opt-in, PreprocessSpec.fast_decode) keeps the image at least this many times the resize
# target before the real filter runs: a JPEG decodes at 1/2, 1/4 or 1/8 DCT scale and any image shrinks
# by a whole factor first (Pillow's ``reducing_gap``). Measured with a real ImageNet net on real photos
# (benchmarks/fast_decode.py, README "Fast decoding"): no gap keeps every answer within the FP32 bar
# (1e-4) once a shortcut fires, so exact decoding is the default; at 4, up to ~1e-2 at 112 px inputs.
FAST_DECODE_GAP = 4


def scale_size(height: int, width: int, pre: PreprocessSpec) -> tuple[int, int]:
    """(height, width) that the resize aims at before the crop: the input size / crop_pct (timm's rule)."""
    if pre.crop_pct == 1.0:
        return height, width
    return math.floor(height / pre.crop_pct), math.floor(width / pre.crop_pct)


def resize_plan(src_w: int, src_h: int, height: int, width: int, pre: PreprocessSpec) -> tuple[int, int]:
    """(width, height) an image of ``src_w`` x ``src_h`` is resized to before the centre crop (or pad)."""
    sh, sw = scale_size(height, width, pre)
    if pre.crop_mode == CropMode.squash:
        return sw, sh
    if pre.crop_mode == CropMode.center:  # cover the target; torchvision's Resize(int) rounding (truncate)
        if sh * src_w >= sw * src_h:
            return max(sw, int(sh * src_w / src_h)), sh
        return sw, max(sh, int(sw * src_h / src_w))
    ratio = max(src_h / sh, src_w / sw)  # border: fit inside the target (timm's ResizeKeepRatio, longest=1)
    return max(1, round(src_w / ratio)), max(1, round(src_h / ratio))


def draft_size(height: int, width: int, pre: PreprocessSpec) -> tuple[int, int] | None:
    """(width, height) a JPEG may be DCT-decoded down to; None: decode at full resolution."""
    if not pre.fast_decode:
        return None
    sh, sw = scale_size(height, width, pre)
    return FAST_DECODE_GAP * sw, FAST_DECODE_GAP * sh


def fit_image(img: Image.Image, height: int, width: int, pre: PreprocessSpec) -> Image.Image:
    """A decoded image -> the colour mode and ``height`` x ``width`` geometry ``pre`` asks for (8-bit)."""
    img = to_color_mode(img, pre.color_mode.value)
    if img.size == (width, height) and (pre.crop_mode == CropMode.squash or pre.crop_pct == 1.0):
        return img  # already there: resize and crop would both be identities
    size = resize_plan(img.width, img.height, height, width, pre)
    if img.size != size:
        gap = FAST_DECODE_GAP if pre.fast_decode else None
        img = img.resize(size, _RESAMPLE[pre.interpolation], reducing_gap=gap)
    if pre.crop_mode == CropMode.border and (img.width < width or img.height < height):
        canvas = Image.new(img.mode, (max(width, img.width), max(height, img.height)), _fill(pre, img.mode))
        canvas.paste(img, ((canvas.width - img.width) // 2, (canvas.height - img.height) // 2))
        img = canvas
    if img.size != (width, height):  # torchvision's CenterCrop offsets
        left, top = round((img.width - width) / 2.0), round((img.height - height) / 2.0)
        img = img.crop((left, top, left + width, top + height))
    return img


def _fill(pre: PreprocessSpec, mode: str) -> int | tuple[int, ...]:
    """Border padding: the pixel that normalises to 0 (the mean colour), black without a mean."""
    if pre.mean is None:
        return 0 if mode == "L" else (0, 0, 0)
    scale, offset = (1.0, 0.0) if pre.model_rescales else (pre.scale, pre.offset)
    mean = list(pre.mean) * (3 if len(pre.mean) == 1 else 1)
    if pre.channel_order == ChannelOrder.BGR:
        mean = mean[::-1]
    values = tuple(int(min(255, max(0, round((m - offset) / scale)))) for m in mean)
    return values[0] if mode == "L" else values[:3]


def load_pixels(path: str | Path, height: int, width: int, pre: PreprocessSpec) -> np.ndarray:
    """One image file -> uint8 (H, W, C): the decode and geometry every path shares (classify, serve,
    parity, calibration, training folders)."""
    img = load_image(path, draft_size=draft_size(height, width, pre))
    arr = np.asarray(fit_image(img, height, width, pre), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def image_to_pixels(img: Image.Image, meta: ModelMetadata) -> np.ndarray:
    """A decoded image -> uint8 array (H, W, C) at the model's size and colour mode."""
    spec, pre = meta.input, meta.preprocess
    if not spec.is_image:
        raise InputError(f"this model takes {spec.layout.value} signals of shape {spec.sample_shape}, not images")
    arr = np.asarray(fit_image(img, spec.height, spec.width, pre), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != spec.channels:
        if spec.channels == 3 and arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        elif spec.channels == 1 and arr.shape[2] == 3:
            arr = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.uint8)[:, :, None]
    return arr


def images_to_input(images: Iterable[Image.Image | np.ndarray], meta: ModelMetadata) -> np.ndarray:
    """Decoded images (PIL images or uint8 arrays (H, W[, C]) of any size) -> the model's input batch.

    The one function between pixels and the model: what classify serves is what parity and calibration
    measured, and what training (streaming batches) fed the network.
    """
    pixels = []
    for item in images:
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim not in (2, 3):
                raise InputError(f"expected a uint8 image array (H, W[, C]), got {item.dtype} {item.shape}")
            item = Image.fromarray(item if item.ndim == 2 or item.shape[2] != 1 else item[:, :, 0])
        pixels.append(image_to_pixels(item, meta))
    return pixels_to_input(np.stack(pixels), meta)


def pixels_to_input(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """uint8 pixels (N, H, W, C) or (N, H, W) -> the model's float input batch in its layout."""
    spec, pre = meta.input, meta.preprocess
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4 or pixels.shape[1:] != (spec.height, spec.width, spec.channels):
        raise InputError(
            f"expected pixels of shape (N, {spec.height}, {spec.width}, {spec.channels}), got {tuple(pixels.shape)}"
        )
    if pre.channel_order == ChannelOrder.BGR and pixels.shape[-1] == 3:
        pixels = pixels[..., ::-1]
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
