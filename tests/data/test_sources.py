"""Data sources: real shipped digits, deterministic splits, folders, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from edgecnn.data import load_source, sample_balanced
from edgecnn.errors import ImageError, InputError, UsageError


def test_mnist5k_split_is_fixed_and_disjoint() -> None:
    train, val, test = (load_source("mnist5k", split=s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (3600, 400, 1000)
    assert train.x.dtype == np.uint8 and train.x.shape[1:] == (28, 28, 1) and train.x.max() == 255
    assert np.bincount(test.y).tolist() == [100] * 10  # stratified
    everything = load_source("mnist5k", split="all")
    assert len(everything) == 5000
    rows = {r.tobytes() for r in test.x}
    assert not any(r.tobytes() in rows for r in train.x) and not any(r.tobytes() in rows for r in val.x)
    again = load_source("mnist5k", split="test")
    np.testing.assert_array_equal(again.x, test.x)


def test_digits_are_upscaled() -> None:
    ds = load_source("digits", split="test")
    assert ds.x.shape[1:] == (28, 28, 1) and ds.x.max() > 200 and ds.class_names[3] == "3"


def test_resize_and_colour_for_a_model() -> None:
    ds = load_source("mnist5k", split="test", image_size=(32, 32), color_mode="RGB", limit=5)
    assert ds.x.shape == (5, 32, 32, 3)


def test_folder_source(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(5):
            write_png(tmp_path / "pets" / cls / f"{i}.png", size=(20, 16), seed=i)
    ds = load_source(f"folder:{tmp_path / 'pets'}", split="all", image_size=(16, 16))
    assert ds.class_names == ("cat", "dog") and ds.x.shape == (10, 16, 16, 3)
    assert np.bincount(ds.y).tolist() == [5, 5]
    assert len(load_source(f"folder:{tmp_path / 'pets'}", split="test")) == 2


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        load_source(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class subfolders"):
        load_source(f"folder:{tmp_path / 'empty'}")
    write_png(tmp_path / "bad" / "a" / "ok.png")
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"nope")
    with pytest.raises(ImageError, match=r"broken\.png"):
        load_source(f"folder:{tmp_path / 'bad'}", split="all")


def test_unknown_source_and_split() -> None:
    with pytest.raises(UsageError, match="unknown data source 'imagenet'"):
        load_source("imagenet")
    with pytest.raises(UsageError, match="unknown split"):
        load_source("mnist5k", split="holdout")


@pytest.mark.slow  # imports Keras
def test_offline_keras_dataset_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real keras.datasets path, with its download made to fail as it does offline."""
    pytest.importorskip("keras")
    import keras

    def offline() -> None:
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(InputError, match=r"needs a network.*mnist5k"):
        load_source("mnist")


def test_sample_balanced() -> None:
    ds = sample_balanced(load_source("mnist5k", split="train"), 100, seed=3)
    assert np.bincount(ds.y).tolist() == [10] * 10
    with pytest.raises(InputError, match="only"):
        sample_balanced(ds, 101)


def test_adapt_fits_with_the_models_own_preprocessing() -> None:
    """A built-in source resized for a model goes through the runtime's fit_image: its filter and crop,
    the pixels classify would compute from the same images (not a hard-coded bilinear squash)."""
    from PIL import Image

    from edgecnn.runtime.metadata import CropMode, PreprocessSpec
    from edgecnn.runtime.preprocess import fit_image

    pre = PreprocessSpec(interpolation="bicubic", crop_mode=CropMode.center, crop_pct=0.875)
    raw = load_source("digits", split="test", limit=5)
    ds = load_source("digits", split="test", limit=5, image_size=(20, 20), color_mode="RGB", preprocess=pre)
    want = np.stack([np.asarray(fit_image(Image.fromarray(a[..., 0]), 20, 20, pre)) for a in raw.x])
    assert ds.x.shape == (5, 20, 20, 3) and np.array_equal(ds.x, want)
    squash = load_source("digits", split="test", limit=5, image_size=(20, 20), color_mode="RGB")
    assert not np.array_equal(ds.x, squash.x)
