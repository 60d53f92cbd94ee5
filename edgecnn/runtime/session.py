"""Vet an ONNX file, then open an onnxruntime session on it.

Checks happen before onnxruntime sees the file: it exists, is not absurdly large, parses as an ONNX
protobuf, and every external-data location resolves to a regular file inside the model's folder
(onnxruntime itself follows hard links and ``..``). Failures are one-line ModelErrors, not protobuf
or onnxruntime tracebacks. ``build_session`` is the one call of ``InferenceSession`` in edgecnn (bench's bare
yardstick and certify's runner aside); ``create_session`` vets, resolves providers and checks them around it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgecnn.errors import ModelFormatError, ModelNotFoundError, ProviderError, UnsafeModelError
from edgecnn.runtime.providers import CPU, Provider, ProviderPlan, resolve_providers, short_name

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
    from edgecnn.runtime.contract import check_supported_opsets

    check_supported_opsets(model, p)
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
    so.log_severity_level = ort_log_severity()
    if settings.enable_profiling:
        so.enable_profiling = True
        if settings.profile_prefix:
            so.profile_file_prefix = settings.profile_prefix
    return so


def ort_log_severity() -> int:
    """onnxruntime's C++ log level: fatal only (its errors reach the user as edgecnn's messages), or
    warnings and up with ``--debug`` / ``EDGECNN_DEBUG=1``."""
    return 2 if os.environ.get("EDGECNN_DEBUG", "") not in ("", "0") else 4


def quiet_onnxruntime() -> None:
    """Keep onnxruntime's own log lines off the user's terminal (sessions edgecnn does not create too,
    e.g. the quantizer's calibration sessions)."""
    ort.set_default_logger_severity(ort_log_severity())


@contextlib.contextmanager
def _captured_stderr(enabled: bool) -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (onnxruntime says why a provider failed only there)."""
    lines: list[str] = []
    if not enabled:
        yield lines
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def _drop_reason(native_log: list[str], python_warnings: list[str]) -> str:
    """The most specific line explaining a dropped provider (onnxruntime's error log, else its warning)."""
    for line in native_log:
        if "[E:" in line or "error" in line.lower():
            return line.split("] ", 1)[-1].strip()
    for text in python_warnings:
        return text.strip().splitlines()[0]
    return "onnxruntime gave no reason (run with --debug to see its log)"


def check_session_providers(
    plan: ProviderPlan, used: list[str], reason: str, path: str | Path, *, allow_fallback: bool
) -> list[str]:
    """Compare the providers a session really got with the plan; return warnings for a tolerated drop.

    onnxruntime silently drops an execution provider that fails to initialise (onnxruntime-gpu without
    cuDNN, say) and runs on the CPU: that is a ProviderError unless falling back was allowed.

    Raises:
        ProviderError: a requested provider did not load and ``allow_fallback`` is False.
    """
    dropped = [p for p in plan.providers if p != CPU and p not in used]
    if not dropped:
        return []
    names = ", ".join(short_name(p) for p in dropped)
    message = (
        f"{path}: asked for provider {names}, but onnxruntime could not initialise it and would run on "
        f"{', '.join(short_name(p) for p in used)}: {reason}"
    )
    if plan.requested != Provider.auto and not allow_fallback:
        raise ProviderError(message + "; fix the install (edgecnn doctor --gpu) or pass --allow-fallback", path=path)
    return ["FALLBACK: " + message]


def build_session(
    source: str | Path | bytes,
    sess_options: ort.SessionOptions | None = None,
    *,
    providers: Sequence[str] = (CPU,),
    provider_options: Sequence[dict[str, Any]] | None = None,
    disabled_optimizers: Sequence[str] | None = None,
    model: Any = None,
) -> ort.InferenceSession:  # noqa: TID251 (the one place)
    """The one place in edgecnn that opens an onnxruntime ``InferenceSession`` (the bare yardstick in
    ``bench/plain_ort.py`` and certify's runner, which must not import edgecnn, aside), so that every session
    runs a model as it asks: the optimizers a quantized model disables (``session_hints``) stay disabled
    unless ``disabled_optimizers`` says otherwise.

    No vetting and no provider checks: ``create_session`` (the engine's way in) adds both; this serves the
    tools that need a plain session (an optimised-graph dump, a profiled run, a probe). ``model``: the
    ``ModelProto`` when the caller has loaded it already.
    """
    import onnx

    if disabled_optimizers is None:
        if model is None:
            model = (
                onnx.load_model_from_string(source)
                if isinstance(source, bytes)
                else onnx.load(str(source), load_external_data=False)
            )
        disabled_optimizers = session_hints(model).get("disabled_optimizers", ())
    extra: dict[str, Any] = {"disabled_optimizers": list(disabled_optimizers)} if disabled_optimizers else {}
    if provider_options is not None:
        extra["provider_options"] = list(provider_options)
    src = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(src, sess_options=sess_options, providers=list(providers), **extra)  # noqa: TID251


def create_session(
    path: str | Path,
    provider: Provider | str = Provider.auto,
    settings: SessionSettings | None = None,
    *,
    allow_fallback: bool = False,
    plan: ProviderPlan | None = None,
    vetted: tuple[Path, Any] | None = None,
) -> ort.InferenceSession:  # noqa: TID251 (the one place)
    """Vet ``path`` (unless ``vetted`` holds its vetted path and graph) and open an InferenceSession with the
    resolved providers, checking that it really got them.

    A tolerated provider drop (``auto``, or ``allow_fallback``) is a ``UserWarning`` and is recorded on the
    session as ``edgecnn_warnings``.

    Raises:
        ModelError: the file is missing, malformed or unsafe.
        ProviderError: the provider is not available or failed to load (and no fallback allowed).
    """
    checked, model = vetted or vet_model(path)
    settings = settings or SessionSettings()
    plan = plan or resolve_providers(provider, ort.get_available_providers(), allow_fallback=allow_fallback)
    wants_device = any(p != CPU for p in plan.providers)
    quiet_onnxruntime()
    with warnings.catch_warnings(record=True) as caught, _captured_stderr(wants_device) as native_log:
        warnings.simplefilter("always")
        if wants_device:
            ort.set_default_logger_severity(min(3, ort_log_severity()))  # provider failures are logged as errors
        try:
            session = build_session(
                checked,
                session_options(settings),
                **plan.as_session_args(),
                disabled_optimizers=settings.disabled_optimizers,
                model=model,
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelFormatError(f"{path}: onnxruntime cannot load this model: {first}", path=path) from err
        finally:
            quiet_onnxruntime()
    if native_log and ort_log_severity() < 4:  # --debug: show what onnxruntime said after all
        os.write(2, ("\n".join(native_log) + "\n").encode())
    notes = check_session_providers(
        plan,
        session.get_providers(),
        _drop_reason(native_log, [str(w.message) for w in caught]),
        path,
        allow_fallback=allow_fallback,
    )
    notes = [*plan.warnings, *notes]  # a provider not installed (allowed fallback), or one that did not load
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    session.edgecnn_warnings = tuple(notes)
    return session
