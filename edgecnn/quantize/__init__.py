"""ONNX → INT8 (static, calibrated; or dynamic) and FP16, with the accuracy, size and speed they cost."""

from edgecnn.quantize.api import QuantizeReport, quantize
from edgecnn.quantize.config import CalibrationMethod, QuantFormat, QuantizeConfig, QuantMode
from edgecnn.quantize.search import search_within_budget

__all__ = [
    "CalibrationMethod",
    "QuantFormat",
    "QuantMode",
    "QuantizeConfig",
    "QuantizeReport",
    "quantize",
    "search_within_budget",
]
