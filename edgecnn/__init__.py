"""edgecnn: take a Keras image CNN to a fast, verified ONNX model on the edge.

The runtime (``Classifier``) needs only numpy, onnxruntime and Pillow. Heavier entry points
(``export_keras``, ``compare``, ``run_benchmark``) load on first use, so importing edgecnn never
imports TensorFlow. Quantization lives in ``edgecnn.quantize`` (``from edgecnn.quantize import
quantize``) and certification in ``edgecnn.certify`` (``from edgecnn.certify import certify``): a
top-level function of the same name would be shadowed by the subpackage.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgecnn._version import __version__
from edgecnn.errors import (
    AccuracyBudgetError,
    BenchGateError,
    CertifyError,
    CheckFailed,
    ClusterError,
    EdgeCNNError,
    ExportError,
    ImageError,
    ImageTooLargeError,
    InconclusiveError,
    InputError,
    MetadataError,
    MissingDependencyError,
    ModelError,
    ModelFormatError,
    ModelNotFoundError,
    NonFiniteOutputError,
    ParityError,
    ProviderError,
    QuantizeError,
    UnsafeModelError,
    UsageError,
)
from edgecnn.runtime import Classifier, ModelMetadata, Prediction, Provider, read_metadata

# name -> module holding it; resolved on first attribute access (PEP 562), like tf2onnx/__init__.py
_LAZY = {
    "export_keras": "edgecnn.export",
    "ExportConfig": "edgecnn.export",
    "QuantizeConfig": "edgecnn.quantize",
    "compare": "edgecnn.parity",
    "run_benchmark": "edgecnn.bench",
    "BenchConfig": "edgecnn.bench",
    "CertifyConfig": "edgecnn.certify",
    "classify": "edgecnn.classification",
    "ClassifyOptions": "edgecnn.classification",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")


__all__ = [
    "AccuracyBudgetError",
    "BenchGateError",
    "CertifyError",
    "CheckFailed",
    "Classifier",
    "ClassifyOptions",
    "ClusterError",
    "EdgeCNNError",
    "ExportError",
    "ImageError",
    "ImageTooLargeError",
    "InconclusiveError",
    "InputError",
    "MetadataError",
    "MissingDependencyError",
    "ModelError",
    "ModelFormatError",
    "ModelMetadata",
    "ModelNotFoundError",
    "NonFiniteOutputError",
    "ParityError",
    "Prediction",
    "Provider",
    "ProviderError",
    "QuantizeError",
    "UnsafeModelError",
    "UsageError",
    "__version__",
    "classify",
    "read_metadata",
]
