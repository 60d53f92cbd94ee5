"""Speed cost of keeping the INT8 output head float (issue #24): the same model quantized with and without it,
measured interleaved in one process (``quantize.once.measure_pair``: batch-1 p50 and batch-32 throughput, 1 thread).

    python benchmarks/float_head_cost.py MODEL.onnx [--calibration mnist5k] [--format qdq|qoperator] [--seconds 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import edgecnn.quantize.once as once
from edgecnn.quantize import QuantFormat, QuantizeConfig, quantize


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path)
    ap.add_argument("--calibration", default="mnist5k")
    ap.add_argument("--format", default="qdq", choices=["qdq", "qoperator"])
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    config = QuantizeConfig.int8(format=QuantFormat(args.format))
    with tempfile.TemporaryDirectory() as tmp:
        real, grid = Path(tmp) / "head-float.onnx", Path(tmp) / "head-int8.onnx"
        quantize(args.model, real, config, calibration=args.calibration, measure_speed=False)
        keep = once.plan_float_head
        once.plan_float_head = lambda graph, fmt: ([], set())  # the quantizer's own choice: Q/DQ on the head
        try:
            quantize(args.model, grid, config, calibration=args.calibration, measure_speed=False)
        finally:
            once.plan_float_head = keep
        speed = once.measure_pair(grid, real, seconds=args.seconds, rounds=max(3, int(args.seconds)))
    pair = {"before": "INT8 head (the quantizer's default)", "after": "float head"}
    print(json.dumps({"compared": pair, **speed}, indent=2))


if __name__ == "__main__":
    main()
