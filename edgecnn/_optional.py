"""Optional heavy dependencies, imported on demand with an install hint when missing."""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from edgecnn.errors import MissingDependencyError

_EXTRA_FOR = {
    "tensorflow": "export",
    "keras": "export",
    "tf2onnx": "export",
    "onnxconverter_common": "export",
    "matplotlib": "train",
    "sklearn": "train",
    "mlxtend": "train",
    "starlette": "serve",
    "uvicorn": "serve",
    "python_multipart": "serve",
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


# TensorFlow's native start-up chatter (absl logging before InitializeLog, oneDNN and CPU-feature notes):
# TF_CPP_MIN_LOG_LEVEL no longer reaches it in TF 2.2x, so it is filtered from fd 2 while TensorFlow loads.
_TF_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\]"
    r"|To enable the following instructions:)"
)


@contextlib.contextmanager
def filtered_native_stderr(pattern: re.Pattern[str] = _TF_CHATTER) -> Iterator[None]:
    """Hold back what native code writes to fd 2 inside the block; afterwards pass on the lines that do not
    match ``pattern`` (real errors still reach the user)."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode("utf-8", "replace").splitlines() if not pattern.match(line)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())


@contextlib.contextmanager
def live_filtered_native_stderr(
    pattern: re.Pattern[str], *, restore: bool | Callable[[], bool] = True
) -> Iterator[None]:
    """Like ``filtered_native_stderr`` for long blocks: fd 2 goes through a pipe and a thread passes on, as
    they come, the lines that do not match ``pattern`` (an unfinished line that cannot match goes on at
    once, so progress output keeps moving). For Ray's C++ core, which logs to the driver's fd 2 all run.
    ``restore`` (or its answer when the block ends) False: keep filtering until the process ends."""
    import threading

    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = [ln + b"\n" for ln in lines if not pattern.match(ln.decode("utf-8", "replace"))]
            if pending and not pending.startswith(b"["):  # no log line starts like this: pass it on now
                out.append(pending)
                pending = b""
            if out:
                os.write(saved, b"".join(out))
        if pending and not pattern.match(pending.decode("utf-8", "replace")):
            os.write(saved, pending)
        os.close(read_end)

    thread = threading.Thread(target=pump, name="edgecnn-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        if restore() if callable(restore) else restore:
            os.dup2(saved, 2)  # the pipe ends when no process holds its write end any more
            thread.join(timeout=2.0)
            if not thread.is_alive():  # else a child process (a Ray worker) still holds the pipe
                os.close(saved)
        else:  # at exit, with a writer that never stops: let what is in the pipe through, keep filtering
            import time

            time.sleep(0.1)


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's import inside ``filtered_native_stderr``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with filtered_native_stderr():
            self._loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of TensorFlow so its start-up chatter never reaches the terminal."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_imports() -> None:
    """For the CLI: TensorFlow, whenever something first imports it, loads without its native chatter."""
    quiet_tensorflow()
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def has_module(module: str) -> bool:
    """True when ``module`` can be imported (found on the path), without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
