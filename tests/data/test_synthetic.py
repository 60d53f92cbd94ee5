"""The generated cats-vs-dogs folder the README walk-through and the serve benchmark train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from edgecnn.data import load_source
from edgecnn.data.synthetic import write_tinted_folder


def test_the_folder_is_seeded_and_reads_as_two_separable_classes(tmp_path: Path) -> None:
    a = write_tinted_folder(tmp_path / "a", per_class=3, size=8)
    b = write_tinted_folder(tmp_path / "b", per_class=3, size=8)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.png"))
    assert files == [f"{c}/{c}{i:02d}.png" for c in ("cat", "dog") for i in range(3)]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    ds = load_source(f"folder:{a}", split="all")
    assert tuple(ds.class_names) == ("cat", "dog") and len(ds) == 6
    red = [np.asarray(Image.open(a / f))[..., 0].mean() for f in files]
    assert min(red[:3]) > max(red[3:])  # warm cats, cool dogs
