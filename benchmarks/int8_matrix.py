"""INT8 against its yardsticks, on every zoo model and the keras.applications nets people deploy.

For each model: edgecnn's INT8 (its defaults: static U8S8 QDQ, float stem, fallback ladder) run with the
engine's defaults and after ``edgecnn tune``, beside a plain onnxruntime ``quantize_static`` U8S8 of the
same FP32 export in a bare ``InferenceSession`` (what a user does by hand) and TFLite INT8 (XNNPACK) of
the same Keras model — all calibrated on the same tensors, measured interleaved in one run, at batch 1 /
1 thread and batch 32 / 2 threads; with MACs per image and the fraction of this machine's INT8 peak.

    python benchmarks/int8_matrix.py                      # writes benchmarks/results/int8_matrix.{json,md,png}
    python benchmarks/int8_matrix.py --models mobilenetv2,resnet50 --duration 1 --out /tmp/m
    python benchmarks/int8_matrix.py --models efficientnetb0,efficientnetb3,efficientnetv2b0 --speed-only --merge

``--models`` also takes keras.applications nets outside the zoo (``EXTRA``: EfficientNetB3, EfficientNetV2B0),
built as the zoo builds its applications (base + softmax head), random init, speed only. ``--speed-only``
skips training and the accuracy table for every application row (random init: speed does not depend on
the weights); ``NAME:random`` does so for one row (``NAME (random init)``), so that a trained net and its
random-init twin are measured in the same run:

    python benchmarks/int8_matrix.py --models mobilenetv2,efficientnetb0,efficientnetb0:random --duration 8

``--merge`` updates the rows it measured in an existing ``int8_matrix.json`` and keeps the
others, each row saying which run measured it.

Weights and accuracy: the course nets train one epoch as in zoo_matrix.py; the keras.applications nets
train at 32×32 (``--train-size``) on mnist5k (augmented, as ``edgecnn train`` does), and their INT8
accuracy is measured there on the 1,000-image test split. Speed is measured at ``--size`` (224) with the
same trained weights (global pooling makes them size-independent), calibrated on digits at that size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_matrix import SKIP, keras_model, machine_name

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"batch1-1thread": (1, 1), "batch32-2threads": (32, 2)}
APP_EPOCHS = {"mobilenetv2": 10, "mobilenetv3small": 8, "mobilenetv3large": 8, "efficientnetb0": 10, "resnet50": 6}
PLAIN = "onnxruntime int8 (plain)"
# keras.applications nets measured here but not in the zoo: name -> keras builder (speed rows only)
EXTRA = {"efficientnetb3": "EfficientNetB3", "efficientnetv2b0": "EfficientNetV2B0"}
TFLITE = "tflite int8"


def is_application(name: str) -> bool:
    from edgecnn import zoo

    return name in EXTRA or "input_size" in zoo.get_spec(name).options


def random_application(name: str, work: Path, size: int) -> Path:
    """A keras.applications net at ``size``, random init, saved with the sidecar export reads (speed only)."""
    from edgecnn import zoo
    from edgecnn.keras_io import write_sidecar
    from edgecnn.zoo.applications import _application

    model = _application(EXTRA[name], name, input_size=size) if name in EXTRA else zoo.build(name, input_size=size)
    spec = zoo.get_spec("efficientnetb0" if name in EXTRA else name)  # EXTRA: EfficientNets, RGB 0-255 in
    path = work / f"{name}-{size}-random.keras"
    model.save(str(path))
    sidecar = {"labels": list(spec.labels), "preprocess": spec.preprocess.to_dict(), "output": spec.output.value}
    write_sidecar(path, {**sidecar, "layout": spec.layout.value, "data": "mnist5k"})
    return path


def application_models(name: str, work: Path, train_size: int, size: int) -> tuple[Path, Path]:
    """(Keras model trained at ``train_size``, the same weights at ``size``)."""
    from edgecnn import zoo
    from edgecnn.keras_io import load_keras, read_sidecar, write_sidecar
    from edgecnn.train import TrainConfig, train

    trained = train(name, work / "runs", TrainConfig(input_size=train_size, epochs=APP_EPOCHS[name], verbose=0))
    print(f"   trained {name} at {train_size}: {trained.test_accuracy:.1%} test", file=sys.stderr, flush=True)
    if size == train_size:
        return trained.model_path, trained.model_path
    small = load_keras(trained.model_path)
    big = zoo.build(name, input_size=size)
    big.set_weights(small.get_weights())
    path = work / f"{name}-{size}.keras"
    big.save(str(path))
    write_sidecar(path, read_sidecar(trained.model_path))
    return trained.model_path, path


def int8_of(
    keras_path: Path, work: Path, tag: str, data: str, evaluate: bool, samples: int | None = None
) -> tuple[Path, Any]:
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.quantize import QuantizeConfig, quantize

    fp32 = export_keras(keras_path, work / f"{tag}.onnx", ExportConfig(parity_samples=16, check=False)).path
    report = quantize(
        fp32,
        None,
        QuantizeConfig.int8(calibration_samples=samples),
        calibration=data,
        eval_data=data if evaluate else None,
        measure_speed=False,
    )
    return fp32, report


def tuned_settings(int8: Path, cores: int, mode: str) -> Any:
    from edgecnn.bench.tune import TuneConfig, tune

    result = tune(int8, TuneConfig(cores=cores, seconds=0.2, rounds=3, modes=(mode,)), write=False)
    return result.tuning.latency if mode == "latency" else result.tuning.throughput


def row_key(spec: str) -> tuple[str, bool, str]:
    """``--models`` entry -> (net, random init, the row's name): ``efficientnetb0:random`` is a speed-only row."""
    name, _, variant = spec.partition(":")
    if variant not in ("", "random"):
        raise SystemExit(f"--models: {spec!r}: the only variant is NAME:random")
    return name, variant == "random", f"{name} (random init)" if variant else name


def measure(spec: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from edgecnn.bench import Baseline, BenchConfig, run_benchmark
    from edgecnn.bench.ops import count_macs
    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.runtime.engine import EngineSettings

    name, random_init, _ = row_key(spec)
    entry: dict[str, Any] = {"application": is_application(name)}
    acc_report: Any = None
    if entry["application"] and (args.speed_only or name in EXTRA or random_init):
        keras_path, data = random_application(name, work, args.size), "mnist5k"
        tag = f"{name}-{args.size}-random"
        fp32, speed_report = int8_of(keras_path, work, tag, data, False, args.calib_samples)
        entry["input"] = args.size
        entry["accuracy_at"] = None
    elif entry["application"]:
        small, big = application_models(name, work, args.train_size, args.size)
        _, acc_report = int8_of(small, work, f"{name}-{args.train_size}", "mnist5k", evaluate=True)
        fp32, speed_report = int8_of(big, work, f"{name}-{args.size}", "mnist5k", evaluate=False)
        keras_path, data = big, "mnist5k"
        entry["input"] = args.size
        entry["accuracy_at"] = args.train_size
    else:
        keras_path, data = keras_model(name, work)
        fp32, acc_report = int8_of(keras_path, work, name, data, evaluate=True)
        speed_report = acc_report
        entry["input"] = "×".join(map(str, read_metadata(fp32).input.sample_shape))
        entry["accuracy_at"] = None
    entry["accuracy"] = None if acc_report is None else _accuracy(acc_report)
    entry["macs"] = count_macs(fp32).macs
    entry["anatomy"] = speed_report.anatomy
    entry["simplified"] = speed_report.quantization.get("simplified")
    entry["run"] = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}
    int8 = speed_report.path
    for label, (batch, threads) in SETTINGS.items():
        mode = "latency" if batch == 1 else "throughput"
        default = EngineSettings(threads=threads)
        tuned = tuned_settings(int8, threads, mode)
        engines = (default,) if tuned == default else (default, tuned)
        cfg = BenchConfig(
            batch_sizes=(batch,),
            threads=threads,
            engines=engines,
            warmup=3,
            duration_s=args.duration,
            # batch 1: blocks of >= 5 calls; batch 32 (~0.3 s a call here): one call, so that the runners
            # alternate every ~0.3 s — blocks of 5 left one block per runner at --duration 1, and this host's
            # speed drifts by 10-40% within a minute (same settings measured 100-155 images/s in one tune)
            block=5 if batch == 1 else 1,
            block_s=0.3,
            keras_model=str(keras_path),
            calibration=data,
            baselines=(Baseline.ort_int8, Baseline.tflite),
            tuned=False,
        )
        repeats = []
        for _ in range(args.repeat):  # the same runners again: how far one run's ratios are from the next's
            res = run_benchmark([int8], cfg).to_dict()
            rows = res["steady_state"]
            ours = [r for r in rows if r["name"].startswith(int8.name)]
            by_name = {r["name"]: r for r in rows}
            repeats.append(
                {
                    "default": _row(ours[0]),
                    "tuned": _row(ours[-1]),
                    "tuned_settings": tuned.describe(),
                    PLAIN: _row(by_name[PLAIN]),
                    TFLITE: _row(by_name[TFLITE]) if TFLITE in by_name else None,
                }
            )
            print(f"   {label}: {_summary(repeats[-1], batch)}", file=sys.stderr, flush=True)
        entry[label] = repeats[0]  # the row is the first measurement; the others only give its spread
        if len(repeats) > 1:
            entry[label]["repeats"] = [
                {
                    "tuned_vs_tflite_int8": ratio(r["tuned"], r[TFLITE], batch),
                    "tuned_vs_plain": ratio(r["tuned"], r[PLAIN], batch),
                }
                for r in repeats
            ]
        entry["_env"] = res["environment"]
    return entry


def _accuracy(acc_report: Any) -> dict[str, Any]:
    a = acc_report.accuracy
    return {
        "fp32": a["reference_accuracy"],
        "int8": a["candidate_accuracy"],
        "delta_pp": a["accuracy_delta_pp"],
        "agreement": a["top1_agreement"],
        "within_bars": bool(a["passed"]),
        "config": acc_report.config.describe(),
        "fallback": [t["config"] for t in acc_report.quantization.get("fallback", [])],
    }


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"p50_ms": r["p50_ms"], "throughput": r["throughput"], "n": r["n"], "engine": r.get("engine")}


