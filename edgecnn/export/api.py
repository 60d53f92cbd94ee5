"""``export_keras``: Keras model → verified ONNX file with the edgecnn metadata, written atomically."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecnn._fs import atomic_path, check_output_file, relative_to_folder, sha256_file
from edgecnn.errors import ExportError, UsageError
from edgecnn.parity.compare import ParityBars, ParityReport, compare
from edgecnn.runtime.metadata import ModelMetadata, OutputKind, embed_metadata

log = logging.getLogger(__name__)
RANDOM_INPUT_MAX_ABS_DIFF = 1e-3  # random pixels beside real data (see export_keras)
DEFAULT_OPSET = 17  # onnxruntime ≥ 1.14 runs it everywhere; tf2onnx's best-tested opset for Keras 3
EXPORT_DIR = Path("exported")


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """How to export. ``check`` makes a parity failure raise (exit 4) after the file is written."""

    opset: int = DEFAULT_OPSET
    check: bool = True
    parity_samples: int = 256  # real samples (test split) when the data source loads offline
    parity_data: str | None = None  # data source for the automatic parity check; None: the sidecar's
    labels: tuple[str, ...] | None = None
    unsafe: bool = False  # allow .h5 / SavedModel / custom objects (they can run code)
    simplify: bool = True  # fold computed Flatten shapes into constants (see edgecnn.export.simplify)
    softmax_logits: bool = True  # a logits model gets its Softmax in the graph (see append_softmax)

    def __post_init__(self) -> None:
        if self.parity_data is not None:
            from edgecnn.data.sources import check_source

            check_source(self.parity_data)  # a typo is an error before converting, not random pixels after
        if not 13 <= self.opset <= 21:
            raise UsageError(f"--opset must be between 13 and 21, got {self.opset}")
        if self.parity_samples < 1:
            raise UsageError(f"parity_samples must be >= 1, got {self.parity_samples}")


@dataclass(frozen=True)
class ExportReport:
    """What export wrote and how well the ONNX file matches Keras."""

    source: str
    path: Path
    strategy: str
    opset: int
    size_bytes: int
    sha256: str
    metadata: ModelMetadata
    parity: ParityReport
    random_parity: ParityReport
    seconds: dict[str, float] = field(default_factory=dict)
    simplified: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """FAIL when either check failed; PASS when the random-pixel check (the numerical proof of the
        conversion, on enough samples to resolve FP32's exact bar) passed, even if the real data was too
        small to tell on its own (its own verdict says INCONCLUSIVE); else INCONCLUSIVE."""
        if "FAIL" in (self.parity.verdict, self.random_parity.verdict):
            return "FAIL"
        return "PASS" if self.random_parity.verdict == "PASS" else "INCONCLUSIVE"

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def raise_for_failure(self) -> ExportReport:
        if self.parity.verdict == "FAIL":
            self.parity.raise_for_failure()
        if self.random_parity.verdict != "PASS":
            self.random_parity.raise_for_failure()
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": str(self.path),
            "strategy": self.strategy,
            "opset": self.opset,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "metadata": self.metadata.to_dict(),
            "parity": self.parity.to_dict(),
            "random_parity": self.random_parity.to_dict(),
            "verdict": self.verdict,
            "passed": self.passed,
            "seconds": self.seconds,
            "simplified": self.simplified,
        }


def append_softmax(proto: Any) -> None:
    """Make a logits model answer probabilities: ``output`` becomes ``Softmax(logits)``, in place.

    Why: every caller wants probabilities, and onnxruntime's Softmax costs well under a microsecond where
    the same softmax in numpy costs ~5 µs per call (five array operations) — half the Classifier's
    overhead budget on a 0.1 ms model. The metadata then says ``softmax`` and ``source.softmax_appended``.
    """
    from onnx import helper

    graph = proto.graph
    out = graph.output[0]
    logits = f"{out.name}_logits"
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out.name:
                node.output[i] = logits
    graph.node.append(helper.make_node("Softmax", [logits], [out.name], name="edgecnn_softmax", axis=-1))


def _load_source_model(src: Any, config: ExportConfig) -> tuple[Any, dict[str, Any], str, str | None]:
    """(keras model, sidecar, name, sha256 of the file or None)."""
    from edgecnn.keras_io import load_keras, read_sidecar

    if isinstance(src, str) and src.startswith("zoo:"):
        from edgecnn import zoo

        name = src.removeprefix("zoo:")
        spec = zoo.get_spec(name)
        sidecar = {**spec.metadata().to_dict(), "layout": spec.layout.value, "zoo": name, "data": spec.data}
        sidecar["output"] = spec.output.value
        return zoo.build(name), sidecar, name, None
    if hasattr(src, "inputs") and hasattr(src, "layers"):  # a keras.Model object
        return src, {}, getattr(src, "name", "model"), None
    path = Path(src)
    model = load_keras(path, unsafe=config.unsafe)
    return (
        model,
        read_sidecar(path),
        path.name.removesuffix(path.suffix),
        sha256_file(path) if path.is_file() else None,
    )


def _versions(opset: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf
    import tf2onnx

    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "opset": opset,
    }


def export_keras(src: Any, dst: str | Path | None = None, config: ExportConfig | None = None) -> ExportReport:
    """Convert a Keras model (path, ``keras.Model`` or ``"zoo:NAME"``) to ONNX with metadata and parity.

    The file is written atomically, then checked: parity on real test data when the model's data
    source loads offline (plus random inputs always). With ``config.check`` a failed bar raises
    ParityError after the file is written (it is still there for inspection).

    Example::

        report = export_keras("runs/mnist-cnn/mnist-cnn.keras", "exported/mnist-cnn.onnx")
        print(report.parity.summary())

    Raises:
        ModelError, ExportError, ParityError (with ``check``), MissingDependencyError.
    """
    import onnx

    from edgecnn.export.convert import convert
    from edgecnn.keras_io import infer_metadata, keras_predictor
    from edgecnn.parity.run import RANDOM_SAMPLES, is_random, stream_inputs
    from edgecnn.runtime.classifier import Classifier

    config = config or ExportConfig()
    if dst is not None:  # before minutes of conversion
        if Path(dst).suffix.lower() != ".onnx":
            raise UsageError(f"{dst}: the output must end in .onnx")
        check_output_file(dst)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model, sidecar, name, sha = _load_source_model(src, config)
    from edgecnn.export.budget import check_export_fits
    from edgecnn.runtime.environment import machine_memory

    check_export_fits(name, int(model.count_params()), machine_memory())  # before the conversion needs it
    meta = infer_metadata(model, sidecar, list(config.labels) if config.labels else None)
    source = {**_versions(config.opset), "keras_sha256": sha, "name": name}
    for key in ("zoo", "data", "test_accuracy"):
        if key in sidecar:
            source[key] = sidecar[key]
    dst = Path(dst) if dst is not None else EXPORT_DIR / f"{name}.onnx"
    if isinstance(src, (str, Path)) and not str(src).startswith("zoo:"):
        # relative to the ONNX file: no local path travels with the model (bench resolves it from there)
        source["keras_path"] = relative_to_folder(src, dst.parent)
    meta = replace(meta, source=source)
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    converted = convert(model, config.opset, name=name)
    simplified: dict[str, Any] = {}
    if config.simplify:
        from edgecnn.export.simplify import simplify

        proto, rep = simplify(converted.model)
        converted, simplified = replace(converted, model=proto), rep.to_dict()
    keras_output = meta.output  # what the Keras model answers: the parity reference turns it into probabilities
    if config.softmax_logits and meta.output == OutputKind.logits:
        append_softmax(converted.model)
        meta = replace(meta, output=OutputKind.softmax, source=meta.source | {"softmax_appended": True})
    embed_metadata(converted.model, meta)
    from edgecnn._version import __version__

    converted.model.producer_name, converted.model.producer_version = "edgecnn", __version__
    try:
        onnx.checker.check_model(converted.model)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{name}: the converted model fails onnx.checker: {str(err).splitlines()[0]}") from err
    timings["convert"] = time.perf_counter() - t0

    with atomic_path(dst, suffix=".onnx") as tmp:
        onnx.save_model(converted.model, str(tmp))
        onnx_model = Classifier(tmp, provider="cpu")  # the file as written, before it is in place
        t0 = time.perf_counter()
        reference = keras_predictor(model, keras_output)
        data = config.parity_data or _offline_source(sidecar.get("data"))
        try:
            inputs = stream_inputs(meta, data, limit=config.parity_samples)  # made batch by batch in compare
        except Exception as err:  # the sidecar's data is a bonus here; random inputs still prove parity
            if config.parity_data is not None:
                raise  # data the caller named must not quietly become random pixels
            log.warning("parity data %r unavailable (%s); using random inputs only", data, err)
            data = None
            inputs = stream_inputs(meta, None)
        bars = ParityBars.for_mode("fp32")
        parity = compare(
            reference,
            onnx_model,
            inputs,
            inputs.labels,
            meta.labels,
            bars,
            names=("keras", "onnx"),
            data=inputs.description,
            random_data=is_random(data),
        )
        noise = stream_inputs(meta, None, limit=RANDOM_SAMPLES, seed=1)  # enough for FP32's exact bar
        # noise pixels lie far outside a trained net's data: its activations grow, and FP32 rounding with
        # them (a trained EfficientNetB0: 7e-5 on real digits, 2.9e-4 on noise); beside real data they are
        # a sanity check at the 1e-3 bar, and without real data they are the proof, at the real bar
        random_bars = replace(bars, max_abs_diff=RANDOM_INPUT_MAX_ABS_DIFF) if inputs.labels is not None else bars
        random_parity = compare(
            reference,
            onnx_model,
            noise,
            None,
            meta.labels,
            random_bars,
            names=("keras", "onnx"),
            data=noise.description,
            random_data=True,
        )
        timings["parity"] = time.perf_counter() - t0
        del onnx_model
    report = ExportReport(
        source=str(src) if not hasattr(src, "layers") else name,
        path=dst,
        strategy=converted.strategy,
        opset=config.opset,
        size_bytes=dst.stat().st_size,
        sha256=sha256_file(dst),
        metadata=meta,
        parity=parity,
        random_parity=random_parity,
        seconds=timings,
        simplified=simplified,
    )
    if config.check:
        report.raise_for_failure()
    return report


def _offline_source(data: Any) -> str | None:
    from edgecnn.data.sources import OFFLINE

    if isinstance(data, str) and (data in OFFLINE or (data.startswith("folder:") and Path(data[7:]).is_dir())):
        return data
    return None


__all__ = ["ExportConfig", "ExportReport", "export_keras"]
