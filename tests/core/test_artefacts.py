"""The committed training run (tests/artefacts/) is what tests/_artefacts.py builds from today's sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import _artefacts
import pytest


def test_committed_artefacts_are_current() -> None:
    assert _artefacts.problems() == []
    manifest = json.loads(_artefacts.MANIFEST.read_text())
    assert manifest["report"]["arch"] == "mnist-cnn" and manifest["report"]["test_accuracy"] >= 0.97


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's key inputs and artefacts copied, and the module pointed at the copy."""
    root = tmp_path / "repo"
    for rel in _artefacts.INPUTS:
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
    assert "stale: edgecnn/zoo/mnist.py changed" in found and _artefacts.REBUILD in found
    with pytest.raises(RuntimeError, match="stale"):
        _artefacts.trained_copy(copy / "out")


def test_an_altered_file_is_named(copy: Path) -> None:
    model = copy / "tests/artefacts/mnist-cnn/mnist-cnn.keras"
    model.write_bytes(model.read_bytes()[:-1])
    assert _artefacts.problems() == [
        f"tests/artefacts/mnist-cnn/mnist-cnn.keras is missing or altered; run `{_artefacts.REBUILD}` and commit"
    ]
