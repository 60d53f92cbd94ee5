"""Which INT8 scheme answers the same on every CPU, and what it costs: the measurement behind
``quantize --target portable``.

For one FP32 export and its labelled offline data, four INT8 models from the same calibration tensors:

* ``portable``: U8S8 with 7-bit weights (``reduce_range``): every u8×s8 pair sum fits int16;
* ``x86-vnni``: U8S8 with full-range 8-bit weights (edgecnn's old default);
* ``u8u8``: uint8 weights, full range (MLAS widens to int16 before multiplying: exact, other kernels);
* ``plain ort``: onnxruntime's ``quantize_static`` U8S8 by hand in a bare session (the yardstick).

Each row: accuracy and top-1 agreement with FP32 on the test split, top-1 agreement and outputs that differ
between this host and ``qemu-x86_64 -cpu Haswell`` (AVX2) / ``-cpu Nehalem`` (SSE4) on ``--samples`` inputs,
then batch-1 p50 (1 thread) and batch-32 throughput (2 threads), interleaved in one process.

    python benchmarks/portable_int8.py runs/mobilenetv2/mobilenetv2.onnx --data mnist5k
    python benchmarks/portable_int8.py M.onnx --data mnist5k --targets x86-avx2 --out benchmarks/results/portable_int8
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _variants(fp32: Path, data: str, work: Path) -> dict[str, Path]:
    from edgecnn.bench.plain_ort import plain_int8
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.quantize.calibration import load_calibration
    from edgecnn.runtime.classifier import read_metadata

    configs = {
        "portable": QuantizeConfig.int8(),
        "x86-vnni": QuantizeConfig.int8(target="x86-vnni"),
        "u8u8": QuantizeConfig.int8(target="x86-vnni", weight_type="uint8"),
    }
    out = {}
    for name, cfg in configs.items():
        out[name] = quantize(fp32, work / f"{name}.onnx", cfg, calibration=data, measure_speed=False).path
    calib = load_calibration(data, read_metadata(fp32))
    out["plain ort"] = plain_int8(fp32, calib, work / "plain.onnx")
    return out


def _accuracy(fp32: Path, models: dict[str, Path], data: str) -> dict[str, dict[str, float]]:
    import onnxruntime as ort

    from edgecnn.parity.run import sample_inputs
    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.postprocess import to_probabilities

    meta = read_metadata(fp32)
    x, y, _ = sample_inputs(meta, data)

    def probs(path: Path) -> np.ndarray:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return to_probabilities(s.run(None, {s.get_inputs()[0].name: x})[0], meta.output)

    ref = probs(fp32).argmax(1)
    rows = {"fp32": {"accuracy": float((ref == y).mean()), "agreement_fp32": 1.0}}
    for name, path in models.items():
        top = probs(path).argmax(1)
        rows[name] = {"accuracy": float((top == y).mean()), "agreement_fp32": float((top == ref).mean())}
    return rows


def _portability(models: dict[str, Path], data: str, samples: int, targets: tuple[str, ...]) -> dict[str, Any]:
    from edgecnn.certify import CertifyConfig, certify

    out = {}
    cfg = CertifyConfig(targets=targets, samples=samples, data=data)
    for name, path in models.items():
        rep = certify(path, cfg, write=False)
        out[name] = {
            t: {"agreement": r.agreement_native, "outputs_differ": r.outputs_differ, "max_abs_diff": r.max_abs_diff}
            for t, r in rep.targets.items()
            if t != "native"
        }
        print(f"   {name}: " + ", ".join(f"{t} {v['agreement']:.2%}" for t, v in out[name].items()), flush=True)
    return out


def _speed(models: dict[str, Path], duration: float, rounds: int = 3) -> dict[str, dict[str, float]]:
    """Batch-1 p50 at 1 thread and batch-32 throughput at 2 threads, interleaved blocks."""
    import onnxruntime as ort

    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.session import SessionSettings

    def runner(name: str, path: Path, threads: int) -> Any:
        if name == "plain ort":  # a bare session, onnxruntime's defaults
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            inp = s.get_inputs()[0].name
            return lambda x: s.run(None, {inp: x})
        clf = Classifier(path, provider="cpu", settings=SessionSettings(threads=threads), tuning=False)
        return clf.predict_proba

    first = Classifier(next(iter(models.values())), provider="cpu", tuning=False)
    x1 = np.random.default_rng(0).random((1, *first.metadata.input.sample_shape), dtype=np.float32)
    x32 = np.repeat(x1, 32, axis=0)
    one = {n: runner(n, p, 1) for n, p in models.items()}
    two = {n: runner(n, p, 2) for n, p in models.items()}
    lat: dict[str, list[float]] = {n: [] for n in models}
    thr: dict[str, list[float]] = {n: [] for n in models}
    for f in (*one.values(), *two.values()):
        f(x1), f(x32)
    for _ in range(rounds):
        for n in models:
            end = time.perf_counter() + duration
            samples = []
            while time.perf_counter() < end:
                t = time.perf_counter()
                one[n](x1)
                samples.append(time.perf_counter() - t)
            lat[n].append(float(np.median(samples)))
            k, t = 0, time.perf_counter()
            while time.perf_counter() - t < duration or k < 2:
                two[n](x32)
                k += 1
            thr[n].append(32 * k / (time.perf_counter() - t))
    return {
        n: {"p50_ms_batch1": float(np.median(lat[n]) * 1e3), "img_s_batch32": float(np.median(thr[n]))} for n in models
    }


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an edgecnn FP32 export")
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--targets", default="x86-avx2,x86-sse4")
    parser.add_argument("--duration", type=float, default=0.5, help="seconds per block")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    from edgecnn.certify.targets import describe_host

    with tempfile.TemporaryDirectory(prefix="portable-int8-") as tmp:
        models = _variants(args.model, args.data, Path(tmp))
        print("quantized; accuracy ...", flush=True)
        acc = _accuracy(args.model, models, args.data)
        print("portability (emulated) ...", flush=True)
        targets = tuple(t for t in args.targets.split(",") if t)  # --targets "": speed and accuracy only
        port = _portability(models, args.data, args.samples, targets) if targets else {n: {} for n in models}
        print("speed ...", flush=True)
        speed = _speed(models, args.duration)
    base = speed["plain ort"]
    rows = []
    for name in models:
        s = speed[name]
        rows.append(
            {
                "scheme": name,
                **acc[name],
                **{f"{t}_agreement": v["agreement"] for t, v in port[name].items()},
                **{f"{t}_outputs_differ": v["outputs_differ"] for t, v in port[name].items()},
                **s,
                "batch1_vs_plain": base["p50_ms_batch1"] / s["p50_ms_batch1"],
                "throughput_vs_plain": s["img_s_batch32"] / base["img_s_batch32"],
            }
        )
    result = {
        "machine": f"{_cpu_name()}; native = {describe_host()}",
        "command": " ".join(["python", *sys.argv]),
        "model": args.model.name,
        "fp32_accuracy": acc["fp32"]["accuracy"],
        "rows": rows,
    }
    head = ["scheme", "accuracy", "agreement w/ FP32"] + [f"{t} agreement (differ)" for t in targets]
    head += ["b1 p50 ms", "img/s @32", "b1 ÷ plain", "thr ÷ plain"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["scheme"], f"{r['accuracy']:.1%}", f"{r['agreement_fp32']:.1%}"]
        cells += [f"{r[f'{t}_agreement']:.1%} ({r[f'{t}_outputs_differ']})" for t in targets]
        cells += [f"{r['p50_ms_batch1']:.3f}", f"{r['img_s_batch32']:,.0f}", f"{r['batch1_vs_plain']:.2f}×"]
        cells += [f"{r['throughput_vs_plain']:.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        md = f"# portable INT8: {args.model.name}\n\nMachine: {result['machine']}\n\n    {result['command']}\n\n"
        args.out.with_suffix(".md").write_text(md + f"FP32 accuracy {result['fp32_accuracy']:.1%}\n\n{table}\n")


if __name__ == "__main__":
    main()
