"""The benchmark harness: statistics against known arrays, the report's fields, gates, baselines."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx
from typer.testing import CliRunner

from edgecnn.bench import BenchConfig, run_benchmark
from edgecnn.bench.stats import summarize
from edgecnn.cli import app
from edgecnn.errors import BenchGateError, UsageError


def test_stats_on_known_values() -> None:
    s = summarize(np.arange(1, 101) / 1e3, batch=4)  # 1..100 ms
    assert s["n"] == 100 and s["min_ms"] == pytest.approx(1.0) and s["max_ms"] == pytest.approx(100.0)
    assert s["mean_ms"] == pytest.approx(50.5) and s["p50_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1) and s["p99_ms"] == pytest.approx(99.01)
    assert s["std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert s["throughput"] == pytest.approx(4 * 1000 / 50.5)
    assert s["unreliable_tails"] == ["p95", "p99", "p99.9"]
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([], batch=1)


def test_report_fields_and_interleaving(tmp_path: Path) -> None:
    a = make_tiny_onnx(tmp_path / "a.onnx")
    b = make_tiny_onnx(tmp_path / "b.onnx", seed=1)
    result = run_benchmark([a, b], BenchConfig(batch_sizes=(1, 4), threads=1, warmup=3, iterations=50, block=10))
    data = json.loads(json.dumps(result.to_dict()))
    assert {"environment", "settings", "models", "steady_state", "memory", "verdict"} <= set(data)
    assert data["environment"]["threads"] == 1 and data["environment"]["cpu_count"]
    m = data["models"][0]
    assert m["providers"]["used"] == ["cpu"] and m["providers"]["nodes_per_provider"]["cpu"] >= 5
    assert m["cold_start"]["session_create_ms"] > 0 and len(m["sha256"]) == 64
    assert m["engine"]["1"]["settings"]["spin_stop"] is False  # blocks keep spinning, as an app would
    assert data["settings"]["settle_s"] > 0 and data["settings"]["interleaved_block_s"] > 0
    rows = data["steady_state"]
    assert [(r["name"], r["batch"]) for r in rows] == [("a.onnx", 1), ("b.onnx", 1), ("a.onnx", 4), ("b.onnx", 4)]
    assert all(r["n"] >= 50 and r["warmup"]["n"] == 3 for r in rows)
    assert rows[0]["throughput_ratio_vs_first"] == 1.0
    assert data["memory"]["peak_rss_mb"] > 0 and data["verdict"]["passed"]


class _Clocked:
    """A runner that records when each call happened (bench's runner protocol: name, prepare, __call__)."""

    copies_included = False

    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name, self.log = name, log

    def prepare(self, x: np.ndarray) -> None:
        pass

    def __call__(self) -> None:
        self.log.append((self.name, time.perf_counter()))


def test_interleaved_blocks_run_long_enough_and_settle_between_runners() -> None:
    from edgecnn.bench.api import BenchResult, _measure

    log: list[tuple[str, float]] = []
    config = BenchConfig(warmup=0, duration_s=0.1, block=5, block_s=0.02, settle_s=0.03)
    result = BenchResult(environment={}, settings={})
    _measure([_Clocked("a", log), _Clocked("b", log)], np.zeros((1, 1)), 1, config, result)
    blocks: list[list[tuple[str, float]]] = []
    for entry in log:
        if blocks and blocks[-1][-1][0] == entry[0]:
            blocks[-1].append(entry)
        else:
            blocks.append([entry])
    # how many blocks fit depends on the machine's load; the structure does not (exact counts: the fake clock below)
    assert len(blocks) >= 2 and [b[0][0] for b in blocks] == ["a", "b"] * (len(blocks) // 2)  # whole rounds
    assert all(len(b) >= 5 for b in blocks)  # at least ``block`` calls each
    pairs = list(itertools.pairwise(blocks))
    assert all(nxt[0][1] - cur[-1][1] >= 0.03 for cur, nxt in pairs)  # a settle pause between every two blocks
    # a block lasts block_s: from the call before it to the call after it there are two pauses and a block
    # (only lower bounds: a GC pause or preemption can delay a logged call, never advance it)
    spans = [nxt[0][1] - prev[-1][1] for prev, nxt in zip(blocks, blocks[2:], strict=False)]
    assert all(span >= 0.03 + 0.02 + 0.03 for span in spans)
    assert [r["name"] for r in result.rows] == ["a", "b"]


class _FakeClock:
    """Time that moves only when a runner is called (``cost`` each) or the bench sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Ticking:
    """A runner that costs ``cost`` seconds of fake time a call and logs (name, time after the call)."""

    copies_included = False

    def __init__(self, name: str, clock: _FakeClock, log: list[tuple[str, float]], cost: float = 0.25) -> None:
        self.name, self.clock, self.log, self.cost = name, clock, log, cost

    def prepare(self, x: np.ndarray) -> None:
        pass

    def __call__(self) -> None:
        self.clock.now += self.cost
        self.log.append((self.name, self.clock.now))


def _blocks_on_a_fake_clock(**config: float) -> tuple[list[tuple[str, int, float, float]], list[dict]]:  # type: ignore[type-arg]
    """Run _measure on a fake clock; return (name, calls, first, last) per block and the result rows."""
    from edgecnn.bench.api import BenchResult, _measure

    clock, log = _FakeClock(), []
    result = BenchResult(environment={}, settings={})
    runners = [_Ticking("a", clock, log), _Ticking("b", clock, log)]
    _measure(runners, np.zeros((1, 1)), 1, BenchConfig(**config), result, clock=clock, sleep=clock.sleep)
    groups = [list(group) for _, group in itertools.groupby(log, lambda e: e[0])]
    return [(g[0][0], len(g), g[0][1], g[-1][1]) for g in groups], result.rows


@pytest.mark.parametrize(
    ("block", "calls", "rounds"),
    # block_s (2 s = 8 calls) decides, or the call count does (9 calls = 2.25 s), or — 12 calls = 3 s would be
    # more than a quarter of the 10-s duration — the cap does: 2.5 s = 10 calls, so runners still alternate
    [(5, 8, 5), (9, 9, 5), (12, 10, 4)],
)
def test_interleaved_schedule_on_a_fake_clock_is_exact(block: int, calls: int, rounds: int) -> None:
    """Calls cost 0.25 s; each block runs >= ``block`` calls and >= 2 s but <= 10 s / 4, then settles 3 s; until
    2 × 10 s measured."""
    blocks, rows = _blocks_on_a_fake_clock(warmup=2, duration_s=10.0, block=block, block_s=2.0, settle_s=3.0)
    warm, blocks = blocks[:2], blocks[2:]
    assert [(b[0], b[1]) for b in warm] == [("a", 2), ("b", 2)]  # warm-up first, each runner on its own
    assert [b[0] for b in blocks] == ["a", "b"] * rounds  # round-robin, whole rounds, no more than the budget
    assert [b[1] for b in blocks] == [calls] * (2 * rounds)
    assert all(last - first == 0.25 * (calls - 1) for _, _, first, last in blocks)
    # between two blocks: the settle pause, then the next block's first call
    assert [nxt[2] - cur[3] for cur, nxt in itertools.pairwise(blocks)] == [3.0 + 0.25] * (2 * rounds - 1)
    assert [(r["name"], r["n"], r["warmup"]["n"]) for r in rows] == [("a", calls * rounds, 2), ("b", calls * rounds, 2)]
    assert rows[0]["p50_ms"] == rows[1]["p50_ms"] == pytest.approx(250.0)


def test_slow_calls_alternate_call_by_call_within_a_short_duration() -> None:
    """A 0.25-s call with the CLI's defaults (blocks of 20 calls) and a 1-s duration: one call per block, five
    rounds (every runner >= 5 calls), instead of one 5-s block per runner timed apart."""
    blocks, rows = _blocks_on_a_fake_clock(warmup=0, duration_s=1.0, block=20, block_s=0.1, settle_s=0.05)
    assert [(b[0], b[1]) for b in blocks] == [("a", 1), ("b", 1)] * 5
    assert [r["n"] for r in rows] == [5, 5]


def test_iterations_cap_the_last_block_on_a_fake_clock() -> None:
    blocks, rows = _blocks_on_a_fake_clock(warmup=0, iterations=20, block=5, block_s=2.0, settle_s=3.0)
    assert [(b[0], b[1]) for b in blocks] == [("a", 8), ("b", 8), ("a", 8), ("b", 8), ("a", 4), ("b", 4)]
    assert [r["n"] for r in rows] == [20, 20]


def test_gates_fail_with_exit_4(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    result = run_benchmark([model], BenchConfig(iterations=20, warmup=1, max_p95_ms=1e-6))
    with pytest.raises(BenchGateError, match="p95"):
        result.raise_for_failure()
    cli = CliRunner().invoke(app, ["bench", str(model), "--iterations", "20", "--min-throughput", "1e12"])
    assert cli.exit_code == 4 and "benchmark gate missed" in cli.stderr


def test_cli_writes_json_markdown_png(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    out = CliRunner().invoke(
        app,
        [
            "bench",
            str(model),
            "--batch",
            "1,8",
            "--iterations",
            "30",
            "--threads",
            "1",
            "--json",
            str(tmp_path / "b.json"),
            "--report",
            str(tmp_path / "b.md"),
            "--plot",
            str(tmp_path / "b.png"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "p50 ms" in out.stdout
    assert len(json.loads((tmp_path / "b.json").read_text())["steady_state"]) == 2
    assert "| m.onnx | 8 |" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--batch"):
        BenchConfig(batch_sizes=(0,))
    a = make_tiny_onnx(tmp_path / "a.onnx")
    b = make_tiny_onnx(tmp_path / "b.onnx", size=16)
    with pytest.raises(UsageError, match="input shape differs"):
        run_benchmark([a, b])
    cuda = CliRunner().invoke(app, ["bench", str(a), "--provider", "cuda"])
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        assert cuda.exit_code == 3 and "asked for provider 'cuda'" in cuda.stderr


@pytest.mark.needs_tf
@pytest.mark.slow
def test_baselines_in_the_same_run(tmp_path: Path) -> None:
    from edgecnn.bench import Baseline
    from edgecnn.export import ExportConfig, export_keras

    onnx_path = export_keras("zoo:mnist-mlp-deep", tmp_path / "m.onnx", ExportConfig(parity_samples=8)).path
    cfg = BenchConfig(
        batch_sizes=(1,),
        threads=1,
        iterations=20,
        warmup=2,
        keras_model="zoo:mnist-mlp-deep",
        calibration="mnist5k",
        baselines=(Baseline.keras, Baseline.tflite),
    )
    rows = run_benchmark([onnx_path], cfg).to_dict()["steady_state"]
    names = [r["name"] for r in rows]
    assert names == ["m.onnx", "keras tf.function", "keras model.predict", "tflite fp32", "tflite int8"]
    assert all(r["n"] >= 20 and r["p50_ms"] > 0 for r in rows)


@pytest.mark.gpu
def test_cuda_io_binding_path(tmp_path: Path) -> None:
    """Device latency with IO binding plus an end-to-end row with host copies, on a real GPU."""
    model = make_tiny_onnx(tmp_path / "m.onnx")
    data = run_benchmark([model], BenchConfig(provider="cuda", iterations=20, warmup=2)).to_dict()
    assert data["models"][0]["providers"]["used"][0] == "cuda"
    names = [r["name"] for r in data["steady_state"]]
    assert names == ["m.onnx", "m.onnx (with host copies)"]
    assert data["steady_state"][0]["host_device_copies_included"] is False
