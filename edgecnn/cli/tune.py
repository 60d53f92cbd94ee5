"""`edgecnn tune`: measure engine settings on this machine; Classifier and bench then use the winner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("tune")
@exits_on_error
def tune_command(
    models: Annotated[list[Path], typer.Argument(help="One or more .onnx models (each gets MODEL.tune.json).")],
    batch: Annotated[int, typer.Option(help="Batch size of the throughput mode.")] = 32,
    cores: Annotated[int | None, typer.Option(help="Thread budget (default: the cores this process may use).")] = None,
    seconds: Annotated[float, typer.Option(help="Seconds per candidate and round.")] = 0.25,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds per stage.")] = 5,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Measure and print; write no sidecar.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every measurement as JSON.")] = None,
) -> None:
    """Try threads, streams, spinning, graph optimisation and IO binding; keep the fastest that answers alike."""
    from rich.markup import escape

    from edgecnn import report
    from edgecnn.bench.tune import TuneConfig, tune

    config = TuneConfig(throughput_batch=batch, cores=cores, seconds=seconds, rounds=rounds)
    err = report.err_console()
    results = []
    for model in models:
        name = escape(model.name)  # a file name is not Rich markup
        with err.status(f"tuning {name}") as status:
            result = tune(
                model, config, write=not dry_run, progress=lambda s, n=name: status.update(f"{n}: {escape(s)}")
            )
        results.append(result)
        data = result.to_dict()
        lat, thr = data["latency"], data["throughput"]
        report.print_table(
            f"{model.name}: tuned on this machine" + (f" → {result.sidecar.name}" if result.sidecar else " (dry run)"),
            ("mode", "settings", "default", "tuned", "speedup"),
            [
                (
                    "latency (batch 1, p50 ms)",
                    result.tuning.latency.describe(),
                    lat["default_p50_ms"],
                    lat["p50_ms"],
                    f"{lat['speedup']:.2f}×",
                ),
                (
                    f"throughput (batch {batch}, items/s)",
                    result.tuning.throughput.describe(),
                    thr["default_items_per_s"],
                    thr["items_per_s"],
                    f"{thr['speedup']:.2f}×",
                ),
            ],
        )
    if json_out:
        report.write_json(json_out, [r.to_dict() for r in results])
