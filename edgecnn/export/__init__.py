"""Keras → ONNX: safe loading, conversion strategies, metadata, automatic parity.

Importing this package does not import TensorFlow; the functions do, when called.
"""

from edgecnn.export.api import ExportConfig, ExportReport, export_keras

__all__ = ["ExportConfig", "ExportReport", "export_keras"]
