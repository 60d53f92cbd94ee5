"""Folder classification throughput: the pipeline (decode pool overlapped with batched inference) vs
the naive loop (open, preprocess, predict one image at a time) vs decode-only (the ceiling), one run.

    python benchmarks/classify_folder.py [--n 2000] [--model exported/catsdogs-cnn.onnx]

Generates N JPEGs of 500×375 (real photographs are not shipped; the images are smooth random
gradients with noise, JPEG-compressed like photos). Without --model, catsdogs-cnn is exported with
random weights (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_folder(root: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:375, 0:500]
    paths = []
    for i in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([(xx * a) % 256, (yy * b) % 256, ((xx + yy) * c) % 256], axis=-1)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = root / f"{i % 10}" / f"img_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, quality=88)
        paths.append(path)
    return sorted(paths)


def main() -> None:
    from edgecnn import Classifier
    from edgecnn.runtime.environment import cpu_model
    from edgecnn.runtime.folder import classify_paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-folder-"))
    try:
        model = args.model
        if model is None:
            from edgecnn.export import ExportConfig, export_keras

            model = export_keras("zoo:catsdogs-cnn", work / "catsdogs-cnn.onnx", ExportConfig(parity_samples=4)).path
        paths = make_folder(work / "photos", args.n)
        clf = Classifier(model, provider="cpu")
        clf.predict(paths[0])
        results = {}
        t = time.perf_counter()
        for p in paths:
            clf.pixels(p)
        results["decode_only"] = len(paths) / (time.perf_counter() - t)
        t = time.perf_counter()
        for p in paths:
            clf.predict(p)
        results["naive_loop"] = len(paths) / (time.perf_counter() - t)
        t = time.perf_counter()
        rows = list(classify_paths(clf, (str(p) for p in paths), batch_size=32))
        results["pipeline"] = len(paths) / (time.perf_counter() - t)
        assert len(rows) == len(paths) and all(r.ok for r in rows)
        x = clf.preprocess([paths[0]] * 32)
        t, n = time.perf_counter(), 0
        while time.perf_counter() - t < 3:
            clf.predict_proba(x)
            n += 32
        results["inference_only_batch32"] = n / (time.perf_counter() - t)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "images": args.n,
        "model": str(args.model or "catsdogs-cnn (random weights), 180x180x3"),
        "images_per_second": results,
        "pipeline_vs_naive": results["pipeline"] / results["naive_loop"],
        "pipeline_vs_decode_only": results["pipeline"] / results["decode_only"],
    }
    print(json.dumps(report, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    from edgecnn._fs import write_text_atomic

    write_text_atomic(args.out / "classify_folder.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
