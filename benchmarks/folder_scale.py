"""Folder classification at scale on one machine: a million small files, memory flat, one row per file.

    nice -n 10 python benchmarks/folder_scale.py [--count 1000000] [--keep DIR]

Generates COUNT 28×28 greyscale PNGs (1,000 per subfolder; 256 distinct images written round-robin, so
generation is disk-bound, not encoder-bound) after checking free disk space and inodes, then runs the
local pipeline (`classify_to_file`, the CLI's defaults: batch 32, top-3, CSV with an fsync per batch) on
the mnist-cnn architecture (DESIGN.md's zoo row, 93,322 parameters, random weights built with onnx.helper:
speed does not depend on them). Records images/s, the process's peak RSS, RSS sampled against rows
written (growth in MB per 100,000 files: the pipeline streams the walk, so it should be ~0), and checks
the output against a second walk in lockstep: exactly one row per file, in walk order.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PER_FOLDER = 1000
BYTES_PER_FILE = 4096 + 1024  # one filesystem block per small PNG, plus directory entries
PAGE = os.sysconf("SC_PAGE_SIZE")


def mnist_cnn_onnx(path: Path, seed: int = 0) -> Path:
    """The zoo's mnist-cnn (Conv 32, Pool, Conv 64, Pool, Conv 64, Dense 64, Dense 10) with random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec
    from edgecnn.runtime.metadata import embed_metadata as embed

    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array(rng.normal(0, (2 / fan_in) ** 0.5, shape).astype(np.float32), name)

    inits = [
        weight("c1", 32, 1, 3, 3),
        weight("c2", 64, 32, 3, 3),
        weight("c3", 64, 64, 3, 3),
        weight("d1", 576, 64),
        weight("d2", 64, 10),
    ]
    inits += [numpy_helper.from_array(np.zeros(n, np.float32), f"b{i}") for i, n in enumerate((32, 64, 64, 64, 10))]
    nodes = [
        helper.make_node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x0", "c1", "b0"], ["x1"]),
        helper.make_node("Relu", ["x1"], ["x2"]),
        helper.make_node("MaxPool", ["x2"], ["x3"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["x3", "c2", "b1"], ["x4"]),
        helper.make_node("Relu", ["x4"], ["x5"]),
        helper.make_node("MaxPool", ["x5"], ["x6"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["x6", "c3", "b2"], ["x7"]),
        helper.make_node("Relu", ["x7"], ["x8"]),
        helper.make_node("Transpose", ["x8"], ["x9"], perm=[0, 2, 3, 1]),  # Keras flattens NHWC
        helper.make_node("Flatten", ["x9"], ["x10"]),
        helper.make_node("Gemm", ["x10", "d1", "b3"], ["x11"]),
        helper.make_node("Relu", ["x11"], ["x12"]),
        helper.make_node("Gemm", ["x12", "d2", "b4"], ["x13"]),
        helper.make_node("Softmax", ["x13"], ["output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mnist-cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgecnn-bench")
    model.ir_version = 8
    meta = ModelMetadata(
        labels=tuple(str(d) for d in range(10)),
        input=InputSpec("input", Layout.NHWC, 28, 28, 1),
        preprocess=PreprocessSpec(color_mode=ColorMode.L),
        output=OutputKind("softmax"),
    )
    embed(model, meta)
    onnx.save_model(model, str(path))
    return path


def check_space(folder: Path, count: int) -> None:
    st = os.statvfs(folder)
    need = count * BYTES_PER_FILE
    free = st.f_bavail * st.f_frsize
    if free < 2 * need or st.f_favail < count + count // PER_FOLDER + 1000:
        sys.exit(
            f"{folder}: {free / 1e9:.1f} GB and {st.f_favail:,} inodes free; {count:,} files need "
            f"~{need / 1e9:.1f} GB (2x margin) and {count:,} inodes: use a smaller --count"
        )


def make_folder(root: Path, count: int, seed: int = 0) -> float:
    """COUNT small PNGs under ROOT/NNNN/; returns seconds taken."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    variants = []
    for _ in range(256):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(buf, "PNG")
        variants.append(buf.getvalue())
    t = time.perf_counter()
    for i in range(count):
        folder = root / f"{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{i % PER_FOLDER:04d}.png", "wb") as fh:
            fh.write(variants[i % len(variants)])
    return time.perf_counter() - t


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


class RssSampler:
    """RSS against rows written, sampled from a thread every 0.25 s."""

    def __init__(self) -> None:
        self.rows = 0
        self.samples: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append((self.rows, rss_mb()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth_mb_per_100k(self) -> float:
        """Slope of RSS over rows, from 10% of the rows on (after the pools and the session warmed up)."""
        total = self.samples[-1][0] if self.samples else 0
        pts = [(r, m) for r, m in self.samples if r >= total * 0.1]
        if len(pts) < 3 or pts[-1][0] == pts[0][0]:
            return 0.0
        slope = np.polyfit([r for r, _ in pts], [m for _, m in pts], 1)[0]
        return float(slope * 100_000)


def verify(root: Path, out: Path) -> dict[str, int]:
    """The output against a second walk, in lockstep (O(1) memory): one row per file, in walk order."""
    from edgecnn.runtime.folder import walk_files
    from edgecnn.runtime.results import csv_unescape

    walk = walk_files(root)
    rows = errors = mismatched = 0
    with open(out, encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            expected = next(walk, (None, None))[0]
            rows += 1
            errors += bool(rec["error"])
            mismatched += csv_unescape(rec["path"]) != expected
    leftover = sum(1 for _ in walk)
    return {"rows": rows, "error_rows": errors, "rows_not_in_walk_order": mismatched, "files_without_row": leftover}


def run(count: int, work: Path) -> dict[str, object]:
    from edgecnn import Classifier
    from edgecnn.runtime.folder import classify_to_file

    check_space(work, count)
    root = work / "photos"
    gen_s = make_folder(root, count)
    model = mnist_cnn_onnx(work / "mnist-cnn.onnx")
    clf = Classifier(model, provider="cpu")
    rss_before = rss_mb()
    out = work / "results.csv"
    with RssSampler() as sampler:

        def on_row(_row: object) -> None:
            sampler.rows += 1

        summary = classify_to_file(clf, root, out, batch_size=32, top_k=3, on_row=on_row)
    check = verify(root, out)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "count": count,
        "generate_seconds": round(gen_s, 1),
        "classify_seconds": round(summary.seconds, 1),
        "images_per_second": round(summary.images_per_second, 1),
        "rows_written": summary.total,
        "rss_mib_before_classify": round(rss_before, 1),
        "rss_mib_end": round(sampler.samples[-1][1], 1) if sampler.samples else None,
        "peak_rss_mib": round(peak_mib, 1),
        "rss_growth_mib_per_100k_files": round(sampler.growth_mb_per_100k(), 2),
        "rss_samples": sampler.samples[:: max(1, len(sampler.samples) // 50)],
        "check": check,
        "one_row_per_file": check["rows"] == count and not check["rows_not_in_walk_order"],
    }


def markdown(report: dict[str, object]) -> str:
    r = report["result"]
    assert isinstance(r, dict)
    return "\n".join(
        [
            "# Folder classification at scale (local pipeline)",
            "",
            f"Machine: {report['machine']}; onnxruntime {report['onnxruntime']}; {report['date']}.",
            f"Command: `{report['command']}`",
            "",
            "| files | generate | classify | images/s | rows written | one row per file | peak RSS | RSS growth |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {r['count']:,} | {r['generate_seconds']} s | {r['classify_seconds']} s | {r['images_per_second']:,} "
            f"| {r['rows_written']:,} | {'yes' if r['one_row_per_file'] else 'NO'} | {r['peak_rss_mib']} MiB "
            f"| {r['rss_growth_mib_per_100k_files']} MiB per 100,000 files |",
            "",
            "Model: mnist-cnn architecture (93,322 parameters, random weights), 28×28 greyscale PNGs, 1,000 per",
            "folder; the CLI's defaults (batch 32, top-3, CSV, fsync per batch). RSS growth is the slope of RSS",
            "against rows written after the first 10% of rows (samples every 0.25 s, in the JSON).",
            "",
        ]
    )


def main() -> None:
    import onnxruntime as ort

    from edgecnn._fs import write_text_atomic
    from edgecnn.runtime.environment import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="Where to generate (default: a temp folder).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--machine", default=None, help="Machine name for the report (default: CPU model).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-scale-", dir=args.work))
    try:
        result = run(args.count, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": args.machine or f"{cpu_model()}, {os.cpu_count()} vCPUs",
        "onnxruntime": ort.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "result": result,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "folder_scale.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(args.out / "folder_scale.md", markdown(report))


if __name__ == "__main__":
    main()
