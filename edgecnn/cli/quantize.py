"""`edgecnn quantize`: INT8 (static or dynamic) or FP16, with the accuracy, size and speed they cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error
from edgecnn.quantize.config import CalibrationMethod, QuantFormat, QuantMode, QuantTarget


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else ()


@app.command("quantize")
@exits_on_error
def quantize_command(
    model: Annotated[Path, typer.Argument(help="An edgecnn FP32 .onnx model.")],
    mode: Annotated[
        QuantMode, typer.Option(case_sensitive=False, help="int8 (static), dynamic or fp16.")
    ] = QuantMode.int8,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output (default NAME.<mode>.onnx beside MODEL).")
    ] = None,
    fmt: Annotated[
        QuantFormat, typer.Option("--format", case_sensitive=False, help="QDQ or QOperator graph.")
    ] = QuantFormat.qdq,
    per_channel: Annotated[bool, typer.Option("--per-channel/--per-tensor", help="Weight scale granularity.")] = True,
    method: Annotated[
        CalibrationMethod, typer.Option(case_sensitive=False, help="Activation calibration.")
    ] = CalibrationMethod.minmax,
    calibration: Annotated[
        str | None, typer.Option(help="Image folder (flat or nested, labels not needed) or data source.")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Calibration samples, class-balanced (default: up to 256, all of a smaller set).")
    ] = None,
    target: Annotated[
        QuantTarget,
        typer.Option(
            case_sensitive=False,
            help="CPUs the INT8 model must answer the same on: portable (all; 7-bit weights), x86-vnni or arm64 "
            "(full-range weights: wrong on AVX2), x86-avx2. `edgecnn certify` proves it.",
        ),
    ] = QuantTarget.portable,
    reduce_range: Annotated[
        bool | None,
        typer.Option(
            "--reduce-range/--full-range",
            help="Expert: 7-bit or full-range weights (default: what --target needs).",
            show_default=False,
        ),
    ] = None,
    exclude_nodes: Annotated[str | None, typer.Option(help="Comma-separated node names to keep in float.")] = None,
    exclude_op_types: Annotated[str | None, typer.Option(help="Comma-separated op types to keep in float.")] = None,
    float_stem: Annotated[
        bool, typer.Option(help="Keep convs over 1–4 input channels (and their pooling) in float: faster on CPU.")
    ] = True,
    eval_data: Annotated[
        str | None,
        typer.Option(
            "--eval",
            help="Data to check the quantized model on: a folder (every image; class subfolders add accuracy), "
            "a source (its test split), or 'random' (proves nothing about accuracy).",
        ),
    ] = None,
    accuracy_budget: Annotated[
        float | None, typer.Option(help="Try configurations; keep the fastest losing at most PP points on --eval.")
    ] = None,
    fallback: Annotated[
        bool, typer.Option(help="If --eval shows INT8 missing its bars, keep the first other setting that holds them.")
    ] = True,
    float_roles: Annotated[
        str | None, typer.Option(help="Comma-separated roles to keep in float: hard-swish, SiLU, squeeze-excite, ...")
    ] = None,
    speed: Annotated[bool, typer.Option(help="Measure latency/throughput of both models side by side.")] = True,
    seed: Annotated[int, typer.Option(help="Seed for calibration sampling.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Quantize an exported model; print op coverage, size, accuracy and speed before/after."""
    from edgecnn import report
    from edgecnn.quantize import QuantizeConfig, quantize, search_within_budget

    config = QuantizeConfig(
        mode=mode,
        format=fmt,
        per_channel=per_channel,
        calibration_method=method,
        calibration_samples=samples,
        target=target,
        reduce_range=reduce_range,
        exclude_nodes=_split(exclude_nodes),
        exclude_op_types=_split(exclude_op_types),
        float_stem=float_stem,
        float_roles=_split(float_roles),
        seed=seed,
    )
    if accuracy_budget is not None:
        search = search_within_budget(
            model, out, accuracy_budget, calibration=calibration, eval_data=eval_data or "", base=config
        )
        report.print_table(
            f"accuracy budget {accuracy_budget} pp: configurations tried",
            ("config", "accuracy drop (pp)", "img/s @32", "within budget"),
            [(t["config"], t["accuracy_drop_pp"], t["throughput_batch32"], t["within_budget"]) for t in search.tried],
        )
        result = search.chosen
    else:
        result = quantize(
            model, out, config, calibration=calibration, eval_data=eval_data, measure_speed=speed, fallback=fallback
        )
    from edgecnn.quantize.render import print_quantize_report

    print_quantize_report(result)
    if json_out:
        report.write_json(json_out, search if accuracy_budget is not None else result)
    # --eval: a missed or unresolvable bar is exit 4 (the model is written)
    result.raise_for_verdict(inconclusive_only=accuracy_budget is not None)
