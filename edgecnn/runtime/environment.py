"""Describe the machine and the installed stack (for `edgecnn doctor` and benchmark reports)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

import onnxruntime as ort

from edgecnn.runtime.providers import diagnose_gpu_install, installed_ort_packages


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_memory() -> int:
    """Physical memory of this machine in bytes (cgroup limit when tighter)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            raw = fh.read().strip()
        if raw.isdigit():
            total = min(total, int(raw))
    except OSError:
        pass
    return total


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# pip extras and the modules that show each is installed (pyproject.toml's [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "export": ("tensorflow", "keras", "tf2onnx", "onnxconverter_common"),
    "train": ("matplotlib", "sklearn", "mlxtend"),
    "ray": ("ray",),
    "serve": ("starlette", "uvicorn", "multipart"),
}


def extras_status() -> list[str]:
    """One line per extra: installed, or which modules are missing and the pip line that adds them."""
    from edgecnn._optional import has_module

    lines = []
    for extra, modules in EXTRAS.items():
        missing = [m for m in modules if not has_module(m)]
        lines.append(
            f"{extra}: installed" if not missing else f"{extra}: missing {', '.join(missing)} "
            f"(pip install 'edgecnn[{extra}]')"
        )
    return lines


def describe_environment() -> dict[str, Any]:
    """Versions, providers and GPU problems; finds optional extras without importing them."""
    from edgecnn._optional import has_module
    from edgecnn._version import __version__

    available = ort.get_available_providers()
    packages = installed_ort_packages()
    gpu_problems = diagnose_gpu_install(available, packages)
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        pass
    return {
        "edgecnn": __version__,
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_features": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f" {f}" in flags],
        "numpy": _version("numpy"),
        "onnx": _version("onnx"),
        "onnxruntime_packages": packages,
        "providers_available": available,
        "Pillow": _version("pillow"),
        "extras_found": [
            m for m in ("tensorflow", "tf2onnx", "keras", "matplotlib", "onnxconverter_common") if has_module(m)
        ],
        "extras": extras_status(),
        "gpu_problems": gpu_problems,
    }
