"""Where the time goes: INT8 inference of zoo networks, per op and per block, onnxruntime vs TFLite/XNNPACK.

    python benchmarks/op_profile.py --models mobilenetv2,resnet50 --size 224 --out benchmarks/results
    python benchmarks/op_profile.py --models mobilenetv2 --size 96 --out /tmp/op_profile   # quick try

Both runtimes get the same Keras model (``zoo.build(NAME, input_size=SIZE)``, random init: timing only) and
the same calibration arrays (``load_calibration("mnist5k", meta, N)``), batch 1, 1 thread:

* onnxruntime runs edgecnn's INT8 graph: ``export_keras`` then ``quantize(..., QuantizeConfig.int8())``,
  opened with the session hints the model carries (``session_hints``; timed sessions come from edgecnn's
  own ``create_session``). Per-op times come from onnxruntime's profiler (``enable_profiling``; "Node"
  events, the last ``--profile-iters`` runs) through ``edgecnn.bench.profile.profile_ort``, the core that
  ``edgecnn bench --profile`` runs too; every node is classified by looking it up in the optimized
  graph the same session saved (``optimized_model_filepath``): a QLinearConv is depthwise when its group
  equals its output channels, pointwise when its kernel is 1×1 with group 1, "k×k" otherwise.
* TFLite runs a full-integer INT8 flatbuffer converted exactly as ``edgecnn/bench/baselines.py`` does
  (``from_keras_model``, ``Optimize.DEFAULT``, representative dataset, ``TFLITE_BUILTINS_INT8``, int8
  input/output) with the default interpreter (XNNPACK delegate), ``num_threads=1``. The TF wheel offers no
  per-op profiler from Python (``tf.lite.Interpreter`` has no profiler hook, no ``benchmark_model`` binary is
  shipped, the TFLite C API with its telemetry profiler is not exported), so TFLite's per-op view is
  replaced by *prefix differencing*: the network is cut at block boundaries (``CUTS``), every prefix gets the
  same probe head as the real model (global average pooling + Dense softmax, so each prefix is a
  classifier edgecnn can export and quantize), each prefix is converted for *both* runtimes with the same
  data, all prefixes are timed interleaved in one process, and block k's time is p50(prefix k) -
  p50(prefix k-1). The last prefix is the whole model. The same cut on both sides makes the blocks line up;
  the probe head's cost on a boundary tensor (a few µs) is the method's bias, the same on both sides.

Outputs ``op_profile.md`` and ``op_profile.json`` in ``--out``. Conversions are cached in ``--cache``
(``--rebuild`` redoes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bench.profile import profile_ort

CALIBRATION = "mnist5k"
# (block label, Keras layer of the base network whose output ends the block); None: the whole model
CUTS: dict[str, list[tuple[str, str | None]]] = {
    "mobilenetv2": [
        ("stem: Conv1 + block 0", "expanded_conv_project_BN"),
        ("blocks 1-2 (stride 4)", "block_2_add"),
        ("blocks 3-5 (stride 8)", "block_5_add"),
        ("blocks 6-9 (stride 16, 64 ch)", "block_9_add"),
        ("blocks 10-12 (stride 16, 96 ch)", "block_12_add"),
        ("blocks 13-15 (stride 32)", "block_15_add"),
        ("block 16 + Conv_1 + head", None),
    ],
    "resnet50": [
        ("stem: caffe 1x1 + conv1 7x7 + pool1", "pool1_pool"),
        ("conv2_x (3 blocks)", "conv2_block3_out"),
        ("conv3_x (4 blocks)", "conv3_block4_out"),
        ("conv4_x blocks 1-3", "conv4_block3_out"),
        ("conv4_x blocks 4-6", "conv4_block6_out"),
        ("conv5_x (3 blocks) + head", None),
    ],
}


# -- building the models -----------------------------------------------------------------------------------


def _base(model: Any) -> Any:
    import keras

    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def prefix_model(model: Any, cut: str | None) -> Any:
    """The network up to (and including) base layer ``cut``, then the real model's head shape
    (GlobalAveragePooling2D + Dense softmax); the model itself for ``cut=None``."""
    import keras

    if cut is None:
        return model
    base = _base(model)
    body = keras.Model(base.inputs, base.get_layer(cut).output, name=f"{base.name}_to_{cut}")
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="input")
    x = inputs
    for layer in model.layers:  # layers between the input and the base (ResNet50's caffe preprocessing)
        if layer is base:
            break
        if not isinstance(layer, keras.layers.InputLayer):
            x = layer(x)
    x = keras.layers.GlobalAveragePooling2D(name="probe_pool")(body(x))
    units = int(model.outputs[0].shape[-1])
    outputs = keras.layers.Dense(units, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_to_{cut}")


def layers_of(model: Any, cut: str | None) -> set[str]:
    """Names of the base network's layers up to ``cut`` (all of them for None)."""
    import keras

    base = _base(model)
    if cut is None:
        return {layer.name for layer in base.layers}
    return {layer.name for layer in keras.Model(base.inputs, base.get_layer(cut).output).layers}


