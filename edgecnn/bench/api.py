"""``run_benchmark``: cold start, warm-up and steady-state latency of ONNX models (and baselines),
interleaved in round-robin blocks so that machine drift hits every candidate alike."""

from __future__ import annotations

import logging
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._fs import sha256_file
from edgecnn.bench.config import Baseline, BenchConfig
from edgecnn.bench.runners import HostCopyRunner, OrtRunner, nodes_per_provider
from edgecnn.bench.stats import summarize
from edgecnn.errors import BenchGateError, UsageError
from edgecnn.runtime.classifier import read_metadata
from edgecnn.runtime.contract import read_graph_metadata
from edgecnn.runtime.engine import Engine, EngineSettings
from edgecnn.runtime.environment import describe_environment
from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.runtime.providers import CPU, CUDA, TENSORRT, resolve_providers, short_name
from edgecnn.runtime.session import session_options, vet_model
from edgecnn.runtime.tuning import load_tuning

log = logging.getLogger(__name__)

MIN_ROUNDS = 4  # with --duration: interleaved runners alternate at least this often (see _measure)
INT8_OPS = ("QLinearConv", "QuantizeLinear", "DequantizeLinear", "ConvInteger", "QGemm", "MatMulInteger")


@dataclass
class BenchResult:
    """Everything one benchmark run measured (JSON first; tables, Markdown and PNG render this)."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per runner × batch
    notes: list[str] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=lambda: {"passed": True, "failures": []})
    profile: list[dict[str, Any]] | None = None  # per model, with --profile (edgecnn.bench.profile)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "environment": self.environment,
            "settings": self.settings,
            "models": self.models,
            "steady_state": self.rows,
            "memory": {"peak_rss_mb": _peak_rss_mb()},
            "notes": self.notes,
            "verdict": self.verdict,
        }
        if self.profile is not None:
            data["profile"] = self.profile
        return data

    def raise_for_failure(self) -> BenchResult:
        if not self.verdict["passed"]:
            raise BenchGateError("benchmark gate missed: " + "; ".join(self.verdict["failures"]))
        return self


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _variant(meta: ModelMetadata) -> str:
    return str((meta.quantization or {}).get("mode", "fp32"))


def slow_pair_warnings(name: str, provider: str, op_types: set[str]) -> list[str]:
    """Known slow pairs of model and provider that actually ran it, as report warnings.

    The CUDA provider has no INT8 convolution kernels: a QDQ model runs there as FP32 convolutions
    between Quantize/DequantizeLinear nodes (or partly on the CPU), slower than its FP32 original.
    """
    if provider == CUDA and op_types & set(INT8_OPS):
        return [
            f"WARNING {name}: known slow pair: INT8 QDQ on CUDAExecutionProvider (no INT8 conv kernels); "
            "use TensorRT (--provider tensorrt --trt-int8)"
        ]
    return []


def engine_options(config: BenchConfig) -> list[tuple[str, EngineSettings | None]]:
    """The engine configurations to run each model with, labelled; ``None``: tuned, else default."""
    if config.engines:
        labels = [f"{e.streams}×{e.threads or 'auto'}" for e in config.engines]
        # settings that differ only in spin, call path or micro-batch would share a label (and an entry)
        unique = [f"{lab} #{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]
        return list(zip(unique, config.engines, strict=True))
    if config.streams:
        out: list[tuple[str, EngineSettings | None]] = []
        for n in config.streams:  # --threads is the budget the streams share
            threads = max(1, config.threads // n) if config.threads is not None and n > 1 else config.threads
            label = f"{n} stream{'s' if n != 1 else ''}"
            out.append((label, EngineSettings(threads=threads, streams=n, spin=config.spin, call=config.call)))
        return out
    if config.threads is not None:
        return [("", EngineSettings(threads=config.threads, spin=config.spin, call=config.call))]
    return [("", None)]


def engine_settings(
    path: Path, config: BenchConfig, batch: int, option: EngineSettings | None
) -> tuple[EngineSettings, str]:
    """Settings for one model at one batch size: given, else tuned (``MODEL.tune.json``), else default.

    A tuning file is used when no settings are given and tuning is on; batch 1 gets its latency winner,
    larger batches its throughput winner. Sessions keep spinning between the calls of a block, as in an
    app; interleaving is made fair by ``_measure``'s settle pause instead (see ``BenchConfig.settle_s``).
    """
    settings, source = option, "given"
    if settings is None:
        source = "default"
        if config.tuned:
            tuning, why = load_tuning(path)
            if tuning is not None:
                settings, source = tuning.settings_for("latency" if batch == 1 else "throughput"), why
            elif "ignored" in why:  # a tune file for another model or machine: say so, not silently
                source = f"default; {why}"
        if settings is None:
            settings = EngineSettings(spin=config.spin, call=config.call)
    return settings, source


def _open(
    path: Path, config: BenchConfig, batches: tuple[int, ...], x1: np.ndarray
) -> tuple[list[OrtRunner], dict[str, Any], list[str]]:
    """Engine(s) for one model, with cold-start timings and what the providers really did."""
    import onnxruntime as ort

    vetted = vet_model(path)  # one parse of the file serves the metadata check, the engines and the op list
    checked, graph = vetted[0], vetted[1].graph
    meta = read_graph_metadata(vetted[1], path)
    plan = resolve_providers(
        config.provider,
        ort.get_available_providers(),
        allow_fallback=config.allow_fallback,
        trt_fp16=config.trt_fp16,
        trt_int8=config.trt_int8,
        trt_cache_dir=config.trt_cache,
    )
    notes = list(plan.warnings)
    options = engine_options(config)
    if len(options) == 1:  # one configuration: runners keep the model's name (rows carry the settings)
        options = [("", options[0][1])]
    chosen = {(label, b): engine_settings(checked, config, b, option) for label, option in options for b in batches}
    notes += [f"{path.name} batch {b}: {s.describe()} [{src}]" for (_, b), (s, src) in chosen.items()]
    engines: dict[EngineSettings, Engine] = {}
    created = first = 0.0
    for settings, _ in chosen.values():
        if settings not in engines:
            t0 = time.perf_counter()
            engines[settings] = Engine(checked, config.provider, settings, plan=plan, vetted=vetted)
            if len(engines) == 1:  # cold start of the first engine: session creation, then first inference
                created = time.perf_counter() - t0
                t0 = time.perf_counter()
                engines[settings].run(x1)
                first = time.perf_counter() - t0
    first_engine = next(iter(engines.values()))
    notes += [w for w in first_engine.warnings if w not in notes]  # a provider onnxruntime dropped (fallback)
    session = first_engine.session
    used = session.get_providers()
    on_gpu = used[0] in (CUDA, TENSORRT)
    ops = {n.op_type for n in graph.node}
    slow = slow_pair_warnings(path.name, used[0], ops)
    notes += slow
    sess_options = session_options(next(iter(engines)).session_settings())
    per_provider = nodes_per_provider(checked, plan.as_session_args(), sess_options, x1)
    if set(per_provider) - {CPU} and CPU in per_provider and on_gpu:
        notes.append(f"{path.name}: {per_provider[CPU]} node(s) fell back to the CPU provider")
    io_binding = on_gpu if config.io_binding is None else config.io_binding
    runners: list[OrtRunner] = []
    for label, _ in options:
        by_batch = {b: engines[s] for (m, b), (s, _) in chosen.items() if m == label}
        name = f"{path.name} [{label}]" if label else path.name
        runners.append(OrtRunner(name, by_batch, io_binding=io_binding, device="cuda" if on_gpu else "cpu"))
        if on_gpu and io_binding:
            runners.append(HostCopyRunner(f"{name} (with host copies)", by_batch))
    info = {
        "path": str(path),
        "sha256": sha256_file(checked),
        "size_bytes": checked.stat().st_size,
        "variant": _variant(meta),
        "input": meta.input.to_dict(),
        "opset": None,
        "providers": {
            "requested": config.provider.value if hasattr(config.provider, "value") else str(config.provider),
            "used": [short_name(p) for p in used],
            "nodes_per_provider": {short_name(k): v for k, v in per_provider.items()},
            "warnings": slow,
        },
        "engine": {
            (f"{b}@{label}" if label else str(b)): {"settings": s.to_dict(), "source": src}
            for (label, b), (s, src) in chosen.items()
        },
        "cold_start": {"session_create_ms": created * 1e3, "first_inference_ms": first * 1e3},
    }
    return runners, info, notes


def _inputs(meta: ModelMetadata, batches: tuple[int, ...], seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    one = rng.random((1, *meta.input.sample_shape), dtype=np.float32)
    return {b: np.ascontiguousarray(np.repeat(one, b, axis=0)) for b in batches}


def run_benchmark(models: list[str | Path], config: BenchConfig | None = None) -> BenchResult:
    """Measure each model (and the requested baselines) with the same inputs and threads.

    Raises:
        ModelError, ProviderError, UsageError; BenchGateError only through ``raise_for_failure()``.
    """
    config = config or BenchConfig()
    if not models:
        raise UsageError("give at least one .onnx model")
    paths = [Path(m) for m in models]
    meta0 = read_metadata(paths[0])
    for p in paths[1:]:
        if read_metadata(p).input.sample_shape != meta0.input.sample_shape:
            raise UsageError(f"{p}: input shape differs from {paths[0]}; compare models with the same input")
    batches = config.effective_batches
    xs = _inputs(meta0, batches)
    env = describe_environment() | {"threads": config.threads}
    result = BenchResult(environment=env, settings=_settings(config))
    runners: list[Any] = []
    for path in paths:
        rs, info, notes = _open(path, config, batches, xs[batches[0]][:1])
        runners += rs
        result.models.append(info)
        result.notes += notes
    if config.baselines:
        runners += _baseline_runners(paths, meta0, config, result)
    for note in result.notes:
        if note.startswith(("WARNING", "FALLBACK")):
            warnings.warn(note, stacklevel=2)
    for batch in batches:
        _measure(runners, xs[batch], batch, config, result)
    _apply_gates(result, config, {r.name for r in runners if isinstance(r, OrtRunner)})
    if config.profile:  # after the timing, so that the profiler's own cost never reaches the timed rows
        result.profile = [_profile(path, config, batches[0], xs[batches[0]]) for path in paths]
    return result


def _profile(path: Path, config: BenchConfig, batch: int, x: np.ndarray) -> dict[str, Any]:
    """Time per role of one model (and of its FP32 source) with the settings it was benched with."""
    from edgecnn.bench.profile import profile_model

    settings, _ = engine_settings(path, config, batch, engine_options(config)[0][1])
    return profile_model(path, x, settings.session_settings(), runs=config.profile_runs)


def _settings(config: BenchConfig) -> dict[str, Any]:
    return {
        "provider": str(getattr(config.provider, "value", config.provider)),
        "batch_sizes": list(config.effective_batches),
        "threads": config.threads,
        "warmup": config.warmup,
        "iterations": config.iterations,
        "duration_s": config.duration_s,
        "scenario": config.scenario.value,
        "interleaved_block": config.block,
        "interleaved_block_s": config.block_s,
        "settle_s": config.settle_s,
        "baselines": [b.value for b in config.baselines],
        "streams": list(config.streams) if config.streams else None,
        "call": config.call.value,
        "tuned": config.tuned,
        "profile": config.profile,
    }


def _baseline_runners(paths: list[Path], meta: ModelMetadata, config: BenchConfig, result: BenchResult) -> list[Any]:
    """Keras / TFLite need TensorFlow; the plain onnxruntime INT8 needs only onnxruntime."""
    out: list[Any] = []
    # the first quantized model (edgecnn's INT8) decides the baselines' FP32 source and calibration
    quantized = [(p, m) for p in paths if (m := read_metadata(p)).quantization] or [(paths[0], meta)]
    calib = _baseline_calibration(quantized[0][1], meta, config, result, quantized[0][0])
    if Baseline.ort_int8 in config.baselines:
        from edgecnn.bench import plain_ort

        if calib is None:
            raise UsageError("--baseline ort-int8 quantizes by hand and needs calibration data: pass --calibration")
        fp32 = plain_ort.fp32_source(*quantized[0])
        out.append(plain_ort.plain_int8_runner(fp32, calib, config.threads))
        result.notes.append(f"{plain_ort.NAME}: quantize_static U8S8 of {fp32.name} on {len(calib)} samples")
    if not {Baseline.keras, Baseline.tflite} & set(config.baselines):
        return out
    from edgecnn._optional import require

    require("tensorflow")
    from edgecnn.bench import baselines

    note = baselines.set_tf_threads(config.threads)  # before the model initialises TensorFlow
    if note:
        result.notes.append(note)
    model = baselines.find_keras_model(meta, config.keras_model, paths[0])
    if Baseline.keras in config.baselines:
        out += baselines.keras_runners(model, predict=config.keras_predict)
    if Baseline.tflite in config.baselines:
        keras_source = config.keras_model or baselines.recorded_keras_path(paths[0], meta)
        rs, notes = baselines.tflite_runners(model, config.threads, calib, source=keras_source)
        out += rs
        result.notes += notes
    return out


def _baseline_calibration(
    int8: ModelMetadata, meta: ModelMetadata, config: BenchConfig, result: BenchResult, int8_path: Path | None = None
) -> np.ndarray | None:
    """The tensors the INT8 baselines calibrate on: the source and sample count ``int8`` was quantized with
    (a recorded folder is relative to the INT8 model's folder)."""
    if not {Baseline.tflite, Baseline.ort_int8} & set(config.baselines):
        return None
    quant = int8.quantization or {}
    recorded = quant.get("calibration_source")
    if isinstance(recorded, str) and recorded.startswith("folder:") and int8_path is not None:
        from edgecnn._fs import resolve_recorded

        recorded = f"folder:{resolve_recorded(recorded.removeprefix('folder:'), int8_path.parent)}"
    source = config.calibration or recorded or meta.source.get("data")
    if not source:
        return None
    from edgecnn.quantize.calibration import load_calibration

    try:
        return load_calibration(source, meta, quant.get("calibration_samples"))
    except Exception as err:  # a missing source must not cost the FP32 baselines
        result.notes.append(f"int8 baseline calibration unavailable ({err})")
        return None


def _measure(
    runners: list[Any],
    x: np.ndarray,
    batch: int,
    config: BenchConfig,
    result: BenchResult,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Warm up each runner, then time them in interleaved blocks until each has its iterations/duration.

    Each block runs at least ``block`` calls and ``block_s`` seconds (with a duration, at most
    ``duration_s / MIN_ROUNDS`` unless ``block_s`` is longer, so that slow calls still alternate), then
    pauses ``settle_s``: thread pools spin for tens of milliseconds after a call (onnxruntime's ~40 ms
    measured), which would steal the cores of the next runner. Forcing pools to stop after every call
    instead (``session.force_spinning_stop``) makes each call wake its threads: 2-thread mnist-mlp INT8 at
    batch 32 then costs 38 µs, not 23.
    ``clock`` and ``sleep`` are injectable so that tests can drive the schedule deterministically.
    """
    times: dict[int, list[float]] = {i: [] for i in range(len(runners))}
    warm: dict[int, list[float]] = {i: [] for i in range(len(runners))}
    for i, r in enumerate(runners):
        r.prepare(x)
        for _ in range(config.warmup):
            t = clock()
            r()
            warm[i].append(clock() - t)
    budget = config.duration_s * len(runners)
    interleaved = len(runners) > 1
    # with a duration, no block may take more than its share of MIN_ROUNDS rounds: 20 calls of a 0.3-s batch
    # made one 6-s block per runner, timed seconds apart on a machine whose speed drifts (issue #28)
    longest = max(config.block_s, config.duration_s / MIN_ROUNDS) if config.iterations is None else float("inf")
    measured = 0.0  # seconds spent timing, settle pauses excluded
    while True:
        for i, r in enumerate(runners):
            slow = "predict" in r.name  # model.predict costs ~70 ms a call: fewer, but still interleaved
            block = max(1, config.block // (10 if slow else 1))
            if config.iterations is not None and len(times[i]) >= config.iterations:
                continue
            wanted = block if config.iterations is None else min(block, config.iterations - len(times[i]))
            n, started = 0, clock()
            while True:
                t = clock()
                r()
                times[i].append(clock() - t)
                n += 1
                elapsed = clock() - started
                if n >= wanted and (not interleaved or elapsed >= config.block_s):
                    break
                if interleaved and elapsed >= longest:
                    break
                if config.iterations is not None and len(times[i]) >= config.iterations:
                    break
            measured += clock() - started
            if interleaved:
                sleep(config.settle_s)  # thread pools (onnxruntime, TF, XNNPACK) stop spinning first
        if config.iterations is not None:
            if all(len(v) >= config.iterations for v in times.values()):
                break
        elif measured >= budget and all(len(v) >= 5 for v in times.values()):
            break
    first = None
    for i, r in enumerate(runners):
        stats = summarize(times[i], batch)
        first = first or stats
        result.rows.append(
            {
                "name": r.name,
                "kind": getattr(r, "kind", "onnxruntime"),
                "batch": batch,
                **stats,
                "warmup": {"n": len(warm[i]), "mean_ms": float(np.mean(warm[i]) * 1e3) if warm[i] else None},
                "host_device_copies_included": r.copies_included,
                "engine": r.settings_for(batch).describe() if hasattr(r, "settings_for") else None,
                "p50_ratio_vs_first": stats["p50_ms"] / first["p50_ms"],
                "throughput_ratio_vs_first": stats["throughput"] / first["throughput"],
            }
        )


def _apply_gates(result: BenchResult, config: BenchConfig, onnx_names: set[str]) -> None:
    failures = []
    for row in result.rows:
        if row["name"] not in onnx_names:
            continue
        if config.max_p95_ms is not None and row["p95_ms"] > config.max_p95_ms:
            failures.append(f"{row['name']} batch {row['batch']}: p95 {row['p95_ms']:.3f} ms > {config.max_p95_ms} ms")
        if config.min_throughput is not None and row["throughput"] < config.min_throughput:
            failures.append(
                f"{row['name']} batch {row['batch']}: {row['throughput']:.1f} items/s < {config.min_throughput}"
            )
    result.verdict = {
        "passed": not failures,
        "failures": failures,
        "gates": {"max_p95_ms": config.max_p95_ms, "min_throughput": config.min_throughput},
    }
