"""`edgecnn doctor`: what is installed, which providers work, what is wrong with a GPU setup."""

from __future__ import annotations

from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("doctor")
@exits_on_error
def doctor_command(
    gpu: Annotated[bool, typer.Option(help="Exit 3 when the GPU setup cannot work.")] = False,
) -> None:
    """Versions, optional extras, execution providers, and GPU install problems (both ORT wheels, ...)."""
    from edgecnn import report
    from edgecnn.errors import ProviderError
    from edgecnn.runtime.environment import describe_environment

    env = describe_environment()
    report.print_kv(
        "edgecnn doctor",
        [(k, v if not isinstance(v, list) else ", ".join(map(str, v)) or "none") for k, v in env.items()],
    )
    if gpu and env["gpu_problems"]:
        raise ProviderError("GPU not usable: " + "; ".join(env["gpu_problems"]))
