"""The course's training plots (matplotlib, Agg backend), each saved atomically as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecnn.report import save_figure


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Accuracy and loss per epoch, train vs validation."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        if key in history:
            ax.plot(epochs, history[key], "o-", label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title}: training curves")
    return save_figure(fig, path)


def save_confusion(conf: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """Confusion matrix with counts in the cells."""
    plt = _plt()
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax.imshow(conf, cmap="Blues")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = conf.max() if conf.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(conf[i, j]), ha="center", va="center", color="white" if conf[i, j] > top / 2 else "black")
    ax.set_title("confusion matrix (test split)")
    return save_figure(fig, path)


def save_misclassified(
    pixels: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path: Path, limit: int = 25
) -> Path:
    """A grid of up to ``limit`` misclassified test images with true and predicted labels."""
    plt = _plt()
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    cols = 5
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).ravel(), wrong, strict=False):
        img = pixels[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(f"true {labels[y_true[i]]}\npred {labels[y_pred[i]]}", fontsize=9)
    if not len(wrong):
        fig.suptitle("no misclassified test samples")
    else:
        fig.suptitle(f"{len(np.flatnonzero(y_true != y_pred))} misclassified test samples (first {len(wrong)})")
    return save_figure(fig, path)
