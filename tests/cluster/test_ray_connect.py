"""The cluster edge fails fast and cleanly: an address where something accepts TCP but no Ray head answers
(Ray's driver would retry inside C++ for minutes, deaf to SIGTERM) ends in exit 3 within the connect timeout,
and SIGTERM ends the run at once, before or during the connection."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_png

pytestmark = [pytest.mark.needs_ray, pytest.mark.slow]


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (not a Ray GCS)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def _folder(tmp_path: Path) -> Path:
    for i in range(2):
        write_png(tmp_path / "photos" / f"{i}.png", seed=i)
    return tmp_path / "photos"


def test_silent_address_is_exit_3_within_the_timeout(tiny_onnx: Path, tmp_path: Path, silent_port: int) -> None:
    args = ["classify", str(_folder(tmp_path)), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv")]
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", *args, "--ray", f"127.0.0.1:{silent_port}", "--ray-timeout", "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr  # Ray's C++ retry lines ("Failed to connect to GCS ...") stay off
    assert lines[0].startswith(f"error: cannot connect to Ray at 127.0.0.1:{silent_port}") and "within 4 s" in lines[0]
    assert time.monotonic() - t0 < 30


def test_sigterm_while_connecting_ends_the_run(tiny_onnx: Path, tmp_path: Path, silent_port: int) -> None:
    args = ["classify", str(_folder(tmp_path)), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecnn", *args, "--ray", f"127.0.0.1:{silent_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(8)  # past the TCP probe and Ray's import: inside ray.init's retries
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM, 130)
