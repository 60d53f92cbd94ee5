"""`edgecnn serve`: ONNX models behind HTTP, with dynamic batching and the KServe V2 protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error
from edgecnn.runtime.providers import Provider


@app.command("serve")
@exits_on_error
def serve_command(
    models: Annotated[list[Path], typer.Argument(help="One or more .onnx files; a model's name is its file name.")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless told otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most samples per model run; 1 turns batching off.")] = 32,
    max_delay_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests.")] = 2.0,
    max_queue: Annotated[int, typer.Option(help="Waiting samples beyond which requests get 503.")] = 256,
    workers: Annotated[int, typer.Option(help="Batches run at the same time, per model.")] = 1,
    provider: Annotated[Provider, typer.Option(case_sensitive=False)] = Provider.auto,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads per session.")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB (413 beyond).")] = 16.0,
    timeout: Annotated[float, typer.Option(help="Seconds before a request is answered 504.")] = 30.0,
) -> None:
    """Serve models over HTTP: POST /v1/classify, the KServe V2 protocol under /v2, /metrics."""
    from edgecnn._validate import positive
    from edgecnn.serve import ServeConfig, serve

    positive("--max-body-mb", max_body_mb)

    config = ServeConfig(
        host=host,
        port=port,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        max_queue=max_queue,
        workers=workers,
        provider=provider,
        threads=threads,
        max_body_bytes=int(max_body_mb * 1024**2),
        request_timeout_s=timeout,
    )
    serve(models, config)
