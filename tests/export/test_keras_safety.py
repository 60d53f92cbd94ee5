"""Untrusted Keras files: refused before Keras runs any of their code (crafted files, known CVE shapes)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from edgecnn.errors import ModelFormatError, ModelNotFoundError, UnsafeModelError

# Real Keras-made files, committed (keras_files/make.py makes them): every refusal is decided from the file
# before TensorFlow's import, so these tests need no TensorFlow; the ones that load for real are slow.
FILES = Path(__file__).parent / "keras_files"


def _rewrite_config(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            zout.writestr(item, data)
    return dst


@pytest.fixture
def plain_keras() -> Path:
    return FILES / "plain.keras"


def test_lambda_layer_is_refused_with_its_name() -> None:
    from edgecnn.keras_io import load_keras

    with pytest.raises(UnsafeModelError, match=r"'double_it' is a Lambda layer.*--unsafe"):
        load_keras(FILES / "lambda.keras")


@pytest.mark.needs_tf
@pytest.mark.slow  # loads with Keras (TensorFlow's import)
def test_lambda_loads_with_explicit_trust() -> None:
    import numpy as np

    from edgecnn.keras_io import load_keras

    model = load_keras(FILES / "lambda.keras", unsafe=True)
    assert np.allclose(model(np.ones((1, 4), np.float32)), 2.0)


def test_refusals_do_not_import_tensorflow(tmp_path: Path) -> None:
    """Refused in milliseconds from the file alone: the checks run before TensorFlow's import (seconds)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom edgecnn.errors import UnsafeModelError\nfrom edgecnn.keras_io import load_keras\n"
        f"for name in ('lambda.keras', 'legacy.h5'):\n"
        f"    try:\n        load_keras({str(FILES)!r} + '/' + name)\n    except UnsafeModelError:\n        pass\n"
        "    else:\n        sys.exit('not refused: ' + name)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_module_qualified_class_is_refused(plain_keras: Path, tmp_path: Path) -> None:
    """CVE-2025-1550 shape: a config naming a class from an arbitrary module (e.g. os / subprocess)."""
    from edgecnn.keras_io import load_keras

    def evil(cfg: dict) -> dict:  # type: ignore[type-arg]
        cfg["config"]["layers"][-1]["module"] = "subprocess"
        cfg["config"]["layers"][-1]["class_name"] = "Popen"
        return cfg

    path = _rewrite_config(plain_keras, tmp_path / "evil.keras", evil)
    with pytest.raises(UnsafeModelError, match="module 'subprocess', outside Keras"):
        load_keras(path)


def test_registered_custom_object_is_refused(plain_keras: Path, tmp_path: Path) -> None:
    from edgecnn.keras_io import load_keras

    def custom(cfg: dict) -> dict:  # type: ignore[type-arg]
        cfg["config"]["layers"][-1]["registered_name"] = "MyPackage>Backdoor"
        return cfg

    path = _rewrite_config(plain_keras, tmp_path / "custom.keras", custom)
    with pytest.raises(UnsafeModelError, match="registered custom object 'MyPackage>Backdoor'"):
        load_keras(path)


def test_zip_bomb_members_are_refused(tmp_path: Path) -> None:
    from edgecnn import keras_io

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", "{}")
        for i in range(keras_io.MAX_MEMBERS + 1):
            zf.writestr(f"f{i}", b"")
    with pytest.raises(UnsafeModelError, match="members"):
        keras_io.load_keras(path)


def test_path_traversal_member_is_refused(plain_keras: Path, tmp_path: Path) -> None:
    from edgecnn.keras_io import load_keras

    path = tmp_path / "traversal.keras"
    with zipfile.ZipFile(plain_keras) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        zout.writestr("../../outside.txt", b"x")
    with pytest.raises(UnsafeModelError, match="outside the archive"):
        load_keras(path)


@pytest.mark.parametrize(
    ("name", "content", "error", "fragment"),
    [
        ("model.h5", b"this is not HDF5", ModelFormatError, "not an HDF5 file"),
        ("model.keras", b"PK\x03\x04 truncated", ModelFormatError, "not a Keras .keras archive"),
        ("model.pt", b"\x80\x02", ModelFormatError, "unknown model format .pt"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, content: bytes, error: type, fragment: str) -> None:
    from edgecnn.keras_io import load_keras

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=fragment.replace(".", r"\.")):
        load_keras(path)


def test_h5_is_refused_without_trust() -> None:
    """CVE-2025-9905: .h5 ignored safe_mode; edgecnn treats it as code."""
    from edgecnn.keras_io import load_keras

    with pytest.raises(UnsafeModelError, match=r"legacy \.h5 models can run code"):
        load_keras(FILES / "legacy.h5")


@pytest.mark.needs_tf
@pytest.mark.slow  # loads with Keras (TensorFlow's import)
def test_h5_loads_with_trust_and_a_warning() -> None:
    from edgecnn.keras_io import load_keras

    with pytest.warns(UserWarning, match="can run code"):
        assert load_keras(FILES / "legacy.h5", unsafe=True).count_params() == 10


def test_missing_file() -> None:
    from edgecnn.keras_io import load_keras

    with pytest.raises(ModelNotFoundError, match="no such model file"):
        load_keras("nowhere/model.keras")


@pytest.mark.needs_tf
@pytest.mark.slow
def test_saved_model_needs_trust_then_exports(tmp_path: Path) -> None:
    import keras

    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.keras_io import load_keras

    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    )
    model.export(str(tmp_path / "sm"), format="tf_saved_model")
    with pytest.raises(UnsafeModelError, match="SavedModel folders can run code"):
        load_keras(tmp_path / "sm")
    with pytest.warns(UserWarning, match="SavedModel"):
        report = export_keras(tmp_path / "sm", tmp_path / "sm.onnx", ExportConfig(unsafe=True, parity_samples=8))
    assert report.passed and report.metadata.output.value == "softmax" and report.metadata.input.height == 6
