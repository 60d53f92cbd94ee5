"""One quantization: ONNX FP32 → INT8 (static or dynamic) or FP16 with one config, with metadata, coverage,
accuracy and speed. The policies over several quantizations (the INT8 fallback ladder, the accuracy budget)
live above it, in ``api`` and ``search``, and call ``quantize_once``; nothing here calls back up."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecnn._fs import atomic_path, check_output_file, relative_to_folder, sha256_file, variant_path
from edgecnn.errors import QuantizeError, UsageError
from edgecnn.quantize.anatomy import anatomy, roles
from edgecnn.quantize.calibration import (
    CALIBRATION_BATCH,
    DEFAULT_CALIBRATION_SAMPLES,
    ArrayReader,
    calibration_batch,
    calibration_hash,
    load_calibration_set,
)
from edgecnn.quantize.config import CalibrationMethod, QuantFormat, QuantizeConfig, QuantMode
from edgecnn.quantize.coverage import coverage, optimized_graph
from edgecnn.quantize.head import (
    ensure_node_names,
    finish_float_head,
    head_nodes,
    named,
    plan_float_head,
    restore_output_types,
)
from edgecnn.quantize.rewrites import Simplified, simplify
from edgecnn.quantize.stem import stem_nodes
from edgecnn.runtime.classifier import read_metadata
from edgecnn.runtime.metadata import ModelMetadata, embed_metadata

if TYPE_CHECKING:
    from edgecnn.data.inputs import ModelInputs

log = logging.getLogger(__name__)
DYNAMIC_CONV_WARNING = (
    "dynamic quantization of a model with convolutions makes it several times SLOWER on CPU "
    "(activations are re-quantized on every call and convolutions fall back to ConvInteger); "
    "use --mode int8 (static, calibrated) instead"
)


@dataclass(frozen=True)
class QuantizeReport:
    """What quantize wrote and what it cost."""

    source: Path
    path: Path
    config: QuantizeConfig
    size_before: int
    size_after: int
    coverage: dict[str, Any]
    quantization: dict[str, Any]
    accuracy: dict[str, Any] | None = None  # parity of quantized vs FP32 on --eval
    speed: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    anatomy: list[dict[str, Any]] = field(default_factory=list)  # per role: INT8 / float / folded, and why

    def raise_for_verdict(self, *, inconclusive_only: bool = False) -> QuantizeReport:
        """With ``--eval``: ParityError when the kept model misses its bars, InconclusiveError when the eval data
        is too small to tell (both exit 4; the model file is written either way). ``inconclusive_only``: an
        accuracy budget replaced the bars, but too little data still cannot tell."""
        from edgecnn.errors import InconclusiveError, ParityError

        verdict = (self.accuracy or {}).get("raise")
        if verdict and (verdict["type"] == "INCONCLUSIVE" or not inconclusive_only):
            cls = InconclusiveError if verdict["type"] == "INCONCLUSIVE" else ParityError
            raise cls(f"{verdict['message']}; the model was written to {self.path}")
        return self

    @property
    def size_ratio(self) -> float:
        return self.size_before / self.size_after if self.size_after else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "path": str(self.path),
            "config": self.config.describe(),
            "quantization": self.quantization,
            "size_before": self.size_before,
            "size_after": self.size_after,
            "size_ratio": self.size_ratio,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
            "speed": self.speed,
            "warnings": self.warnings,
            "seconds": self.seconds,
            "anatomy": self.anatomy,
        }


_METHODS = {
    CalibrationMethod.minmax: "MinMax",
    CalibrationMethod.entropy: "Entropy",
    CalibrationMethod.percentile: "Percentile",
}


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return QuantType.QUInt8 if name == "uint8" else QuantType.QInt8


def _preprocessed(src: Path, tmp: Path) -> Path:
    """ORT's quant_pre_process (symbolic shape inference + optimisation); the source if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = tmp / "pre.onnx"
    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=False)
        return out
    except Exception as err:  # pre-processing is an optimisation, not a requirement
        log.warning("quant_pre_process failed on %s (%s); quantizing the original graph", src, err)
        return src


