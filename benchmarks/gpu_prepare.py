"""Prepare the GPU check on the CPU machine: models, golden outputs and (optionally) the wheel parts.

The GPU machine has no TensorFlow, so everything that needs it happens here, with edgecnn's own library
functions: each model is trained for one epoch on real digits that load offline (as in ``zoo_matrix.py``),
exported with ``export_keras`` (which proves FP32 parity with Keras on the CPU), quantized to INT8
(static U8S8 QDQ, calibrated on the train split) and FP16 with ``quantize``, and recorded as golden
``.npz`` files: the test-split pixels (uint8), their labels, and the probabilities that Keras and
onnxruntime's CPU provider give for every variant. ``benchmarks/gpu_check.py`` reads them.

    python benchmarks/gpu_prepare.py                         # models into .gpu_check/models (~5 min, 2 cores)
    python benchmarks/gpu_prepare.py --models mnist-cnn      # one model only
    python benchmarks/gpu_prepare.py --no-models --split-wheel W.whl --deps   # wheel parts + SHA256, pytest wheels

Models: ``mnist-cnn`` (28×28×1, softmax), ``catsdogs-cnn`` (180×180×3, Rescaling inside, sigmoid) and
``mobilenetv2-96`` (``keras.applications.MobileNetV2``, width 0.35, 96×96×3, Rescaling to [-1, 1] inside,
softmax over the ten digits, three epochs). Everything lands in a git-ignored folder (``/.gpu_check/``),
small enough to travel to the GPU machine with the device tool (≤ 64 MiB a call, with the last wheel part).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_OUT = ROOT / ".gpu_check"
MODELS = ("mnist-cnn", "catsdogs-cnn", "mobilenetv2-96")
SAMPLES = {"mnist-cnn": 1000, "catsdogs-cnn": 500, "mobilenetv2-96": 500}  # test-split images per golden file
PART_BYTES = 60 * 1024 * 1024  # the device tool carries ≤ 64 MiB a call, working tree included


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_wheel(wheel: Path, out: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """``split -b 60M`` in Python: WHEEL.part-aa, -ab, … plus WHEEL.sha256 (of the whole wheel)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{wheel.name}.part-*"):
        old.unlink()
    parts = []
    with open(wheel, "rb") as fh:
        for i in range(10_000):
            chunk = fh.read(part_bytes)
            if not chunk:
                break
            suffix = chr(ord("a") + i // 26) + chr(ord("a") + i % 26)
            part = out / f"{wheel.name}.part-{suffix}"
            part.write_bytes(chunk)
            parts.append(part)
    (out / f"{wheel.name}.sha256").write_text(f"{sha256(wheel)}  {wheel.name}\n")
    return parts


TEST_DEPS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments")  # the GPU machine may lack pytest
PLOT_DEPS = ("matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing", "python-dateutil", "six")
GPU_TARGET = ("--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
              "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64")  # fmt: skip


def download_deps(out: Path, *, plots: bool = False) -> list[Path]:
    """Wheels for the GPU machine's Python 3.12 (no network there): pytest and, with ``plots``, matplotlib."""
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    pkgs = [*TEST_DEPS, *(PLOT_DEPS if plots else ())]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *GPU_TARGET]
    subprocess.run([*cmd, "-d", str(out), *pkgs], check=True)
    return sorted(out.glob("*.whl"))


def train_mobilenet(work: Path) -> tuple[Any, str]:
    """MobileNetV2 (width 0.35, 0.42 M parameters; no pretrained weights: nothing downloads) at 96×96 with a
    Rescaling to [-1, 1] inside, trained three epochs on mnist5k's digits resized to 96×96 RGB (class = digit):
    ~88% test accuracy (~2 min on 2 cores), where one epoch still answers one class for every image."""
    import keras

    from edgecnn.data import load_source

    inputs = keras.Input((96, 96, 3), name="input")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    net = keras.applications.MobileNetV2(input_tensor=x, weights=None, classes=10, alpha=0.35)
    model = keras.Model(inputs, net.output, name="mobilenetv2-96")
    for layer in model.layers:  # Keras' 0.999 leaves the moving statistics at their init after one short epoch
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    ds = load_source("mnist5k", split="train", image_size=(96, 96), color_mode="RGB")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x.astype(np.float32), ds.y, epochs=3, batch_size=64, verbose=0)  # 1 epoch: a constant answer
    work.mkdir(parents=True, exist_ok=True)
    path = work / "mobilenetv2-96.keras"
    model.save(path)
    return model, "mnist5k"


