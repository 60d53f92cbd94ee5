"""`edgecnn info`: what an ONNX file holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("info")
@exits_on_error
def info_command(
    model: Annotated[Path, typer.Argument(help="An .onnx file.")],
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Inputs/outputs, opset, edgecnn metadata, size, parameter count, op histogram."""
    from edgecnn import report
    from edgecnn.runtime.inspect import describe_model

    info = describe_model(model)
    if json_flag:
        typer.echo(report.to_json(info.to_dict()))
        return
    io_rows = [(f"input {i['name']}", f"{i['shape']} {i['dtype']}") for i in info.inputs]
    io_rows += [(f"output {o['name']}", f"{o['shape']} {o['dtype']}") for o in info.outputs]
    report.print_kv(
        str(model),
        [
            ("size", f"{info.size_bytes / 1024:,.1f} KiB"),
            ("sha256", info.sha256[:16] + "…"),
            ("producer", info.producer),
            ("opsets", ", ".join(f"{k} {v}" for k, v in info.opsets.items())),
            ("parameters", info.parameters),
            *io_rows,
        ],
    )
    meta = info.metadata.to_dict() if info.metadata else {}
    if info.metadata_error:
        meta["error"] = info.metadata_error
    report.print_kv("edgecnn metadata", [(k, _summary(k, v)) for k, v in meta.items()])
    if info.certificate:
        from edgecnn.runtime.certificate import summarize_certificate

        summary = summarize_certificate(info.certificate)
        report.print_kv("certificate (edgecnn certify)", [("answers the same across CPUs", summary)])
    report.print_table("ops", ("op", "count"), list(info.ops.items()))


LABELS_SHOWN = 8


def _summary(key: str, value: object) -> str:
    """One table cell; a long label list shows its count, its first and its last few (--json shows all)."""
    if key == "labels" and isinstance(value, list) and len(value) > LABELS_SHOWN:
        head = ", ".join(json.dumps(v) for v in value[: LABELS_SHOWN - 2])
        tail = ", ".join(json.dumps(v) for v in value[-2:])
        return f"{len(value):,} labels: {head}, …, {tail} (all with --json)"
    return json.dumps(value)