def _simplified(src: Path, tmp: Path) -> tuple[Path, Simplified]:
    """``simplify``'s exact rewrites of the FP32 graph (the input itself when none applies)."""
    import onnx

    model = onnx.load(str(src))
    done = simplify(model)
    if done == Simplified():
        return src, done
    out = tmp / "simplified.onnx"
    onnx.save_model(model, str(out))
    return out, done


def _has_conv(path: Path) -> bool:
    import onnx

    return any(
        n.op_type in ("Conv", "ConvTranspose") for n in onnx.load(str(path), load_external_data=False).graph.node
    )


def _write_int8(
    src: Path,
    out: Path,
    config: QuantizeConfig,
    calib: np.ndarray | ModelInputs,
    input_name: str,
    stem: list[str],
    batch_size: int = CALIBRATION_BATCH,
) -> ArrayReader:
    """Static INT8 of ``src`` into ``out``; the calibration inputs are made batch by batch as onnxruntime reads
    them, ``batch_size`` at most (``calibration_batch``). Returns the reader (it holds the sha256 of what was
    fed)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization import QuantFormat as OrtFormat
    from onnxruntime.quantization import quantize_static

    op_types = None  # quantize_static takes the op types to include: exclusion is the complement
    if config.exclude_op_types:
        op_types = sorted({n.op_type for n in onnx.load(str(src)).graph.node} - set(config.exclude_op_types))
    reader = ArrayReader(input_name, calib, batch_size)
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print() their bin counts
        quantize_static(
            str(src),
            str(out),
            reader,
            quant_format=OrtFormat.QDQ if config.format == QuantFormat.qdq else OrtFormat.QOperator,
            per_channel=config.per_channel,
            reduce_range=config.seven_bit_weights,
            activation_type=_quant_type(config.activation_type),
            weight_type=_quant_type(config.weight_type),
            nodes_to_exclude=[*config.exclude_nodes, *stem] or None,
            op_types_to_quantize=op_types,
            calibrate_method=getattr(OrtMethod, _METHODS[config.calibration_method]),
            extra_options={"ActivationSymmetric": config.activation_type == "int8", "WeightSymmetric": True},
        )
    return reader


def _write_dynamic(src: Path, out: Path, config: QuantizeConfig) -> None:
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(
        str(src),
        str(out),
        per_channel=config.per_channel,
        reduce_range=config.seven_bit_weights,
        weight_type=_quant_type(config.weight_type),
        nodes_to_exclude=list(config.exclude_nodes) or None,
    )


def _write_fp16(src: Path, out: Path) -> None:
    import onnx

    from edgecnn._optional import require

    float16 = require("onnxconverter_common.float16", extra="export")
    model = onnx.load(str(src))
    ensure_node_names(model)
    # the output head stays float32: float16 softmax underflows small probabilities to exactly 0
    original = onnx.ModelProto()
    original.CopyFrom(model)
    converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=head_nodes(model))
    restore_output_types(original, converted)
    onnx.save_model(converted, str(out))


def quantize_once(
    src: str | Path,
    dst: str | Path | None = None,
    config: QuantizeConfig | None = None,
    *,
    calibration: str | Path | None = None,
    eval_data: str | None = None,
    measure_speed: bool = True,
    record_folder: str | Path | None = None,
) -> QuantizeReport:
    """Quantize ``src`` (an edgecnn ONNX model) into ``dst`` (default ``NAME.int8|dynamic|fp16.onnx``) with
    ``config`` alone: no fallback (that policy lives above, in ``api.quantize`` and ``search``).

    Static INT8 needs ``calibration``: an image folder or a data source (its train split); without it,
    the model's own training source is used when it loads offline (``edgecnn.source.data``).
    With ``eval_data``, the report carries the accuracy and agreement against FP32 there.

    ``record_folder``: where the output will finally live, when that is not ``dst``'s folder (the budget
    search writes candidates in a temporary folder): the source model and calibration folder are recorded
    relative to it.

    Raises:
        ModelError, InputError (calibration), UsageError, QuantizeError.
    """
    import onnx

    config = config or QuantizeConfig.int8()
    src = Path(src)
    meta = read_metadata(src)
    dst = Path(dst) if dst is not None else variant_path(src, config.mode.value)
    if dst.resolve() == src.resolve():
        raise UsageError(f"{dst}: the output would overwrite the input model")
    if dst.suffix.lower() != ".onnx":
        raise UsageError(f"{dst}: the output must end in .onnx")
    check_output_file(dst)
    _refuse_quantized(src, meta)
    home = Path(record_folder) if record_folder is not None else dst.parent  # paths are recorded from here
    if config.exclude_nodes:
        from edgecnn._validate import known_names

        known_names("--exclude-nodes", config.exclude_nodes, _node_names(src), "node")
    t0 = time.perf_counter()
    notes: list[str] = []
    quantized_graph: Any = None  # the FP32 graph the INT8 quantizer saw (for the per-role anatomy)
    # the FP32 model it came from: the plain-onnxruntime bench baseline re-quantizes that one by hand
    info: dict[str, Any] = {
        "mode": config.mode.value,
        "config": config.describe(),
        # relative to the quantized file (no local path travels with the model); bench resolves it from there
        "source_model": {"name": src.name, "path": relative_to_folder(src, home), "sha256": sha256_file(src)},
    }
    with tempfile.TemporaryDirectory(prefix="edgecnn-quant-") as tmp_name:
        tmp = Path(tmp_name)
        raw = tmp / "quant.onnx"
        try:
            if config.mode == QuantMode.fp16:
                _write_fp16(src, raw)
                info |= {"method": "float16", "keep_io_types": True}
            else:
                base = named(_preprocessed(src, tmp) if config.preprocess else src, tmp)
                if config.mode == QuantMode.dynamic:
                    if _has_conv(src):
                        warnings.warn(DYNAMIC_CONV_WARNING, stacklevel=2)
                        notes.append(DYNAMIC_CONV_WARNING)
                    _write_dynamic(base, raw, config)
                    info |= {
                        "method": "dynamic",
                        "per_channel": config.per_channel,
                        "weight_type": config.weight_type,
                        "target": config.target.value,
                        "reduce_range": config.seven_bit_weights,
                    }
                else:
                    source = calibration or _default_calibration(meta)
                    cal = load_calibration_set(source, meta, config.calibration_samples, config.seed)
                    if config.calibration_samples is None and len(cal) < DEFAULT_CALIBRATION_SAMPLES:
                        notes.append(
                            f"calibrated on all {len(cal)} samples of {source} "
                            f"(the default asks for up to {DEFAULT_CALIBRATION_SAMPLES})"
                        )
                    if cal.skipped:
                        notes.append(f"calibration: {len(cal.skipped)} unreadable file(s) skipped ({cal.describe()})")
                        info["calibration_skipped"] = len(cal.skipped)
                    if config.simplify:
                        base, simplified = _simplified(base, tmp)
                        info["simplified"] = simplified.to_dict()
                    input_name = _input_name(base)
                    graph = quantized_graph = onnx.load(str(base), load_external_data=False).graph
                    stem = stem_nodes(graph) if config.float_stem else []
                    stem_convs = sum(1 for n in graph.node if n.op_type == "Conv" and n.name in set(stem))
                    by_role = roles(graph) if config.float_roles else {}
                    role_nodes = [n for n, r in by_role.items() if r in config.float_roles and n not in stem]
                    head, head_tensors = plan_float_head(graph, config.format.value)  # real scores: head.py
                    batch = calibration_batch(meta, config.calibration_method == CalibrationMethod.minmax)
                    keep_float = [*stem, *role_nodes, *head]
                    reader = _write_int8(base, raw, config, cal.inputs, input_name, keep_float, batch)
                    info["float_head"] = {"nodes": head, "qdq_pairs_removed": finish_float_head(raw, head_tensors)}
                    info |= {
                        "method": config.calibration_method.value,
                        "format": config.format.value,
                        "per_channel": config.per_channel,
                        "activation_type": config.activation_type,
                        "weight_type": config.weight_type,
                        "target": config.target.value,
                        "reduce_range": config.seven_bit_weights,
                        "calibration_source": portable_source(source, home),
                        "calibration_samples": len(cal),
                        "calibration_sha256": reader.sha256() or calibration_hash(cal.inputs),
                        "excluded_nodes": list(config.exclude_nodes),
                        "excluded_op_types": list(config.exclude_op_types),
                        "float_stem": stem,
                        "float_stem_convs": stem_convs,
                        "float_roles": list(config.float_roles),
                        "float_role_nodes": role_nodes,
                    }
                    if stem and config.format == QuantFormat.qdq:
                        # onnxruntime's QDQ propagation would move the first QuantizeLinear above the stem's
                        # pooling (a uint8 NCHW MaxPool: the slowest kernel of the graph); the engine reads this
                        info["session"] = {"disabled_optimizers": ["QDQPropagationTransformer"]}
        except (UsageError, QuantizeError):
            raise
        except Exception as err:
            from edgecnn.errors import EdgeCNNError

            if isinstance(err, EdgeCNNError):
                raise
            raise QuantizeError(
                f"{src}: quantization ({config.describe()}) failed: {type(err).__name__}: {err}"
            ) from err
        model = onnx.load(str(raw))
        embed_metadata(model, meta.with_quantization(info))
        with atomic_path(dst, suffix=".onnx") as out:
            onnx.save_model(model, str(out))
    optimized = optimized_graph(dst)  # one onnxruntime session serves the coverage and the anatomy
    cov = coverage(dst, optimized)
    role_rows: list[dict[str, Any]] = []
    if quantized_graph is not None:
        rows = anatomy(
            quantized_graph,
            dst,
            stem=info.get("float_stem", []),
            excluded_nodes=config.exclude_nodes,
            excluded_op_types=config.exclude_op_types,
            float_roles=config.float_roles,
            optimized=optimized,
            head=tuple(info.get("float_head", {}).get("nodes", ())),
        )
        role_rows = [r.to_dict() for r in rows]
    stem_convs = int(info.get("float_stem_convs", 0))
    if config.mode != QuantMode.fp16 and cov["float"] > stem_convs:
        notes.append(f"{cov['float']} compute node(s) still run in float: {cov['float_ops']}")
    elif stem_convs:
        notes.append(f"{stem_convs} stem convolution(s) over 1–4 input channels kept in float (faster; see README)")
    report = QuantizeReport(
        source=src,
        path=dst,
        config=config,
        size_before=src.stat().st_size,
        size_after=dst.stat().st_size,
        coverage=cov,
        quantization=info,
        warnings=notes,
        anatomy=role_rows,
    )
    if eval_data:
        report = dataclasses.replace(report, accuracy=evaluate(src, dst, meta, eval_data))
    return finish(report, measure_speed=measure_speed, started=t0)


def finish(report: QuantizeReport, *, measure_speed: bool, started: float) -> QuantizeReport:
    """The report with the speed of the model kept (when asked), a warning when it is slower, and the time
    since ``started``: the last step of one quantization, or of a policy over several."""
    speed = measure_pair(report.source, report.path) if measure_speed else None
    slower = slower_warning(speed, report.config.mode.value)
    notes_after = [*report.warnings, slower] if slower else report.warnings
    return dataclasses.replace(report, speed=speed, seconds=time.perf_counter() - started, warnings=notes_after)


SLOWER_BELOW = 0.95  # speed-ups under this (beyond run-to-run noise on a shared machine) are said out loud


def slower_warning(speed: dict[str, Any] | None, mode: str) -> str | None:
    """Say so when the quantized model is slower than the FP32 one on this machine (either measured case)."""
    if not speed:
        return None
    worse = [
        f"{label} {speed[key]:.2f}×"
        for key, label in (("speedup_batch1", "batch-1 latency"), ("speedup_batch32", "batch-32 throughput"))
        if speed.get(key, 1.0) < SLOWER_BELOW
    ]
    if not worse:
        return None
    return (
        f"{mode.upper()} is SLOWER than FP32 on this machine ({', '.join(worse)} of FP32, 1 thread): "
        "keep the FP32 model here, or try another setting (edgecnn bench both; README 'Quantization notes')"
    )


def portable_source(source: str | Path, folder: Path) -> str:
    """A data source as metadata records it: a folder relative to ``folder`` (the model's), never absolute."""
    spec = str(source)
    if spec.startswith("folder:") or Path(spec).is_dir():
        return "folder:" + relative_to_folder(spec.removeprefix("folder:"), folder)
    return spec


QUANTIZED_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}
)


