"""Engine overhead: Classifier.predict_proba on preprocessed arrays vs a bare InferenceSession.run with
the same session options, interleaved in one process (bar: within 10% or 10 µs at batch 1).

    python benchmarks/overhead.py [MODEL.onnx ...]     # default: zoo mnist-mlp, mnist-cnn, cifar10-cnn
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(model: Path, batch: int, rounds: int = 30, block: int = 200) -> tuple[float, float]:
    import onnxruntime as ort

    from edgecnn import Classifier
    from edgecnn.runtime.session import SessionSettings, session_options

    settings = SessionSettings(threads=1)
    clf = Classifier(model, provider="cpu", settings=settings)
    bare = ort.InferenceSession(str(model), sess_options=session_options(settings), providers=["CPUExecutionProvider"])
    name, out = bare.get_inputs()[0].name, [bare.get_outputs()[0].name]
    x = np.random.default_rng(0).random((batch, *clf.metadata.input.sample_shape), dtype=np.float32)
    fns = {"bare": lambda: bare.run(out, {name: x}), "classifier": lambda: clf.predict_proba(x)}
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):  # interleaved blocks; the minimum of block means resists noise
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(block):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t) / block)
    return best["bare"], best["classifier"]


def main() -> None:
    from edgecnn.export import ExportConfig, export_keras

    models = [Path(p) for p in sys.argv[1:]]
    tmp = Path(tempfile.mkdtemp(prefix="edgecnn-overhead-"))
    if not models:
        models = [
            export_keras(f"zoo:{n}", tmp / f"{n}.onnx", ExportConfig(parity_samples=4)).path
            for n in ("mnist-mlp", "mnist-cnn", "cifar10-cnn")
        ]
    print("| model | batch | bare session.run µs | Classifier µs | overhead µs | overhead % | within bar |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        for batch in (1, 32):
            bare, clf = measure(model, batch)
            over = clf - bare
            ok = over <= 10e-6 or over <= 0.10 * bare
            print(
                f"| {model.name} | {batch} | {bare * 1e6:.1f} | {clf * 1e6:.1f} | {over * 1e6:.1f} | "
                f"{100 * over / bare:.1f}% | {'yes' if ok else 'NO'} |"
            )


if __name__ == "__main__":
    main()
