"""Benchmark settings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgecnn.errors import UsageError
from edgecnn.runtime.engine import CallPath, EngineSettings
from edgecnn.runtime.providers import Provider


class Scenario(str, Enum):
    single_stream = "single-stream"  # batch 1 back to back: latency
    offline = "offline"  # the largest batch: throughput


class Baseline(str, Enum):
    keras = "keras"  # the Keras model through a compiled tf.function (and model.predict)
    tflite = "tflite"  # TFLite FP32 and full-integer INT8 of the same Keras model
    # what a user does by hand with onnxruntime alone: quantize_static U8S8 of the FP32 export, a bare session
    ort_int8 = "ort-int8"


@dataclass(frozen=True, slots=True)
class BenchConfig:
    provider: Provider = Provider.auto  # as every other command: the GPU when one works, else the CPU
    batch_sizes: tuple[int, ...] = (1,)
    threads: int | None = None  # intra-op threads (shared by the streams); None: tuned, else onnxruntime's default
    streams: tuple[int, ...] | None = None  # stream counts to compare (sessions on slices of a batch); None: tuned
    engines: tuple[EngineSettings, ...] = ()  # explicit engine settings to compare (library use; wins over streams)
    spin: bool | None = None
    call: CallPath = CallPath.direct
    tuned: bool = True  # use MODEL.tune.json (edgecnn tune) when neither threads nor streams are given
    warmup: int = 10
    iterations: int | None = None  # per model and batch size; None: run for ``duration_s``
    duration_s: float = 2.0
    block: int = 20  # at least this many iterations per round-robin block when several runners are interleaved
    block_s: float = 0.1  # … and at least this many seconds: a block long enough to run as an app would
    # … but with --duration a block ends after duration_s / MIN_ROUNDS (one call at least): slow calls still
    # alternate, so that a drift of the machine's speed lands on every runner alike
    settle_s: float = 0.05  # pause after each block so idle thread pools stop spinning before the next runner
    scenario: Scenario = Scenario.single_stream
    allow_fallback: bool = False
    io_binding: bool | None = None  # None: on for GPU providers
    baselines: tuple[Baseline, ...] = ()
    keras_predict: bool = True  # also time model.predict (~70 ms a call whatever the model)
    keras_model: str | None = None  # for baselines when the ONNX metadata does not point at one
    calibration: str | None = None  # data for the TFLite INT8 baseline (same as edgecnn's INT8)
    max_p95_ms: float | None = None
    min_throughput: float | None = None
    trt_fp16: bool = False
    trt_int8: bool = False
    trt_cache: str | None = None
    profile: bool = False  # also time each node with onnxruntime's profiler, by role, beside the FP32 source
    profile_runs: int = 50  # profiled inferences (after 5 warm-ups) per model and side

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise UsageError(f"--batch must be positive integers, got {self.batch_sizes}")
        if self.iterations is not None and self.iterations < 1:
            raise UsageError("--iterations must be >= 1")
        from edgecnn._validate import positive

        positive("--duration", self.duration_s)
        positive("--max-p95-ms", self.max_p95_ms)
        positive("--min-throughput", self.min_throughput)
        if self.warmup < 0:
            raise UsageError("--warmup must be >= 0")
        if self.block < 1 or self.block_s < 0 or self.settle_s < 0:
            raise UsageError("block must be >= 1, block_s and settle_s >= 0")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads must be >= 1")
        if self.profile_runs < 1:
            raise UsageError("profile_runs must be >= 1")
        if self.profile and Provider(self.provider) not in (Provider.auto, Provider.cpu):
            raise UsageError("--profile times the CPU provider's kernels: use it with --provider cpu (or auto)")
        if self.streams is not None and (not self.streams or any(n < 1 for n in self.streams)):
            raise UsageError(f"--streams must be positive integers, got {self.streams}")

    @property
    def effective_batches(self) -> tuple[int, ...]:
        if self.scenario == Scenario.offline:
            return (max(self.batch_sizes),)
        return self.batch_sizes