def prepare_model(name: str, out: Path, work: Path) -> dict[str, Any]:
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.parity.run import load_predictor
    from edgecnn.quantize import QuantizeConfig, quantize
    from edgecnn.runtime.classifier import Classifier, read_metadata
    from edgecnn.runtime.metadata import OutputKind

    t0 = time.perf_counter()
    if name == "mobilenetv2-96":
        model, data = train_mobilenet(work)
        fp32 = export_keras(
            model, out / f"{name}.onnx", ExportConfig(parity_samples=64, labels=tuple(str(i) for i in range(10)))
        )
        keras_path = work / "mobilenetv2-96.keras"
    else:
        from zoo_matrix import keras_model

        keras_path, data = keras_model(name, work)
        fp32 = export_keras(keras_path, out / f"{name}.onnx", ExportConfig(parity_samples=64))
    trained_s = time.perf_counter() - t0
    meta = read_metadata(fp32.path)
    int8 = quantize(
        fp32.path, None, QuantizeConfig.int8(calibration_samples=128), calibration=data, measure_speed=False
    ).path
    fp16 = quantize(fp32.path, None, QuantizeConfig.fp16(), measure_speed=False).path
    variants = {"fp32": fp32.path, "fp16": Path(fp16), "int8": Path(int8)}

    # real test images, balanced over the classes (a split's first N can hold one class only), kept as uint8
    # pixels so the golden file stays small: the GPU side preprocesses them itself, as the engine does
    from edgecnn.data import load_source, sample_balanced
    from edgecnn.runtime.preprocess import pixels_to_input

    spec = meta.input
    full = load_source(
        data, split="test", seed=0, image_size=(spec.height, spec.width), color_mode=meta.preprocess.color_mode.value
    )
    ds = sample_balanced(full, min(SAMPLES[name], len(full)), seed=0)
    pixels = ds.x if ds.x.ndim == 4 else ds.x[..., None]
    x, y = pixels_to_input(pixels, meta), ds.y
    described = f"{data} (test split, {len(ds)} of {len(full)} samples, balanced over {len(np.unique(y))} classes)"
    golden: dict[str, np.ndarray] = {"pixels": pixels.astype(np.uint8), "y": np.asarray(y, np.int64)}
    keras_meta = meta
    if meta.source.get("softmax_appended"):  # the Keras side answers logits
        from dataclasses import replace

        keras_meta = replace(meta, output=OutputKind.logits)
    keras_predict = load_predictor(keras_path, keras_meta)
    golden["prob_keras"] = np.concatenate(
        [np.asarray(keras_predict(x[i : i + 64])) for i in range(0, len(x), 64)]
    ).astype(np.float32)
    for variant, path in variants.items():
        clf = Classifier(path, provider="cpu", tuning=False)
        golden[f"prob_{variant}"] = np.concatenate(
            [clf.predict_proba(x[i : i + 64]) for i in range(0, len(x), 64)]
        ).astype(np.float32)
    golden_path = out / f"{name}.golden.npz"
    np.savez_compressed(golden_path, **golden)
    acc = {k[5:]: float(np.mean(v.argmax(1) == golden["y"])) for k, v in golden.items() if k.startswith("prob_")}
    return {
        "name": name,
        "data": described,
        "n": len(x),
        "input": meta.input.to_dict(),
        "output": meta.output.value,
        "classes": len(meta.labels),
        "variants": {
            v: {"file": p.name, "sha256": sha256(p), "size_bytes": p.stat().st_size} for v, p in variants.items()
        },
        "golden": {"file": golden_path.name, "sha256": sha256(golden_path), "size_bytes": golden_path.stat().st_size},
        "cpu_accuracy": acc,
        "export_parity": fp32.parity.summary(),
        "seconds": round(time.perf_counter() - t0, 1),
        "train_export_seconds": round(trained_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder (git-ignored); models go to OUT/models")
    ap.add_argument("--split-wheel", type=Path, help="an onnxruntime-gpu wheel to split into OUT/wheel parts")
    ap.add_argument("--deps", action="store_true", help="download pytest & co. (cp312 wheels) into OUT/deps")
    ap.add_argument("--plot-deps", action="store_true", help="with --deps: matplotlib too (~17 MB more)")
    ap.add_argument("--no-models", action="store_true", help="only split the wheel / download the deps")
    args = ap.parse_args(argv)

    if args.split_wheel:
        parts = split_wheel(args.split_wheel, args.out / "wheel")
        for p in parts:
            print(f"{p}  {p.stat().st_size / 2**20:.1f} MiB")
    if args.deps:
        wheels = download_deps(args.out / "deps", plots=args.plot_deps)
        print(f"{args.out / 'deps'}: {len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB")
    if args.no_models:
        return 0
    from edgecnn._optional import require
    from edgecnn.runtime.environment import describe_environment

    require("tensorflow", extra="export")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = set(names) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; choose from {MODELS}")
    models_dir = args.out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": {}}
    env = describe_environment()
    manifest["prepared_on"] = {k: env[k] for k in ("cpu", "cpu_count", "onnxruntime_packages", "edgecnn", "python")}
    manifest["command"] = "python benchmarks/gpu_prepare.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="edgecnn-gpu-prepare-") as tmp:
        for name in names:
            print(f"{name}: training one epoch, exporting, quantizing, recording golden outputs …", flush=True)
            entry = prepare_model(name, models_dir, Path(tmp) / name)
            manifest["models"][name] = entry
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")  # after each model: a crash keeps them
            print(f"  {entry['seconds']} s; CPU accuracy {entry['cpu_accuracy']}", flush=True)
    total = sum(p.stat().st_size for p in models_dir.iterdir())
    print(f"{manifest_path} ({len(manifest['models'])} models, {total / 2**20:.1f} MiB in {models_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
