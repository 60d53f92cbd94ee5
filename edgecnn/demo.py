"""The main job end to end on the embedded default, offline: train mnist-cnn on mnist5k, export,
prove parity, quantize, measure, and classify a sample folder. ``edgecnn demo`` runs it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class DemoReport:
    """One line per step, plus the files it made."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(s["ok"] for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "steps": self.steps, "files": self.files}


def write_sample_folder(folder: Path, n: int = 30, seed: int = 0) -> Path:
    """Real held-out digits as PNG files (the test split), plus one corrupt file to show an error row."""
    from PIL import Image

    from edgecnn.data import load_source, sample_balanced

    ds = sample_balanced(load_source("mnist5k", split="test"), n, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (x, y) in enumerate(zip(ds.x, ds.y, strict=True)):
        Image.fromarray(x[..., 0]).save(folder / f"digit_{i:03d}_label{y}.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def run_demo(
    out: str | Path = "runs/demo",
    *,
    arch: str = "mnist-cnn",
    data: str = "mnist5k",
    epochs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run every step; a failed step is recorded (and later ones that need it are skipped)."""
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.parity import run_parity
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.folder import classify_to_file
    from edgecnn.train import TrainConfig, train

    out = Path(out)
    say = progress or (lambda _msg: None)
    rep = DemoReport()

    def step(name: str, ok: bool, detail: str, seconds: float) -> None:
        rep.steps.append({"step": name, "ok": ok, "detail": detail, "seconds": round(seconds, 1)})

    t0 = time.perf_counter()
    say(f"1/6 training {arch} on {data} …")
    trained = train(arch, out, TrainConfig(data=data, epochs=epochs))
    step(
        "train",
        trained.test_accuracy >= 0.97,
        f"{arch} on {data}: test accuracy {trained.test_accuracy:.2%}",
        time.perf_counter() - t0,
    )
    rep.files.update({k: v for k, v in trained.artefacts.items()})

    t0 = time.perf_counter()
    say("2/6 exporting to ONNX (tf2onnx) with metadata …")
    onnx_path = out / f"{arch}.onnx"
    exported = export_keras(trained.model_path, onnx_path, ExportConfig(check=False))
    step(
        "export",
        exported.passed,
        f"{onnx_path} ({exported.size_bytes / 1024:.0f} KiB), {exported.parity.summary()}",
        time.perf_counter() - t0,
    )
    rep.files["onnx"] = str(onnx_path)

    t0 = time.perf_counter()
    say("3/6 parity: Keras vs ONNX on the 1,000 held-out digits …")
    parity = run_parity(trained.model_path, onnx_path, data)
    step("parity fp32", parity.passed, parity.summary(), time.perf_counter() - t0)

    t0 = time.perf_counter()
    say("4/6 quantizing to INT8 (static, calibrated on training digits) and FP16 …")
    variants = {"fp32": onnx_path}
    try:
        from edgecnn.quantize import QuantizeConfig, quantize

        for mode, cfg in (("int8", QuantizeConfig.int8()), ("fp16", QuantizeConfig.fp16())):
            q = quantize(onnx_path, None, cfg, calibration=data if mode == "int8" else None, measure_speed=False)
            variants[mode] = q.path
            qp = run_parity(trained.model_path, q.path, data)
            step(
                f"quantize {mode}",
                qp.passed,
                f"{q.path.name}: {q.size_ratio:.1f}× smaller, {qp.summary()}",
                time.perf_counter() - t0,
            )
            t0 = time.perf_counter()
    except ImportError as err:  # quantize not installed in this build
        step("quantize", False, f"skipped: {err}", 0.0)

    t0 = time.perf_counter()
    say("5/6 measuring latency (batch 1) and throughput (batch 32) …")
    rows = []
    for variant, path in variants.items():
        lat = quick_latency(Classifier(path, provider="cpu"))
        rows.append(f"{variant}: p50 {lat['p50_ms']:.3f} ms, {lat['throughput']:.0f} img/s @32")
    step("bench", True, "; ".join(rows), time.perf_counter() - t0)

    t0 = time.perf_counter()
    say("6/6 classifying a sample folder …")
    sample = write_sample_folder(out / "sample")
    best = Classifier(variants.get("int8", onnx_path))
    summary = classify_to_file(best, sample, out / "sample_results.csv")
    step(
        "classify",
        summary.total == summary.ok + summary.errors and summary.ok == summary.total - 1,
        f"{summary.total} files: {summary.ok} classified, {summary.errors} error row(s) → {summary.out}",
        time.perf_counter() - t0,
    )
    rep.files["results"] = str(summary.out)
    return rep


def quick_latency(clf: Any, seconds: float = 0.5) -> dict[str, float]:
    """A short latency/throughput probe (the full harness is `edgecnn bench`)."""
    import numpy as np

    spec = clf.metadata.input
    x1 = np.random.default_rng(0).random((1, *spec.sample_shape), dtype=np.float32)
    x32 = np.repeat(x1, 32, axis=0)
    clf.predict_proba(x1)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t = time.perf_counter()
        clf.predict_proba(x1)
        times.append(time.perf_counter() - t)
    clf.predict_proba(x32)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds or n < 3:
        clf.predict_proba(x32)
        n += 1
    return {"p50_ms": float(np.median(times) * 1e3), "throughput": 32 * n / (time.perf_counter() - t)}
