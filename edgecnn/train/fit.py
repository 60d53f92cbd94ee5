"""The fit loop: data → zoo model → Keras fit with callbacks → artefacts, every file written atomically."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._fs import atomic_path, write_text_atomic
from edgecnn.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training options; None means the architecture's course default (``edgecnn zoo``)."""

    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    validation_split: float = 0.1  # carved from the train split (deterministic for the seed)
    patience: int = 4  # early stopping on val_accuracy, best weights restored
    seed: int = 0
    augment: bool | None = None  # augmentation layers (inactive at inference); None: the architecture's default
    learning_rate: float | None = None
    limit: int | None = None  # cap on training samples (smoke runs), spread evenly over the classes
    input_size: int | None = None  # square input of a keras.applications net (`edgecnn zoo` lists its options)
    alpha: float | None = None  # MobileNet width multiplier
    weights: str | None = None  # "imagenet": start from the ImageNet base (downloads once; needs a network)
    verbose: int | None = None  # Keras verbosity; None: progress bar on a terminal, one line per epoch otherwise
    memory_budget: int | None = None  # bytes a training step may hold; None: a quarter of the machine's memory

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {self.limit}")
        if self.patience < 0:
            raise UsageError(f"--patience must be >= 0, got {self.patience}")
        if self.data is not None:
            from edgecnn.data.sources import check_source

            check_source(self.data)
        if not 0.0 < self.validation_split < 0.5:
            raise UsageError(f"--validation-split must be in (0, 0.5), got {self.validation_split}")
        if self.memory_budget is not None and self.memory_budget < 1 << 20:
            raise UsageError(f"--memory-budget must be at least 1MB, got {self.memory_budget} bytes")


@dataclass(frozen=True)
class TrainReport:
    """What training produced."""

    arch: str
    data: str
    model_path: Path
    out_dir: Path
    epochs_run: int
    test_accuracy: float
    test_loss: float
    n_train: int
    n_val: int
    n_test: int
    seconds: float
    artefacts: dict[str, str] = field(default_factory=dict)
    batch_size: int | None = None
    batch_reason: str = ""
    memory_budget_bytes: int | None = None
    estimated_step_bytes: int | None = None
    peak_rss_bytes: int | None = None  # the process's peak resident memory (ru_maxrss), whole run
    images_per_second: float | None = None  # training images a second over fit (validation included)
    streamed: bool = False  # inputs made batch by batch from the source pixels
    precision: str = "float32"
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "data": self.data,
            "model_path": str(self.model_path),
            "out_dir": str(self.out_dir),
            "epochs_run": self.epochs_run,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "seconds": self.seconds,
            "artefacts": self.artefacts,
            "batch_size": self.batch_size,
            "batch_reason": self.batch_reason,
            "memory_budget_bytes": self.memory_budget_bytes,
            "estimated_step_bytes": self.estimated_step_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "images_per_second": self.images_per_second,
            "streamed": self.streamed,
            "precision": self.precision,
            "warnings": list(self.warnings),
        }


def output_paths(arch: str, out_dir: str | Path) -> tuple[Path, Path]:
    """Where a run writes: a folder gets ``FOLDER/ARCH/ARCH.keras``; a path ending in ``.keras`` is the model
    file itself, with the other artefacts beside it.

    Raises:
        UsageError: a ``.keras`` path that is a folder, or a model-file suffix other than ``.keras``.
    """
    out_dir = Path(out_dir)
    suffix = out_dir.suffix.lower()
    if suffix == ".keras":
        if out_dir.is_dir():
            raise UsageError(f"{out_dir}: is a folder; give a new file name ending in .keras, or a runs folder")
        return out_dir.parent, out_dir
    if suffix in (".h5", ".hdf5", ".onnx", ".tflite", ".pb"):
        raise UsageError(
            f"{out_dir}: train writes Keras 3 .keras files; give a path ending in .keras (or a runs folder), "
            "then 'edgecnn export' it to ONNX"
        )
    return out_dir / arch, out_dir / arch / f"{arch}.keras"


