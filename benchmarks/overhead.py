"""Engine overhead: Classifier.predict_proba on preprocessed arrays vs a bare InferenceSession.run with
the same session options, interleaved in one process (bar: within 10% or 10 µs at batch 1).

    python benchmarks/overhead.py [MODEL.onnx ...]     # default: zoo mnist-mlp, mnist-cnn, cifar10-cnn

Also prints onnxruntime's per-call floor (a do-nothing model) through each engine call path.
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
    clf = Classifier(model, provider="cpu", settings=settings, tuning=False)
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


def floor(tmp: Path, rounds: int = 30, block: int = 500) -> dict[str, float]:
    """What a call costs when the model does nothing (one Identity node): onnxruntime's own floor."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgecnn.runtime.engine import CallPath, Engine, EngineSettings

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 784])],
    )
    path = tmp / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.zeros((1, 784), dtype=np.float32)
    bare = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fns = {"InferenceSession.run": lambda: bare.run(["y"], {"x": x})}
    for call in CallPath:
        engine = Engine(path, "cpu", EngineSettings(threads=1, call=call))
        fns[f"Engine {call.value}"] = lambda e=engine: e.run(x)
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(block):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t) / block)
    return best


def main() -> None:
    from edgecnn.export import ExportConfig, export_keras

    models = [Path(p) for p in sys.argv[1:]]
    tmp = Path(tempfile.mkdtemp(prefix="edgecnn-overhead-"))
    if not models:
        models = [
            export_keras(f"zoo:{n}", tmp / f"{n}.onnx", ExportConfig(parity_samples=4)).path
            for n in ("mnist-mlp", "mnist-cnn", "cifar10-cnn")
        ]
    print("Per-call floor (a one-node Identity model, 1×784 floats):")
    for k, v in floor(tmp).items():
        print(f"  {k:24s} {v * 1e6:6.2f} µs")
    print()
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
