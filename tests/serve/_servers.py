"""Real `edgecnn serve` processes on loopback, started once per module, and the models they serve."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    def gauge(self, name: str) -> float:
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        raise KeyError(name)

    def runs(self, model: str) -> int:
        """Model runs so far (the batch-size histogram's count)."""
        for line in self.metrics().splitlines():
            if line.startswith(f'edgecnn_batch_size_count{{model="{model}"}}'):
                return int(float(line.split()[-1]))
        return 0


@contextlib.contextmanager
def running_server(models: list[Path], *options: str, log_dir: Path) -> Iterator[RunningServer]:
    """`python -m edgecnn serve MODELS --port P OPTIONS` until ready; stopped (SIGTERM, then kill) afterwards."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgecnn", "serve", *map(str, models), "--port", str(port), *options],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = RunningServer(proc, f"http://127.0.0.1:{port}", port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"edgecnn serve exited {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/v2/health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"edgecnn serve not ready in 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def make_slow_onnx(path: Path, labels: tuple[str, ...] = ("slow", "slower"), work: int = 96) -> Path:
    """A classifier that costs ~5.5 G multiply-adds per sample (0.2-1 s on 2 busy cores): an 8x8 RGB input
    upsampled to 256x256 inside the graph, then two convolutions (so a small upload keeps the model busy)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runtime.metadata import InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec, embed_metadata

    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(np.array([1, 1, 32, 32], np.float32), "scales"),
        numpy_helper.from_array(rng.normal(0, 0.3, (work, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (work, work, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 1.0, (work, len(labels))).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Resize", ["nchw", "", "scales"], ["big"], mode="nearest"),
        helper.make_node("Conv", ["big", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8, 8, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", len(labels)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgecnn-tests")
    model.ir_version = 8
    embed_metadata(
        model,
        ModelMetadata(labels, InputSpec("input", Layout.NHWC, 8, 8, 3), PreprocessSpec(), OutputKind.softmax),
    )
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path
