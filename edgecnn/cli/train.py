"""`edgecnn train`: fit a zoo architecture and write the course's artefacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._app import app, exits_on_error


@app.command("train")
@exits_on_error
def train_command(
    arch: Annotated[str, typer.Argument(help="Zoo architecture (see `edgecnn zoo`).")],
    data: Annotated[str | None, typer.Option(help="Data source: mnist5k, digits, mnist, folder:PATH, ...")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (early stopping may end sooner).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size (default: the largest that fits --memory-budget).")
    ] = None,
    memory_budget: Annotated[
        str | None,
        typer.Option(help="Memory a training step may hold, e.g. 6GB or 512MB (default: a quarter of the machine)."),
    ] = None,
    validation_split: Annotated[float, typer.Option(help="Fraction of training data held out.")] = 0.1,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs).")] = 4,
    seed: Annotated[int, typer.Option(help="Seed for splits and weights.")] = 0,
    augment: Annotated[
        bool | None,
        typer.Option(help="Augmentation layers (random shifts/zooms; default: on for the keras.applications nets)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most N training samples.")] = None,
    input_size: Annotated[
        int | None, typer.Option(help="Square input size of a keras.applications net (default 224).")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="MobileNet width multiplier (default 1.0).")] = None,
    weights: Annotated[
        str | None, typer.Option(help="'imagenet': start from the ImageNet base (downloads once; needs a network).")
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Runs folder (files go to OUT/ARCH/), or a model path ending in .keras."),
    ] = Path("runs"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Train ARCH on a data source; writes .keras, history, curves, confusion matrix, misclassified grid."""
    from edgecnn import report
    from edgecnn.train import TrainConfig, train
    from edgecnn.train.memory import human, parse_size

    config = TrainConfig(
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        validation_split=validation_split,
        patience=patience,
        seed=seed,
        augment=augment,
        limit=limit,
        input_size=input_size,
        alpha=alpha,
        weights=weights,
        memory_budget=parse_size(memory_budget) if memory_budget is not None else None,
    )
    result = train(arch, out, config)
    report.print_kv(
        f"trained {arch}",
        [
            ("data", result.data),
            ("train / val / test", f"{result.n_train} / {result.n_val} / {result.n_test}"),
            ("epochs run", result.epochs_run),
            ("test accuracy", f"{result.test_accuracy:.2%}"),
            ("seconds", round(result.seconds, 1)),
            ("images / s", f"{result.images_per_second:.1f}" if result.images_per_second else "-"),
            ("batch size", f"{result.batch_size}: {result.batch_reason}"),
            ("peak memory", f"{human(result.peak_rss_bytes or 0)} resident"),
            ("memory budget", human(result.memory_budget_bytes or 0)),
            ("precision", result.precision),
            *(("warning", w) for w in result.warnings),
            *result.artefacts.items(),
        ],
    )
    for note in result.warnings:
        report.err_console().print(f"[yellow]warning:[/yellow] {note}")
    if json_out:
        report.write_json(json_out, result)
