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
    limit: int | None = None  # cap on training samples (smoke runs)
    input_size: int | None = None  # square input of a keras.applications net (`edgecnn zoo` lists its options)
    alpha: float | None = None  # MobileNet width multiplier
    weights: str | None = None  # "imagenet": start from the ImageNet base (downloads once; needs a network)
    verbose: int | None = None  # Keras verbosity; None: progress bar on a terminal, one line per epoch otherwise

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
    warnings: list[str] = field(default_factory=list)  # e.g. accuracy at chance level (train/chance.py)

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
            "warnings": self.warnings,
        }


def _split_train_val(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    from edgecnn.data.sources import split_indices

    train_idx, val_idx = split_indices(y, fraction, seed)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


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
    from edgecnn import zoo
    from edgecnn._optional import require
    from edgecnn.data import Dataset, load_source
    from edgecnn.export.keras_io import write_sidecar
    from edgecnn.runtime.preprocess import pixels_to_input

    config = config or TrainConfig()
    spec = zoo.get_spec(arch).sized(config.input_size)
    options = spec.builder_options(input_size=config.input_size, alpha=config.alpha, weights=config.weights)
    out, model_path = output_paths(arch, out_dir)
    keras = require("keras")
    data = config.data or spec.data
    meta = spec.metadata()
    size = (meta.input.height, meta.input.width) if meta.input.is_image else None
    color = meta.preprocess.color_mode.value if meta.input.is_image else None
    # everything but the test split; validation is carved from it below (config.validation_split)
    fit = {"image_size": size, "color_mode": color, "preprocess": meta.preprocess}  # the runtime's preprocessing
    fit_parts = [load_source(data, split=part, seed=config.seed, **fit) for part in ("train", "val")]
    train_ds = Dataset(
        name=f"{data}:train+val",
        x=np.concatenate([p.x for p in fit_parts]),
        y=np.concatenate([p.y for p in fit_parts]),
        class_names=fit_parts[0].class_names,
    )
    if config.limit is not None:
        train_ds = train_ds.subset(np.arange(min(config.limit, len(train_ds))))
    test_ds = load_source(data, split="test", seed=config.seed, **fit)
    if len(train_ds.class_names) != meta.num_classes:
        raise UsageError(
            f"{arch} has {meta.num_classes} classes but data source {data!r} has {len(train_ds.class_names)}"
        )
    meta = dataclasses.replace(meta, labels=tuple(train_ds.class_names), source={})
    x_all, y_all = pixels_to_input(train_ds.x, meta), train_ds.y
    x_train, y_train, x_val, y_val = _split_train_val(x_all, y_all, config.validation_split, config.seed)
    x_test, y_test = pixels_to_input(test_ds.x, meta), test_ds.y

    keras.utils.set_random_seed(config.seed)
    augment = spec.extra.get("augment", False) if config.augment is None else config.augment
    if augment:
        options["augment"] = True
    model = zoo.build(arch, **options)
    zoo.compile_for_training(model, arch, config.learning_rate)
    out.mkdir(parents=True, exist_ok=True)
    best = out / f".{model_path.stem}.best.keras"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(best), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2, min_lr=1e-5),
    ]
    verbose = config.verbose if config.verbose is not None else (1 if sys.stderr.isatty() else 2)
    t0 = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=config.epochs or spec.epochs,
        batch_size=config.batch_size or spec.batch_size,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )
    seconds = time.perf_counter() - t0
    best.unlink(missing_ok=True)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)

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
    from edgecnn.export.keras_io import keras_predictor
    from edgecnn.train.plots import save_confusion, save_curves, save_misclassified

    probs = keras_predictor(model, meta.output)(x_test)
    pred = probs.argmax(1)
    conf = confusion_matrix(y_test, pred, meta.num_classes)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    write_text_atomic(out / "history.json", json.dumps(hist, indent=2) + "\n")
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
        "epochs_run": len(hist.get("loss", [])),
        "train_seconds": seconds,
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
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
    from edgecnn.train.chance import chance_warning

    at_chance = chance_warning(float(test_acc), y_test, meta.num_classes)
    return TrainReport(
        arch=arch,
        data=data,
        model_path=model_path,
        out_dir=out,
        epochs_run=len(hist.get("loss", [])),
        test_accuracy=float(test_acc),
        test_loss=float(test_loss),
        n_train=len(x_train),
        n_val=len(x_val),
        n_test=len(x_test),
        seconds=seconds,
        artefacts=artefacts,
        warnings=[at_chance] if at_chance else [],
    )


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k×k counts: rows true class, columns predicted."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true.astype(int), y_pred.astype(int)), 1)
    return m
