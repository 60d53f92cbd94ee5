"""Optional heavy dependencies, imported on demand with an install hint when missing."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from edgecnn.errors import MissingDependencyError

_EXTRA_FOR = {
    "tensorflow": "export",
    "keras": "export",
    "tf2onnx": "export",
    "onnxconverter_common": "export",
    "matplotlib": "train",
    "sklearn": "train",
    "mlxtend": "train",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the pip extra that provides it."""
    if module.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
        quiet_tensorflow()
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = extra or _EXTRA_FOR.get(module.split(".")[0], "train")
        raise MissingDependencyError(
            f"{module} is not installed ({err}); install it with: pip install 'edgecnn[{extra}]'"
        ) from err


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is first imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def has_module(module: str) -> bool:
    """True when ``module`` can be imported (found on the path), without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
