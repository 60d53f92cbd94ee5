"""Provider selection, tested with fake `available` lists: no GPU needed (the real CUDA path is gpu-marked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.errors import ProviderError
from edgecnn.runtime.providers import (
    CPU,
    CUDA,
    TENSORRT,
    Provider,
    diagnose_gpu_install,
    resolve_providers,
)

CPU_ONLY = [CPU]
GPU = [TENSORRT, CUDA, CPU]


def test_cpu_is_always_cpu() -> None:
    plan = resolve_providers("cpu", GPU)
    assert plan.providers == (CPU,) and not plan.warnings


def test_auto_prefers_cuda_but_not_tensorrt() -> None:
    assert resolve_providers(Provider.auto, GPU).providers == (CUDA, CPU)
    assert resolve_providers(Provider.auto, CPU_ONLY).providers == (CPU,)


def test_missing_cuda_raises_naming_what_is_installed() -> None:
    with pytest.raises(ProviderError, match=r"asked for provider 'cuda'.*onnxruntime 1\.31\.1.*onnxruntime-gpu"):
        resolve_providers("cuda", CPU_ONLY, packages=["onnxruntime 1.31.1"])


def test_fallback_is_loud_not_silent() -> None:
    plan = resolve_providers("cuda", CPU_ONLY, allow_fallback=True, packages=["onnxruntime 1.31.1"])
    assert plan.providers == (CPU,)
    assert plan.warnings and plan.warnings[0].startswith("FALLBACK")


def test_tensorrt_options() -> None:
    plan = resolve_providers("tensorrt", GPU, trt_fp16=True, trt_int8=True, trt_cache_dir="/tmp/trt")
    assert plan.providers == (TENSORRT, CUDA, CPU)
    trt = plan.options[0]
    assert trt["trt_fp16_enable"] and trt["trt_int8_enable"] and trt["trt_engine_cache_path"] == "/tmp/trt"
    assert plan.as_session_args()["providers"] == [TENSORRT, CUDA, CPU]


def test_unknown_provider() -> None:
    with pytest.raises(ProviderError, match="unknown provider 'rocm'"):
        resolve_providers("rocm", GPU)


def test_both_wheels_installed_is_diagnosed() -> None:
    libs = {"cudart": True, "cublas": True, "cudnn": True}
    problems = diagnose_gpu_install([CPU], ["onnxruntime 1.31.1", "onnxruntime-gpu 1.31.1"], libs)
    assert any("both onnxruntime and onnxruntime-gpu" in p for p in problems)
    assert any("no CUDA provider" in p for p in diagnose_gpu_install([CPU], ["onnxruntime-gpu 1.31.1"], libs))
    assert diagnose_gpu_install(GPU, ["onnxruntime-gpu 1.31.1"], libs) == []
    no_cudnn = diagnose_gpu_install(GPU, ["onnxruntime-gpu 1.31.1"], {**libs, "cudnn": False})
    assert no_cudnn == ["CUDA libraries not found on this machine: cudnn"]


@pytest.mark.gpu
def test_real_cuda_session(tiny_onnx) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from edgecnn import Classifier

    clf = Classifier(tiny_onnx, provider="cuda")
    assert clf.providers[0] == CUDA
    cpu = Classifier(tiny_onnx, provider="cpu")
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(clf.predict_proba(x), cpu.predict_proba(x), atol=1e-3)


def test_cuda_libraries_found_as_versioned_pip_files(tmp_path: Path) -> None:
    """The CUDA pip packages ship libcublas.so.13 etc.; find_library alone never sees them."""
    from edgecnn.runtime.providers import cuda_libraries

    (tmp_path / "cu13" / "lib").mkdir(parents=True)
    for name in ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"):
        (tmp_path / "cu13" / "lib" / name).write_bytes(b"")
    found = cuda_libraries([str(tmp_path / "cu13" / "lib")])
    assert found == {"cudart": True, "cublas": True, "cudnn": False}


def test_allowed_fallback_for_a_missing_provider_warns(tiny_onnx: Path) -> None:
    import warnings

    from edgecnn import Classifier

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = Classifier(tiny_onnx, provider="cuda", allow_fallback=True)
    assert clf.providers == ["CPUExecutionProvider"]
    assert any("FALLBACK" in str(w.message) for w in caught) and "FALLBACK" in clf.provider_warnings[0]
