"""File for file: a trained Keras model whose preprocessing layers are inside the graph (Rescaling,
Normalization) answers through ``edgecnn export`` + ``Classifier`` what Keras' own pipeline answers
(``keras.utils.load_img(path, target_size, interpolation="bilinear")`` + ``model.predict``) on real files:
the MNIST digits the repository ships (28 px, resized up to the input) and real photos (resized down)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pretrained import real_photos

pytestmark = [pytest.mark.slow, pytest.mark.needs_tf]

ROOT = Path(__file__).resolve().parents[2]
SIZE = 40


def _trained(tmp: Path) -> Path:
    """A small convnet trained three epochs on mnist5k's digits (RGB, 40 px), preprocessing inside."""
    import keras

    from edgecnn.data import load_source

    ds = load_source("mnist5k", split="train", image_size=(SIZE, SIZE), color_mode="RGB")
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(ds.x[:512].astype("float32") / 255.0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            norm,
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x.astype("float32"), ds.y, epochs=3, batch_size=64, verbose=0)
    path = tmp / "digits.keras"
    model.save(path)
    return path


def test_exported_keras_model_with_preprocessing_inside_matches_keras_file_for_file(tmp_path: Path) -> None:
    import keras

    from edgecnn.export import export_keras
    from edgecnn.runtime.classifier import Classifier

    src = _trained(tmp_path)
    onnx_path = tmp_path / "digits.onnx"
    export_keras(src, onnx_path)
    files = sorted((ROOT / "calibration" / "mnist").rglob("*.png"))[::4] + real_photos()
    model = keras.models.load_model(src)
    ref_x = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(f, color_mode="rgb", target_size=(SIZE, SIZE), interpolation="bilinear")
            )
            for f in files
        ]
    )
    ref = model.predict(ref_x, verbose=0)
    with Classifier(onnx_path, provider="cpu") as clf:
        assert clf.metadata.preprocess.model_rescales  # raw 0..255 in, the graph scales
        probs = clf.predict_proba(clf.preprocess(files))
    assert (probs.argmax(1) == ref.argmax(1)).all()
    assert np.abs(probs - ref).max() <= 1e-3
    digits = [i for i, f in enumerate(files) if f.suffix == ".png" and f.parent.parent.name == "mnist"]
    truth = np.array([int(files[i].parent.name) for i in digits])
    assert (probs[digits].argmax(1) == truth).mean() >= 0.8  # a trained net, not a random one
