"""The one exception tree of edgecnn; every class carries the CLI exit code it maps to.

    EdgeCNNError                         exit 3
    ├── CheckFailed                      exit 4   a measured bar was missed
    │   ├── ParityError
    │   ├── InconclusiveError                     too few samples to resolve a bar: never a PASS
    │   ├── AccuracyBudgetError
    │   ├── BenchGateError
    │   └── CertifyError                           answers differ across CPUs (edgecnn certify)
    ├── UsageError                       exit 2   options that contradict each other
    ├── InputError (also ValueError)     exit 3   bad image / array / calibration data / data source
    │   └── ImageError                            not an image, truncated, unsupported mode
    │       └── ImageTooLargeError                too many pixels (a decompression bomb) or bytes
    ├── ModelError                       exit 3
    │   ├── ModelNotFoundError (also FileNotFoundError)
    │   ├── ModelFormatError                      not ONNX/Keras, truncated, checker failed
    │   ├── UnsafeModelError                      Lambda layer, external data outside the folder
    │   ├── MetadataError                         edgecnn.* keys missing or invalid
    │   └── NonFiniteOutputError                  NaN/Inf outputs for some inputs (rows: error_type NonFiniteOutput)
    ├── ExportError                      exit 3   no conversion strategy worked
    ├── QuantizeError                    exit 3   quantization could not produce a model
    ├── ProviderError                    exit 3   execution provider asked for is not available
    ├── ClusterError                     exit 3   a Ray cluster cannot be reached, refuses us, or lost the job
    └── MissingDependencyError (also ImportError) exit 3  names the extra to install

Messages say what went wrong, where, and what to do. Context travels as attributes (``exc.path``)
so a folder classifier can put the error into its row. Stdlib only.
"""

from __future__ import annotations

from pathlib import Path


class EdgeCNNError(Exception):
    """Base of every error edgecnn raises on purpose."""

    exit_code: int = 3

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return self.message


class CheckFailed(EdgeCNNError):
    """A measured bar (parity, accuracy budget, benchmark gate) was missed."""

    exit_code = 4


class ParityError(CheckFailed):
    """A model does not answer like its reference within the bars."""


class InconclusiveError(CheckFailed):
    """Too few samples to resolve a bar (n < 1/(1 - bar), or below an exact bar's stated minimum).

    Exit 4 like a failed check: a script must not read "could not tell" as a pass. The message says how
    many samples are needed.
    """


class AccuracyBudgetError(CheckFailed):
    """No quantization configuration stayed within the accuracy budget."""


class BenchGateError(CheckFailed):
    """A benchmark gate (--max-p95-ms, --min-throughput) was missed."""


class CertifyError(CheckFailed):
    """A model answered differently on an (emulated) CPU than natively, or too few samples to say."""


class UsageError(EdgeCNNError):
    """Options that contradict each other or are out of range."""

    exit_code = 2


class InputError(EdgeCNNError, ValueError):
    """Bad input data: an array of the wrong shape, a data source that does not exist, ..."""


class ImageError(InputError):
    """A file that cannot be used as an image (not an image, truncated, bomb, unsupported mode)."""


class ImageTooLargeError(ImageError):
    """An image with more pixels (or bytes) than the limit: a possible decompression bomb, refused unread."""


class ModelError(EdgeCNNError):
    """A model file that cannot be used."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model path does not exist."""


class ModelFormatError(ModelError):
    """Not an ONNX/Keras model, truncated, or rejected by the checker."""


class UnsafeModelError(ModelError):
    """A model that could run code or read outside its folder when loaded."""


class MetadataError(ModelError):
    """The model's edgecnn.* metadata is missing or invalid."""


class NonFiniteOutputError(ModelError):
    """The model answered NaN or Inf for an input (a ``Sqrt`` of a negative, an overflow): no score exists.

    Folder classification records it as that file's row (``error_type`` ``NonFiniteOutput``), a server as that
    request's error; only a model that answers NaN for every input stops a job.
    """

    error_type = "NonFiniteOutput"


class ExportError(EdgeCNNError):
    """No Keras→ONNX conversion strategy worked."""


class QuantizeError(EdgeCNNError):
    """Quantization could not produce a model."""


class ProviderError(EdgeCNNError):
    """The execution provider asked for is not available."""


class ClusterError(EdgeCNNError):
    """The Ray cluster cannot be reached, refuses the driver, or lost the job."""


class MissingDependencyError(EdgeCNNError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


__all__ = [
    "AccuracyBudgetError",
    "BenchGateError",
    "CheckFailed",
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
    "ModelNotFoundError",
    "NonFiniteOutputError",
    "ParityError",
    "ProviderError",
    "QuantizeError",
    "UnsafeModelError",
    "UsageError",
]