def ratio(ours: dict[str, Any], theirs: dict[str, Any] | None, batch: int) -> float | None:
    """> 1: ours faster (batch 1: p50 latency ratio; batch 32: throughput ratio)."""
    if theirs is None:
        return None
    if batch == 1:
        return theirs["p50_ms"] / ours["p50_ms"]
    return ours["throughput"] / theirs["throughput"]


def _summary(s: dict[str, Any], batch: int) -> str:
    d, t = ratio(s["default"], s[PLAIN], batch), ratio(s["tuned"], s[PLAIN], batch)
    f = ratio(s["tuned"], s[TFLITE], batch)
    return f"default {d:.2f}× plain, tuned {t:.2f}× plain, tuned {f:.2f}× tflite int8" if f else f"{d:.2f}×/{t:.2f}×"


def main() -> None:
    from edgecnn import zoo
    from edgecnn.bench.ops import measure_peak

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(n for n in zoo.names() if n not in SKIP))
    parser.add_argument("--size", type=int, default=224, help="input of the keras.applications nets for speed")
    parser.add_argument("--train-size", type=int, default=32, help="input they train (and are scored) at")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per runner and setting")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--render", type=Path, help="rewrite the Markdown and PNG from an earlier JSON")
    parser.add_argument("--speed-only", action="store_true", help="application nets: random init, no accuracy")
    parser.add_argument(
        "--calib-samples",
        type=int,
        help="with --speed-only: calibration samples (default: quantize's; fewer: less memory)",
    )
    parser.add_argument("--merge", action="store_true", help="update these rows in --out's JSON, keep the others")
    parser.add_argument("--repeat", type=int, default=1, help="measure each setting N times (the spread of the ratios)")
    args = parser.parse_args()
    if args.render:
        from edgecnn._fs import write_text_atomic

        payload = json.loads(args.render.read_text())
        write_text_atomic(args.out / "int8_matrix.md", render(payload, args))
        plot(payload, args.out / "int8_matrix.png")
        return
    t_start = time.time()
    peaks = {str(t): measure_peak(threads=t, seconds=2.0).to_dict() for t in (1, 2)}
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="edgecnn-int8-"))
    partial = args.out / ".int8_matrix.partial.json"
    try:
        for spec in args.models.split(","):
            print(f"== {spec}", file=sys.stderr, flush=True)
            results[row_key(spec)[2]] = measure(spec, args, work)
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({"peaks": peaks, "results": results}, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(results, peaks, args, time.time() - t_start)
    partial.unlink(missing_ok=True)


def write(results: dict[str, Any], peaks: dict[str, Any], args: argparse.Namespace, seconds: float) -> None:
    from edgecnn._fs import write_text_atomic

    env = next(iter(results.values()))["_env"]
    summary = {}
    for m, e in results.items():
        summary[m] = {}
        for label, (batch, threads) in SETTINGS.items():
            s = e[label]
            per_s = batch / (s["tuned"]["p50_ms"] / 1e3) if batch == 1 else s["tuned"]["throughput"]
            tfl = s[TFLITE]
            tfl_per_s = None if tfl is None else (batch / (tfl["p50_ms"] / 1e3) if batch == 1 else tfl["throughput"])
            peak = threads * peaks["1"]["int8_gops"] * 1e9  # per-core peak × threads
            summary[m][label] = {
                "default_vs_plain": ratio(s["default"], s[PLAIN], batch),
                "tuned_vs_plain": ratio(s["tuned"], s[PLAIN], batch),
                "tuned_vs_tflite_int8": ratio(s["tuned"], tfl, batch),
                "default_vs_tflite_int8": ratio(s["default"], tfl, batch),
                "peak_fraction_edgecnn": 2 * e["macs"] * per_s / peak,
                "peak_fraction_tflite": None if tfl_per_s is None else 2 * e["macs"] * tfl_per_s / peak,
            }
    payload = {
        "machine": machine_name(),
        "cpu": env["cpu"],
        "cores": env["cpu_count"],
        "onnxruntime": env["onnxruntime_packages"],
        "command": "python " + " ".join(sys.argv),
        "seconds": seconds,
        "peaks": peaks,
        "summary": summary,
        "results": {m: {k: v for k, v in e.items() if k != "_env"} for m, e in results.items()},
    }
    existing = args.out / "int8_matrix.json"
    if args.merge and existing.exists():
        payload = merged(json.loads(existing.read_text()), payload)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "int8_matrix.json", json.dumps(payload, indent=2, default=str) + "\n")
    write_text_atomic(args.out / "int8_matrix.md", render(payload, args))
    plot(payload, args.out / "int8_matrix.png")
    print(f"wrote {args.out}/int8_matrix.{{json,md,png}}", file=sys.stderr)


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old``'s payload with ``new``'s rows replacing or joining it; each row keeps the run that measured it,
    and a row measured without accuracy (``--speed-only``) keeps the accuracy an earlier run scored."""
    first_run = {"command": old["command"], "seconds": old["seconds"], "models": list(old["results"])}
    first_run["int8_gops"] = old["peaks"]["1"]["int8_gops"]
    runs = old.get("runs") or [first_run]
    for e in old["results"].values():
        e.setdefault("run", {"command": old["command"]})
    results, summary = dict(old["results"]), dict(old["summary"])
    for m, e in new["results"].items():
        if e.get("accuracy") is None and (results.get(m) or {}).get("accuracy"):
            e["accuracy"] = {**results[m]["accuracy"], "from": results[m]["run"]["command"]}
            e["accuracy_at"] = results[m].get("accuracy_at")
        if m in summary:  # the ratios it replaces stay in the JSON (runs on a shared machine differ)
            e["replaced"] = {"run": results[m]["run"]["command"], "summary": summary[m]}
        results[m], summary[m] = e, new["summary"][m]
    run = {"command": new["command"], "seconds": new["seconds"], "models": list(new["results"])}
    run["int8_gops"] = new["peaks"]["1"]["int8_gops"]
    return {**new, "runs": [*runs, run], "results": results, "summary": summary}


def _x(v: float | None) -> str:
    return "—" if v is None else f"**{v:.2f}×**" if v < 1.0 else f"{v:.2f}×"


def _spread(setting: dict[str, Any]) -> str:
    """`` (repeats 0.95–1.04×)`` when the setting was measured more than once (``--repeat``)."""
    got = [r["tuned_vs_tflite_int8"] for r in setting.get("repeats", []) if r["tuned_vs_tflite_int8"] is not None]
    return f" (repeats {min(got):.2f}–{max(got):.2f}×)" if len(got) > 1 else ""


def _commands(payload: dict[str, Any]) -> str:
    runs = payload.get("runs")
    if not runs:
        return f"Command: `{payload['command']}` ({payload['seconds'] / 60:.1f} min); "
    text = "; ".join(
        f"`{r['command']}` ({r['seconds'] / 60:.1f} min, INT8 peak {r.get('int8_gops', 0):.0f} GOP/s per core: "
        f"{', '.join(r['models'])})"
        for r in runs
    )
    return (
        f"Runs merged (each row from the last run that names it, ratios only within a run, % of peak against that "
        f"run's peak): {text}; "
    )


def render(payload: dict[str, Any], args: argparse.Namespace) -> str:
    p1 = payload["peaks"]["1"]
    lines = [
        f"# INT8 against its yardsticks on {payload['cpu']} ({payload['cores']} cores)",
        "",
        _commands(payload)
        + f"onnxruntime {', '.join(payload['onnxruntime'])}. INT8 peak (large U8S8 GEMM through onnxruntime): "
        f"{p1['int8_gops']:.0f} GOP/s per core; % of peak = 2 × MACs × images/s ÷ (threads × that).",
        "",
        "Runners, interleaved in one run per setting, all calibrated on the same tensors: **default** = edgecnn's "
        "INT8 with the engine's defaults (one session, the setting's threads); **tuned** = the same model with "
        "`edgecnn tune`'s winner for that thread budget; **plain** = `quantize_static` U8S8 QDQ per-channel "
        f"MinMax of the same FP32 export, bare `InferenceSession`; **tflite** = TFLite full-integer INT8 "
        f"(XNNPACK). keras.applications nets at {args.size}×{args.size}. Ratios > 1: edgecnn faster; below 1 in bold.",
        "",
    ]
    for label, (batch, _) in SETTINGS.items():
        metric = "p50 ms" if batch == 1 else "images/s"
        key = "p50_ms" if batch == 1 else "throughput"
        fmt = "{:,.3f}" if batch == 1 else "{:,.0f}"
        lines += [
            f"## {label} ({metric})",
            "",
            "| model | input | MMACs | default | tuned | plain | tflite | default ÷ plain | tuned ÷ plain "
            "| tuned ÷ tflite | % peak edgecnn | % peak tflite | tuned settings |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for m, e in payload["results"].items():
            s, r = e[label], payload["summary"][m][label]
            cells = [fmt.format(s[k][key]) if s.get(k) else "—" for k in ("default", "tuned", PLAIN, TFLITE)]
            pct = [
                "—" if v is None else f"{100 * v:.0f}%" for v in (r["peak_fraction_edgecnn"], r["peak_fraction_tflite"])
            ]
            size = f"{e['input']}²" if e["application"] else ""
            lines.append(
                f"| {m} | {size} | {e['macs'] / 1e6:,.1f} | " + " | ".join(cells) + f" | {_x(r['default_vs_plain'])} | "
                f"{_x(r['tuned_vs_plain'])} | {_x(r['tuned_vs_tflite_int8'])}{_spread(s)} | {' | '.join(pct)} | "
                f"{s['tuned_settings']} |"
            )
        lines.append("")
    lines += [
        "## INT8 accuracy against FP32 (edgecnn's defaults; 1,000 test images)",
        "",
        "| model | scored at | FP32 acc | INT8 acc | Δ pp | agreement | within bars | config kept |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for m, e in payload["results"].items():
        a = e["accuracy"]
        if a is None:
            lines.append(f"| {m} | — (random init, speed only) | — | — | — | — | — | — |")
            continue
        at = f"{e['accuracy_at']}² (mnist5k, zoo defaults)" if e["application"] else "its data, 1 epoch"
        kept = a["config"]
        if a["fallback"]:  # the ladder ran: it kept the rung that held, or the default when none did
            tried = len(a["fallback"]) - 1
            kept += (
                f" (the default missed; rung {tried} of the fallback held)"
                if a["within_bars"]
                else (f" (default kept: none of {tried} fallback rungs held)")
            )
        lines.append(
            f"| {m} | {at} | {100 * a['fp32']:.1f}% | {100 * a['int8']:.1f}% | {a['delta_pp']:+.2f} | "
            f"{100 * a['agreement']:.1f}% | {'yes' if a['within_bars'] else 'NO'} | {kept}"
            + (" (scored by an earlier run) |" if a.get("from") else " |")
        )
    lines += ["", "## What runs in INT8 (keras.applications nets, onnxruntime's optimised graph)", ""]
    for m, e in payload["results"].items():
        if not e["application"]:
            continue
        parts = [
            f"{r['role']} {r['int8']}/{r['nodes']}" + (f" ({r['float']} float)" if r["float"] else "")
            for r in e["anatomy"]
        ]
        lines.append(f"- **{m}**: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(payload["results"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.42 * len(models) + 2), sharey=True)
    y = np.arange(len(models))
    for ax, (label, _) in zip(axes, SETTINGS.items(), strict=True):
        for j, (key, colour, text) in enumerate(
            (("tuned_vs_plain", "tab:blue", "÷ plain onnxruntime"), ("tuned_vs_tflite_int8", "tab:orange", "÷ TFLite"))
        ):
            vals = [payload["summary"][m][label][key] or 0.0 for m in models]
            ax.barh(y + 0.4 * j, vals, height=0.4, color=colour, label=f"edgecnn tuned {text}")
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_title(label)
        ax.set_xlabel("speed ratio (> 1: edgecnn faster)")
    axes[0].set_yticks(y + 0.2, models)
    axes[0].invert_yaxis()
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"edgecnn INT8 vs plain onnxruntime and TFLite INT8 — {payload['cpu']} ({payload['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
