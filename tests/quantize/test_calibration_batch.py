"""MinMax calibration runs in small batches at 224×224 (onnxruntime's calibration session holds one batch's
activations: 3.9 GB at 32 for MobileNetV2, 1.25 GB at 8), and the ranges, hence the model, do not change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from conftest import make_tiny_onnx
from onnx import numpy_helper

from edgecnn.runtime import read_metadata


def test_minmax_batches_shrink_with_the_input_and_histograms_keep_theirs(tmp_path: Path) -> None:
    from edgecnn.quantize.calibration import CALIBRATION_BATCH, ArrayReader, calibration_batch, minmax_batch

    meta = read_metadata(make_tiny_onnx(tmp_path / "m.onnx", size=28, channels=1))
    assert calibration_batch(meta, minmax=True) == CALIBRATION_BATCH == 32  # the course nets: unchanged
    big = dataclasses.replace(meta, input=dataclasses.replace(meta.input, height=224, width=224, channels=3))
    assert calibration_batch(big, minmax=True) == 13  # 8 MB of float input
    assert calibration_batch(big, minmax=False) == 32  # entropy / percentile merge per batch: as before
    assert minmax_batch(224 * 224 * 3 * 4) == 13 and minmax_batch(28 * 28 * 4) == 32  # the bench baseline's
    reader = ArrayReader("input", np.zeros((256, 2), np.float32), calibration_batch(big, minmax=True))
    assert reader.batch_size == 8  # equal batches: the largest divisor of 256 up to 13


def test_minmax_gives_the_same_model_whatever_the_batch(tmp_path: Path) -> None:
    from edgecnn.data.inputs import pixel_inputs
    from edgecnn.quantize.config import QuantizeConfig
    from edgecnn.quantize.once import _write_int8

    src = make_tiny_onnx(tmp_path / "m.onnx", size=16)
    meta = read_metadata(src)
    pixels = np.random.default_rng(3).integers(0, 256, size=(60, 16, 16, 3), dtype=np.uint8)
    inputs = pixel_inputs(pixels, meta)
    name = onnx.load(str(src)).graph.input[0].name
    outs = []
    for batch in (32, 4):
        out = tmp_path / f"q{batch}.onnx"
        reader = _write_int8(src, out, QuantizeConfig.int8(), inputs, name, [], batch)
        assert reader.batch_size == {32: 30, 4: 4}[batch]
        outs.append({t.name: numpy_helper.to_array(t).tobytes() for t in onnx.load(str(out)).graph.initializer})
    assert outs[0] == outs[1] and any(k.endswith("_scale") for k in outs[0])
