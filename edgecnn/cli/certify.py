"""`edgecnn certify`: does the model answer the same on the CPUs it ships to (emulated)?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("certify")
@exits_on_error
def certify_command(
    model: Annotated[Path | None, typer.Argument(help="The .onnx model (INT8 usually) to certify.")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="FP32 model to compare with (default: the one an INT8 model records).")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Held-out inputs: a data source, folder:DIR, or 'random' (default: the model's).")
    ] = None,
    targets: Annotated[
        str, typer.Option(help="Comma-separated: native, x86-avx2, x86-sse4, arm64, arm64-dot.")
    ] = "native,x86-avx2,x86-sse4,arm64,arm64-dot",
    samples: Annotated[int, typer.Option(min=1, help="Held-out samples (a 99.8% bar needs >= 500).")] = 500,
    min_agreement: Annotated[
        float, typer.Option(help="Top-1 agreement with native every target must reach.")
    ] = 0.998,
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Build the cached aarch64 root for the arm64 targets (downloads once).")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Run MODEL natively and under QEMU-emulated CPUs on the same inputs; exit 4 when answers differ.

    Writes MODEL.certificate.json beside the model (its hash unchanged); `info`, `serve` and `Classifier`
    show it.
    """
    from edgecnn import report
    from edgecnn.certify import CertifyConfig, certify, prepare_arm64
    from edgecnn.errors import UsageError

    if prepare:
        root = prepare_arm64()
        report.err_console().print(f"aarch64 root ready: {root}", markup=False, highlight=False)
        if model is None:
            return
    if model is None:
        raise UsageError("certify needs a MODEL (or --prepare alone to build the arm64 root)")
    config = CertifyConfig(
        targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
        samples=samples,
        min_agreement=min_agreement,
        data=data,
        reference=reference,
    )
    err = report.err_console()
    result = certify(model, config, progress=lambda msg: err.print(msg, markup=False, highlight=False))
    report.print_table(
        f"certify {model.name}: {result.data}; native = {result.native}",
        ("target", "run as", "agreement w/ native", "w/ FP32", "accuracy", "outputs differ", "max |Δprob|", "s", "ok"),
        [
            (
                name,
                t.how,
                f"{t.agreement_native:.2%}",
                "—" if t.agreement_reference is None else f"{t.agreement_reference:.2%}",
                "—" if t.accuracy is None else f"{t.accuracy:.2%}",
                f"{t.outputs_differ} / {result.samples}",
                t.max_abs_diff,
                f"{t.seconds:.1f}",
                "yes" if t.passed else "NO: " + "; ".join(t.failures),
            )
            for name, t in result.targets.items()
        ],
    )
    rows = [(name, t.cpu) for name, t in result.targets.items()]
    rows += [(name, f"not checkable: {why}") for name, why in result.not_checkable.items()]
    rows.append(("verdict", f"{result.verdict} (bar: top-1 agreement ≥ {config.min_agreement:.1%} with native, "
                 f"accuracy within {config.max_accuracy_drop_pp} pp; n={result.samples})"))
    from edgecnn.runtime.certificate import certificate_path

    rows.append(("certificate", str(certificate_path(model))))
    report.print_kv("certificate", rows)
    if json_out:
        report.write_json(json_out, result)
    result.raise_for_failure()
