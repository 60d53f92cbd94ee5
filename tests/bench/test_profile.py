"""``edgecnn bench --profile``: where the time goes by role (convolutions, activations, squeeze-excite,
requantize, pooling, ...), from onnxruntime's profiler, beside the FP32 model an INT8 one was quantized
from — on a real EfficientNet-style block built with onnx.helper and quantized by edgecnn (no TensorFlow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _onnx import build_model, save_model, tensor, value
from onnx import helper
from typer.testing import CliRunner

from edgecnn.bench import BenchConfig, run_benchmark
from edgecnn.bench.profile import ROLES, role_of
from edgecnn.bench.render import to_markdown
from edgecnn.cli import app
from edgecnn.errors import UsageError

SHIPPED = Path(__file__).resolve().parents[2] / "calibration" / "mnist"  # 200 real digits
LABELS = tuple(str(d) for d in range(10))
C = 8


def _silu_se_model(path: Path) -> Path:
    """NCHW 3×16×16 → stem Conv 3→8 → SiLU (Sigmoid, Mul) → squeeze-excite (GAP, 1×1 8→4, ReLU, 1×1 4→8,
    Sigmoid, Mul) → Conv 3×3 8→8 → ReLU → MaxPool → GAP → Flatten → Gemm → Softmax, with edgecnn metadata."""
    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, PreprocessSpec

    rng = np.random.default_rng(0)

    def w(name: str, *shape: int) -> Any:
        return tensor(name, rng.standard_normal(shape) * 0.3, np.float32)

    n = helper.make_node
    nodes = [
        n("Conv", ["input", "stem_w"], ["s"], name="stem", pads=[1, 1, 1, 1]),
        n("Sigmoid", ["s"], ["ss"], name="silu_sigmoid"),
        n("Mul", ["s", "ss"], ["h"], name="silu_mul"),
        n("GlobalAveragePool", ["h"], ["g"], name="se_pool"),
        n("Conv", ["g", "se1_w"], ["g1"], name="se_reduce"),
        n("Relu", ["g1"], ["g2"], name="se_relu"),
        n("Conv", ["g2", "se2_w"], ["g3"], name="se_expand"),
        n("Sigmoid", ["g3"], ["g4"], name="se_gate"),
        n("Mul", ["h", "g4"], ["e"], name="se_scale"),
        n("Conv", ["e", "conv_w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        n("Relu", ["c"], ["r"], name="relu"),
        n("MaxPool", ["r"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        n("GlobalAveragePool", ["m"], ["gp"], name="head_pool"),
        n("Flatten", ["gp"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        n("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    inits = [w("stem_w", C, 3, 3, 3), w("se1_w", 4, C, 1, 1), w("se2_w", C, 4, 1, 1), w("conv_w", C, C, 3, 3)]
    inits += [w("fc_w", 10, C), w("fc_b", 10)]
    meta = ModelMetadata(
        labels=LABELS,
        input=InputSpec("input", Layout.NCHW, 16, 16, 3),
        preprocess=PreprocessSpec(color_mode=ColorMode.RGB),
    )
    model = build_model(
        nodes, [value("input", ["batch", 3, 16, 16])], [value("probs", ["batch", 10])], inits, metadata=meta
    )
    return save_model(model, path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from edgecnn.quantize import QuantizeConfig, quantize

    tmp = tmp_path_factory.mktemp("profile")
    fp32 = _silu_se_model(tmp / "block.onnx")
    config = QuantizeConfig.int8(calibration_samples=100)
    int8 = quantize(fp32, tmp / "block.int8.onnx", config, calibration=SHIPPED, measure_speed=False).path
    return fp32, int8


def _config(**kw: Any) -> BenchConfig:
    return BenchConfig(threads=1, iterations=5, warmup=1, tuned=False, profile=True, profile_runs=5, **kw)


def test_an_int8_model_is_profiled_by_role_beside_its_float_source(pair: tuple[Path, Path]) -> None:
    fp32, int8 = pair
    data = run_benchmark([int8], _config()).to_dict()
    (section,) = data["profile"]
    assert section["float_note"] is None and section["batch"] == 1 and section["runs"] == 5
    q, f = section["sides"]
    assert (q["label"], f["label"]) == ("int8", "fp32") and Path(f["path"]) == fp32.resolve()
    assert list(q["roles"]) == list(ROLES) == list(f["roles"])
    for side in (q, f):  # the roles of the block, read from the FP32 graph's names, on both sides
        for role in ("convolutions", "activations", "squeeze-excite", "dense", "pooling"):
            assert side["roles"][role]["nodes"] >= 1, (side["label"], role, side["roles"])
        top = side["top_nodes"]
        assert all(t["role"] in ROLES for t in top) and [t["us"] for t in top] == sorted(
            (t["us"] for t in top), reverse=True
        )
        assert abs(sum(r["pct"] for r in side["roles"].values()) - 100) < 1e-6
        assert side["node_sum_us"] > 0 and side["runs"] == 5
    assert q["roles"]["requantize"]["nodes"] >= 1 and f["roles"]["requantize"]["nodes"] == 0
    assert "QLinearConv" in q["graph_ops"] and "QLinearConv" not in f["graph_ops"]
    md = to_markdown(data)
    assert "## where the time goes by role: int8 block.int8.onnx vs fp32 block.onnx" in md
    assert "| squeeze-excite |" in md and "| total |" in md and "fp32 ÷ int8" in md
    assert f"largest int8 nodes: {q['top_nodes'][0]['node']} (" in md


def test_without_a_float_source_the_report_says_why(pair: tuple[Path, Path], tmp_path: Path) -> None:
    fp32, int8 = pair
    (alone,) = run_benchmark([fp32], _config()).to_dict()["profile"]
    assert len(alone["sides"]) == 1 and "this is a float model" in alone["float_note"]
    moved = Path(shutil.copy(int8, tmp_path / "elsewhere.int8.onnx"))  # its recorded FP32 source is not there
    (orphan,) = run_benchmark([moved], _config()).to_dict()["profile"]
    assert [s["label"] for s in orphan["sides"]] == ["int8"]
    assert "no float model to compare with" in orphan["float_note"] and "quantized from" in orphan["float_note"]
    assert orphan["sides"][0]["roles"]["requantize"]["nodes"] >= 1
    assert "profile" not in run_benchmark([fp32], BenchConfig(iterations=3, warmup=0)).to_dict()


def test_roles_by_name_suffix_and_op_type() -> None:
    named = {"block/conv": "convolutions", "block/se_scale": "squeeze-excite"}
    assert role_of("block/conv_token_3", "NhwcQLinearConv", named) == "convolutions"
    assert role_of("block/conv:0_nchwc", "Conv", named) == "convolutions"
    assert role_of("block/se_scale", "QLinearMul", named) == "squeeze-excite"  # a requantizing step, by its role
    assert role_of("block/se_scale_QuantizeLinear", "QuantizeLinear", named) == "requantize"
    assert role_of("x", "DequantizeLinear", named) == "requantize"
    assert role_of("block/conv", "DequantizeLinear", named) == "requantize"  # a Q/DQ node is one, whatever its name
    assert role_of("Transpose__28", "Transpose", named) == "layout"
    assert role_of("y", "QLinearGlobalAveragePool", named) == "pooling"
    assert role_of("z", "Softmax", named) == "other"
    with pytest.raises(UsageError, match="--profile"):
        BenchConfig(profile=True, provider="cuda")


def test_cli_profile_prints_the_role_table_and_writes_it_to_json(pair: tuple[Path, Path], tmp_path: Path) -> None:
    _, int8 = pair
    argv = ["bench", str(int8), "--profile", "--iterations", "5", "--warmup", "1", "--threads", "1"]
    out = CliRunner().invoke(app, [*argv, "--no-tuned", "--json", str(tmp_path / "b.json")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "where the time goes by role" in out.stdout and "squeeze-excite" in out.stdout
    assert "fp32 ÷ int8" in out.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["settings"]["profile"] is True and len(data["profile"][0]["sides"]) == 2
