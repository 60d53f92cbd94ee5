"""Engine overhead: Classifier.predict_proba on preprocessed arrays vs a bare InferenceSession.run with
the same session options, interleaved in one process (bar: within 10% or 10 µs at batch 1).

    python benchmarks/overhead.py [MODEL.onnx ...]     # default: zoo mnist-mlp, mnist-cnn, cifar10-cnn

Also prints onnxruntime's per-call floor (a do-nothing model) through each engine call path.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def measure(model: Path, batch: int, seconds: float = 6.0) -> dict[str, tuple[float, float]]:
    """Seconds per call of each layer under the Classifier, (median, 10th percentile), see ``interleaved``."""
    import onnx
    import onnxruntime as ort

    from edgecnn import Classifier
    from edgecnn.runtime.session import SessionSettings, session_hints, session_options

    settings = SessionSettings(threads=1)
    clf = Classifier(model, provider="cpu", settings=settings, tuning=False)
    # the same options as the Classifier's session, the optimizers a quantized model disables included:
    # without them a bare session runs another graph (mnist-cnn INT8, batch 32: 2.8× slower)
    hints = session_hints(onnx.load(str(model), load_external_data=False))
    extra = {"disabled_optimizers": list(hints["disabled_optimizers"])} if hints else {}
    bare = ort.InferenceSession(
        str(model), sess_options=session_options(settings), providers=["CPUExecutionProvider"], **extra
    )
    name, out = bare.get_inputs()[0].name, [bare.get_outputs()[0].name]
    x = np.random.default_rng(0).random((batch, *clf.metadata.input.sample_shape), dtype=np.float32)
    fns = {
        "bare": lambda: bare.run(out, {name: x}),  # the bar's yardstick: the public call, same options
        "engine": lambda: clf.engine.run(x),  # the engine under the Classifier (no checks)
        "classifier": lambda: clf.predict_proba(x),  # engine + input and output checks
    }
    if batch == 1:
        fns["predict"] = lambda: clf.predict(x[0])  # + top-k decoding into a Prediction
    return interleaved(fns, seconds)


def interleaved(fns: dict[str, Callable[[], object]], seconds: float) -> dict[str, tuple[float, float]]:
    """Per-call seconds of each function, (median, 10th percentile), the functions called in turn one call
    at a time (the order rotating) for about ``seconds``: on a loaded shared machine a preemption then
    spoils single calls of every candidate alike, and the median drops them (block means keep them)."""
    keys = list(fns)
    for fn in fns.values():  # warm-up
        for _ in range(20):
            fn()
    t = time.perf_counter()
    for fn in fns.values():
        fn()
    rounds = max(200, int(seconds / max(time.perf_counter() - t, 1e-6)))
    times: dict[str, list[float]] = {k: [] for k in keys}
    clock = time.perf_counter
    for r in range(rounds):
        for i in range(len(keys)):
            k = keys[(r + i) % len(keys)]
            fn = fns[k]
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    return {k: (statistics.median(v), float(np.percentile(v, 10))) for k, v in times.items()}


def floor(tmp: Path, seconds: float = 4.0) -> dict[str, float]:
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
    return {k: v[0] for k, v in interleaved(fns, seconds).items()}


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
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    print(
        "| model | batch | bare session.run µs | Engine.run µs | Classifier µs | overhead µs | overhead % "
        "| within bar | predict(sample) µs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model in models:
        for batch in (1, 32):
            t = measure(model, batch)
            bare, clf = t["bare"][0], t["classifier"][0]
            over = clf - bare
            ok = over <= 10e-6 or over <= 0.10 * bare
            pred = f"{t['predict'][0] * 1e6:.1f}" if "predict" in t else "—"
            print(
                f"| {model.name} | {batch} | {bare * 1e6:.1f} | {t['engine'][0] * 1e6:.1f} | {clf * 1e6:.1f} | "
                f"{over * 1e6:.1f} | {100 * over / bare:.1f}% | {'yes' if ok else 'NO'} | {pred} |"
            )
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
