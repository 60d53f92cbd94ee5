"""CPU of a training step at 224×224 with glibc's default allocator and with edgecnn's (freed memory kept).

    python benchmarks/train_step_cpu.py EfficientNetB0:28 MobileNetV2:32 --steps 4 --rounds 2

Each measurement is its own process (the allocator's settings last in a process), the two allocators
alternating, after one traced step; it prints user and system CPU seconds, wall, minor page faults and the
peak RSS. CPU seconds, not wall: on a shared machine they move least with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STEP = """
import json, os, resource, sys, time, contextlib
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from edgecnn.train.allocator import keep_freed_memory
arch, batch, steps, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "kept"
with keep_freed_memory() if keep else contextlib.nullcontext():
    import numpy as np
    import keras
    model = getattr(keras.applications, arch)(weights=None, input_shape=(224, 224, 3), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((batch, 224, 224, 3), dtype=np.float32) * 255
    y = np.arange(batch) % 10
    model.train_on_batch(x, y)  # traced
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps({"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime, "wall": t1 - t0,
                  "minflt": r1.ru_minflt - r0.ru_minflt, "maxrss_gb": r1.ru_maxrss / 1e6}))
"""


def measure(arch: str, batch: int, steps: int, allocator: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STEP, arch, str(batch), str(steps), allocator],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nets", nargs="+", help="keras.applications name:batch, e.g. EfficientNetB0:28")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| net | batch | allocator | CPU s (user + sys) | sys s | wall s | minor faults | peak RSS |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for spec in args.nets:
        arch, batch = spec.split(":")
        for _ in range(args.rounds):
            for allocator in ("default", "kept"):
                m = measure(arch, int(batch), args.steps, allocator)
                print(
                    f"| {arch} | {batch} | {allocator} | {m['user'] + m['sys']:.1f} | {m['sys']:.1f} | "
                    f"{m['wall']:.1f} | {m['minflt']:,} | {m['maxrss_gb']:.2f} GB |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
