"""`edgecnn zoo`: the course architectures (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("zoo")
@exits_on_error
def zoo_command(
    pattern: Annotated[str | None, typer.Argument(help="Shell pattern, e.g. 'mnist-*'.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the list as JSON.")] = None,
) -> None:
    """List the zoo: name, input shape, parameters, output kind, where it comes from."""
    from edgecnn import report, zoo

    specs = [zoo.get_spec(n) for n in zoo.names(pattern)]
    if not specs:
        from edgecnn.errors import UsageError

        raise UsageError(f"no zoo model matches {pattern!r}; `edgecnn zoo` lists them all")
    report.print_table(
        "edgecnn zoo",
        ("name", "input", "params", "output", "data", "train options", "source"),
        [
            (
                s.name,
                "×".join(map(str, s.input_shape)),
                s.params,
                s.output.value,
                s.data,
                " ".join("--" + o.replace("_", "-") for o in s.options) or "—",
                s.source,
            )
            for s in specs
        ],
    )
    if json_out:
        report.write_json(json_out, [s.to_dict() for s in specs])
