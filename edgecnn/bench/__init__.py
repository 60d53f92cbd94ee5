"""The latency benchmark harness: honest percentiles and throughput, interleaved, with baselines."""

from edgecnn.bench.api import BenchResult, run_benchmark
from edgecnn.bench.config import Baseline, BenchConfig, Scenario

__all__ = ["Baseline", "BenchConfig", "BenchResult", "Scenario", "run_benchmark"]
