"""Roles of a network (depthwise/pointwise conv, squeeze-excite, hard-swish, SiLU, residual Add) and what
onnxruntime really runs for each after static INT8 — on a real MobileNetV3/EfficientNet-style block built
with onnx.helper and quantized by onnxruntime (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _onnx import build_model, tensor, value
from onnx import helper

from edgecnn.errors import UsageError
from edgecnn.quantize import QuantizeConfig
from edgecnn.quantize.anatomy import anatomy, roles
from edgecnn.quantize.search import bar_ladder
from edgecnn.quantize.stem import stem_nodes

C = 8  # channels after the stem


def _block_model() -> Any:
    """NCHW image → stem Conv 3→8 → hard-swish → depthwise 3×3 → squeeze-excite (GAP, 1×1 8→4, ReLU,
    1×1 4→8, HardSigmoid, Mul) → pointwise 1×1 → SiLU → residual Add → GAP → Flatten → Gemm → Softmax."""
    rng = np.random.default_rng(0)

    def w(name: str, *shape: int) -> Any:
        return tensor(name, rng.standard_normal(shape) * 0.3, np.float32)

    def c(name: str, number: float) -> Any:
        return tensor(name, number, np.float32)

    inits = [
        w("stem_w", C, 3, 3, 3),
        w("dw_w", C, 1, 3, 3),
        w("se1_w", 4, C, 1, 1),
        w("se2_w", C, 4, 1, 1),
        w("pw_w", C, C, 1, 1),
        w("fc_w", 10, C),
        w("fc_b", 10),
        c("three", 3.0),
        c("zero", 0.0),
        c("six", 6.0),
        c("sixth", 1.0 / 6.0),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "stem_w"], ["s"], name="stem", pads=[1, 1, 1, 1]),
        n("Add", ["s", "three"], ["hs_a"], name="hs_add"),
        n("Clip", ["hs_a", "zero", "six"], ["hs_c"], name="hs_clip"),
        n("Mul", ["hs_c", "sixth"], ["hs_d"], name="hs_div"),
        n("Mul", ["s", "hs_d"], ["h"], name="hs_mul"),
        n("Conv", ["h", "dw_w"], ["d"], name="depthwise", group=C, pads=[1, 1, 1, 1]),
        n("GlobalAveragePool", ["d"], ["g"], name="se_pool"),
        n("Conv", ["g", "se1_w"], ["g1"], name="se_reduce"),
        n("Relu", ["g1"], ["g2"], name="se_relu"),
        n("Conv", ["g2", "se2_w"], ["g3"], name="se_expand"),  # 4 input channels: thin, but no stem
        n("HardSigmoid", ["g3"], ["g4"], name="se_gate"),
        n("Mul", ["d", "g4"], ["e"], name="se_scale"),
        n("Conv", ["e", "pw_w"], ["p"], name="pointwise"),
        n("Sigmoid", ["p"], ["ps"], name="silu_sigmoid"),
        n("Mul", ["p", "ps"], ["q"], name="silu_mul"),
        n("Add", ["q", "h"], ["r"], name="residual"),
        n("GlobalAveragePool", ["r"], ["gp"], name="head_pool"),
        n("Flatten", ["gp"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        n("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    inputs, outputs = [value("input", ["batch", 3, 16, 16])], [value("probs", ["batch", 10])]
    return build_model(nodes, inputs, outputs, inits, name="block")


EXPECTED_ROLES = {
    "stem": "conv",
    "hs_add": "hard-swish",
    "hs_clip": "hard-swish",
    "hs_div": "hard-swish",
    "hs_mul": "hard-swish",
    "depthwise": "depthwise conv",
    "se_pool": "squeeze-excite",
    "se_reduce": "squeeze-excite",
    "se_relu": "squeeze-excite",
    "se_expand": "squeeze-excite",
    "se_gate": "squeeze-excite",
    "se_scale": "squeeze-excite",
    "pointwise": "pointwise conv",
    "silu_sigmoid": "SiLU",
    "silu_mul": "SiLU",
    "residual": "residual Add",
    "head_pool": "pooling",
    "fc": "dense",
    "softmax": "softmax",
}


def test_roles_are_read_from_the_structure() -> None:
    found = roles(_block_model())
    assert {k: found.get(k) for k in EXPECTED_ROLES} == EXPECTED_ROLES
    assert "flatten" not in found  # data movement has no role


def test_a_thin_squeeze_excite_conv_deep_in_the_network_is_no_stem() -> None:
    stem = stem_nodes(_block_model())
    assert "stem" in stem and "se_expand" not in stem  # 4 input channels, but fed by pooled features


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, list[str]]:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgecnn.quantize.calibration import ArrayReader

    tmp = tmp_path_factory.mktemp("anatomy")
    model = _block_model()
    onnx.save(model, tmp / "block.onnx")
    stem = stem_nodes(model)
    calib = np.random.default_rng(1).random((16, 3, 16, 16), dtype=np.float32)
    quantize_static(
        str(tmp / "block.onnx"),
        str(tmp / "block.int8.onnx"),
        ArrayReader("input", calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=stem,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return model, tmp / "block.int8.onnx", stem


def test_what_runs_in_int8_per_role_and_why_the_rest_is_float(quantized: tuple[Any, Path, list[str]]) -> None:
    model, path, stem = quantized
    rows = {r.role: r for r in anatomy(model, path, stem=stem)}
    assert rows["depthwise conv"].kernels == {"QLinearConv": 1}
    assert rows["pointwise conv"].kernels == {"QLinearConv": 1}
    assert rows["residual Add"].kernels == {"QLinearAdd": 1}
    assert rows["SiLU"].int8 == 2 and rows["SiLU"].kernels["QLinearSigmoid"] == 1
    assert rows["hard-swish"].int8 >= 2 and rows["hard-swish"].kernels["QLinearMul"] >= 1
    assert rows["dense"].kernels == {"QGemm": 1}
    stem_row = rows["stem conv"]
    assert (stem_row.nodes, stem_row.float) == (1, 1)
    assert any("float stem" in why for why in stem_row.reasons)
    se = rows["squeeze-excite"]  # onnxruntime has no INT8 HardSigmoid: the gate runs in float between Q/DQ
    assert se.float >= 1 and any("no INT8 HardSigmoid kernel" in why for why in se.reasons), se
    for row in rows.values():
        assert row.nodes == row.int8 + row.float + row.folded
        assert sum(row.reasons.values()) == row.float


def test_float_roles_are_validated_and_described() -> None:
    cfg = QuantizeConfig.int8(float_roles=("hard-swish", "SiLU"))
    assert "float hard-swish/SiLU" in cfg.describe()
    with pytest.raises(UsageError, match="unknown float role"):
        QuantizeConfig.int8(float_roles=("swish",))


def test_the_ladder_tries_the_sensitive_roles_in_float_first(
    quantized: tuple[Any, Path, list[str]], tmp_path: Path
) -> None:
    import onnx

    onnx.save(quantized[0], tmp_path / "block.onnx")
    base = QuantizeConfig.int8()
    ladder = bar_ladder(base, tmp_path / "block.onnx")
    assert ladder[0].float_roles == ("squeeze-excite", "hard-swish", "SiLU")  # the roles this network has
    assert [c.calibration_method.value for c in ladder[1:3]] == ["entropy", "percentile"]
    assert ladder[3].exclude_nodes == ("stem", "fc")  # the first conv and the last dense layer
    assert base not in ladder and len(set(ladder)) == len(ladder)
