"""Export's conversion with and without tf2onnx's per-pass graph copies: seconds, and whether the graphs agree.

tf2onnx deep-copies its graph before each optimizer pass unless ``TF2ONNX_CATCH_ERRORS`` is set; edgecnn sets it
(``edgecnn/export/convert.py``). Each mode converts in a fresh process (tf2onnx numbers its nodes per process),
one after the other, and the graphs are compared with names ignored: op types, attributes, wiring and
initializer bytes (``same graph``), and outputs on 8 random inputs (``max |Δ|``).

    python benchmarks/tf2onnx_copies.py InceptionResNetV2:75 EfficientNetB0:32 NASNetMobile:32 MobileNetV3Small:32
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MODES = ("with copies", "without copies")


def _convert(arch: str, size: int, mode: str, out: Path) -> float:
    """In this process: build the net (seeded), convert it in ``mode``, write the ONNX file; the seconds."""
    import time

    import keras

    from edgecnn.export import convert as c

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3), classes=10)
    if mode == MODES[0]:  # tf2onnx's default: the variable unset, the graph copied before every pass
        c._tf2onnx_without_copies = lambda fn, *a, **k: fn(*a, **k)
    start = time.perf_counter()
    proto = c.convert(model, 17).model
    seconds = time.perf_counter() - start
    out.write_bytes(proto.SerializeToString())
    return seconds


def _canonical(path: Path) -> list[tuple[Any, ...]]:
    """The graph with tensor names replaced by their producer's position: what a conversion decided."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    names = {graph.input[0].name: "input"}
    nodes = []
    for k, node in enumerate(graph.node):
        ins = [(repr(inits[i].shape), inits[i].tobytes()) if i in inits else names.get(i, i) for i in node.input]
        names.update({o: f"{k}:{j}" for j, o in enumerate(node.output)})
        attrs = sorted((a.name, repr(helper.get_attribute_value(a))) for a in node.attribute)
        nodes.append((node.op_type, node.domain, tuple(map(repr, ins)), tuple(attrs)))
    return nodes


def _max_diff(a: Path, b: Path) -> float:
    import numpy as np
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (a, b)]
    shape = [d if isinstance(d, int) else 8 for d in sessions[0].get_inputs()[0].shape]
    x = np.random.default_rng(0).random(shape, dtype=np.float32) * 255
    ya, yb = (s.run(None, {s.get_inputs()[0].name: x})[0] for s in sessions)
    return float(np.abs(ya - yb).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="+", help="keras.applications builder:input size, e.g. EfficientNetB0:32")
    parser.add_argument("--child", nargs=4, metavar=("ARCH", "SIZE", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        arch, size, mode, out = args.child
        print(_convert(arch, int(size), mode, Path(out)))
        return
    print("| net (input) | with copies | without | speed-up | same graph | max abs diff |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets:
            arch, size = net.split(":")
            seconds, files = {}, {}
            for mode in MODES:
                files[mode] = Path(tmp) / f"{arch}-{mode.replace(' ', '-')}.onnx"
                cmd = [sys.executable, __file__, "x", "--child", arch, size, mode, str(files[mode])]
                run = subprocess.run(cmd, capture_output=True, text=True, check=True)
                seconds[mode] = float(run.stdout.strip().splitlines()[-1])
            old, new = (seconds[m] for m in MODES)
            same = _canonical(files[MODES[0]]) == _canonical(files[MODES[1]])
            diff = _max_diff(files[MODES[0]], files[MODES[1]])
            print(
                f"| {arch} ({size}) | {old:.1f} s | {new:.1f} s | {old / new:.2f}× | {same} | {diff:.1e} |", flush=True
            )


if __name__ == "__main__":
    main()
