"""Any folder of images as model input, for calibration and parity: flat or nested, labels optional.

Why not ``load_source("folder:…")``: that one is for training (one subfolder per class, a fixed 20% test
split, one bad file fails it). Users calibrate and check with what they have — 200 photos from the device
in one folder, or an ImageNet-style tree — so here:

* every image file under the folder counts (sorted walk), flat or nested; a parity verdict uses all of them
  unless a ``split`` fraction is asked for (seeded, stratified by subfolder), and says which;
* labels come from subfolder names when they name the model's classes (by name), or, for a folder of
  exactly as many subfolders as the model has classes, from their sorted order (the training convention);
  otherwise the images are unlabelled: agreement is still measured, accuracy is not;
* unreadable files are skipped and counted; the caller decides how many good ones it needs;
* images are decoded and resized exactly as ``Classifier`` does (``runtime.preprocess.image_to_pixels``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError, InputError
from edgecnn.runtime.metadata import ModelMetadata

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class FolderImages:
    """Decoded images of a folder at the model's size: pixels (N, H, W, C) uint8, labels when known."""

    root: str
    files: list[str]
    pixels: np.ndarray
    labels: np.ndarray | None
    label_source: str  # "subfolder names", "sorted subfolders", or "none"
    found: int  # image files found (before sampling)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of unreadable files

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        text = f"folder {self.root} ({len(self)} of {self.found} images"
        if self.skipped:
            text += f", {len(self.skipped)} unreadable skipped"
        text += ", unlabelled)" if self.labels is None else f", labels from {self.label_source})"
        return text


def is_folder_spec(spec: str | Path) -> bool:
    """``folder:PATH`` or an existing directory."""
    text = str(spec)
    return text.startswith("folder:") or Path(text).expanduser().is_dir()


def _root(spec: str | Path) -> Path:
    return Path(str(spec).removeprefix("folder:")).expanduser()


def image_files(root: Path) -> list[Path]:
    """Image files under ``root``, sorted, hidden entries and symlinked folders skipped."""
    from edgecnn.runtime.folder import walk_files

    if not root.is_dir():
        raise InputError(f"{root}: no such folder", path=root)
    return [Path(p) for p, err in walk_files(root) if err is None and Path(p).suffix.lower() in IMAGE_SUFFIXES]


def folder_labels(root: Path, files: list[Path], meta: ModelMetadata) -> tuple[np.ndarray | None, str]:
    """Label index per file from its top-level subfolder, when those subfolders name the model's classes."""
    tops = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else None for f in files]
    if not files or any(t is None for t in tops):
        return None, "none"
    names = sorted(set(tops))  # type: ignore[arg-type]
    index = {name: i for i, name in enumerate(meta.labels)}
    if all(n in index for n in names):
        return np.array([index[t] for t in tops], np.int64), "subfolder names"  # type: ignore[index]
    if len(names) == meta.num_classes:
        order = {n: i for i, n in enumerate(names)}
        return np.array([order[t] for t in tops], np.int64), "sorted subfolders"  # type: ignore[index]
    return None, "none"


def _order(files: list[Path], groups: np.ndarray | None, seed: int) -> list[int]:
    """A seeded order that takes the groups (subfolders) in turn: any prefix of it is balanced."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return [int(i) for i in rng.permutation(len(files))]
    per = [list(rng.permutation(np.flatnonzero(groups == g))) for g in np.unique(groups)]
    out: list[int] = []
    depth = 0
    while len(out) < len(files):
        for idx in per:
            if depth < len(idx):
                out.append(int(idx[depth]))
        depth += 1
    return out


def _decode(path: Path, meta: ModelMetadata) -> np.ndarray:
    from edgecnn.runtime.images import load_image
    from edgecnn.runtime.preprocess import draft_size, image_to_pixels

    spec = meta.input  # the decode classify does: draft (fast decode) only where the model's metadata asks for it
    return image_to_pixels(load_image(path, draft_size=draft_size(spec.height, spec.width, meta.preprocess)), meta)


def read_folder(
    spec: str | Path,
    meta: ModelMetadata,
    *,
    max_images: int | None = None,
    split: float | None = None,
    seed: int = 0,
) -> FolderImages:
    """Decode the images of a folder (flat or nested) for ``meta``'s model.

    ``max_images``: stop after that many readable images, taken in a seeded order balanced over subfolders
    (calibration); ``split``: a seeded, subfolder-stratified fraction of the files (parity, when asked).
    Unreadable files are skipped and listed in ``skipped``.

    Raises:
        InputError: not a folder, or no image files in it.
    """
    from edgecnn.data.sources import split_indices

    root = _root(spec)
    files = image_files(root)
    if not files:
        raise InputError(
            f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or its subfolders", path=root
        )
    found = len(files)
    labels, label_source = folder_labels(root, files, meta)
    parents = sorted({os.fspath(f.parent) for f in files})
    where = {p: i for i, p in enumerate(parents)}
    groups = np.array([where[os.fspath(f.parent)] for f in files]) if len(parents) > 1 else None
    if split is not None:
        keep = split_indices(groups if groups is not None else np.zeros(len(files), np.int64), split, seed)[1]
        files = [files[i] for i in keep]
        labels = None if labels is None else labels[keep]
        groups = None if groups is None else groups[keep]
    order = _order(files, groups, seed) if max_images is not None else list(range(len(files)))
    pixels: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i in order:
        if max_images is not None and len(kept) >= max_images:
            break
        try:
            pixels.append(_decode(files[i], meta))
            kept.append(i)
        except (EdgeCNNError, OSError) as err:  # one bad file is skipped and counted, never the run
            skipped.append((os.fspath(files[i]), str(err)))
    kept_sorted = sorted(range(len(kept)), key=lambda j: kept[j])
    x = np.stack([pixels[j] for j in kept_sorted]) if pixels else np.zeros((0, *meta.input.sample_shape), np.uint8)
    return FolderImages(
        root=os.fspath(root),
        files=[os.fspath(files[kept[j]]) for j in kept_sorted],
        pixels=x,
        labels=None if labels is None else labels[[kept[j] for j in kept_sorted]],
        label_source=label_source,
        found=found,
        skipped=skipped,
    )


def load_folder_images(
    spec: str | Path, meta: ModelMetadata, *, limit: int | None = None, seed: int = 0, split: float | None = None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(model input, labels or None, description) for a parity check on a folder: every file, or a split.

    Raises:
        InputError: not a folder, no images, or none readable.
    """
    from edgecnn.runtime.preprocess import pixels_to_input

    pixels, y, text = load_folder_pixels(spec, meta, limit=limit, seed=seed, split=split)
    return pixels_to_input(pixels, meta), y, text


def load_folder_pixels(
    spec: str | Path, meta: ModelMetadata, *, limit: int | None = None, seed: int = 0, split: float | None = None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(uint8 pixels at the model's size, labels or None, description) for a parity check on a folder: the
    images as ``load_folder_images`` gives them, before the float conversion (a quarter of its memory).

    Raises:
        InputError: not a folder, no images, or none readable.
    """
    imgs = read_folder(spec, meta, split=split, seed=seed)
    if not len(imgs):
        raise InputError(f"{imgs.root}: none of its {imgs.found} image files could be read", path=imgs.root)
    x, y = imgs.pixels, imgs.labels
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    text = imgs.describe()
    if split is not None:
        text += f"; a {split:.0%} split (seed {seed}), as asked"
    if limit is not None and limit < len(imgs):
        text += f"; the first {limit} (--limit)"
    return x, y, text
