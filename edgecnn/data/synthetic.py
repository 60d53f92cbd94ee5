"""A generated two-class image folder (warm "cat" vs cool "dog" noise), offline and seeded.

Why in the library: the README's cats-vs-dogs walk-through (run by ``tests/docs/test_readme.py``) and the
serve load benchmark (``benchmarks/serve_load.py``) both need a ``folder:`` source that one training epoch can
learn without a download, and the package is the one module both import without reaching into the other's
folder. It writes the ``image_dataset_from_directory`` layout ``load_source("folder:…")`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINTS = {"cat": (200, 120, 60), "dog": (60, 120, 200)}  # mean RGB per class; noise sd 40 keeps them separable


def write_tinted_folder(root: Path, per_class: int = 30, size: int = 64, seed: int = 0) -> Path:
    """Write ``root/{cat,dog}/NAME.png``: ``per_class`` RGB images of ``size``×``size`` per class; returns ``root``.

    Two visibly different classes (warm vs cool colours with noise), so one epoch learns something; 30 a class
    give 60 images, enough for an INT8 verdict (50 resolve its 98% bar).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, tint in TINTS.items():
        for i in range(per_class):
            arr = np.clip(rng.normal(tint, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            path = root / label / f"{label}{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
    return root
