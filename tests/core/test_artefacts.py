"""The committed training run and its export (tests/artefacts/) are what tests/_artefacts.py builds from
today's sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import _artefacts
import pytest


def test_committed_artefacts_are_current() -> None:
    assert _artefacts.problems() == []
    manifest = json.loads(_artefacts.MANIFEST.read_text())
    report = manifest["trained"]["report"]
    assert report["arch"] == "mnist-cnn" and report["test_accuracy"] >= 0.97
    assert manifest["exported"]["parity"].endswith("PASS")


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's key inputs and artefacts copied, and the module pointed at the copy."""
    root = tmp_path / "repo"
    for rel in (*_artefacts.INPUTS, *_artefacts._expand(_artefacts.EXPORT_INPUTS)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_artefacts.ROOT / rel, root / rel)
    shutil.copytree(_artefacts.HERE, root / "tests" / "artefacts")
    monkeypatch.setattr(_artefacts, "ROOT", root)
    monkeypatch.setattr(_artefacts, "HERE", root / "tests" / "artefacts")
    monkeypatch.setattr(_artefacts, "MANIFEST", root / "tests" / "artefacts" / "manifest.json")
    assert _artefacts.problems() == []
    return root


def test_a_changed_source_makes_them_stale(copy: Path) -> None:
    with open(copy / "edgecnn/zoo/mnist.py", "a") as fh:
        fh.write("# a change to the architectures\n")
    (found,) = _artefacts.problems()
    assert "stale trained: edgecnn/zoo/mnist.py changed" in found and _artefacts.REBUILD in found
    assert _artefacts.stale_stages() == ["trained"]
    with pytest.raises(RuntimeError, match="stale"):
        _artefacts.trained_copy(copy / "out")


def test_a_changed_exporter_stales_the_export_alone(copy: Path) -> None:
    with open(copy / "edgecnn/export/convert.py", "a") as fh:
        fh.write("# a change to the converter\n")
    (found,) = _artefacts.problems()
    assert found.startswith("stale exported: edgecnn/export/convert.py changed")
    assert _artefacts.stale_stages() == ["exported"]
    with pytest.raises(RuntimeError, match="stale exported"):
        _artefacts.exported_copy(copy / "out")


def test_a_retrained_model_stales_its_export(copy: Path) -> None:
    model = copy / "tests/artefacts" / _artefacts.MODEL
    model.write_bytes(model.read_bytes() + b"\0")
    found = _artefacts.problems()
    assert f"stale exported: tests/artefacts/{_artefacts.MODEL} changed" in found[0]
    assert f"tests/artefacts/{_artefacts.MODEL} is missing or altered" in found[1]


def test_an_altered_file_is_named(copy: Path) -> None:
    onnx = copy / "tests/artefacts" / _artefacts.ONNX
    onnx.write_bytes(onnx.read_bytes()[:-1])
    assert _artefacts.problems() == [
        f"tests/artefacts/{_artefacts.ONNX} is missing or altered; run `{_artefacts.REBUILD}` and commit"
    ]
