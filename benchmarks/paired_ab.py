"""INT8 variants of one model (and its TFLite INT8) timed call by call in turn: paired on a noisy shared machine.

    python benchmarks/paired_ab.py A.int8.onnx B.int8.onnx --tflite M.int8.tflite --calib calib.npy

Batch 1 / 1 thread and batch 32 / 2 threads (edgecnn's session with each model's hints; TFLite's interpreter,
XNNPACK); the runners alternate call by call (order reversed every round) for ``--sec1`` / ``--sec32`` seconds;
p50, p10 and the median of the per-round ratios against the first model. Used for issue #28's A/B.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from edgecnn.runtime.session import SessionSettings, create_session

p = argparse.ArgumentParser()
p.add_argument("models", nargs="+")
p.add_argument("--tflite")
p.add_argument("--calib")
p.add_argument("--sec1", type=float, default=60)
p.add_argument("--sec32", type=float, default=60)
a = p.parse_args()
calib = np.load(a.calib).astype(np.float32)


def ort_runner(path, threads):
    s = create_session(Path(path), provider="cpu", settings=SessionSettings(threads=threads))
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})[0]


def tfl_runner(path, threads, batch):
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=path, num_threads=threads)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    s, z = inp["quantization"]

    def run(x):
        q = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], q)
        it.invoke()
        return it.get_tensor(out["index"])

    return run


for label, batch, threads, sec in (("batch1-1thread", 1, 1, a.sec1), ("batch32-2threads", 32, 2, a.sec32)):
    if sec <= 0:
        continue
    x = calib[:batch]
    runners = {Path(m).name.replace(".int8.onnx", ""): ort_runner(m, threads) for m in a.models}
    if a.tflite:
        runners["tflite"] = tfl_runner(a.tflite, threads, batch)
    for r in runners.values():
        r(x)
        r(x)
    ts = {k: [] for k in runners}
    end = time.perf_counter() + sec
    i = 0
    while time.perf_counter() < end:
        order = list(runners.items())
        if i % 2:
            order.reverse()
        for k, r in order:
            t = time.perf_counter()
            r(x)
            ts[k].append(time.perf_counter() - t)
        i += 1
    first = next(iter(runners))
    f = np.array(ts[first])
    print(f"{label}: {i} rounds", flush=True)
    for k, v in ts.items():
        v = np.array(v)
        paired = np.median(f / v)
        q = np.percentile(v, 10)
        print(
            f"   {k:28s} p50 {np.median(v) * 1e3:8.2f} ms  p10 {q * 1e3:8.2f} ms  {batch / np.median(v):8.1f} img/s   "
            f"speed vs {first}: p50 {np.median(f) / np.median(v):5.2f}x  p10 {np.percentile(f, 10) / q:5.2f}x  "
            f"paired {paired:5.2f}x",
            flush=True,
        )
