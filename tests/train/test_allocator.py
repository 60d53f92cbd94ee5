"""Training keeps freed memory in the process (no page faults for the next step's buffers), and gives it back
after the run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import numpy as np
from edgecnn.train.allocator import keep_freed_memory

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

def freed_kept_mb():
    before = rss_mb()
    a = np.ones(64 * 2**20, np.uint8)  # 64 MB, over glibc's mmap threshold: an mmap'd block by default
    del a
    return rss_mb() - before

outside = freed_kept_mb()
with keep_freed_memory() as tuned:
    inside = freed_kept_mb()
after = freed_kept_mb()
print(tuned, round(outside), round(inside), round(after))
"""


def _probe(**env: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_buffers_stay_during_training_and_go_back_after() -> None:
    tuned, outside, inside, after = _probe()
    assert tuned == "True"
    assert int(outside) < 8 and int(after) < 8  # glibc's default: a freed 64 MB block goes back at once
    assert int(inside) >= 60  # kept for the next step


def test_a_user_tuned_allocator_is_left_alone() -> None:
    tuned, *_ = _probe(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")
    assert tuned == "False"
