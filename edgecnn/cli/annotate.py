"""`edgecnn annotate`: write edgecnn's metadata into a copy of an ONNX classifier from another tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error
from edgecnn.runtime.metadata import ChannelOrder, ColorMode, CropMode, Layout, OutputKind


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
    layout: Annotated[
        Layout | None, typer.Option(case_sensitive=False, help="NCHW or NHWC (default: from the graph's input shape).")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Input height,width, e.g. 224,224 (default: from the graph's input shape).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="A common convention: torchvision (ImageNet eval: shorter side 256, centre 224, bilinear, "
            "ImageNet mean/std), inception ([-1, 1], centre 87.5%), caffe (BGR, 0..255 minus the BGR means, "
            "centre 87.5%). Options given beside it win."
        ),
    ] = None,
    mean: Annotated[str | None, typer.Option(help="Per-channel mean after scaling, e.g. 0.485,0.456,0.406.")] = None,
    std: Annotated[str | None, typer.Option(help="Per-channel std after scaling, e.g. 0.229,0.224,0.225.")] = None,
    scale: Annotated[
        float | None, typer.Option(help="Pixel scale before mean/std (default 1/255; 1 for 0..255 inputs).")
    ] = None,
    offset: Annotated[float | None, typer.Option(help="Added after scaling (default 0).")] = None,
    output: Annotated[OutputKind, typer.Option(case_sensitive=False)] = OutputKind.softmax,
    color: Annotated[
        ColorMode | None, typer.Option(case_sensitive=False, help="L or RGB (default: from the graph).")
    ] = None,
    interpolation: Annotated[
        str | None,
        typer.Option(
            "--interpolation",
            "--resize",
            help="Resize filter: nearest, bilinear (default), bicubic, lanczos, box, hamming (Pillow's; all but "
            "nearest antialias when shrinking). --resize is its old name.",
        ),
    ] = None,
    crop_mode: Annotated[
        CropMode | None,
        typer.Option(
            case_sensitive=False,
            help="squash (default: each edge to size/crop-pct), center (shorter side to size/crop-pct, keep "
            "aspect, centre crop), border (longer side, keep aspect, pad with the mean colour).",
        ),
    ] = None,
    crop_pct: Annotated[
        float | None, typer.Option(help="Crop fraction in (0, 1]: 0.875 with 224 resizes to 256 first (default 1).")
    ] = None,
    channel_order: Annotated[
        ChannelOrder | None, typer.Option(case_sensitive=False, help="RGB (default) or BGR (Caffe-era models).")
    ] = None,
    fast_decode: Annotated[
        bool,
        typer.Option(
            "--fast-decode",
            help="Let big JPEGs decode at reduced scale and big images shrink by whole factors first: faster, "
            "but answers move by up to ~1e-2 (README, 'Fast decoding'). Default: exact.",
        ),
    ] = False,
) -> None:
    """Make a foreign ONNX classifier usable by classify, bench, quantize, parity and serve."""
    from edgecnn.annotate import annotate, inferred_from_graph, parse_labels, parse_size, preset_config

    height, width = parse_size(size) if size is not None else (None, None)
    config = preset_config(
        preset,
        parse_labels(labels),
        layout=layout,
        height=height,
        width=width,
        color_mode=color,
        scale=scale,
        offset=offset,
        mean=_floats(mean, "--mean"),
        std=_floats(std, "--std"),
        output=output,
        interpolation=interpolation,
        crop_mode=crop_mode,
        crop_pct=crop_pct,
        channel_order=channel_order,
        fast_decode=fast_decode or None,
    )
    given = config
    config = inferred_from_graph(model, config)
    if (given.layout, given.height) != (config.layout, config.height):
        shown = getattr(config.layout, "value", config.layout)
        typer.echo(f"inferred --layout {shown} --size {config.height},{config.width} from the graph's input shape")
    meta = annotate(model, out, config)
    spec, pre = meta.input, meta.preprocess
    typer.echo(
        f"wrote {out}: {meta.num_classes} labels, {spec.layout.value} {spec.height}x{spec.width}x{spec.channels}, "
        f"{pre.interpolation} {pre.crop_mode.value} crop_pct {pre.crop_pct:g}, {pre.channel_order.value}, "
        f"output {meta.output.value}"
    )
