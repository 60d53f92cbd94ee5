"""The Keras adapter: reading Keras models safely, their metadata and sidecar, and the Keras side of parity
as a plain ``Predictor``.

It stands below export, train, parity and bench (all of which read Keras models through it) and above the
runtime only; TensorFlow and Keras are imported inside its functions, never at import time.

A ``.keras`` archive is inspected before Keras opens it: member count and sizes (zip bombs), then its
``config.json`` for Lambda layers and classes from outside Keras (arbitrary code). Only then does
Keras load it, with ``safe_mode=True``. Legacy ``.h5`` files and SavedModel folders can run code when
loaded: they need ``unsafe=True`` (the CLI's ``--unsafe``), and warn.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._fs import write_text_atomic
from edgecnn.errors import ModelFormatError, ModelNotFoundError, UnsafeModelError
from edgecnn.runtime.metadata import (
    ColorMode,
    InputSpec,
    Layout,
    ModelMetadata,
    OutputKind,
    PreprocessSpec,
)
from edgecnn.runtime.postprocess import to_probabilities

Predictor = Callable[[np.ndarray], np.ndarray]

MAX_MEMBERS = 10_000
MAX_UNCOMPRESSED = 4 * 1024**3
MAX_CONFIG_BYTES = 64 * 1024**2
SAFE_MODULE_PREFIXES = ("keras", "keras_core", "tf_keras", "keras_hub", "keras_nlp", "keras_cv")
SIDECAR_SUFFIX = ".edgecnn.json"
MIN_KERAS = (3, 12)  # safe_mode fixes for CVE-2025-1550/-8747/-9905/-9906 and later


def _trust_hint(path: Path) -> str:
    return f"load it with --unsafe (unsafe=True) only if you trust where {path.name} came from"


def _walk(obj: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a Keras config tree that looks like a serialised object."""
    if isinstance(obj, dict):
        if "class_name" in obj:
            yield obj
        for value in obj.values():
            yield from _walk(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk(value)


def inspect_keras_archive(path: Path) -> dict[str, Any]:
    """Vet a ``.keras`` zip before Keras opens it; return its parsed config.json.

    Raises:
        ModelFormatError: not a zip, or no config.json.
        UnsafeModelError: too many/large members, a Lambda layer, or a class from outside Keras.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFormatError(f"{path}: not a Keras .keras archive ({err})", path=path) from err
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeModelError(f"{path}: archive has {len(infos):,} members (limit {MAX_MEMBERS:,})", path=path)
        total = sum(i.file_size for i in infos)
        if total > MAX_UNCOMPRESSED:
            raise UnsafeModelError(
                f"{path}: archive expands to {total:,} bytes (limit {MAX_UNCOMPRESSED:,}); possible zip bomb",
                path=path,
            )
        for info in infos:
            name = info.filename
            if name.startswith("/") or ".." in Path(name).parts:
                raise UnsafeModelError(f"{path}: archive member {name!r} points outside the archive", path=path)
        try:
            info = zf.getinfo("config.json")
        except KeyError:
            raise ModelFormatError(f"{path}: not a Keras .keras archive (no config.json)", path=path) from None
        if info.file_size > MAX_CONFIG_BYTES:
            raise UnsafeModelError(f"{path}: config.json is {info.file_size:,} bytes; refused", path=path)
        try:
            config = json.loads(zf.read("config.json"))
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            raise ModelFormatError(f"{path}: config.json is unreadable ({err})", path=path) from err
    for obj in _walk(config):
        cls = str(obj.get("class_name"))
        module = obj.get("module")
        layer_name = (obj.get("config") or {}).get("name", "?") if isinstance(obj.get("config"), dict) else "?"
        if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda") or cls.endswith("Lambda"):
            raise UnsafeModelError(
                f"{path}: layer {layer_name!r} is a {cls} layer, which runs arbitrary Python code when loaded; "
                + _trust_hint(path),
                path=path,
            )
        if "__lambda__" in json.dumps(obj.get("config", ""))[:100000] and cls != "Functional":
            raise UnsafeModelError(
                f"{path}: {cls} {layer_name!r} holds serialised Python code; " + _trust_hint(path), path=path
            )
        if isinstance(module, str) and module and not module.startswith(SAFE_MODULE_PREFIXES) and module != "builtins":
            raise UnsafeModelError(
                f"{path}: {cls} {layer_name!r} comes from module {module!r}, outside Keras (custom code); "
                + _trust_hint(path),
                path=path,
            )
        if obj.get("registered_name") and str(obj["registered_name"]).split(">")[0] not in ("", cls):
            reg = str(obj["registered_name"])
            if not reg.startswith(SAFE_MODULE_PREFIXES):
                raise UnsafeModelError(
                    f"{path}: {cls} {layer_name!r} is a registered custom object {reg!r}; " + _trust_hint(path),
                    path=path,
                )
    return config


def check_keras_version() -> None:
    """Refuse a Keras without the safe_mode fixes (loading untrusted files would not be safe)."""
    import keras

    parts = tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit())
    if parts < MIN_KERAS:
        raise UnsafeModelError(
            f"Keras {keras.__version__} has known safe_mode bypasses (CVE-2025-1550, CVE-2025-9906, ...); "
            f"upgrade: pip install 'keras>={MIN_KERAS[0]}.{MIN_KERAS[1]}'"
        )


def _refuse_from_the_file(p: Path, *, unsafe: bool) -> None:
    """Everything that can be told from the file alone, in milliseconds, before TensorFlow's import (seconds):
    a folder without saved_model.pb, an unknown suffix, a .keras file that is no zip archive or fails
    ``inspect_keras_archive``, a .h5 file that is no HDF5; and, without ``unsafe``, the formats that run code.

    Raises:
        ModelFormatError, UnsafeModelError.
    """
    import zipfile

    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise ModelFormatError(f"{p}: a folder but not a SavedModel (no saved_model.pb)", path=p)
        if not unsafe:
            raise UnsafeModelError(f"{p}: SavedModel folders can run code when loaded; " + _trust_hint(p), path=p)
        return
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        with open(p, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ModelFormatError(f"{p}: not an HDF5 file (legacy .h5 Keras models are HDF5)", path=p)
        if not unsafe:
            raise UnsafeModelError(
                f"{p}: legacy .h5 models can run code when loaded (safe_mode does not cover them); " + _trust_hint(p),
                path=p,
            )
        return
    if suffix != ".keras":
        raise ModelFormatError(
            f"{p}: unknown model format {suffix or '(no suffix)'}; expected .keras, .h5 or a SavedModel folder", path=p
        )
    if not zipfile.is_zipfile(p):
        raise ModelFormatError(f"{p}: not a Keras .keras archive (not a zip file)", path=p)
    if not unsafe:
        inspect_keras_archive(p)


def load_keras(path: str | Path, *, unsafe: bool = False) -> Any:
    """Load a Keras model: ``.keras`` safely; ``.h5`` / SavedModel only with ``unsafe=True``.

    Raises:
        ModelNotFoundError, ModelFormatError, UnsafeModelError.
    """
    from edgecnn._optional import require

    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"{p}: no such model file", path=p)
    _refuse_from_the_file(p, unsafe=unsafe)
    keras = require("keras")
    check_keras_version()
    if p.is_dir():
        warnings.warn(f"{p}: loading a SavedModel, which can run code", stacklevel=2)
        try:
            return _wrap_saved_model(p, keras)
        except Exception as err:
            raise ModelFormatError(f"{p}: cannot load SavedModel ({type(err).__name__}: {err})", path=p) from err
    if p.suffix.lower() in (".h5", ".hdf5"):
        warnings.warn(f"{p}: loading a legacy .h5 model, which can run code", stacklevel=2)
        try:
            return keras.saving.load_model(str(p), compile=False, safe_mode=False)
        except Exception as err:
            raise ModelFormatError(f"{p}: cannot load .h5 model ({type(err).__name__}: {err})", path=p) from err
    try:
        return keras.saving.load_model(str(p), compile=False, safe_mode=not unsafe)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise UnsafeModelError(f"{p}: Keras refused it in safe mode ({err}); " + _trust_hint(p), path=p) from err
        raise ModelFormatError(f"{p}: cannot load ({err})", path=p) from err
    except Exception as err:
        raise ModelFormatError(f"{p}: cannot load ({type(err).__name__}: {err})", path=p) from err


def _wrap_saved_model(path: Path, keras: Any) -> Any:
    """A SavedModel's serving signature as a Keras model with a known input shape."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    spec = next(iter(signature.structured_input_signature[1].values()))
    inputs = keras.Input(tuple(spec.shape[1:]), name="input")
    outputs = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")(inputs)
    if isinstance(outputs, dict):
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=path.name)


