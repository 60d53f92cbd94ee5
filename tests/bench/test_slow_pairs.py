"""Known slow model/provider pairs are reported (DESIGN: ``providers.warnings`` in a bench report)."""

from __future__ import annotations

from pathlib import Path

from conftest import make_tiny_onnx

from edgecnn.bench import BenchConfig, run_benchmark
from edgecnn.bench.api import slow_pair_warnings
from edgecnn.runtime.providers import CPU, CUDA, TENSORRT

QDQ = {"QuantizeLinear", "DequantizeLinear", "Conv", "Relu"}


def test_int8_on_cuda_is_a_known_slow_pair() -> None:
    (warning,) = slow_pair_warnings("m.int8.onnx", CUDA, QDQ)
    assert "known slow pair: INT8 QDQ on CUDAExecutionProvider" in warning and "TensorRT" in warning
    assert warning.startswith("WARNING m.int8.onnx")


def test_other_pairs_are_not_flagged() -> None:
    assert slow_pair_warnings("m.int8.onnx", CPU, QDQ) == []
    assert slow_pair_warnings("m.int8.onnx", TENSORRT, QDQ) == []  # TensorRT has INT8 kernels
    assert slow_pair_warnings("m.onnx", CUDA, {"Conv", "Relu", "Gemm"}) == []  # FP32 / FP16


def test_report_carries_the_provider_warnings(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    data = run_benchmark([model], BenchConfig(provider="cpu", iterations=5, warmup=1)).to_dict()
    assert data["models"][0]["providers"]["warnings"] == []
