"""Latency statistics as benchmark tools report them (MLPerf LoadGen, onnxruntime_perf_test); pure numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

# a tail percentile needs enough samples beyond it to mean anything (≥ 10 samples past the cut)
MIN_N_FOR = {"p90": 100, "p95": 200, "p99": 1000, "p99.9": 10000}


def summarize(latencies_s: np.ndarray | list[float], batch: int) -> dict[str, Any]:
    """Per-call latency statistics in milliseconds and throughput in items/s at ``batch``."""
    t = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if t.size == 0:
        raise ValueError("no latency samples")
    mean = float(t.mean())
    std = float(t.std(ddof=1)) if t.size > 1 else 0.0
    pct = {
        name: float(np.percentile(t, q))
        for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p99.9", 99.9))
    }
    return {
        "n": int(t.size),
        "batch": batch,
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean else 0.0,
        "min_ms": float(t.min()),
        **{f"{k}_ms": v for k, v in pct.items()},
        "max_ms": float(t.max()),
        "throughput": batch * 1e3 / mean if mean else 0.0,
        "unreliable_tails": [k for k, n in MIN_N_FOR.items() if t.size < n],
    }
