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
    code = (
        "import sys\n"
        "from edgecnn.cluster import RayConfig, classify_on_ray\n"
        "from edgecnn.errors import ClusterError\n"
        "try:\n"
        f"    classify_on_ray({str(tiny_onnx)!r}, {str(_folder(tmp_path))!r}, {str(tmp_path / 'r.csv')!r},\n"
        f"                    RayConfig('127.0.0.1:{silent_port}', connect_timeout_s=4))\n"
        "except ClusterError as err:\n"
        "    print('CLUSTER', err)\n"
        "    sys.exit(3)\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert f"cannot connect to Ray at 127.0.0.1:{silent_port}" in proc.stdout and "within 4 s" in proc.stdout
    assert time.monotonic() - t0 < 40
    assert "Failed to connect to GCS" not in proc.stderr  # Ray's C++ retry lines stay off the terminal


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