def keras_predictor(model: Any, output: OutputKind) -> Predictor:
    """The Keras model as a Predictor: a compiled tf.function (``model.predict`` costs ~70 ms per call)."""
    from edgecnn._optional import require

    tf = require("tensorflow")

    @tf.function(reduce_retracing=True)
    def forward(x: Any) -> Any:
        return model(x, training=False)

    def predict(x: np.ndarray) -> np.ndarray:
        out = forward(tf.constant(x))
        if isinstance(out, dict):  # TFSMLayer returns a dict of outputs
            out = next(iter(out.values()))
        return to_probabilities(np.asarray(out), output)

    return predict


# -- the sidecar written by training and read by export ---------------------------------------------
def sidecar_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.name.removesuffix(p.suffix) + SIDECAR_SUFFIX) if p.suffix else p / ("model" + SIDECAR_SUFFIX)


def write_sidecar(model_path: str | Path, info: dict[str, Any]) -> Path:
    """Write ``NAME.edgecnn.json`` beside the model (labels, preprocess, output, layout, zoo, data, ...)."""
    path = sidecar_path(model_path)
    write_text_atomic(path, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(model_path: str | Path) -> dict[str, Any]:
    """The sidecar beside ``model_path``, or {} when there is none."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ModelFormatError(f"{path}: sidecar is not valid JSON ({err})", path=path) from err
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: sidecar must be a JSON object", path=path)
    return data


# -- metadata from the model itself -----------------------------------------------------------------
def infer_output_kind(model: Any) -> OutputKind:
    """softmax / sigmoid / logits from the last layer's activation (probed when the model is opaque)."""
    last = model.layers[-1] if getattr(model, "layers", None) else None
    if type(last).__name__ == "TFSMLayer":
        return _probe_output_kind(model)
    act = getattr(getattr(last, "activation", None), "__name__", "linear")
    units = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else 0
    if act == "softmax":
        return OutputKind.softmax
    if act == "sigmoid" and units == 1:
        return OutputKind.sigmoid
    return OutputKind.logits


def _probe_output_kind(model: Any) -> OutputKind:
    """An opaque SavedModel: outputs that are probabilities on random inputs are taken as such."""
    shape = (8, *tuple(model.inputs[0].shape[1:]))
    out = np.asarray(model(np.random.default_rng(0).random(shape, dtype=np.float32) * 255, training=False))
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1 and ((out >= 0) & (out <= 1)).all():
        return OutputKind.sigmoid
    if ((out >= 0) & (out <= 1)).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        return OutputKind.softmax
    return OutputKind.logits


def has_rescaling(model: Any) -> bool:
    """True when a Rescaling (or Normalization) layer is inside: the model scales raw pixels itself."""
    for layer in getattr(model, "_flatten_layers", lambda: [])():
        if type(layer).__name__ in ("Rescaling", "Normalization"):
            return True
    return False


def infer_metadata(model: Any, sidecar: dict[str, Any] | None = None, labels: list[str] | None = None) -> ModelMetadata:
    """Build the model's edgecnn metadata from its structure, the sidecar, and explicit labels."""
    sidecar = sidecar or {}
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ModelFormatError(f"model input has unknown dimensions {shape}; build it with a fixed input shape")
    layout = Layout(sidecar.get("layout") or {3: "NHWC", 2: "NHW"}.get(len(shape), "NWC"))
    if len(shape) == 3:
        h, w, c = shape
    elif len(shape) == 2 and layout == Layout.NWC:
        h, w, c = 1, shape[0], shape[1]
    elif len(shape) == 2:
        h, w, c = shape[0], shape[1], 1
    else:
        raise ModelFormatError(f"unsupported model input shape {shape}: expected (H, W, C), (H, W) or (W, C)")
    if layout == Layout.NWC and len(shape) != 2:
        layout = Layout.NHWC
    output = OutputKind(sidecar["output"]) if "output" in sidecar else infer_output_kind(model)
    units = int(model.outputs[0].shape[-1])
    n_classes = 2 if output == OutputKind.sigmoid else units
    names = labels or sidecar.get("labels") or [f"class_{i}" for i in range(n_classes)]
    if len(names) != n_classes:
        raise ModelFormatError(f"{len(names)} labels given but the model has {n_classes} classes")
    if "preprocess" in sidecar:
        pre = PreprocessSpec.from_dict(sidecar["preprocess"])  # old sidecars (key resize) read as before
    elif has_rescaling(model):
        pre = PreprocessSpec(
            color_mode=ColorMode.L if c == 1 else ColorMode.RGB, scale=1.0, offset=0.0, model_rescales=True
        )
    else:
        pre = PreprocessSpec(color_mode=ColorMode.L if c == 1 else ColorMode.RGB)
    spec = InputSpec(name="input", layout=layout, height=int(h), width=int(w), channels=int(c))
    return ModelMetadata(labels=tuple(names), input=spec, preprocess=pre, output=output)


def _tup(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(value)
