"""Every path shares one preprocessing: what classify serves is what parity and calibration measured.

Real photos (scikit-learn's two, scikit-image's when installed) go through ``Classifier.preprocess`` (the
classify / serve / Ray path) and through the data loaders behind ``parity``, ``quantize`` calibration,
``quantize --eval`` and the bench baselines (``load_source`` -> ``load_calibration`` / ``sample_inputs``, and
the streamed ``stream_inputs`` / ``ArrayReader`` batches that parity and quantization feed, issue 27);
the model inputs must be identical, for a centre crop with a non-default filter, with and without the
opt-in fast decode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_exacting_onnx
from pretrained import real_photos

from edgecnn.runtime.classifier import Classifier


def _model(tmp: Path, size: int, fast: bool) -> Path:
    return make_exacting_onnx(tmp / "m.onnx", size=size, labels=("a", "b"), fast_decode=fast)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Two class folders ("a", "b") of real photos, the files in the order the loaders read them."""
    root = tmp_path_factory.mktemp("photos")
    ordered = []
    for i, src in enumerate(real_photos()):
        dst = root / ("a" if i % 2 == 0 else "b") / f"{i:02d}{src.suffix}"
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dst)
        ordered.append(dst)
    return root, sorted(ordered, key=lambda p: (p.parent.name, p.name))


@pytest.mark.filterwarnings("ignore:calibration source .* calibrating on:UserWarning")
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast-decode"])
def test_classify_and_the_calibration_and_parity_loaders_give_identical_inputs(
    photo_folder: tuple[Path, list[Path]], tmp_path: Path, fast: bool
) -> None:
    from edgecnn.parity.run import sample_inputs, stream_inputs
    from edgecnn.quantize.calibration import ArrayReader, load_calibration, load_calibration_set

    root, files = photo_folder
    clf = Classifier(_model(tmp_path, 24, fast), provider="cpu")  # 24 px: the fast shortcuts fire on these photos
    served = clf.preprocess(files)
    calibrated = load_calibration(root, clf.metadata, samples=len(files))
    assert served.shape == (len(files), 24, 24, 3)
    assert np.array_equal(served, calibrated)
    x, _, _ = sample_inputs(clf.metadata, f"folder:{root}")  # parity / quantize --eval: its test split
    assert all(any(np.array_equal(row, s) for s in served) for row in x)
    # the streamed paths that parity and quantization take (issue 27): the same inputs, batch by batch
    streamed = np.concatenate(list(stream_inputs(clf.metadata, f"folder:{root}").batches(2)))
    assert np.array_equal(streamed, x)
    reader = ArrayReader("input", load_calibration_set(root, clf.metadata, samples=len(files)).inputs, batch_size=2)
    assert np.array_equal(np.concatenate([b["input"] for b in iter(reader.get_next, None)]), served)
    clf.close()


@pytest.mark.slow  # parses mnist5k (~1-2 s)
def test_classify_and_the_streamed_parity_and_calibration_of_a_source_give_identical_inputs(tmp_path: Path) -> None:
    """A named source (mnist5k, 28×28 grey) is fitted to the model batch by batch in parity and calibration:
    the inputs are the ones classify makes from the same digits."""
    from edgecnn.data import load_source, sample_balanced
    from edgecnn.parity.run import stream_inputs
    from edgecnn.quantize.calibration import ArrayReader, load_calibration_set

    clf = Classifier(_model(tmp_path, 24, False), provider="cpu")
    test = load_source("mnist5k", split="test", limit=40)
    parity = np.concatenate(list(stream_inputs(clf.metadata, "mnist5k", limit=40).batches(16)))
    assert parity.shape == (40, 24, 24, 3) and np.array_equal(parity, clf.preprocess(list(test.x)))
    picked = sample_balanced(load_source("mnist5k", split="train"), 20, seed=0)
    with pytest.warns(UserWarning, match="calibrating on 20 samples"):
        cal = load_calibration_set("mnist5k", clf.metadata, 20)
    fed = np.concatenate([b["input"] for b in iter(ArrayReader("input", cal.inputs, 8).get_next, None)])
    assert np.array_equal(fed, clf.preprocess(list(picked.x)))
    clf.close()


def test_fast_decode_changes_pixels_so_the_paths_must_agree_on_it(
    photo_folder: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    """The test above would pass vacuously if the fast path never fired: it does, and it moves pixels."""
    _, files = photo_folder
    exact = Classifier(_model(tmp_path, 24, False), provider="cpu")
    fast = Classifier(exact.path, provider="cpu", fast_decode=True)
    assert not np.array_equal(exact.preprocess(files), fast.preprocess(files))