def build_onnx_int8(model: Any, name: str, meta: Any, work: Path, samples: int) -> Path:
    """edgecnn's pipeline: save + sidecar (like ``edgecnn train``), ``export_keras``, ``quantize`` INT8."""
    from edgecnn.export.api import ExportConfig, export_keras
    from edgecnn.keras_io import write_sidecar
    from edgecnn.quantize import QuantizeConfig, quantize

    keras_path, fp32, int8 = work / f"{name}.keras", work / f"{name}.onnx", work / f"{name}.int8.onnx"
    model.save(str(keras_path))
    write_sidecar(
        keras_path,
        {
            "labels": list(meta.labels),
            "preprocess": meta.preprocess.to_dict(),
            "output": meta.output.value,
            "layout": meta.input.layout.value,
            "data": CALIBRATION,
        },
    )
    # random init: near-uniform softmax makes top-1 parity meaningless, so it is recorded, not enforced
    export_keras(keras_path, fp32, ExportConfig(check=False, parity_samples=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the calibration-size advice
        quantize(
            fp32, int8, QuantizeConfig.int8(calibration_samples=samples), calibration=CALIBRATION, measure_speed=False
        )
    return int8


def build_tflite_int8(model: Any, calib: np.ndarray) -> bytes:
    """Full-integer INT8, exactly as ``edgecnn.bench.baselines.tflite_runners`` converts it."""
    from edgecnn.bench.baselines import tflite_int8_flatbuffer

    return tflite_int8_flatbuffer(model, calib)


# -- runners -----------------------------------------------------------------------------------------------


def ort_runner(path: Path, x: np.ndarray) -> Callable[[], Any]:
    """edgecnn's own session (model hints applied), 1 intra-op thread."""
    from edgecnn.runtime.session import SessionSettings, create_session

    sess = create_session(path, provider="cpu", settings=SessionSettings(threads=1))
    feed = {sess.get_inputs()[0].name: x}
    outputs = [sess.get_outputs()[0].name]
    return lambda: sess.run(outputs, feed)


def tflite_interpreter(flatbuffer: bytes, **kwargs: Any) -> Any:
    import tensorflow as tf

    it = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1, **kwargs)
    it.allocate_tensors()
    return it


def tflite_runner(flatbuffer: bytes, x: np.ndarray) -> Callable[[], Any]:
    """Default interpreter (XNNPACK), input quantized outside the timed call as the baseline runner does."""
    it = tflite_interpreter(flatbuffer)
    detail = it.get_input_details()[0]
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    q = np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
    index = detail["index"]

    def run() -> None:
        it.set_tensor(index, q)
        it.invoke()

    return run


def tflite_ops(flatbuffer: bytes) -> dict[str, int]:
    """Builtin op counts of the flatbuffer (an interpreter without the default delegate lists them)."""
    import tensorflow as tf

    it = tflite_interpreter(
        flatbuffer, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    counts: dict[str, int] = defaultdict(int)
    for op in it._get_ops_details():  # the only way to list a flatbuffer's ops
        counts[op["op_name"]] += 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def time_interleaved(
    runners: dict[str, Callable[[], Any]], rounds: int, seconds: float
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per-call seconds: every round runs every runner for about ``seconds`` (call count fixed from a
    warm-up estimate), alternating the order each round so drift on a shared machine hits all alike."""
    iters: dict[str, int] = {}
    for key, fn in runners.items():
        for _ in range(3):
            fn()
        t = time.perf_counter()
        fn()
        fn()
        est = (time.perf_counter() - t) / 2
        iters[key] = max(3, min(200, int(seconds / max(est, 1e-6))))
    samples: dict[str, list[float]] = {k: [] for k in runners}
    keys = list(runners)
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            fn = runners[key]
            out = samples[key]
            for _ in range(iters[key]):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
    return samples, iters


def stats_us(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e6
    return {
        "p50": float(np.percentile(a, 50)),
        "p10": float(np.percentile(a, 10)),
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
        "n": len(a),
    }


# -- onnxruntime profile: edgecnn.bench.profile (profile_ort, classify_node), shared with `bench --profile` --


def assign_blocks(node_names: list[str], layer_block: dict[str, int]) -> list[int]:
    """Block of each profiled node from the Keras layer name inside its ONNX name (tf2onnx keeps the
    name scopes, with ``_1`` style suffixes); a node without one (Transpose, ReorderOutput) gets the block of
    the node that ran before it."""
    out: list[int] = []
    current = 0
    for name in node_names:
        found = None
        for seg in reversed(name.split("/")):
            for cand in (seg, re.sub(r"_\d+$", "", seg), re.sub(r":\d+.*$", "", seg)):
                if cand in layer_block:
                    found = layer_block[cand]
                    break
            if found is not None:
                break
        if found is not None:
            current = found
        out.append(current)
    return out


# -- one network -------------------------------------------------------------------------------------------


def run_network(name: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    from edgecnn import zoo
    from edgecnn.quantize.calibration import load_calibration

    cache = Path(args.cache) / f"{name}-{size}-c{args.calib_samples}"
    cache.mkdir(parents=True, exist_ok=True)
    meta = zoo.metadata_for(name, size)
    model = zoo.build(name, input_size=size)
    weights = cache / "weights.weights.h5"
    if weights.exists() and not args.rebuild:
        model.load_weights(str(weights))  # the prefixes cached earlier were built from these weights
    else:
        model.save_weights(str(weights))
    calib = load_calibration(CALIBRATION, meta, args.calib_samples)
    x = calib[:1].copy()
    cuts = CUTS[name]
    built: list[dict[str, Any]] = []
    for i, (label, cut) in enumerate(cuts):
        tag = f"p{i}"
        onnx_path, tfl_path = cache / f"{tag}.int8.onnx", cache / f"{tag}.tflite"
        t0 = time.perf_counter()
        cached = onnx_path.exists() and tfl_path.exists() and not args.rebuild
        if not cached:
            sub = prefix_model(model, cut)
            build_onnx_int8(sub, tag, meta, cache, args.calib_samples)
            tfl_path.write_bytes(build_tflite_int8(sub, calib))
        shape = None
        if cut is not None:
            shape = list(_base(model).get_layer(cut).output.shape[1:])
        built.append(
            {"label": label, "cut": cut, "onnx": onnx_path, "tflite": tfl_path, "shape": shape, "cached": cached}
        )
        print(
            f"  {name} {tag} {label}: {'cached' if cached else 'built'} in {time.perf_counter() - t0:.0f}s", flush=True
        )

    full = built[-1]
    print(f"  {name}: onnxruntime profile ({args.profile_iters} runs)", flush=True)
    prof = profile_ort(full["onnx"], x, cache, args.profile_iters)

    runners: dict[str, Callable[[], Any]] = {}
    for i, b in enumerate(built):
        runners[f"ort/p{i}"] = ort_runner(b["onnx"], x)
        runners[f"tflite/p{i}"] = tflite_runner(b["tflite"].read_bytes(), x)
    print(f"  {name}: timing {len(runners)} graphs × {args.rounds} rounds", flush=True)
    samples, iters = time_interleaved(runners, args.rounds, args.seconds)
    st = {k: stats_us(v) for k, v in samples.items()}

    # blocks: prefix differences, and the onnxruntime profile attributed by Keras layer names
    layer_block: dict[str, int] = {}
    previous: set[str] = set()
    for i, (_, cut) in enumerate(cuts):
        names = layers_of(model, cut)
        for n in names - previous:
            layer_block[n] = i
        previous = names
    base_index = model.layers.index(_base(model))
    for j, layer in enumerate(model.layers):  # outer layers: preprocessing in the first block, head in the last
        if j != base_index:
            layer_block[layer.name] = 0 if j < base_index else len(cuts) - 1
    names = list(prof.node_us)
    node_block = dict(zip(names, assign_blocks(names, layer_block), strict=True))
    prof_block = [0.0] * len(cuts)
    for n, us in prof.node_us.items():
        prof_block[node_block[n]] += us
    blocks = []
    for i, b in enumerate(built):
        o, t = st[f"ort/p{i}"]["p50"], st[f"tflite/p{i}"]["p50"]
        o0 = st[f"ort/p{i - 1}"]["p50"] if i else 0.0
        t0 = st[f"tflite/p{i - 1}"]["p50"] if i else 0.0
        blocks.append(
            {
                "block": b["label"],
                "cut": b["cut"],
                "out_shape": b["shape"],
                "ort_prefix_p50_us": o,
                "tflite_prefix_p50_us": t,
                "ort_us": o - o0,
                "tflite_us": t - t0,
                "ort_profile_us": prof_block[i],
            }
        )

    total_prof = sum(prof.node_us.values())
    by_kind: dict[str, dict[str, float]] = defaultdict(lambda: {"us": 0.0, "count": 0})
    for n, us in prof.node_us.items():
        by_kind[prof.node_kind[n]]["us"] += us
        by_kind[prof.node_kind[n]]["count"] += 1
    kinds = sorted(
        (
            {"op": k, "count": int(v["count"]), "us": v["us"], "pct": 100 * v["us"] / total_prof}
            for k, v in by_kind.items()
        ),
        key=lambda r: -r["us"],
    )
    strip = _common_prefix(names)
    top = sorted(prof.node_us.items(), key=lambda kv: -kv[1])[:10]
    top_nodes = [
        {
            "node": n[len(strip) :],
            "op": prof.node_kind[n],
            "block": cuts[node_block[n]][0],
            "us": us,
            "pct": 100 * us / total_prof,
        }
        for n, us in top
    ]
    last = len(built) - 1
    ort_total, tfl_total = st[f"ort/p{last}"], st[f"tflite/p{last}"]
    return {
        "model": name,
        "size": size,
        "metadata_preprocess": meta.preprocess.to_dict(),
        "total": {
            "ort_us": ort_total,
            "tflite_us": tfl_total,
            "ort_over_tflite_latency": ort_total["p50"] / tfl_total["p50"],
            "speed_vs_tflite": tfl_total["p50"] / ort_total["p50"],
        },
        "blocks": blocks,
        "ort_profile": {
            "runs": prof.runs,
            "node_sum_us": total_prof,
            "model_run_us": prof.run_us,
            "by_op": kinds,
            "top_nodes": top_nodes,
            "graph_ops": prof.graph_ops,
            "float_nodes": [n[len(strip) :] for n in prof.float_nodes],
            "nodes": [
                {"node": n[len(strip) :], "op": prof.node_kind[n], "block": node_block[n], "us": us}
                for n, us in prof.node_us.items()
            ],
        },
        "tflite_ops": tflite_ops(full["tflite"].read_bytes()),
        "timing": {"iters_per_round": iters, "rounds": args.rounds, "stats_us": st},
        "cache": str(cache),
        "cached": all(b["cached"] for b in built),
    }


def _common_prefix(names: list[str]) -> str:
    scoped = [n for n in names if "/" in n]
    if not scoped:
        return ""
    parts = [n.split("/")[:-1] for n in scoped]
    common: list[str] = []
    for segs in zip(*parts, strict=False):
        if any(s != segs[0] for s in segs):
            break
        common.append(segs[0])
    return "/".join(common) + "/" if common else ""


# -- report ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info["cpu"] = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?"
        )
        flags = next((ln for ln in lscpu.splitlines() if ln.startswith("Flags")), "")
        info["vnni"] = "avx512_vnni" in flags or "avx_vnni" in flags
    except OSError:
        info["cpu"] = "?"
    info["loadavg_start"] = os.getloadavg()
    return info


def versions() -> dict[str, str]:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    import edgecnn

    return {
        "edgecnn": edgecnn.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
        "tf2onnx": tf2onnx.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def _f(us: float) -> str:
    return f"{us:,.0f}" if abs(us) >= 100 else f"{us:.1f}"


def what_it_says(r: dict[str, Any]) -> str:
    """Sentences computed from the numbers (no hand-written claims)."""
    tot = r["total"]
    kinds = r["ort_profile"]["by_op"]
    lines = [
        f"onnxruntime takes {_f(tot['ort_us']['p50'])} µs, TFLite/XNNPACK {_f(tot['tflite_us']['p50'])} µs: "
        f"edgecnn runs at {tot['speed_vs_tflite']:.2f}× TFLite's speed."
    ]
    top3 = ", ".join(f"{k['op']} {k['pct']:.0f}% ({_f(k['us'])} µs, {k['count']} nodes)" for k in kinds[:3])
    lines.append(f"In onnxruntime's profile the top op types are {top3}.")
    blocks = r["blocks"]
    gaps = sorted(blocks, key=lambda b: -(b["ort_us"] - b["tflite_us"]))
    worst = gaps[0]
    lines.append(
        f"The largest absolute gap is {worst['block']}: {_f(worst['ort_us'])} µs vs {_f(worst['tflite_us'])} µs "
        f"({_f(worst['ort_us'] - worst['tflite_us'])} µs of the total gap "
        f"{_f(tot['ort_us']['p50'] - tot['tflite_us']['p50'])} µs)."
    )
    ratios = [(b["ort_us"] / b["tflite_us"], b) for b in blocks if b["tflite_us"] > 0.05 * tot["tflite_us"]["p50"]]
    if ratios:
        hi = max(ratios, key=lambda t: t[0])
        lo = min(ratios, key=lambda t: t[0])
        lines.append(
            f"Per block, onnxruntime/TFLite time ranges from {lo[0]:.2f}× ({lo[1]['block']}) to "
            f"{hi[0]:.2f}× ({hi[1]['block']})."
        )
    dw = sum(k["us"] for k in kinds if "depthwise" in k["op"])
    pw = sum(k["us"] for k in kinds if "pointwise" in k["op"])
    if dw:
        lines.append(
            f"Depthwise QLinearConv: {_f(dw)} µs ({100 * dw / r['ort_profile']['node_sum_us']:.0f}%); "
            f"pointwise 1×1: {_f(pw)} µs."
        )
    glue_ops = (
        "Transpose",
        "QuantizeLinear",
        "DequantizeLinear",
        "ReorderInput",
        "ReorderOutput",
        "Squeeze",
        "Reshape",
    )
    glue = [k for k in kinds if k["op"].split(" ")[0] in glue_ops]
    if glue:
        g = sum(k["us"] for k in glue)
        parts = ", ".join(f"{k['op']}×{k['count']} {_f(k['us'])} µs" for k in glue)
        lines.append(
            f"Layout/QDQ glue nodes cost {_f(g)} µs ({100 * g / r['ort_profile']['node_sum_us']:.1f}%): {parts}."
        )
    floats = [k for k in kinds if k["op"].startswith(("Conv", "FusedConv", "MatMul", "Gemm"))]
    if floats:
        parts = ", ".join(f"{k['op']}×{k['count']} {_f(k['us'])} µs" for k in floats)
        lines.append(f"Float compute left in the INT8 graph (the float stem): {parts}.")
    adds = [k for k in kinds if k["op"] in ("QLinearAdd", "QLinearMul", "Add", "Mul")]
    if adds:
        parts = ", ".join(f"{k['op']}×{k['count']} {_f(k['us'])} µs" for k in adds)
        lines.append(f"Residual adds (quantized, fused by onnxruntime into QLinear ops): {parts}.")
    return " ".join(lines)


def render(results: list[dict[str, Any]], env: dict[str, Any]) -> str:
    out = [
        "# INT8 op profile: onnxruntime (edgecnn) vs TFLite (XNNPACK), batch 1, 1 thread",
        "",
        f"Machine: {env['machine']['cpu']} ({env['machine']['cpus']} vCPUs, VNNI: {env['machine'].get('vnni')}), "
        f"load average at start {', '.join(f'{v:.2f}' for v in env['machine']['loadavg_start'])} "
        f"(shared machine: absolute numbers move, read the ratios). "
        f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}.",
        "",
        f"Command: `{env['command']}`",
        "",
        "Method (see the script's docstring): the same random-init Keras model and the same "
        f"{env['calib_samples']} {CALIBRATION} calibration arrays for both runtimes; onnxruntime runs edgecnn's "
        "INT8 graph (export_keras + quantize, the model's session hints), TFLite a full-integer INT8 flatbuffer "
        "(baselines.py converter settings, default interpreter = XNNPACK). **onnxruntime per-op** times come from "
        f"its profiler (mean of {env['profile_iters']} warm runs, node kernel time). **TFLite has no per-op "
        "profiler reachable from Python in this wheel**, so both runtimes are also measured by *prefix "
        "differencing*: each network cut at the block boundaries below, every prefix given the real head "
        "(global average pool + Dense softmax) and converted for both runtimes, all prefixes timed interleaved "
        f"in one process ({env['rounds']} rounds, ~{env['seconds']} s per graph per round), block time = "
        "p50(prefix k) - p50(prefix k-1); the last prefix is the whole model. The probe head's cost on each "
        "boundary tensor is the method's bias (same on both sides); noise can make a small block negative. "
        "The 'ORT profile' column attributes onnxruntime's profiled node times of the whole model to the same "
        "blocks by Keras layer name, a cross-check of the differencing.",
        "",
    ]
    for r in results:
        tot = r["total"]
        o, t = tot["ort_us"], tot["tflite_us"]
        out += [
            f"## {r['model']} {r['size']}×{r['size']}",
            "",
            "| runtime | p50 µs | p10 µs | p90 µs | calls |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| onnxruntime (edgecnn INT8) | {_f(o['p50'])} | {_f(o['p10'])} | {_f(o['p90'])} | {o['n']} |",
            f"| TFLite INT8 (XNNPACK) | {_f(t['p50'])} | {_f(t['p10'])} | {_f(t['p90'])} | {t['n']} |",
            "",
            f"onnxruntime / TFLite latency: **{tot['ort_over_tflite_latency']:.2f}×** "
            f"(edgecnn speed = {tot['speed_vs_tflite']:.2f}× TFLite). "
            f"onnxruntime profile: node kernels sum to {_f(r['ort_profile']['node_sum_us'])} µs of a "
            f"{_f(r['ort_profile']['model_run_us'])} µs profiled run "
            f"({r['ort_profile']['node_sum_us'] / o['p50']:.2f}× the timed p50: the profiler's own cost and the "
            "load at the time of the profiled runs; read its percentages, not its absolute µs).",
            "",
            "### Per block (prefix differencing, both runtimes)",
            "",
            "| block | output | ORT µs | ORT % | TFLite µs | TFLite % | ORT/TFLite | ORT profile µs |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for b in r["blocks"]:
            shape = "×".join(map(str, b["out_shape"])) if b["out_shape"] else "10 (softmax)"
            ratio = f"{b['ort_us'] / b['tflite_us']:.2f}×" if b["tflite_us"] > 0 else "—"
            out.append(
                f"| {b['block']} | {shape} | {_f(b['ort_us'])} | {100 * b['ort_us'] / o['p50']:.1f} | "
                f"{_f(b['tflite_us'])} | {100 * b['tflite_us'] / t['p50']:.1f} | {ratio} | {_f(b['ort_profile_us'])} |"
            )
        out += [
            "",
            "### onnxruntime by op type (profiler, whole model)",
            "",
            "TFLite column: not measurable per op type from Python (see Method); its INT8 graph's builtin ops are "
            "listed below the table.",
            "",
            "| op type | nodes | ORT µs | ORT % | TFLite µs | TFLite % |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for k in r["ort_profile"]["by_op"]:
            out.append(f"| {k['op']} | {k['count']} | {_f(k['us'])} | {k['pct']:.1f} | — | — |")
        ops = ", ".join(f"{k} ×{v}" for k, v in r["tflite_ops"].items())
        graph = ", ".join(f"{k} ×{v}" for k, v in r["ort_profile"]["graph_ops"].items())
        out += [
            "",
            f"TFLite INT8 graph ops (all delegated to XNNPACK at run time): {ops}.",
            "",
            f"onnxruntime optimized graph ops: {graph}.",
            "",
            "### onnxruntime top 10 nodes",
            "",
            "| node | op | block | µs | % |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        for n in r["ort_profile"]["top_nodes"]:
            out.append(f"| `{n['node']}` | {n['op']} | {n['block']} | {_f(n['us'])} | {n['pct']:.1f} |")
        out += ["", "### What this says", "", what_it_says(r), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mobilenetv2,resnet50", help=f"comma-separated, of {', '.join(CUTS)}")
    p.add_argument("--size", type=int, default=224, help="square input size")
    p.add_argument("--out", default="benchmarks/results", help="folder for op_profile.{md,json}")
    p.add_argument("--cache", default="build/op_profile", help="converted prefixes (reused unless --rebuild)")
    p.add_argument("--rebuild", action="store_true", help="convert again even when cached")
    p.add_argument("--calib-samples", type=int, default=100, help="calibration samples (both runtimes)")
    p.add_argument("--profile-iters", type=int, default=50, help="profiled onnxruntime runs (after 10 warm-ups)")
    p.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    p.add_argument("--seconds", type=float, default=0.4, help="seconds per graph per round")
    p.add_argument("--render", metavar="JSON", help="only rewrite op_profile.md in --out from an earlier JSON")
    args = p.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        (Path(args.out) / "op_profile.md").write_text(render(saved["results"], saved["env"]))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in CUTS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(CUTS)}")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
    env: dict[str, Any] = {
        "command": "python "
        + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "versions": versions(),
        "calib_samples": args.calib_samples,
        "profile_iters": args.profile_iters,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "threads": 1,
        "batch": 1,
    }
    results = []
    t0 = time.perf_counter()
    for name in models:
        print(f"{name} {args.size}×{args.size}", flush=True)
        results.append(run_network(name, args.size, args))
    env["machine"]["loadavg_end"] = os.getloadavg()
    env["seconds_total"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "op_profile.json").write_text(json.dumps({"env": env, "results": results}, indent=2, default=str) + "\n")
    (out / "op_profile.md").write_text(render(results, env))
    for r in results:
        tot = r["total"]
        print(
            f"{r['model']}: onnxruntime {tot['ort_us']['p50']:.0f} µs, TFLite {tot['tflite_us']['p50']:.0f} µs "
            f"(edgecnn {tot['speed_vs_tflite']:.2f}× TFLite speed)"
        )
    print(f"wrote {out / 'op_profile.md'} and {out / 'op_profile.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
