"""Run one ONNX model on a batch of inputs and save its raw outputs: the process ``certify`` starts under an
emulated CPU.

It imports numpy and onnxruntime only (never edgecnn), so it runs in an aarch64 root that holds nothing
else, and it is started by file path: ``python runner.py MODEL INPUTS.npy OUTPUTS.npy [--disable NAME ...]``.
One intra-op thread and onnxruntime's default graph optimisations: the same kernels the model meets on the
device, in a deterministic order. It prints one JSON line describing the CPU and onnxruntime it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--disable", action="append", default=[], help="graph optimizer to turn off")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    t0 = time.perf_counter()
    session = ort.InferenceSession(  # noqa: TID251 (imports no edgecnn)
        args.model, opts, providers=["CPUExecutionProvider"], disabled_optimizers=args.disable or None
    )
    name = session.get_inputs()[0].name
    x = np.load(args.inputs)
    out = [session.run(None, {name: x[i : i + args.batch]})[0] for i in range(0, len(x), args.batch)]
    np.save(args.outputs, np.concatenate(out))
    features = {}
    try:  # numpy's view of the CPU: proves what the emulated process saw
        from numpy._core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
        except ImportError:
            pass
    print(
        json.dumps(
            {
                "machine": platform.machine(),
                "onnxruntime": ort.__version__,
                "numpy": np.__version__,
                "cpu_features": sorted(k for k, v in features.items() if v),
                "seconds": time.perf_counter() - t0,
            }
        )
    )


if __name__ == "__main__":
    main()
