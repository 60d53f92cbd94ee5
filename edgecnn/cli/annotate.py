"""`edgecnn annotate`: write edgecnn's metadata into a copy of an ONNX classifier from another tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error
from edgecnn.runtime.metadata import ColorMode, Layout, OutputKind


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    from edgecnn.errors import UsageError

    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated numbers, got {text!r}") from None


@app.command("annotate")
@exits_on_error
def annotate_command(
    model: Annotated[Path, typer.Argument(help="An ONNX classifier exported by another tool.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the annotated copy.")],
    labels: Annotated[str, typer.Option(help="A labels file (one per line) or 'a,b,c', in output order.")],
    layout: Annotated[Layout, typer.Option(case_sensitive=False, help="NCHW or NHWC.")],
    size: Annotated[str, typer.Option(help="Input height,width, e.g. 224,224.")],
    mean: Annotated[str | None, typer.Option(help="Per-channel mean after scaling, e.g. 0.485,0.456,0.406.")] = None,
    std: Annotated[str | None, typer.Option(help="Per-channel std after scaling, e.g. 0.229,0.224,0.225.")] = None,
    scale: Annotated[
        float, typer.Option(help="Pixel scale before mean/std (1 for 0..255 inputs).", show_default="1/255")
    ] = 1.0 / 255.0,
    offset: Annotated[float, typer.Option(help="Added after scaling.")] = 0.0,
    output: Annotated[OutputKind, typer.Option(case_sensitive=False)] = OutputKind.softmax,
    color: Annotated[
        ColorMode | None, typer.Option(case_sensitive=False, help="L or RGB (default: from the graph).")
    ] = None,
    resize: Annotated[str, typer.Option(help="Resampling filter.")] = "bilinear",
) -> None:
    """Make a foreign ONNX classifier usable by classify, bench, quantize, parity and serve."""
    from edgecnn.annotate import AnnotateConfig, annotate, parse_labels, parse_size

    height, width = parse_size(size)
    config = AnnotateConfig(
        labels=parse_labels(labels),
        layout=layout,
        height=height,
        width=width,
        color_mode=color,
        scale=scale,
        offset=offset,
        mean=_floats(mean, "--mean"),
        std=_floats(std, "--std"),
        output=output,
        resize=resize,
    )
    meta = annotate(model, out, config)
    spec = meta.input
    typer.echo(
        f"wrote {out}: {meta.num_classes} labels, {spec.layout.value} {spec.height}x{spec.width}x{spec.channels}, "
        f"output {meta.output.value}"
    )
