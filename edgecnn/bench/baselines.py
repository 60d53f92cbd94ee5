"""What users would pick instead: Keras (tf.function and model.predict) and TFLite (FP32 and INT8).

Needs the [export] extra; imported only when ``--baseline`` asks for it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bench.runners import CallableRunner
from edgecnn.errors import UsageError
from edgecnn.runtime.metadata import ModelMetadata

log = logging.getLogger(__name__)


def recorded_keras_path(model: Path, meta: ModelMetadata) -> str | None:
    """``edgecnn.source.keras_path`` resolved: relative to the exported file's folder (or, for a quantized
    model elsewhere, its FP32 source's folder); absolute paths of older exports as they are."""
    from edgecnn._fs import resolve_recorded

    recorded = meta.source.get("keras_path")
    if not isinstance(recorded, str) or not recorded:
        return None
    if recorded.startswith("zoo:"):
        return recorded
    folders = [model.parent]
    fp32 = ((meta.quantization or {}).get("source_model") or {}).get("path")
    if isinstance(fp32, str):
        folders.append(resolve_recorded(fp32, model.parent).parent)
    return str(resolve_recorded(recorded, *folders))


def find_keras_model(meta: ModelMetadata, explicit: str | None, model: Path | None = None) -> Any:
    """The Keras model behind an export: ``--keras PATH`` / ``zoo:NAME``, else ``edgecnn.source.keras_path``
    (resolved from ``model``'s folder)."""
    from edgecnn.keras_io import load_keras

    src = explicit or (recorded_keras_path(model, meta) if model is not None else meta.source.get("keras_path"))
    if not src:
        raise UsageError("baselines need the Keras model: pass --keras PATH (or zoo:NAME)")
    if str(src).startswith("zoo:"):
        from edgecnn import zoo

        return zoo.build(str(src)[4:])
    if not Path(src).exists():
        raise UsageError(f"baselines need the Keras model, but {src} (from the model's metadata) is gone; pass --keras")
    return load_keras(src)


def set_tf_threads(threads: int | None) -> str | None:
    """Same threads as onnxruntime; returns a note when TF was already initialised."""
    import tensorflow as tf

    if threads is None:
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as err:
        return f"TensorFlow threads could not be set ({err})"
    return None


def keras_runners(model: Any, *, predict: bool = True) -> list[CallableRunner]:
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=False)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    runners = [CallableRunner("keras tf.function", "keras", lambda x: forward(x).numpy(), convert=tf.constant)]
    if predict:
        runners.append(
            CallableRunner("keras model.predict", "keras", lambda x: model.predict(x, verbose=0, batch_size=len(x)))
        )
    return runners


_CONVERTED: dict[tuple[str, str], bytes] = {}  # (Keras source, calibration sha256 or "fp32") -> flatbuffer


def tflite_runners(
    model: Any, threads: int | None, calib: np.ndarray | None, source: str | None = None
) -> tuple[list[CallableRunner], list[str]]:
    """TFLite FP32 and (with calibration data) full-integer INT8 interpreters of the same Keras model.

    ``source`` (the Keras file) lets a process convert each model once: calibrating a 224×224 net for
    INT8 takes TFLite's converter a minute, and a benchmark at several thread counts needs it each time.
    """
    import tensorflow as tf

    from edgecnn.quantize.calibration import calibration_hash

    notes: list[str] = []
    cache = _CONVERTED if source and Path(source).is_file() else {}  # a file names the model, else nothing kept
    fp32_key = (f"{source}@{Path(source).stat().st_mtime_ns}" if cache else "", "fp32")
    if fp32_key not in cache:
        with _quiet_converter():
            cache[fp32_key] = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    runners = [_interpreter("tflite fp32", cache[fp32_key], threads)]
    if calib is None:
        notes.append("tflite int8 skipped: no calibration data (pass --calibration)")
        return runners, notes
    int8_key = (fp32_key[0], calibration_hash(calib))
    if int8_key in cache:
        runners.append(_interpreter("tflite int8", cache[int8_key], threads))
        return runners, notes

    with _quiet_converter():
        cache[int8_key] = tflite_int8_flatbuffer(model, calib)
    runners.append(_interpreter("tflite int8", cache[int8_key], threads))
    return runners, notes


# what TFLite's converter writes to fd 2 from C++ ("fully_quantize: 0, inference_type: 6, ...", MLIR notes)
_CONVERTER_CHATTER = re.compile(
    r"^(fully_quantize: |Estimated count of arithmetic ops|WARNING: All log messages before absl"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\]|loc\(|Summary on the non-converted ops"
    r"|INFO: Created TensorFlow Lite)"
)


def _quiet_converter() -> Any:
    """The converter's native lines held back unless --debug (they are TFLite's, not edgecnn's)."""
    import contextlib
    import os

    from edgecnn._optional import filtered_native_stderr

    if os.environ.get("EDGECNN_DEBUG", "") not in ("", "0"):
        return contextlib.nullcontext()
    return filtered_native_stderr(_CONVERTER_CHATTER)


def tflite_int8_flatbuffer(model: Any, calib: np.ndarray) -> bytes:
    """Full-integer INT8 (int8 input and output) of a Keras model, calibrated on ``calib`` one sample at a time."""
    import tensorflow as tf

    def representative() -> Any:
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _interpreter(name: str, flatbuffer: bytes, threads: int | None) -> CallableRunner:
    import tensorflow as tf

    interp: dict[int, Any] = {}

    def get(batch: int) -> Any:
        if batch not in interp:
            with _quiet_converter():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                it = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)  # None: TFLite's default
                detail = it.get_input_details()[0]
                it.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
                it.allocate_tensors()
            interp[batch] = it
        return interp[batch]

    def convert(x: np.ndarray) -> tuple[Any, int, np.ndarray]:
        it = get(len(x))
        detail = it.get_input_details()[0]
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
        return it, detail["index"], x

    def run(prepared: tuple[Any, int, np.ndarray]) -> None:
        it, index, x = prepared
        it.set_tensor(index, x)
        it.invoke()

    return CallableRunner(name, "tflite", run, convert=convert)
