"""Marker skip logic and shared fixtures. Finds TensorFlow, never imports it here."""

from __future__ import annotations

import importlib.util
import os

import pytest

HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2onnx") is not None


def _has_cuda() -> bool:
    try:
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require_tf = os.environ.get("EDGECNN_REQUIRE_TF", "") not in ("", "0")
    if require_tf and not HAS_TF:
        raise pytest.UsageError("EDGECNN_REQUIRE_TF=1 but TensorFlow/tf2onnx cannot be found")
    has_cuda = _has_cuda()
    skip_tf = pytest.mark.skip(reason="needs the [export] extra (TensorFlow, tf2onnx)")
    skip_gpu = pytest.mark.skip(reason="needs onnxruntime's CUDAExecutionProvider")
    for item in items:
        if "needs_tf" in item.keywords and not HAS_TF:
            item.add_marker(skip_tf)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
