"""`edgecnn parity`: does a candidate model answer like its reference?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("parity")
@exits_on_error
def parity_command(
    reference: Annotated[Path, typer.Argument(help="Reference model: .keras (Keras) or .onnx.")],
    candidate: Annotated[Path, typer.Argument(help="Candidate .onnx (FP32, FP16 or INT8).")],
    data: Annotated[
        str | None,
        typer.Option(
            help="A folder (every image; class subfolders add accuracy), a source (its test split), or 'random' "
            "(random pixels: proves nothing about accuracy). Default: the model's own offline source; INT8/FP16 "
            "candidates without one exit 2."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most N samples.")] = None,
    split: Annotated[
        float | None,
        typer.Option(help="Use a seeded, class-stratified FRACTION of a folder instead of every file (said so)."),
    ] = None,
    unsafe: Annotated[bool, typer.Option(help="Allow loading models that can run code (trusted files only).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the parity report as JSON.")] = None,
) -> None:
    """Compare accuracy, top-1 agreement and probability differences; exit 4 when over the bars."""
    from edgecnn import report
    from edgecnn.parity import run_parity

    result = run_parity(reference, candidate, data, limit=limit, unsafe=unsafe, split=split)
    top5_bar = f" (bar ≥ {result.bars.min_agreement:.1%})" if result.top5_agreement is not None else ""
    rows = [
        ("data", result.data),
        (
            "bars",
            f"{result.bars.mode}: top-1"
            + (" and top-5" if result.top5_agreement is not None else "")
            + f" agreement ≥ {result.bars.min_agreement:.1%} on ≥ {result.samples_needed} samples"
            + (f", max abs diff ≤ {result.bars.max_abs_diff:g}" if result.bars.max_abs_diff is not None else "")
            + (f", accuracy drop ≤ {result.bars.max_accuracy_drop_pp} pp" if result.bars.max_accuracy_drop_pp else ""),
        ),
        ("samples", result.n),
        ("top-1 agreement", f"{result.agreement:.2%}" + (f" ({result.ties} exact ties)" if result.ties else "")),
        ("top-5 agreement", None if result.top5_agreement is None else f"{result.top5_agreement:.2%}{top5_bar}"),
        ("max abs diff", result.max_abs_diff),
        ("mean abs diff", result.mean_abs_diff),
        ("reference accuracy", None if result.reference_accuracy is None else f"{result.reference_accuracy:.2%}"),
        ("candidate accuracy", None if result.candidate_accuracy is None else f"{result.candidate_accuracy:.2%}"),
        ("accuracy delta", None if result.accuracy_delta_pp is None else f"{result.accuracy_delta_pp:+.2f} pp"),
        ("disagreements by class", ", ".join(f"{k}: {v}" for k, v in result.per_class_disagreements.items()) or "none"),
        ("verdict", result.verdict_text()),
    ]
    report.print_kv(f"parity: {candidate} vs {reference}", rows)
    if json_out:
        report.write_json(json_out, result)
    result.raise_for_failure()
