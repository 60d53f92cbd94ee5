"""Regenerate calibration/mnist: 200 class-balanced digits from the TRAIN split of mnist5k (seed 0).

python scripts/make_calibration.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from edgecnn.data import load_source, sample_balanced

ROOT = Path(__file__).resolve().parents[1] / "calibration" / "mnist"


def main() -> None:
    ds = sample_balanced(load_source("mnist5k", split="train"), 200, seed=0)
    for i, (x, y) in enumerate(zip(ds.x, ds.y, strict=True)):
        out = ROOT / ds.class_names[y] / f"{i:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[..., 0]).save(out, optimize=True)
    print(f"wrote {len(ds)} images under {ROOT}")


if __name__ == "__main__":
    main()
