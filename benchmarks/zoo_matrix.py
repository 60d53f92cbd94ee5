"""The zoo matrix: every zoo model × edgecnn FP32/INT8/FP16 × Keras and TFLite baselines,
batch-1 p50 with 1 thread and batch-32 throughput with 2 threads, each setting measured interleaved.

    python benchmarks/zoo_matrix.py                 # writes benchmarks/results/<machine>.{json,md,png}
    python benchmarks/zoo_matrix.py --models mnist-cnn,catsdogs-cnn --duration 1

Weights are random (speed does not depend on them); INT8 is calibrated on real digits (mnist5k train
split, resized/recoloured to each model's input) laid out in the model's classes.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"vgg16-transfer": "15 GFLOPs/image: minutes per batch-32 setting on 2 cores"}


def machine_name() -> str:
    from edgecnn.runtime.environment import cpu_model

    cpu = cpu_model().replace("(R)", "").replace("(TM)", "").replace("@", "").split()
    return "-".join(w.lower() for w in cpu if w.lower() not in ("processor", "cpu"))[:40] + f"-{platform.machine()}"


def calibration_folder(meta, root: Path) -> str:  # type: ignore[no-untyped-def]
    """Real digits, one subfolder per model class, so that static INT8 can be calibrated."""
    from PIL import Image

    from edgecnn.data import load_source

    if not meta.input.is_image:
        return "telemetry"
    ds = load_source("mnist5k", split="train", limit=max(40 * meta.num_classes, 128))
    for i, x in enumerate(ds.x):
        label = meta.labels[i % meta.num_classes]
        out = root / label.replace("/", "_") / f"{i}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[..., 0]).save(out)
    return str(root)


def variants(name: str, work: Path) -> dict[str, Path]:
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.runtime.classifier import read_metadata

    fp32 = export_keras(f"zoo:{name}", work / f"{name}.onnx", ExportConfig(parity_samples=8)).path
    meta = read_metadata(fp32)
    calib = calibration_folder(meta, work / f"{name}-calib")
    int8 = quantize(fp32, None, QuantizeConfig.int8(calibration_samples=64), calibration=calib, measure_speed=False)
    fp16 = quantize(fp32, None, QuantizeConfig.fp16(), measure_speed=False)
    return {"fp32": fp32, "int8": int8.path, "fp16": fp16.path, "calibration": Path(calib)}


def main() -> None:
    from edgecnn import zoo
    from edgecnn.bench import Baseline, BenchConfig, run_benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(n for n in zoo.names() if n not in SKIP))
    parser.add_argument("--duration", type=float, default=0.7, help="seconds per runner and setting")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    settings = {"batch1-1thread": (1, 1), "batch32-2threads": (32, 2)}
    results: dict[str, dict] = {}  # type: ignore[type-arg]
    work = Path(tempfile.mkdtemp(prefix="edgecnn-matrix-"))
    t_start = time.time()
    try:
        for name in args.models.split(","):
            print(f"== {name}", file=sys.stderr, flush=True)
            v = variants(name, work)
            results[name] = {}
            for label, (batch, threads) in settings.items():
                cfg = BenchConfig(
                    batch_sizes=(batch,),
                    threads=threads,
                    warmup=5,
                    duration_s=args.duration,
                    keras_model=f"zoo:{name}",
                    calibration=str(v["calibration"]),
                    baselines=(Baseline.keras, Baseline.tflite),
                )
                res = run_benchmark([v["fp32"], v["int8"], v["fp16"]], cfg).to_dict()
                results[name][label] = {
                    r["name"]: {"p50_ms": r["p50_ms"], "throughput": r["throughput"], "n": r["n"]}
                    for r in res["steady_state"]
                }
                results[name][label]["_env"] = res["environment"]
            raw = args.out / ".zoo_matrix.partial.json"  # survives a crash in rendering
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_text(json.dumps(results, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(results, args.out, time.time() - t_start, " ".join(sys.argv))
    (args.out / ".zoo_matrix.partial.json").unlink(missing_ok=True)


RUNNERS = ("fp32", "int8", "fp16", "keras tf.function", "keras model.predict", "tflite fp32", "tflite int8")


def _short(key: str) -> str:
    for variant in ("int8", "fp16"):
        if key.endswith(f".{variant}.onnx"):
            return variant
    return "fp32" if key.endswith(".onnx") else key


def write(results: dict, out: Path, seconds: float, command: str) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgecnn._fs import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    machine = machine_name()
    env = next(iter(next(iter(results.values())).values()))["_env"]
    table = {
        m: {s: {_short(k): v for k, v in d.items() if k != "_env"} for s, d in per.items()}
        for m, per in results.items()
    }
    payload = {
        "machine": machine,
        "cpu": env["cpu"],
        "cores": env["cpu_count"],
        "onnxruntime": env["onnxruntime_packages"],
        "command": f"python {command}",
        "seconds": seconds,
        "skipped": SKIP,
        "results": table,
    }
    write_text_atomic(out / f"{machine}.json", json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# zoo matrix on {env['cpu']} ({env['cpu_count']} cores)",
        "",
        f"Command: `python {command}` ({seconds / 60:.1f} min). Random weights; INT8 static U8S8 QDQ.",
        f"Skipped: {', '.join(f'{k} ({v})' for k, v in SKIP.items())}.",
        "",
    ]
    for label, metric, unit in (
        ("batch1-1thread", "p50_ms", "p50 ms, batch 1, 1 thread"),
        ("batch32-2threads", "throughput", "images/s, batch 32, 2 threads"),
    ):
        lines += [
            f"## {unit}",
            "",
            "| model | " + " | ".join(RUNNERS) + " | best edgecnn ÷ tflite int8 |",
            "|---|" + "---|" * (len(RUNNERS) + 1),
        ]
        for m, per in table.items():
            row = per[label]
            fmt = "{:,.3f}" if metric == "p50_ms" else "{:,.0f}"
            cells = [fmt.format(row[r][metric]) if r in row else "—" for r in RUNNERS]
            ours = [row[v][metric] for v in ("fp32", "int8", "fp16")]
            if "tflite int8" in row:
                tfl = row["tflite int8"][metric]
                ratio = f"{(tfl / min(ours)) if metric == 'p50_ms' else (max(ours) / tfl):.2f}×"
            else:
                ratio = "—"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
    lines.append("Ratio > 1: edgecnn's best variant beats TFLite INT8 (faster p50 / more images/s).")
    write_text_atomic(out / f"{machine}.md", "\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(15, 0.5 * len(table) * len(RUNNERS) / 3 + 2))
    for ax, (label, metric, title) in zip(
        axes,
        (
            ("batch1-1thread", "p50_ms", "batch-1 p50 latency, ms (1 thread, log)"),
            ("batch32-2threads", "throughput", "batch-32 throughput, img/s (2 threads, log)"),
        ),
        strict=True,
    ):
        models = list(table)
        width = 0.8 / len(RUNNERS)
        for j, r in enumerate(RUNNERS):
            vals = [table[m][label].get(r, {}).get(metric, 0.0) for m in models]
            ax.barh(np.arange(len(models)) + j * width, vals, height=width, label=r)
        ax.set_yticks(np.arange(len(models)) + 0.4 - width / 2, models)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(title)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"edgecnn zoo matrix — {env['cpu']} ({env['cpu_count']} cores)")
    fig.tight_layout()
    fig.savefig(out / f"{machine}.png", dpi=110)
    print(f"wrote {out / machine}.{{json,md,png}}", file=sys.stderr)


if __name__ == "__main__":
    main()
