"""The local pipeline vs Ray Data with 1 and 2 actors (1 CPU each) on the same folder, interleaved, and
how many rows per second the driver's writer absorbs (so: how many actors one driver can feed).

    nice -n 10 python benchmarks/ray_vs_local.py [--count 10000] [--rounds 2]

One local Ray cluster (loopback, token auth with a fresh token, no dashboard) is started once and reused,
so the Ray rows pay for their actor pool's start (model shipped, sessions opened) but not for the
cluster's. Each round runs local, Ray×1, Ray×2 back to back on the same files (the OS page cache is warm
for all). Reported per run: end-to-end images/s (what a user waits for) and steady images/s (from the
first row to the last: the pool's start excluded). Same model and images as folder_scale.py.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from folder_scale import ROOT, make_folder, mnist_cnn_onnx  # this folder is on sys.path when run as a script


class Clock:
    """First-row and last-row times, fed by on_row."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.rows = 0

    def __call__(self, _row: object) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.rows += 1

    def steady(self) -> float:
        span = self.last - (self.first or self.last)
        return (self.rows - 1) / span if span > 0 else 0.0


def one_run(kind: str, model: Path, root: Path, out: Path) -> dict[str, Any]:
    from edgecnn import Classifier
    from edgecnn.cluster import RayConfig, classify_on_ray
    from edgecnn.runtime.folder import classify_to_file

    clock = Clock()
    t = time.perf_counter()
    if kind == "local":
        clf = Classifier(model, provider="cpu")
        summary = classify_to_file(clf, root, out, batch_size=32, top_k=3, on_row=clock)
    else:
        actors = int(kind.split("x")[1])
        config = RayConfig("auto", actors=actors, cpus_per_actor=1)
        summary = classify_on_ray(model, root, out, config, batch_size=32, top_k=3, on_row=clock)
    wall = time.perf_counter() - t
    out.unlink()
    return {
        "kind": kind,
        "rows": summary.total,
        "seconds": round(wall, 2),
        "images_per_second": round(summary.total / wall, 1),
        "steady_images_per_second": round(clock.steady(), 1),
        "cluster": summary.cluster,
    }


def writer_rows_per_second(work: Path, n: int = 20_000) -> dict[str, float]:
    """What the driver's side costs per row: ResultWriter alone, and Ray's row decoding plus the writer."""
    from edgecnn.cluster.actors import decode_row, encode_row
    from edgecnn.runtime.results import ResultWriter
    from edgecnn.runtime.rows import ClassifyRow

    rows = [
        ClassifyRow(f"/shared/photos/{i // 1000:04d}/{i % 1000:04d}.png", "7", 0.912345, (("7", 0.91), ("1", 0.05)))
        for i in range(n)
    ]
    encoded = [encode_row(r) for r in rows]
    result = {}
    for flush_every in (32, 256):
        t = time.perf_counter()
        with ResultWriter(work / f"w{flush_every}.csv", flush_every=flush_every) as w:
            for text in encoded:
                w.write(decode_row(text))
            w.commit()
        result[f"decode_and_write_fsync_every_{flush_every}"] = round(n / (time.perf_counter() - t))
    return result


def start_ray() -> Any:
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))  # a fresh token, not written to ~/.ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="WARNING",
    )
    return ray


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        "# Ray Data actors vs the local pipeline (one machine)",
        "",
        f"Machine: {report['machine']}; Ray {report['ray']}; onnxruntime {report['onnxruntime']}; {report['date']}.",
        f"Command: `{report['command']}`; {report['count']:,} images (28×28 PNG), mnist-cnn architecture.",
        "",
        "| run | images/s end-to-end (median) | steady images/s (median) | vs local (end-to-end) | vs local (steady) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind in ("local", "ray x1", "ray x2"):
        k = s[kind]
        lines.append(
            f"| {kind} | {k['images_per_second']:,} | {k['steady_images_per_second']:,} "
            f"| {k['vs_local']:.2f}× | {k['steady_vs_local']:.2f}× |"
        )
    lines += [
        "",
        "Every run, in order: " + "; ".join(f"{r['kind']} {r['images_per_second']:,}/s" for r in report["runs"]) + ".",
        "",
        "Driver-side rows/s (Ray's row decoding + ResultWriter, CSV): "
        + ", ".join(f"{k} {v:,}" for k, v in report["driver_rows_per_second"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    import onnxruntime as ort

    from edgecnn._fs import write_text_atomic
    from edgecnn.runtime.environment import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--machine", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-rayvs-"))
    try:
        root = work / "photos"
        make_folder(root, args.count)
        model = mnist_cnn_onnx(work / "mnist-cnn.onnx")
        ray = start_ray()
        runs = []
        for _ in range(args.rounds):
            for kind in ("local", "ray x1", "ray x2"):
                runs.append(one_run(kind.replace(" ", ""), model, root, work / "r.csv"))
                runs[-1]["kind"] = kind
                print(json.dumps(runs[-1]), flush=True)
        ray.shutdown()
        driver = writer_rows_per_second(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {}
    for kind in ("local", "ray x1", "ray x2"):
        mine = [r for r in runs if r["kind"] == kind]
        summary[kind] = {
            "images_per_second": round(statistics.median(r["images_per_second"] for r in mine), 1),
            "steady_images_per_second": round(statistics.median(r["steady_images_per_second"] for r in mine), 1),
        }
    for k in summary.values():
        k["vs_local"] = k["images_per_second"] / summary["local"]["images_per_second"]
        k["steady_vs_local"] = k["steady_images_per_second"] / summary["local"]["steady_images_per_second"]
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": args.machine or f"{cpu_model()}, {os.cpu_count()} vCPUs",
        "ray": ray.__version__,
        "onnxruntime": ort.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "count": args.count,
        "runs": runs,
        "summary": summary,
        "driver_rows_per_second": driver,
    }
    print(json.dumps(summary, indent=2), json.dumps(driver, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "ray_vs_local.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(args.out / "ray_vs_local.md", markdown(report))


if __name__ == "__main__":
    main()
