"""Say the obvious: quantize flags a variant slower than FP32 here; train flags accuracy at chance (issue #24)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.quantize.once import slower_warning
from edgecnn.train.chance import chance_level, chance_warning


def test_slower_than_fp32_is_said_with_the_numbers() -> None:
    assert slower_warning({"speedup_batch1": 1.4, "speedup_batch32": 1.2}, "int8") is None
    assert slower_warning({"speedup_batch1": 0.97, "speedup_batch32": 1.0}, "int8") is None  # within noise
    text = slower_warning({"speedup_batch1": 0.25, "speedup_batch32": 1.3}, "dynamic")
    assert text is not None and text.startswith("DYNAMIC is SLOWER than FP32 on this machine (batch-1 latency 0.25×")
    assert slower_warning(None, "int8") is None


@pytest.mark.slow
def test_a_real_dynamic_convnet_is_flagged_slower(tiny_onnx) -> None:  # type: ignore[no-untyped-def]
    """quantize_dynamic makes convnets several times slower on CPU (DESIGN.md): the report says so."""
    import warnings

    from edgecnn.quantize import QuantizeConfig, quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dynamic-conv warning, said before measuring
        r = quantize(tiny_onnx, tiny_onnx.parent / "t.dynamic.onnx", QuantizeConfig.dynamic())
    slower = r.speed["speedup_batch1"] < 0.95 or r.speed["speedup_batch32"] < 0.95
    assert slower == any("SLOWER than FP32 on this machine" in w for w in r.warnings), (r.speed, r.warnings)


def test_chance_level_is_named() -> None:
    y = np.arange(1000) % 10
    assert chance_level(y, 10) == 0.1
    text = chance_warning(0.1, y, 10)
    assert text is not None and text.startswith("test accuracy 10.0% on 10 classes: chance level")
    assert chance_warning(0.11, y, 10) is not None  # within two standard errors of 10% on 1,000
    assert chance_warning(0.5, y, 10) is None
    skewed = np.array([0] * 90 + [1] * 10)
    assert chance_level(skewed, 2) == 0.9 and chance_warning(0.9, skewed, 2) is not None  # always "0"
