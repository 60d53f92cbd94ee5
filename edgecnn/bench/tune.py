"""``tune``: measure engine settings for one model on this machine and keep the fastest.

Candidates are searched one knob at a time (threads/streams × spinning, then graph optimisation level,
then the call path), each stage measured interleaved in rounds so that machine drift hits all alike,
starting from the defaults: a stage only moves away from the current choice when a candidate is faster
by more than ``min_gain`` (noise on a shared machine is a few percent), and the final winner must beat
the default again, side by side, or the default stays. Every candidate's answers are
compared with the default's: a setting that changes answers beyond ``max_abs_diff`` is rejected.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._fs import sha256_file
from edgecnn.errors import UsageError
from edgecnn.runtime.classifier import read_metadata
from edgecnn.runtime.engine import CallPath, Engine, EngineSettings, physical_cores
from edgecnn.runtime.providers import Provider
from edgecnn.runtime.session import vet_model
from edgecnn.runtime.tuning import Tuning, machine_fingerprint, save_tuning

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TuneConfig:
    latency_batch: int = 1
    throughput_batch: int = 32
    cores: int | None = None  # thread budget; None: the cores this process may use
    seconds: float = 0.25  # per candidate and round
    rounds: int = 5
    settle_s: float = 0.05  # pause after each candidate's round: its idle threads stop spinning (see bench)
    min_gain: float = 0.05  # move away from the current choice only for more than this (noise: ±5%)
    max_abs_diff: float = 1e-4
    provider: Provider = Provider.cpu
    modes: tuple[str, ...] = ("latency", "throughput")  # what to tune; a mode left out keeps its default

    def __post_init__(self) -> None:
        if not self.modes or set(self.modes) - {"latency", "throughput"}:
            raise UsageError(f"modes must be 'latency' and/or 'throughput', got {self.modes}")
        if self.latency_batch < 1 or self.throughput_batch < 1:
            raise UsageError("batch sizes must be >= 1")
        if not 0 < self.seconds < float("inf") or self.rounds < 1 or self.settle_s < 0:
            raise UsageError("--seconds must be > 0 and --rounds >= 1")
        if self.cores is not None and self.cores < 1:
            raise UsageError("--cores must be >= 1")


@dataclass
class TuneResult:
    model: Path
    tuning: Tuning
    default: dict[str, float]  # mode -> metric of the untuned default
    best: dict[str, float]  # mode -> metric of the winner
    measurements: list[dict[str, Any]] = field(default_factory=list)
    sidecar: Path | None = None

    def speedup(self, mode: str) -> float:
        """Winner over default: latency ratio (default p50 / tuned p50) or throughput ratio."""
        if mode == "latency":
            return self.default[mode] / self.best[mode]
        return self.best[mode] / self.default[mode]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "sidecar": str(self.sidecar) if self.sidecar else None,
            "latency": {
                "settings": self.tuning.latency.to_dict(),
                "p50_ms": self.best["latency"] * 1e3,
                "default_p50_ms": self.default["latency"] * 1e3,
                "speedup": self.speedup("latency"),
            },
            "throughput": {
                "settings": self.tuning.throughput.to_dict(),
                "batch": self.tuning.throughput_batch,
                "items_per_s": self.best["throughput"],
                "default_items_per_s": self.default["throughput"],
                "speedup": self.speedup("throughput"),
            },
            "machine": self.tuning.machine,
            "measurements": self.measurements,
        }


MICRO_BATCHES = (1, 2, 4, 8)


def _stages(
    mode: str, cores: int, quantized: bool, batch: int = 32
) -> list[Callable[[EngineSettings], list[EngineSettings]]]:
    """Knobs in the order they matter; each maps the current choice to the candidates of a stage."""

    def parallelism(cur: EngineSettings) -> list[EngineSettings]:
        if mode == "latency":
            shapes = [(1, t) for t in range(1, cores + 1)]
        else:  # streams × threads per stream that use the budget: 1×N ... N×1
            shapes = [(s, cores // s) for s in range(1, cores + 1) if cores % s == 0]
        return [dataclasses.replace(cur, streams=s, threads=t, spin=spin) for s, t in shapes for spin in (True, False)]

    def micro_batch(cur: EngineSettings) -> list[EngineSettings]:
        """Each stream's slice in chunks that keep one call's activations in cache, for every stream shape
        (chunking can turn a losing shape into the winner, so shapes are searched again with it)."""
        shapes = [(s, cores // s) for s in range(1, cores + 1) if cores % s == 0]
        return [
            dataclasses.replace(cur, streams=s, threads=t, micro_batch=m)
            for s, t in shapes
            for m in MICRO_BATCHES
            if m < -(-batch // s)  # a chunk as large as the slice is the slice
        ]

    def optimization(cur: EngineSettings) -> list[EngineSettings]:
        return [dataclasses.replace(cur, optimization=o) for o in ("all", "extended", "basic")]

    def call(cur: EngineSettings) -> list[EngineSettings]:
        return [dataclasses.replace(cur, call=c) for c in CallPath]

    def qdq_propagation(cur: EngineSettings) -> list[EngineSettings]:
        """The model's own hint (None), every optimizer on, or QDQ propagation off."""
        return [dataclasses.replace(cur, disabled_optimizers=d) for d in (None, (), ("QDQPropagationTransformer",))]

    stages = [parallelism, *([micro_batch] if mode == "throughput" else []), optimization]
    return [*stages, *([qdq_propagation] if quantized else []), call]