def _node_names(path: Path) -> set[str]:
    import onnx

    return {n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.name}


def _refuse_quantized(src: Path, meta: ModelMetadata) -> None:
    """Quantizing a quantized model fails inside onnxruntime (and left a broken file): refuse it up front.

    Raises:
        UsageError: the metadata records a quantization, or the graph already holds quantized ops.
    """
    import onnx

    done = meta.quantization.get("mode") if meta.quantization else None
    if done is None:
        ops = {n.op_type for n in onnx.load(str(src), load_external_data=False).graph.node}
        done = "int8" if ops & QUANTIZED_OPS else None
    if done is not None:
        origin = (meta.quantization.get("source_model") or {}).get("name") if meta.quantization else None
        hint = f" ({origin})" if origin else ""
        raise UsageError(f"{src}: already quantized ({done}); quantize its FP32 source model{hint} instead")


def _input_name(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in inits)


def _default_calibration(meta: ModelMetadata) -> str:
    from edgecnn.data.sources import OFFLINE

    data = meta.source.get("data")
    if isinstance(data, str) and data in OFFLINE:
        return data
    raise UsageError(
        "static INT8 needs calibration data: pass --calibration DIR (a folder of about 100-300 representative "
        "images, flat or nested, labels not needed) or --calibration SOURCE (e.g. mnist5k)"
    )


