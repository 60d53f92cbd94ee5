"""`edgecnn export`: Keras → ONNX with metadata and an automatic parity check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("export")
@exits_on_error
def export_command(
    model: Annotated[str, typer.Argument(help="A .keras file, or zoo:NAME for a fresh zoo model.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output .onnx (default exported/NAME.onnx).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (13–21).")] = 17,
    labels: Annotated[str | None, typer.Option(help="Comma-separated class names, in output order.")] = None,
    data: Annotated[str | None, typer.Option(help="Data source for the parity check (default: the sidecar's).")] = None,
    samples: Annotated[int, typer.Option(help="Samples for the parity check.")] = 256,
    check: Annotated[bool, typer.Option(help="Fail (exit 4) when parity misses the FP32 bar.")] = True,
    unsafe: Annotated[
        bool,
        typer.Option(
            help="Load .h5 / SavedModel / Lambda layers / custom objects. They can run code: trusted files only."
        ),
    ] = False,
    simplify: Annotated[
        bool, typer.Option(help="Fold computed Flatten shapes into constants; move Conv1D Squeezes so convs fuse.")
    ] = True,
    softmax: Annotated[
        bool, typer.Option(help="Append a Softmax to a logits model (answers probabilities; off keeps logits).")
    ] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the export report as JSON.")] = None,
) -> None:
    """Export a Keras model to ONNX (dynamic batch), embed edgecnn metadata, and prove parity with Keras."""
    from edgecnn import report
    from edgecnn.errors import ParityError
    from edgecnn.export import ExportConfig, export_keras

    config = ExportConfig(
        opset=opset,
        check=False,
        parity_samples=samples,
        parity_data=data,
        labels=tuple(x.strip() for x in labels.split(",")) if labels else None,
        unsafe=unsafe,
        simplify=simplify,
        softmax_logits=softmax,
    )
    result = export_keras(model, out, config)
    report.print_kv(
        f"exported {result.path}",
        [
            ("strategy", result.strategy),
            ("opset", result.opset),
            ("size", f"{result.size_bytes / 1024:,.1f} KiB"),
            ("parity data", result.parity.data),
            ("top-1 agreement", f"{result.parity.agreement:.2%}"),
            ("max abs diff", result.parity.max_abs_diff),
            ("parity verdict", result.parity.verdict_text()),
            ("random inputs", result.random_parity.summary()),
            ("verdict", result.verdict + (" (the conversion, on random pixels)" if result.parity.random_data else "")),
        ],
    )
    if json_out:
        report.write_json(json_out, result)
    if check and not result.passed:
        try:
            result.raise_for_failure()
        except ParityError as err:
            raise ParityError(f"{err} (the file was written: {result.path}; --no-check to accept)") from None
