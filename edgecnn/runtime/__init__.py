"""The embeddable engine: numpy, onnxruntime and Pillow only — never TensorFlow."""

from edgecnn.runtime.classifier import Classifier, Prediction, read_metadata
from edgecnn.runtime.metadata import InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec
from edgecnn.runtime.providers import Provider, resolve_providers
from edgecnn.runtime.results import ResultWriter
from edgecnn.runtime.rows import ClassifyRow, ClassifySummary
from edgecnn.runtime.session import SessionSettings, check_model_file, create_session

__all__ = [
    "Classifier",
    "ClassifyRow",
    "ClassifySummary",
    "InputSpec",
    "Layout",
    "ModelMetadata",
    "OutputKind",
    "Prediction",
    "PreprocessSpec",
    "Provider",
    "ResultWriter",
    "SessionSettings",
    "check_model_file",
    "create_session",
    "read_metadata",
    "resolve_providers",
]