def evaluate(fp32: Path, quant: Path, meta: ModelMetadata, data: str) -> dict[str, Any]:
    """Accuracy of both and their agreement on ``data``'s test split (DESIGN.md bars for the mode)."""
    from edgecnn.parity import bars_for, compare
    from edgecnn.parity.run import is_random, stream_inputs
    from edgecnn.runtime.classifier import Classifier

    qclf = Classifier(quant, provider="cpu")
    inputs = stream_inputs(meta, data)  # made batch by batch in compare
    rep = compare(
        Classifier(fp32, provider="cpu"),
        qclf,
        inputs,
        inputs.labels,
        meta.labels,
        bars_for(qclf.metadata),
        names=("fp32", "quantized"),
        data=inputs.description,
        random_data=is_random(data),
    )
    out = rep.to_dict()
    out["verdict_text"] = rep.verdict_text()
    out["raise"] = None if rep.passed else {"type": rep.verdict, "message": _verdict_message(rep)}
    return out


def _verdict_message(rep: Any) -> str:
    from edgecnn.errors import CheckFailed

    try:
        rep.raise_for_failure()
    except CheckFailed as err:
        return str(err)
    return ""


def measure_pair(a: Path, b: Path, seconds: float = 0.6, rounds: int = 3) -> dict[str, Any]:
    """Batch-1 p50 latency and batch-32 throughput of two models, interleaved in one process."""
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.session import SessionSettings

    clfs = {
        "before": Classifier(a, provider="cpu", settings=SessionSettings(threads=1)),
        "after": Classifier(b, provider="cpu", settings=SessionSettings(threads=1)),
    }
    spec = clfs["before"].metadata.input
    x1 = np.random.default_rng(0).random((1, *spec.sample_shape), dtype=np.float32)
    x32 = np.repeat(x1, 32, axis=0)
    lat: dict[str, list[float]] = {k: [] for k in clfs}
    thr: dict[str, list[float]] = {k: [] for k in clfs}
    for clf in clfs.values():
        clf.predict_proba(x1)
        clf.predict_proba(x32)
    for _ in range(rounds):  # interleaved blocks: drift hits both alike
        for name, clf in clfs.items():
            end = time.perf_counter() + seconds / rounds
            while time.perf_counter() < end:
                t = time.perf_counter()
                clf.predict_proba(x1)
                lat[name].append(time.perf_counter() - t)
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds / rounds or n < 2:
                clf.predict_proba(x32)
                n += 1
            thr[name].append(32 * n / (time.perf_counter() - t))
    out: dict[str, Any] = {"threads": 1}
    for name in clfs:
        out[name] = {
            "p50_ms_batch1": float(np.median(lat[name]) * 1e3),
            "throughput_batch32": float(np.median(thr[name])),
        }
    out["speedup_batch1"] = out["before"]["p50_ms_batch1"] / out["after"]["p50_ms_batch1"]
    out["speedup_batch32"] = out["after"]["throughput_batch32"] / out["before"]["throughput_batch32"]
    return out
