"""`edgecnn classify`: one row per file of a folder, written as it goes, resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error
from edgecnn.errors import UsageError
from edgecnn.runtime.providers import Provider


@app.command("classify")
@exits_on_error
def classify_command(
    folder: Annotated[Path, typer.Argument(help="Folder of images (every non-hidden file gets a row).")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Exported .onnx model.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results file: .csv or .jsonl.")] = Path("results.csv"),
    recursive: Annotated[bool, typer.Option(help="Descend into subfolders.")] = True,
    batch: Annotated[int, typer.Option(help="Images per inference batch.")] = 32,
    top_k: Annotated[int, typer.Option(help="Labels to keep per image.")] = 3,
    workers: Annotated[int | None, typer.Option(help="Decode threads (default: up to 8).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run (OUT.partial).")] = False,
    provider: Annotated[Provider, typer.Option(case_sensitive=False, help="Execution provider.")] = Provider.auto,
    threads: Annotated[int | None, typer.Option(help="Inference threads (per stream).")] = None,
    mode: Annotated[
        str, typer.Option(help="Engine mode: latency (one session) or throughput (parallel streams).")
    ] = "latency",
    json_summary: Annotated[Path | None, typer.Option(help="Write the run summary as JSON.")] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run on a Ray cluster: 'auto' (RAY_ADDRESS, or a local cluster for the run) or HOST:PORT. "
            "Needs pip install 'edgecnn[ray]' and FOLDER at the same path on every node.",
        ),
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(help="Actors (model sessions) on the cluster; default: its CPUs // per-actor.")
    ] = None,
    ray_cpus_per_actor: Annotated[int, typer.Option(help="CPUs (inference threads) per actor.")] = 1,
    ray_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Give up joining the Ray cluster after this long (exit 3).")
    ] = 30.0,
) -> None:
    """Classify every file under FOLDER; unreadable or non-image files become error rows (exit 0)."""
    from edgecnn import report
    from edgecnn.classification import ClassifyOptions, classify

    if ray is None and (ray_actors is not None or ray_cpus_per_actor != 1 or ray_timeout != 30.0):
        raise UsageError(
            "--ray-actors, --ray-cpus-per-actor and --ray-timeout shape a Ray run: add --ray auto (or --ray HOST:PORT)"
        )
    ray_config = None
    if ray is not None:
        from edgecnn.cluster import RayConfig

        ray_config = RayConfig(ray, actors=ray_actors, cpus_per_actor=ray_cpus_per_actor, connect_timeout_s=ray_timeout)
    options = ClassifyOptions(
        top_k=top_k,
        batch_size=batch,
        workers=workers,
        recursive=recursive,
        resume=resume,
        provider=provider,
        threads=threads,
        mode=mode,
        ray=ray_config,
    )
    progress = None
    on_row = None
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed} files"),
            TimeElapsedColumn(),
            console=report.err_console(),
            transient=True,
        )
        task = progress.add_task("classify")
        progress.start()

        def on_row(_row: object) -> None:
            progress.advance(task)  # type: ignore[union-attr]

    try:
        summary = classify(model, folder, out, options, on_row=on_row)
    finally:
        if progress is not None:
            progress.stop()
    report.print_kv(
        f"classified {folder}",
        [
            ("files", summary.total),
            ("ok", summary.ok),
            ("errors (rows)", summary.errors),
            ("resumed from earlier run", summary.resumed),
            ("images/s", round(summary.images_per_second, 1)),
            ("results", summary.out),
            *_cluster_lines(summary.cluster),
        ],
    )
    if json_summary:
        report.write_json(json_summary, summary)


def _cluster_lines(cluster: dict[str, object] | None) -> list[tuple[str, object]]:
    if not cluster:
        return []
    return [
        ("ray cluster", cluster["address"]),
        ("nodes (used / alive)", f"{cluster['nodes_used']} / {cluster['nodes']}"),
        ("actors (cpus each)", f"{cluster['actors']} ({cluster['cpus_per_actor']})"),
    ]
