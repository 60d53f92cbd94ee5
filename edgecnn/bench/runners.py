"""Things the harness can time: an onnxruntime session (plain or IO-bound) and the TF baselines.

A runner prepares its inputs once (``prepare``) so that the timed call does only inference.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np


class OrtRunner:
    """An edgecnn Engine per batch size (tuned or given settings), or IO binding with data on the GPU."""

    kind = "onnxruntime"

    def __init__(self, name: str, engines: dict[int, Any], *, io_binding: bool = False, device: str = "cpu") -> None:
        self.name = name
        self.engines = engines  # batch size -> Engine (batch 1 may be tuned for latency, others for throughput)
        self.io_binding = io_binding
        self.device = device
        self.engine: Any = None
        self._feed: Any = None
        self.copies_included = not io_binding

    def settings_for(self, batch: int) -> Any:
        return self.engines[batch].settings

    def prepare(self, x: np.ndarray) -> None:
        self.engine = self.engines[len(x)]
        if not self.io_binding:
            self._feed = x
            return
        import onnxruntime as ort

        session = self.engine.session
        binding = session.io_binding()
        value = ort.OrtValue.ortvalue_from_numpy(x, self.device, 0)
        binding.bind_ortvalue_input(self.engine.input_name, value)
        binding.bind_output(self.engine.output_name, self.device)
        self._feed = (binding, value)

    def __call__(self) -> None:
        if self.io_binding:
            binding, _ = self._feed
            binding.synchronize_inputs()
            self.engine.session.run_with_iobinding(binding)
            binding.synchronize_outputs()
        else:
            self.engine.run(self._feed)


class HostCopyRunner(OrtRunner):
    """End-to-end on a GPU: host input copied in, output copied back, every call."""

    def __init__(self, name: str, engines: dict[int, Any], device: str = "cuda") -> None:
        super().__init__(name, engines, io_binding=False, device=device)
        self.copies_included = True


class CallableRunner:
    """Any ``f(x)`` (Keras tf.function, model.predict, a TFLite interpreter)."""

    def __init__(self, name: str, kind: str, fn: Any, convert: Any = None) -> None:
        self.name = name
        self.kind = kind
        self.fn = fn
        self.convert = convert
        self.copies_included = True
        self._x: Any = None

    def prepare(self, x: np.ndarray) -> None:
        self._x = self.convert(x) if self.convert else x

    def __call__(self) -> None:
        self.fn(self._x)


def nodes_per_provider(
    path: str | Path, provider_args: dict[str, Any], sess_options: Any, x: np.ndarray
) -> dict[str, int]:
    """Run once with profiling on; count graph nodes by the provider that executed them."""
    from edgecnn.runtime.session import build_session

    with tempfile.TemporaryDirectory(prefix="edgecnn-prof-") as tmp:
        sess_options.enable_profiling = True
        sess_options.profile_file_prefix = str(Path(tmp) / "profile")
        session = build_session(path, sess_options, **provider_args)
        session.run(None, {session.get_inputs()[0].name: x})
        trace = session.end_profiling()
        events = json.loads(Path(trace).read_text())
    seen: dict[str, str] = {}
    for ev in events:
        args = ev.get("args") or {}
        if ev.get("cat") == "Node" and "provider" in args:
            seen[ev.get("name", "").removesuffix("_kernel_time")] = args["provider"]
    return dict(Counter(seen.values()))