def _default(mode: str, cores: int) -> EngineSettings:
    """What the engine runs untuned: a winner must beat it, and a sidecar that keeps it changes nothing.

    Throughput starts from one single-threaded stream per core (``Classifier(mode="throughput")``'s untuned
    default), not one session on every core: a sidecar holding the latter would make throughput mode *slower*
    than untuned whenever streams win by less than ``min_gain`` (EfficientNetB0 INT8 at batch 32 on 2 cores:
    2 × 1 ran 4–10% faster than 1 × 2, and `tune` kept 1 × 2; benchmarks/README.md, "Issue #28")."""
    if mode == "throughput":
        return EngineSettings.throughput(cores)
    return EngineSettings(threads=1 if cores == 1 else None)


def _measure(
    engines: list[Engine], x: np.ndarray, config: TuneConfig, progress: Callable[[str], None] | None, what: str
) -> list[float]:
    """Median seconds per call of each engine, measured in interleaved rounds of ``seconds`` each.

    After each round a pause lets the engine's thread pool stop spinning, so it does not steal the next
    candidate's cores (onnxruntime's pool spins ~40 ms after a call)."""
    for e in engines:
        for _ in range(3):
            e.run(x)
    rounds: list[list[float]] = [[] for _ in engines]
    for r in range(config.rounds):
        for i, e in enumerate(engines):
            n, t0 = 0, time.perf_counter()
            while True:
                e.run(x)
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= config.seconds and n >= 3:
                    break
            rounds[i].append(elapsed / n)
            time.sleep(config.settle_s)
        if progress:
            progress(f"{what}: {len(engines)} candidates, round {r + 1}/{config.rounds}")
    return [float(np.median(v)) for v in rounds]


def _measure_settings(
    path: Path,
    settings: list[EngineSettings],
    x: np.ndarray,
    config: TuneConfig,
    progress: Callable[[str], None] | None,
    what: str,
) -> tuple[list[float], list[np.ndarray]]:
    """Open one engine per settings, take each one's answer for ``x``, time them interleaved."""
    vetted = vet_model(path)  # parsed once for every candidate's engine
    engines = [Engine(path, config.provider, s, vetted=vetted) for s in settings]
    try:
        outputs = [e.run(x) for e in engines]
        return _measure(engines, x, config, progress, what), outputs
    finally:
        for e in engines:
            e.close()


def tune(
    model: str | Path,
    config: TuneConfig | None = None,
    *,
    write: bool = True,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Find the fastest engine settings for ``model`` at latency and throughput batches; write the sidecar.

    Raises:
        ModelError, ProviderError, UsageError.
    """
    config = config or TuneConfig()
    path = Path(model)
    meta = read_metadata(path)
    cores = config.cores or physical_cores()
    quantized = bool(meta.quantization) and meta.quantization.get("mode") == "int8"
    rng = np.random.default_rng(0)
    batches = {"latency": config.latency_batch, "throughput": config.throughput_batch}
    xs = {m: rng.random((b, *meta.input.sample_shape), dtype=np.float32) for m, b in batches.items()}
    skipped = [m for m in xs if m not in config.modes]
    winners = {m: _default(m, cores) for m in skipped}
    default_metric = dict.fromkeys(skipped, float("nan"))
    best_metric = dict.fromkeys(skipped, float("nan"))
    xs = {m: x for m, x in xs.items() if m in config.modes}
    measurements: list[dict[str, Any]] = []
    for mode, x in xs.items():
        reference: np.ndarray | None = None
        current = _default(mode, cores)
        for stage in _stages(mode, cores, quantized, len(x)):
            candidates = list(dict.fromkeys([current, *stage(current)]))
            times, outputs = _measure_settings(path, candidates, x, config, progress, f"{mode} {stage.__name__}")
            reference = outputs[0] if reference is None else reference
            ok = [_agrees(out, reference, config.max_abs_diff) for out in outputs]
            for c, t, good in zip(candidates, times, ok, strict=True):
                measurements.append(
                    {
                        "mode": mode,
                        "stage": stage.__name__,
                        "settings": c.to_dict(),
                        "seconds_per_call": t,
                        "items_per_s": len(x) / t,
                        "answers_agree": good,
                    }
                )
            good_times = [(t, i) for i, (t, good) in enumerate(zip(times, ok, strict=True)) if good]
            pick = min(good_times)[1] if good_times else 0
            if times[pick] < times[0] * (1 - config.min_gain):
                current = candidates[pick]
        winners[mode] = current
        # the default and the winner once more, side by side: the speedup reported is measured in one run
        default = _default(mode, cores)
        final = [default, current] if current != default else [default]
        times, _ = _measure_settings(path, final, x, config, progress, f"{mode} confirm")
        if times[-1] > times[0] * (1 - config.min_gain):  # not confirmed side by side: keep the default
            winners[mode], times = default, [times[0], times[0]]
        default_metric[mode], best_metric[mode] = times[0], times[-1]
        if mode == "throughput":
            default_metric[mode], best_metric[mode] = len(x) / times[0], len(x) / times[-1]
    tuning = Tuning(
        model_sha256=sha256_file(path),
        machine=machine_fingerprint(),
        latency=winners["latency"],
        throughput=winners["throughput"],
        throughput_batch=config.throughput_batch,
        measurements=measurements,
    )
    result = TuneResult(path, tuning, default_metric, best_metric, measurements)
    if write:
        result.sidecar = save_tuning(path, tuning)
    return result


def _agrees(out: np.ndarray, reference: np.ndarray, tol: float) -> bool:
    if out.shape != reference.shape:
        return False
    return bool(np.max(np.abs(out.astype(np.float64) - reference.astype(np.float64)), initial=0.0) <= tol)
