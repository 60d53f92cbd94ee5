"""Execution-provider selection as a pure function: what was asked, what is installed, what to use.

No session is created here, so every branch is unit-tested with fake ``available`` lists; the real CUDA
path is one GPU-marked test. Never a silent fall back to CPU: without ``allow_fallback`` a missing
provider raises ProviderError naming what is installed.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgecnn.errors import ProviderError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


class Provider(str, Enum):
    """What a user may ask for."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


_WANTED = {
    Provider.cpu: [CPU],
    Provider.cuda: [CUDA, CPU],
    Provider.tensorrt: [TENSORRT, CUDA, CPU],
}


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """The providers (with options) to pass to InferenceSession, and why."""

    requested: Provider
    providers: tuple[str, ...]
    options: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_session_args(self) -> dict[str, Any]:
        return {"providers": list(self.providers), "provider_options": [dict(o) for o in self.options]}


def installed_ort_packages() -> list[str]:
    """Which onnxruntime distributions are installed (more than one hides the GPU)."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def cuda_libraries(search_dirs: list[str] | None = None) -> dict[str, bool]:
    """Whether the CUDA runtime, cuBLAS and cuDNN shared libraries can be found (no GPU needed to ask).

    ``ctypes.util.find_library`` only sees unversioned names in the linker cache; the CUDA pip packages
    (``nvidia-cublas``, ``nvidia-cudnn-cu13``, …) ship ``libcublas.so.13`` and the like in
    ``site-packages/nvidia/*/lib``, which onnxruntime loads itself: those folders and ``LD_LIBRARY_PATH``
    are searched too.
    """
    import ctypes.util
    import os
    import sys
    from pathlib import Path

    dirs = list(search_dirs) if search_dirs is not None else _cuda_search_dirs(os.environ, sys.path)
    found = {}
    for lib in ("cudart", "cublas", "cudnn"):
        in_dirs = any(next(Path(d).glob(f"lib{lib}.so*"), None) is not None for d in dirs if Path(d).is_dir())
        found[lib] = in_dirs or (search_dirs is None and ctypes.util.find_library(lib) is not None)
    return found


def _cuda_search_dirs(environ: Any, path: list[str]) -> list[str]:
    from pathlib import Path

    dirs = [d for d in environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for entry in path:
        nvidia = Path(entry) / "nvidia"
        if nvidia.is_dir():
            dirs += [str(p) for p in nvidia.glob("*/lib")]
    return dirs


def diagnose_gpu_install(
    available: list[str] | None = None, packages: list[str] | None = None, libraries: dict[str, bool] | None = None
) -> list[str]:
    """Plain-language problems with the GPU setup (empty list: nothing to report)."""
    if packages is None:
        packages = installed_ort_packages()
    names = [p.split()[0] for p in packages]
    problems = []
    libs = cuda_libraries() if libraries is None else libraries
    missing = [lib for lib, found in libs.items() if not found]
    if "onnxruntime" in names and "onnxruntime-gpu" in names:
        problems.append(
            "both onnxruntime and onnxruntime-gpu are installed; they clash and the CPU one usually wins: "
            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
        )
    elif "onnxruntime-gpu" not in names:
        problems.append("onnxruntime-gpu is not installed (the CPU package 'onnxruntime' has no CUDA provider)")
    if available is not None and "onnxruntime-gpu" in names and CUDA not in available:
        problems.append("onnxruntime-gpu is installed but offers no CUDA provider: check the CUDA/cuDNN libraries")
    if missing:
        problems.append(f"CUDA libraries not found on this machine: {', '.join(missing)}")
    return problems


def resolve_providers(
    requested: Provider | str,
    available: list[str],
    *,
    allow_fallback: bool = False,
    device_id: int = 0,
    trt_fp16: bool = False,
    trt_int8: bool = False,
    trt_cache_dir: str | None = None,
    packages: list[str] | None = None,
) -> ProviderPlan:
    """Choose providers for ``requested`` among ``available`` (``onnxruntime.get_available_providers()``).

    Raises:
        ProviderError: the provider is missing and ``allow_fallback`` is False.
    """
    try:
        requested = Provider(requested)
    except ValueError:
        raise ProviderError(f"unknown provider {requested!r}; choose one of {[p.value for p in Provider]}") from None
    warnings: list[str] = []
    if requested == Provider.auto:
        chain = [p for p in (CUDA, CPU) if p in available] or [CPU]  # TensorRT is opt-in: engine builds take minutes
    else:
        primary = _WANTED[requested][0]
        if primary not in available:
            pkgs = installed_ort_packages() if packages is None else packages
            message = (
                f"asked for provider '{requested.value}', but this onnxruntime ({', '.join(pkgs) or 'unknown'}) "
                f"offers {available}"
            )
            hints = diagnose_gpu_install(available, pkgs) if requested != Provider.cpu else []
            if hints:
                message += "; " + "; ".join(hints)
            if not allow_fallback:
                raise ProviderError(message + " (use --allow-fallback to run on what is available)")
            warnings.append("FALLBACK: " + message)
        chain = [p for p in _WANTED[requested] if p in available] or [CPU]
    options = tuple(
        _options_for(p, device_id=device_id, trt_fp16=trt_fp16, trt_int8=trt_int8, trt_cache_dir=trt_cache_dir)
        for p in chain
    )
    return ProviderPlan(requested=requested, providers=tuple(chain), options=options, warnings=tuple(warnings))


def _options_for(
    provider: str, *, device_id: int, trt_fp16: bool, trt_int8: bool, trt_cache_dir: str | None
) -> dict[str, Any]:
    if provider == CUDA:
        return {"device_id": device_id, "cudnn_conv_algo_search": "EXHAUSTIVE"}
    if provider == TENSORRT:
        opts: dict[str, Any] = {
            "device_id": device_id,
            "trt_fp16_enable": trt_fp16,
            "trt_int8_enable": trt_int8,
        }
        if trt_cache_dir:
            opts |= {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": trt_cache_dir,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": trt_cache_dir,
            }
        return opts
    return {}


def short_name(provider: str) -> str:
    """'CUDAExecutionProvider' -> 'cuda' for reports."""
    return {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}.get(provider, provider.replace("ExecutionProvider", ""))
