"""ONNX → INT8 (static, calibrated; or dynamic) and FP16, with the accuracy, size and speed they cost.

Layers: ``once`` quantizes once with one config (the core); ``search`` (the INT8 fallback ladder, the
accuracy-budget search) and ``api.quantize`` (the public entry) are policies over it.

The enums and config load without onnxruntime.quantization (the CLI needs them for ``--help``);
``quantize`` and the budget search load it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgecnn.quantize.config import CalibrationMethod, QuantFormat, QuantizeConfig, QuantMode, QuantTarget

_LAZY = {
    "quantize": "edgecnn.quantize.api",
    "QuantizeReport": "edgecnn.quantize.once",
    "search_within_budget": "edgecnn.quantize.search",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgecnn.quantize' has no attribute {name!r}")


__all__ = [
    "CalibrationMethod",
    "QuantFormat",
    "QuantMode",
    "QuantTarget",
    "QuantizeConfig",
    "QuantizeReport",
    "quantize",
    "search_within_budget",
]
