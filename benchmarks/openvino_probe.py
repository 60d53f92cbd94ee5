"""Probe: onnxruntime's OpenVINO execution provider against its CPU provider, same models, interleaved.

Why: issue #7 asks whether another onnxruntime backend beats the CPU EP's per-call floor and kernels on the
zoo. The OpenVINO EP ships as a separate wheel that replaces ``onnxruntime``, so run this in its own venv:

    python3 -m venv /tmp/ovenv && /tmp/ovenv/bin/pip install onnxruntime-openvino numpy
    /tmp/ovenv/bin/python benchmarks/openvino_probe.py exported/mnist-cnn.onnx ...

Prints, per model and batch size, the median of 20 interleaved block means for each provider (1 thread),
the ratio, and the largest difference between their answers.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: str, openvino: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if openvino:
        provider = ("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": "1"})
        return ort.InferenceSession(path, options, providers=[provider])
    # the CPU side runs as edgecnn's engine does: with the optimizers an edgecnn INT8 model asks to disable
    plain = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    quantization = json.loads(plain.get_modelmeta().custom_metadata_map.get("edgecnn.quantization", "{}"))
    disabled = quantization.get("session", {}).get("disabled_optimizers", [])
    if not disabled:
        return plain
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)


def probe(path: str, batches: tuple[int, ...] = (1, 32), rounds: int = 20) -> None:
    sessions = {"cpu": session(path, False), "openvino": session(path, True)}
    inp, out = sessions["cpu"].get_inputs()[0], sessions["cpu"].get_outputs()[0].name
    for batch in batches:
        x = np.random.default_rng(0).random((batch, *inp.shape[1:]), dtype=np.float32)
        answers = {k: s.run([out], {inp.name: x})[0] for k, s in sessions.items()}
        calls = 200 if batch == 1 else 20
        means: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(rounds):
            for k, s in sessions.items():
                start = time.perf_counter()
                for _ in range(calls):
                    s.run([out], {inp.name: x})
                means[k].append((time.perf_counter() - start) / calls)
        cpu, ov = (float(np.median(means[k])) * 1e3 for k in ("cpu", "openvino"))
        diff = float(np.abs(answers["cpu"] - answers["openvino"]).max())
        print(f"{path}  batch {batch:>2}: cpu {cpu:.4f} ms, openvino {ov:.4f} ms, "
              f"openvino ÷ cpu speed {cpu / ov:.2f}×, max |Δ| {diff:.1e}")  # fmt: skip


def main() -> None:
    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        sys.exit("this onnxruntime has no OpenVINOExecutionProvider: install onnxruntime-openvino in its own venv")
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        probe(path)


if __name__ == "__main__":
    main()
