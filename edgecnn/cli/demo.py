"""`edgecnn demo`: the main job end to end, offline, on the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("demo")
@exits_on_error
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo makes.")] = Path("runs/demo"),
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs (default: the zoo's).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the demo report as JSON.")] = None,
) -> None:
    """Train mnist-cnn on mnist5k, export to ONNX, prove parity, quantize, measure, classify a sample folder."""
    from rich.markup import escape

    from edgecnn import report
    from edgecnn.demo import run_demo
    from edgecnn.errors import CheckFailed

    err = report.err_console()
    result = run_demo(out, epochs=epochs, progress=lambda msg: err.print(f"[bold]{escape(msg)}[/bold]"))
    report.print_table(
        "edgecnn demo",
        ("step", "ok", "seconds", "detail"),
        [(s["step"], s["ok"], s["seconds"], s["detail"]) for s in result.steps],
        justify=("left", "center", "right", "left"),
    )
    report.print_kv("files", list(result.files.items()))
    if json_out:
        report.write_json(json_out, result)
    if not result.passed:
        raise CheckFailed("demo: a step missed its bar: " + ", ".join(s["step"] for s in result.steps if not s["ok"]))
