"""glibc's allocator tuned for a training run: freed memory kept in the process for the next step.

A training step at 224×224 allocates and frees hundreds of MB of activation buffers. glibc serves blocks over
its mmap threshold with fresh mappings and gives freed memory back to the kernel, so every step faults the same
pages in again: on a 2-core Zen 3, one EfficientNetB0 epoch at 224 spent more CPU in the kernel (1,092 s) than
in TensorFlow (843 s). Keeping freed memory (no mmap'd blocks, no trimming, one arena) cut the CPU of a
training step by 36-40% with the same or lower peak memory (``benchmarks/README.md``, "Training at 224").

Linux with glibc only; elsewhere, or where the user tuned the allocator already (``GLIBC_TUNABLES`` naming
malloc), nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

# mallopt(3) parameters and glibc's defaults for the two that are restored afterwards
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1, M_ARENA_MAX: 1}


def _glibc() -> Any | None:
    """glibc, when this process runs on it and the user left its allocator alone."""
    if not sys.platform.startswith("linux") or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # musl has no such function
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Inside the block, freed memory stays in the process (yields whether the allocator was tuned). After it,
    glibc trims again and what the run freed goes back to the kernel: the process does not stay at its peak.
    The one-arena setting lasts (glibc fixes its arena count once), which costs nothing measurable here."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    tuned = all(libc.mallopt(param, value) == 1 for param, value in KEEP.items())
    log.debug("glibc allocator: keep freed memory during training (%s)", "set" if tuned else "refused")
    try:
        yield tuned
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
