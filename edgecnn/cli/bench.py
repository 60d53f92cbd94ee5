"""`edgecnn bench`: latency percentiles and throughput, per provider and variant, against the peers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.bench.config import Baseline, Scenario
from edgecnn.cli._app import app, exits_on_error, parse_ints
from edgecnn.errors import UsageError
from edgecnn.runtime.engine import CallPath
from edgecnn.runtime.providers import Provider


@app.command("bench")
@exits_on_error
def bench_command(
    models: Annotated[list[Path], typer.Argument(help="One or more .onnx models (measured interleaved).")],
    provider: Annotated[Provider, typer.Option(case_sensitive=False, help="Execution provider.")] = Provider.auto,
    batch: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1",
    threads: Annotated[
        int | None, typer.Option(help="Threads (streams share them; baselines get the same); default: tuned.")
    ] = None,
    streams: Annotated[
        str | None,
        typer.Option(help="Comma-separated stream counts to compare (parallel sessions on slices of a batch)."),
    ] = None,
    spin: Annotated[bool | None, typer.Option("--spin/--no-spin", help="Intra-op spin-waiting.")] = None,
    call: Annotated[CallPath, typer.Option(case_sensitive=False, help="How sessions are called.")] = CallPath.direct,
    tuned: Annotated[bool, typer.Option(help="Use MODEL.tune.json from `edgecnn tune` when it matches.")] = True,
    warmup: Annotated[int, typer.Option(help="Warm-up calls, reported apart.")] = 10,
    iterations: Annotated[int | None, typer.Option(help="Timed calls per model and batch size.")] = None,
    duration: Annotated[float, typer.Option(help="Seconds per model and batch size (without --iterations).")] = 2.0,
    scenario: Annotated[Scenario, typer.Option(case_sensitive=False)] = Scenario.single_stream,
    baseline: Annotated[
        list[Baseline] | None,
        typer.Option(
            case_sensitive=False,
            help="keras, tflite and/or ort-int8 (a plain onnxruntime quantize_static U8S8, bare session).",
        ),
    ] = None,
    keras: Annotated[str | None, typer.Option(help="Keras model for baselines (default: from metadata).")] = None,
    calibration: Annotated[
        str | None, typer.Option(help="Calibration data for the INT8 baselines (default: what the INT8 model used).")
    ] = None,
    allow_fallback: Annotated[bool, typer.Option(help="Run on what is available (loud warning).")] = False,
    trt_fp16: Annotated[bool, typer.Option(help="TensorRT: allow FP16 kernels.")] = False,
    trt_int8: Annotated[bool, typer.Option(help="TensorRT: INT8 (QDQ models).")] = False,
    trt_cache: Annotated[str | None, typer.Option(help="TensorRT engine/timing cache folder.")] = None,
    max_p95_ms: Annotated[float | None, typer.Option(help="Gate: fail (exit 4) above this p95.")] = None,
    min_throughput: Annotated[float | None, typer.Option(help="Gate: fail (exit 4) below this items/s.")] = None,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help="Also show where the time goes by role (convolutions, activations, squeeze-excite, requantize, "
            "pooling), from onnxruntime's profiler, beside the FP32 model an INT8 one was quantized from.",
        ),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    report_md: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a chart: .png, .jpg, .svg or .pdf.")] = None,
) -> None:
    """Measure cold start, warm-up and steady-state latency (p50…p99.9) and throughput."""
    from edgecnn import report
    from edgecnn.bench import BenchConfig, run_benchmark
    from edgecnn.bench.render import print_result, write_markdown, write_plot

    if plot:
        report.figure_format(plot)  # an unknown chart format is refused before minutes of measuring
    for path in (json_out, report_md, plot):
        if path is not None and path.is_dir():
            raise UsageError(f"{path}: is a folder; give a file name")
    config = BenchConfig(
        provider=provider,
        batch_sizes=parse_ints(batch),
        threads=threads,
        streams=parse_ints(streams, "--streams") if streams else None,
        spin=spin,
        call=call,
        tuned=tuned,
        warmup=warmup,
        iterations=iterations,
        duration_s=duration,
        scenario=scenario,
        allow_fallback=allow_fallback,
        baselines=tuple(baseline or ()),
        keras_model=keras,
        calibration=calibration,
        max_p95_ms=max_p95_ms,
        min_throughput=min_throughput,
        trt_fp16=trt_fp16,
        trt_int8=trt_int8,
        trt_cache=trt_cache,
        profile=profile,
    )
    result = run_benchmark(list(models), config)
    data = result.to_dict()
    print_result(data)
    if json_out:
        report.write_json(json_out, data)
    if report_md:
        write_markdown(data, report_md)
    if plot:
        write_plot(data, plot)
    result.raise_for_failure()