def train(arch: str, out_dir: str | Path = "runs", config: TrainConfig | None = None) -> TrainReport:
    """Train zoo architecture ``arch`` and write the model, sidecar, history, metrics and plots.

    Files in ``out_dir/ARCH/``: ``ARCH.keras``, ``ARCH.edgecnn.json``, ``history.json``, ``metrics.json``,
    ``curves.png``, ``confusion.png``, ``misclassified.png``; or, when ``out_dir`` ends in ``.keras``, the
    model there and the other files beside it.

    Raises:
        UsageError (unknown arch/options), InputError (data), MissingDependencyError.
    """
    from edgecnn.train.allocator import keep_freed_memory

    with keep_freed_memory():  # a step's buffers are reused, not faulted in again (~40% of a step's CPU at 224)
        return _train(arch, out_dir, config)


def _train(arch: str, out_dir: str | Path, config: TrainConfig | None) -> TrainReport:
    from edgecnn import zoo
    from edgecnn._optional import require
    from edgecnn.data import Dataset, load_source, source_names
    from edgecnn.data.sources import sample_balanced, split_indices
    from edgecnn.keras_io import write_sidecar
    from edgecnn.runtime.preprocess import pixels_to_input
    from edgecnn.train import memory, stream

    config = config or TrainConfig()
    spec = zoo.get_spec(arch).sized(config.input_size)
    options = spec.builder_options(input_size=config.input_size, alpha=config.alpha, weights=config.weights)
    out, model_path = output_paths(arch, out_dir)
    keras = require("keras")
    data = config.data or spec.data
    meta = spec.metadata()
    size, color = stream.model_size(meta)
    # named sources load at their own size (mnist5k: 28×28 digits) and are resized batch by batch; a folder's
    # images differ in size, so it loads at the model's (uint8, a quarter of the float input)
    native = data in source_names()
    load_size, load_color = (None, None) if native else (size, color)
    # everything but the test split; validation is carved from it below (config.validation_split)
    fit = {"preprocess": meta.preprocess}  # the runtime's one preprocessing (a folder is fitted as it loads)
    fit_parts = [
        load_source(data, split=part, seed=config.seed, image_size=load_size, color_mode=load_color, **fit)
        for part in ("train", "val")
    ]
    train_ds = Dataset(
        name=f"{data}:train+val",
        x=np.concatenate([p.x for p in fit_parts]),
        y=np.concatenate([p.y for p in fit_parts]),
        class_names=fit_parts[0].class_names,
    )
    del fit_parts
    if config.limit is not None and config.limit < len(train_ds):
        # spread over the classes: mnist5k is stored class by class, so its first 1,000 are digits 0-2 only
        train_ds = sample_balanced(train_ds, config.limit, config.seed)
    test_ds = load_source(data, split="test", seed=config.seed, image_size=load_size, color_mode=load_color, **fit)
    if len(train_ds.class_names) != meta.num_classes:
        raise UsageError(
            f"{arch} has {meta.num_classes} classes but data source {data!r} has {len(train_ds.class_names)}"
        )
    meta = dataclasses.replace(meta, labels=tuple(train_ds.class_names), source={})
    train_idx, val_idx = split_indices(train_ds.y, config.validation_split, config.seed)
    fit_ds, val_ds = train_ds.subset(train_idx), train_ds.subset(val_idx)
    streamed = stream.needs_stream(train_ds, meta) or stream.needs_stream(test_ds, meta)
    if not streamed:  # small and already at the model's size (the course nets): plain arrays, as always
        fit_ds, val_ds, test_ds = (stream.fit_to_model(d, meta) for d in (fit_ds, val_ds, test_ds))
        x_train, x_val, x_test = (pixels_to_input(d.x, meta) for d in (fit_ds, val_ds, test_ds))

    keras.utils.set_random_seed(config.seed)
    augment = spec.extra.get("augment", False) if config.augment is None else config.augment
    if augment:
        options["augment"] = True
    model = zoo.build(arch, **options)
    zoo.compile_for_training(model, arch, config.learning_rate)
    budget = config.memory_budget or memory.default_budget()
    step = memory.StepMemory.of(model, input_bytes=4 * int(np.prod(meta.input.sample_shape)))
    choice = memory.choose_batch_size(step, budget, config.batch_size or spec.batch_size, config.batch_size)
    warnings = [choice.warning] if choice.warning else []
    for w in warnings:
        log.warning("%s", w)
    batch_size = choice.batch_size
    precision, precision_why = memory.cpu_precision()
    out.mkdir(parents=True, exist_ok=True)
    best = out / f".{model_path.stem}.best.keras"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(best), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2, min_lr=1e-5),
    ]
    verbose = config.verbose if config.verbose is not None else (1 if sys.stderr.isatty() else 2)
    epochs = config.epochs or spec.epochs
    t0 = time.perf_counter()
    if streamed:
        history = model.fit(
            stream.batch_stream(fit_ds, meta, batch_size, shuffle=True, seed=config.seed),
            validation_data=stream.batch_stream(val_ds, meta, batch_size),
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        history = model.fit(
            x_train,
            fit_ds.y,
            validation_data=(x_val, val_ds.y),
            epochs=epochs,
            batch_size=batch_size,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=True,
        )
    seconds = time.perf_counter() - t0
    best.unlink(missing_ok=True)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    epochs_run = len(hist.get("loss", []))

    from edgecnn.keras_io import keras_predictor
    from edgecnn.train.plots import save_confusion, save_curves, save_misclassified

    y_test = test_ds.y
    predict = keras_predictor(model, meta.output)
    if streamed:  # one batched pass: accuracy, loss and the confusion matrix from the same probabilities
        probs = stream.predict_batches(predict, test_ds, meta, batch_size)
        test_acc = float(np.mean(probs.argmax(1) == y_test)) if len(y_test) else 0.0
        picked = probs[np.arange(len(y_test)), y_test.astype(int)] if len(y_test) else np.ones(1)
        test_loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    else:
        test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
        probs = (
            np.concatenate([predict(x_test[i : i + batch_size]) for i in range(0, len(x_test), batch_size)])
            if len(x_test)
            else np.zeros((0, meta.num_classes), np.float32)
        )
    pred = probs.argmax(1)
    k = meta.num_classes
    from edgecnn.train.chance import chance_warning

    at_chance = chance_warning(float(test_acc), y_test, k) if k > 1 else None
    if at_chance:
        warnings.append(at_chance)

    with atomic_path(model_path, suffix=".keras") as tmp:
        model.save(str(tmp))
    write_sidecar(
        model_path,
        {
            "labels": list(meta.labels),
            "preprocess": meta.preprocess.to_dict(),
            "output": meta.output.value,
            "layout": meta.input.layout.value,
            "zoo": arch,
            "data": data,
            "test_accuracy": float(test_acc),
        },
    )
    conf = confusion_matrix(y_test, pred, meta.num_classes)
    write_text_atomic(out / "history.json", json.dumps(hist, indent=2) + "\n")
    artefacts = {
        "model": str(model_path),
        "history": str(out / "history.json"),
        "metrics": str(out / "metrics.json"),
        "curves": str(save_curves(hist, out / "curves.png", arch)),
        "confusion": str(save_confusion(conf, meta.labels, out / "confusion.png")),
    }
    if meta.input.is_image:
        artefacts["misclassified"] = str(
            save_misclassified(test_ds.x, y_test, pred, meta.labels, out / "misclassified.png")
        )
    n_train = len(fit_ds)
    report = TrainReport(
        arch=arch,
        data=data,
        model_path=model_path,
        out_dir=out,
        epochs_run=epochs_run,
        test_accuracy=float(test_acc),
        test_loss=float(test_loss),
        n_train=n_train,
        n_val=len(val_ds),
        n_test=len(y_test),
        seconds=seconds,
        artefacts=artefacts,
        batch_size=batch_size,
        batch_reason=choice.reason,
        memory_budget_bytes=budget,
        estimated_step_bytes=choice.estimated,
        peak_rss_bytes=memory.peak_rss(),
        images_per_second=n_train * epochs_run / seconds if seconds > 0 else None,
        streamed=streamed,
        precision=f"{precision} ({precision_why})",
        warnings=tuple(warnings),
    )
    metrics = {
        "arch": arch,
        "data": data,
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "confusion_matrix": conf.tolist(),
        "labels": list(meta.labels),
        "per_class_accuracy": {
            lab: float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None for i, lab in enumerate(meta.labels)
        },
        "epochs_run": epochs_run,
        "train_seconds": seconds,
        "memory": {
            "peak_rss_bytes": report.peak_rss_bytes,
            "budget_bytes": budget,
            "estimated_step_bytes": choice.estimated,
            "batch_size": batch_size,
            "batch_reason": choice.reason,
            "streamed": streamed,
        },
        "images_per_second": report.images_per_second,
        "precision": report.precision,
        "warnings": list(warnings),
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return report


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k×k counts: rows true class, columns predicted."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true.astype(int), y_pred.astype(int)), 1)
    return m
