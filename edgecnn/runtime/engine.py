"""The inference engine under ``Classifier`` and ``bench``: one or more onnxruntime sessions on one model,
called the cheapest way onnxruntime allows.

Why it exists: on the course's 28×28 nets a whole inference costs 5–20 µs, and ``InferenceSession.run``
from Python adds 5–7 µs of its own (name validation, output allocation and conversion). The engine

* calls the C++ session directly (``call="direct"``), or binds the input in place and lets onnxruntime
  write into an output buffer allocated here (``call="bind"``, IO binding), and
* runs a large batch as ``streams`` slices on as many single-threaded sessions in parallel (throughput
  mode, as OpenVINO's streams): onnxruntime's intra-op threads scale poorly on small convolutions, two
  independent sessions scale almost linearly; and
* feeds each session its slice in ``micro_batch`` rows per call, so that one call's activations stay in
  the caches: a batch-32 call of MobileNetV2 at 224×224 streams ~40 MB per layer through memory, and
  one thread ran it at 212 images/s where 32 batch-1 calls ran 282 (INT8, this 2-core Zen 4).

Which combination wins depends on the model and the machine: ``edgecnn tune`` measures them and writes
the winner beside the model (see ``edgecnn.runtime.tuning``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from edgecnn.errors import ModelError, UsageError
from edgecnn.runtime.providers import Provider, ProviderPlan
from edgecnn.runtime.session import OPTIMIZATION_LEVELS, SessionSettings, create_session, vet_model

# onnxruntime's run-time failures (Fail, InvalidArgument, RuntimeException, ...) share no base but Exception
_ORT_ERRORS = tuple(v for v in vars(_ort_state).values() if isinstance(v, type) and issubclass(v, Exception)) or (
    RuntimeError,
)

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class CallPath(str, Enum):
    run = "run"  # InferenceSession.run: the public call, validates names on every call
    direct = "direct"  # the same C++ call without the Python-side validation (names are cached here)
    bind = "bind"  # IO binding: input bound in place, output written into a buffer allocated here


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything that changes speed and never answers: session options, streams and the call path."""

    threads: int | None = None  # intra-op threads per session; None: onnxruntime's default (all cores)
    streams: int = 1  # sessions run in parallel on slices of one batch
    spin: bool | None = None  # intra-op spin-wait; None keeps onnxruntime's default
    optimization: str = "all"
    call: CallPath = CallPath.direct
    spin_stop: bool = False  # stop spinning when a run ends (always so with several streams: they share cores)
    disabled_optimizers: tuple[str, ...] | None = None  # None: what the model's metadata asks for
    micro_batch: int | None = None  # rows per session call (a stream's slice in chunks); None: all at once

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise UsageError(f"micro_batch must be >= 1, got {self.micro_batch}")
        if self.streams < 1:
            raise UsageError(f"streams must be >= 1, got {self.streams}")
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise UsageError(f"optimization must be one of {sorted(OPTIMIZATION_LEVELS)}, got {self.optimization!r}")
        object.__setattr__(self, "call", CallPath(self.call))
        if self.disabled_optimizers is not None:
            object.__setattr__(self, "disabled_optimizers", tuple(self.disabled_optimizers))

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            threads=self.threads,
            optimization=self.optimization,
            spin=self.spin,
            spin_stop=self.spin_stop or self.streams > 1,
            disabled_optimizers=self.disabled_optimizers,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self) | {"call": self.call.value}
        if self.disabled_optimizers is not None:
            data["disabled_optimizers"] = list(self.disabled_optimizers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSettings:
        """Strict: unknown keys or bad values are a UsageError naming them."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise UsageError(f"unknown engine setting(s): {sorted(unknown)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise UsageError(f"invalid engine settings {data}: {err}") from err

    @classmethod
    def throughput(cls, cores: int | None = None) -> EngineSettings:
        """The untuned throughput default: one single-threaded session per core."""
        return cls(threads=1, streams=max(1, cores or physical_cores()))

    def describe(self) -> str:
        threads = "auto" if self.threads is None else str(self.threads)
        spin = {None: "default", True: "on", False: "off"}[self.spin]
        opt, call = self.optimization, self.call.value
        text = f"{self.streams} stream(s) × {threads} thread(s), spin {spin}, opt {opt}, {call}"
        if self.disabled_optimizers is not None:
            text += f", without {', '.join(self.disabled_optimizers) or 'nothing'}"
        if self.micro_batch is not None:
            text += f", micro-batch {self.micro_batch}"
        return text


def physical_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Engine:
    """``streams`` sessions on one model; ``run(x)`` returns the model's first output for batch ``x``.

    Thread-safe: onnxruntime sessions may run concurrently, and IO bindings are kept per thread.

    Raises:
        ModelError: the model cannot be loaded.
        ProviderError: the provider is not available (and no fallback allowed).
    """

    def __init__(
        self,
        path: str | Path,
        provider: Provider | str = Provider.auto,
        settings: EngineSettings | None = None,
        *,
        allow_fallback: bool = False,
        plan: ProviderPlan | None = None,
        vetted: tuple[Path, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.settings = settings or EngineSettings()
        session_settings = self.settings.session_settings()
        vetted = vetted or vet_model(self.path)
        self.sessions = [
            create_session(
                self.path, provider, session_settings, allow_fallback=allow_fallback, plan=plan, vetted=vetted
            )
            for _ in range(self.settings.streams)
        ]
        self.warnings: tuple[str, ...] = getattr(self.sessions[0], "edgecnn_warnings", ())
        first = self.sessions[0]
        self.input_name = first.get_inputs()[0].name
        out = first.get_outputs()[0]
        self.output_name = out.name
        self._out_dtype = _NP_TYPES.get(out.type)
        dims = list(out.shape[1:])
        self._out_sample: tuple[int, ...] | None = tuple(dims) if all(isinstance(d, int) for d in dims) else None
        on_cpu = first.get_providers()[0] == "CPUExecutionProvider"
        call = self.settings.call
        if call == CallPath.bind and not (on_cpu and self._out_dtype and self._out_sample is not None):
            call = CallPath.direct  # binding into host buffers only pays on CPU with a known output shape
        if call == CallPath.direct and not all(hasattr(s, "_sess") for s in self.sessions):
            call = CallPath.run  # a future onnxruntime without the C++ handle: the public call still works
        self.call = call
        # one session called directly: the whole call is one C++ run, no Python dispatch on top
        single = call == CallPath.direct and len(self.sessions) == 1 and self.settings.micro_batch is None
        self._single = first._sess.run if single else None
        self._output_names = [self.output_name]
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The first session (metadata, providers, profiling)."""
        return self.sessions[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Raw first output for the batch ``x`` (already in the model's dtype, shape and layout).

        Raises:
            ModelError: onnxruntime failed while running the model (the model is broken, not the input,
                which callers have validated against the metadata).
        """
        try:
            if self._single is not None:
                return self._single(self._output_names, {self.input_name: x}, None)[0]
            return self._run_streams(x)
        except _ORT_ERRORS as err:
            text = str(err).strip()
            first = text.splitlines()[0] if text else type(err).__name__
            raise ModelError(
                f"{self.path}: onnxruntime failed while running the model: {first}", path=self.path
            ) from err

    def _run_streams(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if len(self.sessions) == 1 or n < 2:
            return self._call(0, x)
        parts = np.array_split(x, min(len(self.sessions), n))
        pool = self._executor()
        futures = [pool.submit(self._call, i, part) for i, part in enumerate(parts[1:], start=1)]
        head = self._call(0, parts[0])  # this thread works too instead of waiting
        return np.concatenate([head, *(f.result() for f in futures)])

    def _call(self, index: int, x: np.ndarray) -> np.ndarray:
        step = self.settings.micro_batch
        if step is None or len(x) <= step:
            return self._call_once(index, x)
        return np.concatenate([self._call_once(index, x[i : i + step]) for i in range(0, len(x), step)])

    def _call_once(self, index: int, x: np.ndarray) -> np.ndarray:
        session = self.sessions[index]
        if self.call == CallPath.direct:
            return session._sess.run(self._output_names, {self.input_name: x}, None)[0]
        if self.call == CallPath.bind:
            binding = self._binding(index)
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            binding.bind_cpu_input(self.input_name, x)
            out = np.empty((len(x), *self._out_sample), dtype=self._out_dtype)  # type: ignore[misc]
            binding.bind_output(self.output_name, "cpu", 0, self._out_dtype, out.shape, out.ctypes.data)
            session._sess.run_with_iobinding(binding._iobinding, None)
            return out
        return session.run([self.output_name], {self.input_name: x})[0]

    def _binding(self, index: int) -> Any:
        bindings = getattr(self._local, "bindings", None)
        if bindings is None:
            bindings = self._local.bindings = {}
        if index not in bindings:
            bindings[index] = self.sessions[index].io_binding()
        return bindings[index]

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self.sessions) - 1, thread_name_prefix="edgecnn-stream")
            return self._pool

    def close(self) -> None:
        """Stop the stream threads (sessions are freed with the engine)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
