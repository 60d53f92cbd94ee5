"""Hostile ONNX files: one clear ModelError each, before onnxruntime sees them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_tiny_onnx
from onnx import numpy_helper

from edgecnn import Classifier
from edgecnn.errors import ModelFormatError, ModelNotFoundError, UnsafeModelError
from edgecnn.runtime.session import check_model_file


def test_missing_file() -> None:
    with pytest.raises(ModelNotFoundError, match="no such model file"):
        Classifier("does/not/exist.onnx")


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(4096), b"\x08\x07\x12\x04ab"],
    ids=["empty", "random-bytes", "garbage-proto"],
)
def test_malformed_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as info:
        Classifier(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_model(tmp_path: Path, tiny_onnx: Path) -> None:
    path = tmp_path / "truncated.onnx"
    data = tiny_onnx.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"truncated\.onnx"):
        Classifier(path)


def _with_external(tmp_path: Path, location: str) -> Path:
    """The tiny model with its 'fc' weights pointing at external data ``location``."""
    model_dir = tmp_path / "model"
    path = make_tiny_onnx(model_dir / "m.onnx")
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "fc":
            raw = numpy_helper.to_array(init).tobytes()
            init.ClearField("float_data")
            init.ClearField("raw_data")
            init.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
                entry = init.external_data.add()
                entry.key, entry.value = key, value
    onnx.save_model(model, str(path))
    return path


def test_external_data_traversal_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(12, np.float32).tobytes())
    path = _with_external(tmp_path, "../secret.bin")
    with pytest.raises(UnsafeModelError, match="outside the model's folder"):
        Classifier(path)


def test_absolute_external_data_is_refused(tmp_path: Path) -> None:
    path = _with_external(tmp_path, "/etc/passwd")
    with pytest.raises(UnsafeModelError, match="outside the model's folder"):
        check_model_file(path)


def test_symlink_out_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(12, np.float32).tobytes())
    path = _with_external(tmp_path, "weights.bin")
    (path.parent / "weights.bin").symlink_to(secret)
    with pytest.raises(UnsafeModelError, match="symbolic link"):
        Classifier(path)


def test_hard_link_out_is_refused(tmp_path: Path) -> None:
    """onnxruntime 1.31 follows a hard link to a file outside the folder; edgecnn must not."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(12, np.float32).tobytes())
    path = _with_external(tmp_path, "weights.bin")
    os.link(secret, path.parent / "weights.bin")
    with pytest.raises(UnsafeModelError, match="hard link"):
        Classifier(path)


def test_legitimate_external_data_loads(tmp_path: Path) -> None:
    path = _with_external(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(np.ones(12, np.float32).tobytes())
    clf = Classifier(path)
    assert clf.predict_proba(np.zeros((1, 8, 8, 3), np.float32)).shape == (1, 3)
