"""Why edgecnn's INT8 of one zoo net is faster or slower than the plain onnxruntime export, batch 1, 1 thread.

    python benchmarks/int8_vs_plain.py mnist-cnn-dropout [--seconds 20]

Builds, from one FP32 export and the same calibration tensors (mnist5k, 256 samples): edgecnn's default INT8,
the same with the float stem off and with 8-bit weights (``--target x86-vnni``), and the plain
``quantize_static`` U8S8 export ``bench --baseline ort-int8`` runs. Times them call by call, in turn
(``overhead.interleaved``): edgecnn's INT8 through the engine and in a bare session with onnxruntime's
default options (what a user who opens the file by hand gets: the model's disabled optimizers are not
applied), the variants in sessions with their own hints, the plain export in the bare session the int8
matrix uses, and the FP32 model. Ratios: plain ÷ this (> 1: faster than the plain export).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import interleaved


def build(name: str, work: Path, samples: int = 256) -> dict[str, Path]:
    from edgecnn.bench.plain_ort import plain_int8
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.quantize.calibration import load_calibration
    from edgecnn.runtime.classifier import read_metadata

    fp32 = export_keras(f"zoo:{name}", work / f"{name}.onnx", ExportConfig(parity_samples=4, check=False)).path
    out = {"fp32": fp32}
    variants = {"default": {}, "float stem off": {"float_stem": False}, "8-bit weights": {"target": "x86-vnni"}}
    for label, overrides in variants.items():
        path = work / f"{name}.{label.replace(' ', '-')}.int8.onnx"
        config = QuantizeConfig.int8(calibration_samples=samples, **overrides)
        out[label] = quantize(fp32, path, config, calibration="mnist5k", measure_speed=False).path
    calib = load_calibration("mnist5k", read_metadata(fp32), samples)
    out["plain"] = plain_int8(fp32, calib, work / f"{name}.plain.int8.onnx")
    return out


def runners(models: dict[str, Path], x: np.ndarray) -> dict[str, object]:
    from edgecnn.bench.plain_ort import bare_session_runner
    from edgecnn.runtime.engine import Engine, EngineSettings
    from edgecnn.runtime.session import SessionSettings, build_session, session_options

    engine = Engine(models["default"], "cpu", EngineSettings(threads=1))
    fns = {"default (Engine.run)": lambda: engine.run(x)}
    for label in ("default", "plain"):  # bare sessions, onnxruntime's default options: no model hints
        runner = bare_session_runner(models[label].read_bytes(), 1)
        fns[f"{label} (bare session.run)"] = lambda r=runner: r.fn(x)
    for label in ("float stem off", "8-bit weights", "fp32"):
        s = build_session(models[label], session_options(SessionSettings(threads=1)))  # the model's own hints
        out, feed = [s.get_outputs()[0].name], {s.get_inputs()[0].name: x}
        fns[label] = lambda s=s, out=out, feed=feed: s._sess.run(out, feed, None)
    return fns


def main() -> None:
    from edgecnn.runtime.classifier import read_metadata

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo name (exported untrained)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecnn-int8-vs-plain-") as tmp:
        models = build(args.model, Path(tmp))
        shape = read_metadata(models["fp32"]).input.sample_shape
        x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
        print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        times = interleaved(runners(models, x), args.seconds)
    plain = times["plain (bare session.run)"][0]
    print("| runner | p50 µs | p10 µs | plain ÷ this |")
    print("|---|---|---|---|")
    for label, (p50, p10) in times.items():
        print(f"| {label} | {p50 * 1e6:.1f} | {p10 * 1e6:.1f} | {plain / p50:.2f}× |")
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
