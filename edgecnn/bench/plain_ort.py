"""The yardstick a user builds by hand with onnxruntime alone: ``quantize_static`` U8S8 of the FP32 export
(QDQ, per-channel, MinMax, the same calibration tensors), run by a bare ``InferenceSession``.

edgecnn's INT8 must never lose to it: whatever edgecnn adds (float stem, pre-processing, engine settings,
``edgecnn tune``) is only worth having where it is at least as fast as doing nothing special. Needs only
onnxruntime (no TensorFlow), so ``--baseline ort-int8`` runs on any install.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgecnn.bench.runners import CallableRunner
from edgecnn.errors import UsageError
from edgecnn.runtime.metadata import ModelMetadata

NAME = "onnxruntime int8 (plain)"


def fp32_source(path: Path, meta: ModelMetadata) -> Path:
    """The FP32 model behind ``path``: ``path`` itself, or the model a quantized one was made from.

    Raises:
        UsageError: a quantized model whose FP32 source is not recorded or is gone.
    """
    if not meta.quantization:
        return path
    recorded = (meta.quantization.get("source_model") or {}).get("path")
    if not recorded:
        raise UsageError(
            f"{path}: the ort-int8 baseline quantizes the FP32 model by hand, but this model does not record "
            "its source (quantized by an older edgecnn); bench the FP32 model beside it instead"
        )
    from edgecnn._fs import resolve_recorded, sha256_file

    fp32 = resolve_recorded(recorded, path.parent)  # recorded relative to the quantized file
    if not fp32.is_file():
        raise UsageError(f"{path}: the ort-int8 baseline needs the FP32 model it was quantized from, {fp32}: gone")
    sha = meta.quantization["source_model"].get("sha256")
    if sha and sha256_file(fp32) != sha:
        raise UsageError(
            f"{path}: {fp32} is not the FP32 model it was quantized from (its sha256 changed since); "
            "re-quantize, or bench the FP32 model beside it"
        )
    return fp32


def plain_int8(fp32: Path, calib: np.ndarray, out: Path) -> Path:
    """``quantize_static`` with the settings the onnxruntime docs give for x86: U8S8, QDQ, per-channel, MinMax."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgecnn.quantize.calibration import ArrayReader, minmax_batch

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    input_name = next(i.name for i in graph.input if i.name not in weights)
    quantize_static(
        str(fp32),
        str(out),
        ArrayReader(input_name, calib, minmax_batch(calib[0].nbytes)),  # the same ranges in less memory at 224
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return out


def bare_session_runner(model: Path | bytes, threads: int | None) -> CallableRunner:
    """``InferenceSession(model).run(None, {input: x})`` with onnxruntime's default options (threads aside)."""
    import onnxruntime as ort

    from edgecnn.runtime.session import ort_log_severity

    options = ort.SessionOptions()
    options.log_severity_level = ort_log_severity()
    if threads is not None:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])  # noqa: TID251 (the bare yardstick)
    name = session.get_inputs()[0].name
    return CallableRunner(NAME, "onnxruntime", lambda x: session.run(None, {name: x}))


_MADE: dict[tuple[str, str], bytes] = {}  # (FP32 sha256, calibration sha256) -> the plain INT8 model


def plain_int8_runner(fp32: Path, calib: np.ndarray, threads: int | None) -> CallableRunner:
    """Quantize ``fp32`` by hand (once per process for the same model and data) and open it in a bare session."""
    from edgecnn._fs import sha256_file
    from edgecnn.quantize.calibration import calibration_hash

    key = (sha256_file(fp32), calibration_hash(calib))
    if key not in _MADE:
        with tempfile.TemporaryDirectory(prefix="edgecnn-plain-int8-") as tmp:
            _MADE[key] = plain_int8(fp32, calib, Path(tmp) / "plain.int8.onnx").read_bytes()
    return bare_session_runner(_MADE[key], threads)
