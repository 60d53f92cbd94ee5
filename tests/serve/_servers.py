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
def running_server(
    models: list[Path], *options: str, log_dir: Path, gate: Path | None = None
) -> Iterator[RunningServer]:
    """`python -m edgecnn serve MODELS --port P OPTIONS` until ready; stopped (SIGTERM, then kill) afterwards.
    With ``gate``, model runs wait while that file exists (``_gated_serve.py``): requests stay in flight until
    the test removes it."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    entry = ["-m", "edgecnn"]
    if gate is not None:
        env["EDGECNN_TEST_GATE"] = str(gate)
        entry = [str(Path(__file__).with_name("_gated_serve.py"))]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, *entry, "serve", *map(str, models), "--port", str(port), *options],
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
