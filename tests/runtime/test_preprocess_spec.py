"""The preprocessing spec (timm's vocabulary) in the metadata contract, and its one implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgecnn.errors import MetadataError
from edgecnn.runtime.metadata import (
    INTERPOLATIONS,
    KEY_PREPROCESS,
    ChannelOrder,
    ColorMode,
    CropMode,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
)
from edgecnn.runtime.preprocess import fit_image, images_to_input, pixels_to_input, resize_plan


def _meta(pre: PreprocessSpec, h: int = 224, w: int = 224, layout: Layout = Layout.NCHW) -> ModelMetadata:
    return ModelMetadata(("a", "b"), InputSpec("input", layout, h, w, 3), pre, OutputKind.logits)


@settings(max_examples=150, deadline=None)
@given(
    color=st.sampled_from(list(ColorMode)),
    interpolation=st.sampled_from(INTERPOLATIONS),
    crop_mode=st.sampled_from(list(CropMode)),
    crop_pct=st.floats(0.05, 1.0, allow_nan=False),
    bgr=st.booleans(),
    fast=st.booleans(),
    mean=st.none() | st.lists(st.floats(-300, 300, allow_nan=False), min_size=1, max_size=3),
)
def test_preprocess_spec_round_trips(
    color: ColorMode, interpolation: str, crop_mode: CropMode, crop_pct: float, bgr: bool, fast: bool, mean: list
) -> None:
    pre = PreprocessSpec(
        color_mode=color,
        interpolation=interpolation,
        crop_mode=crop_mode,
        crop_pct=crop_pct,
        channel_order=ChannelOrder.BGR if bgr and color == ColorMode.RGB else ChannelOrder.RGB,
        fast_decode=fast,
        mean=None if mean is None else tuple(mean),
        std=None if mean is None else tuple(1.0 + abs(m) for m in mean),
    )
    meta = _meta(pre)
    assert ModelMetadata.from_props(meta.to_props()) == meta
    assert PreprocessSpec.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre


def test_old_metadata_keeps_its_meaning() -> None:
    """A file written before the spec grew (key ``resize``, no crop): that filter, squashed, RGB; decoded
    exactly (the old shortcuts broke the FP32 bar)."""
    props = _meta(PreprocessSpec()).to_props()
    props[KEY_PREPROCESS] = json.dumps(
        {"color_mode": "RGB", "resize": "bicubic", "scale": 1 / 255, "offset": 0.0, "mean": None, "std": None}
    )
    pre = ModelMetadata.from_props(props).preprocess
    assert (pre.interpolation, pre.resize, pre.crop_mode, pre.crop_pct) == ("bicubic", "bicubic", CropMode.squash, 1.0)
    assert (pre.channel_order, pre.fast_decode) == (ChannelOrder.RGB, False)
    assert "interpolation" in pre.to_dict() and "resize" not in pre.to_dict()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"interpolation": "cubic"}, "interpolation must be one of"),
        ({"resize": "bicubic", "interpolation": "bilinear"}, "disagree"),
        ({"crop_pct": 0}, "crop_pct must be a number in (0, 1]"),
        ({"crop_pct": 1.5}, "crop_pct must be a number in (0, 1]"),
        ({"crop_mode": "letterbox"}, "crop_mode must be one of ['squash', 'center', 'border'], got 'letterbox'"),
        ({"channel_order": "GRB"}, "channel_order must be one of ['RGB', 'BGR']"),
        ({"channel_order": "BGR", "color_mode": "L"}, "BGR channel_order needs color_mode RGB"),
        ({"fast_decode": "yes"}, "fast_decode must be true or false"),
    ],
)
def test_invalid_preprocess_fields_raise_metadata_error(fields: dict, fragment: str) -> None:
    props = _meta(PreprocessSpec()).to_props()
    pre = {**json.loads(props[KEY_PREPROCESS]), **fields}
    props[KEY_PREPROCESS] = json.dumps(pre)
    with pytest.raises(MetadataError) as info:
        ModelMetadata.from_props(props)
    assert fragment in str(info.value)


# -- geometry --------------------------------------------------------------------------------------
def _photo(w: int = 640, h: int = 427) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_center_crop_is_torchvision_resize_then_center_crop() -> None:
    """224 with crop_pct 0.875 = shorter side 256 (torchvision's truncation), then the centre 224 (its rounding)."""
    pre = PreprocessSpec(interpolation="bicubic", crop_mode=CropMode.center, crop_pct=0.875, fast_decode=False)
    img = _photo()
    assert resize_plan(640, 427, 224, 224, pre) == (383, 256)  # int(256 * 640 / 427) = 383
    want = img.resize((383, 256), Image.Resampling.BICUBIC).crop((80, 16, 304, 240))  # round(79.5) = 80
    assert np.array_equal(np.asarray(fit_image(img, 224, 224, pre)), np.asarray(want))
    portrait = img.transpose(Image.Transpose.ROTATE_90)
    assert resize_plan(427, 640, 224, 224, pre) == (256, 383)
    assert fit_image(portrait, 224, 224, pre).size == (224, 224)


def test_squash_with_crop_pct_resizes_each_edge_then_crops() -> None:
    pre = PreprocessSpec(crop_mode=CropMode.squash, crop_pct=0.875, fast_decode=False)
    assert resize_plan(640, 427, 224, 224, pre) == (256, 256)
    old = PreprocessSpec(fast_decode=False)  # crop_pct 1: today's squash, aspect ratio not kept
    assert np.array_equal(
        np.asarray(fit_image(_photo(), 224, 224, old)),
        np.asarray(_photo().resize((224, 224), Image.Resampling.BILINEAR)),
    )


def test_border_keeps_aspect_and_pads_with_the_mean_colour() -> None:
    pre = PreprocessSpec(
        crop_mode=CropMode.border, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), fast_decode=False
    )
    out = np.asarray(fit_image(_photo(), 224, 224, pre))
    assert resize_plan(640, 427, 224, 224, pre) == (224, 149)
    pad = (224 - 149) // 2
    assert out.shape == (224, 224, 3)
    assert (out[:pad] == (124, 116, 104)).all() and (out[pad + 149 :] == (124, 116, 104)).all()
    x = pixels_to_input(out[None], _meta(pre))  # the padding normalises to (almost) 0
    assert np.abs(x[0, :, 0, 0]).max() < 0.01


def test_bgr_flips_channels_before_mean_subtraction() -> None:
    """Caffe-style: BGR order, raw 0..255 values minus the per-channel mean given in BGR order."""
    caffe = PreprocessSpec(scale=1.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0), channel_order="BGR")
    px = np.zeros((1, 4, 4, 3), np.uint8)
    px[..., 0] = 200  # red
    x = pixels_to_input(px, _meta(caffe, 4, 4, Layout.NHWC))
    np.testing.assert_allclose(x[0, 0, 0], [0 - 103.939, 0 - 116.779, 200 - 123.68], rtol=1e-6)


def test_images_to_input_takes_pil_images_and_uint8_arrays_of_any_size() -> None:
    pre = PreprocessSpec(interpolation="bicubic", crop_mode=CropMode.center, crop_pct=0.875)
    meta = _meta(pre, 32, 32)
    img = _photo(120, 90)
    a = images_to_input([img, np.asarray(img)], meta)
    assert a.shape == (2, 3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1])
