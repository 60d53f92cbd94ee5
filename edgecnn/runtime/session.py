"""Vet an ONNX file, then open an onnxruntime session on it.

Checks happen before onnxruntime sees the file: it exists, is not absurdly large, parses as an ONNX
protobuf, and every external-data location resolves to a regular file inside the model's folder
(onnxruntime itself follows hard links and ``..``). Failures are one-line ModelErrors, not protobuf
or onnxruntime tracebacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgecnn.errors import ModelFormatError, ModelNotFoundError, UnsafeModelError
from edgecnn.runtime.providers import Provider, ProviderPlan, resolve_providers

MAX_MODEL_BYTES = 2 * 1024**3  # protobuf's own limit; bigger needs external data


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Session options that change speed, never answers."""

    threads: int | None = None  # intra-op threads; None lets onnxruntime pick (all physical cores)
    inter_threads: int = 1
    optimization: str = "all"  # disable | basic | extended | all
    spin: bool | None = None  # intra-op spin-wait; None keeps onnxruntime's default
    spin_stop: bool = False  # stop spinning when a run ends (sessions that share cores: streams, interleaving)
    disabled_optimizers: tuple[str, ...] | None = None  # None: what the model's metadata asks for
    enable_profiling: bool = False
    profile_prefix: str | None = None


OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def check_model_file(path: str | Path, *, deep: bool = False) -> Path:
    """Vet ``path`` as an ONNX model file; return it resolved.

    Raises:
        ModelNotFoundError, ModelFormatError, UnsafeModelError: see ``vet_model``.
    """
    return vet_model(path, deep=deep)[0]


def vet_model(path: str | Path, *, deep: bool = False) -> tuple[Path, Any]:
    """Vet ``path`` as an ONNX model file; return it resolved, with its graph (no external data loaded).

    Raises:
        ModelNotFoundError: nothing at ``path``.
        ModelFormatError: not a regular file, too large, not an ONNX protobuf, or (``deep``) checker failed.
        UnsafeModelError: an external-data location that leaves the model's folder.
    """
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"{p}: no such model file", path=p)
    if not p.is_file():
        raise ModelFormatError(f"{p}: not a regular file", path=p)
    size = p.stat().st_size
    if size == 0:
        raise ModelFormatError(f"{p}: empty file, not an ONNX model", path=p)
    if size > MAX_MODEL_BYTES:
        raise ModelFormatError(f"{p}: {size:,} bytes is over the 2 GiB protobuf limit", path=p)
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, UnicodeDecodeError) as err:
        raise ModelFormatError(f"{p}: not a valid ONNX model ({type(err).__name__}: {err})", path=p) from err
    except Exception as err:  # protobuf raises a zoo of types on random bytes
        raise ModelFormatError(f"{p}: not a valid ONNX model ({type(err).__name__})", path=p) from err
    if not model.graph.node and not model.graph.output:
        raise ModelFormatError(f"{p}: not an ONNX model (no graph)", path=p)
    check_external_data(model, p)
    if deep:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "invalid"
            raise ModelFormatError(f"{p}: ONNX checker failed: {first}", path=p) from err
    return p.resolve(), model


def session_hints(model: Any) -> dict[str, Any]:
    """Session options a quantized model asks for (``edgecnn.quantization`` → ``session``), validated.

    Only optimizer names can be asked for: a model cannot change anything else about the session.
    """
    import json

    raw = next((p.value for p in model.metadata_props if p.key == "edgecnn.quantization"), None)
    try:
        hints = json.loads(raw).get("session", {}) if raw else {}
        disabled = hints.get("disabled_optimizers", []) if isinstance(hints, dict) else []
    except (ValueError, AttributeError):
        return {}
    if not isinstance(disabled, list) or not all(isinstance(d, str) and d.isidentifier() for d in disabled):
        return {}
    return {"disabled_optimizers": tuple(disabled)} if disabled else {}


def check_external_data(model: Any, path: Path) -> None:
    """Every external-data location must be a regular, non-linked file inside the model's folder."""
    from onnx.external_data_helper import uses_external_data

    folder = path.resolve().parent
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    for tensor in tensors:
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if not location:
            raise UnsafeModelError(f"{path}: tensor {tensor.name!r} has external data without a location", path=path)
        if os.path.isabs(location) or ".." in Path(location).parts:
            raise UnsafeModelError(
                f"{path}: external data {location!r} of tensor {tensor.name!r} points outside the model's folder",
                path=path,
            )
        target = folder / location
        if target.is_symlink():
            raise UnsafeModelError(f"{path}: external data {location!r} is a symbolic link; refused", path=path)
        resolved = target.resolve()
        if folder not in resolved.parents:
            raise UnsafeModelError(f"{path}: external data {location!r} resolves outside the model's folder", path=path)
        if not resolved.is_file():
            raise ModelFormatError(f"{path}: external data file {location!r} is missing", path=path)
        if resolved.stat().st_nlink > 1:
            raise UnsafeModelError(
                f"{path}: external data {location!r} is a hard link (it may point outside the folder); refused",
                path=path,
            )


def session_options(settings: SessionSettings) -> ort.SessionOptions:
    """Build onnxruntime SessionOptions from our settings."""
    so = ort.SessionOptions()
    if settings.threads is not None:
        so.intra_op_num_threads = settings.threads
    so.inter_op_num_threads = settings.inter_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = OPTIMIZATION_LEVELS[settings.optimization]
    if settings.spin is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spin else "0")
    if settings.spin_stop:
        so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 3
    if settings.enable_profiling:
        so.enable_profiling = True
        if settings.profile_prefix:
            so.profile_file_prefix = settings.profile_prefix
    return so


def create_session(
    path: str | Path,
    provider: Provider | str = Provider.auto,
    settings: SessionSettings | None = None,
    *,
    allow_fallback: bool = False,
    plan: ProviderPlan | None = None,
) -> ort.InferenceSession:
    """Vet ``path`` and open an InferenceSession with the resolved providers.

    Raises:
        ModelError: the file is missing, malformed or unsafe.
        ProviderError: the provider is not available (and no fallback allowed).
    """
    checked, model = vet_model(path)
    settings = settings or SessionSettings()
    plan = plan or resolve_providers(provider, ort.get_available_providers(), allow_fallback=allow_fallback)
    disabled = settings.disabled_optimizers
    if disabled is None:
        disabled = session_hints(model).get("disabled_optimizers", ())
    extra = {"disabled_optimizers": list(disabled)} if disabled else {}
    try:
        return ort.InferenceSession(
            str(checked), sess_options=session_options(settings), **plan.as_session_args(), **extra
        )
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFormatError(f"{path}: onnxruntime cannot load this model: {first}", path=path) from err
