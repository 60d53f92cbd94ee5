"""A sigmoid head answers P(labels[1]) = p as the columns [1 - p, p], on both sides of parity.

Parity cannot catch a column swap (Keras and ONNX go through the same mapping), so each side is
checked here against an independent numpy computation on a model whose logit is known by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _onnx import build_model, save_model, tensor, value
from onnx import helper

from edgecnn import Classifier

W = np.array([1.5, -2.0, 0.75, 1.0], np.float32)  # logit = x · W + B over the 2×2×1 input, flattened
B = np.float32(-0.5)
LABELS = ("cat", "dog")  # p = P("dog")


def _expected(x: np.ndarray) -> np.ndarray:
    """[1 - p, p] with p = sigmoid(x · W + B), in float64 numpy."""
    logit = x.reshape(len(x), -1).astype(np.float64) @ W.astype(np.float64) + float(B)
    p = 1.0 / (1.0 + np.exp(-logit))
    return np.stack([1.0 - p, p], axis=1)


def _inputs() -> np.ndarray:
    x = np.random.default_rng(0).uniform(-1, 1, (32, 2, 2, 1)).astype(np.float32)
    x[0] = np.array([1, 0, 0, 1], np.float32).reshape(2, 2, 1)  # logit 2: p = 0.881, "dog"
    x[1] = np.array([0, 1, 0, 0], np.float32).reshape(2, 2, 1)  # logit -2.5: p = 0.076, "cat"
    return x


def _sigmoid_onnx(path: Path) -> Path:
    """Flatten → Gemm(W, B) → Sigmoid, NHWC 2×2×1, with edgecnn metadata saying ``sigmoid``."""
    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec

    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["output"]),
    ]
    meta = ModelMetadata(
        labels=LABELS,
        input=InputSpec("input", Layout.NHWC, 2, 2, 1),
        preprocess=PreprocessSpec(color_mode=ColorMode.L),
        output=OutputKind.sigmoid,
    )
    model = build_model(
        nodes,
        [value("input", ["batch", 2, 2, 1])],
        [value("output", ["batch", 1])],
        [tensor("w", W.reshape(4, 1)), tensor("b", [B], np.float32)],
        name="sigmoid",
        metadata=meta,
    )
    return save_model(model, path)


def test_sigmoid_probabilities_are_one_minus_p_then_p(tmp_path: Path) -> None:
    clf = Classifier(_sigmoid_onnx(tmp_path / "s.onnx"))
    x = _inputs()
    want = _expected(x)
    probs = clf.predict_proba(x)
    assert probs.shape == (32, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, want, atol=1e-6)
    np.testing.assert_allclose(probs[:2, 1], [1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.5))], atol=1e-6)


def test_sigmoid_label_is_the_second_one_when_p_is_over_half(tmp_path: Path) -> None:
    clf = Classifier(_sigmoid_onnx(tmp_path / "s.onnx"))
    x = _inputs()
    p = _expected(x)[:, 1]
    assert (p > 0.5).any() and (p < 0.5).any()
    preds = clf.predict(x, top_k=2)
    assert [pr.label for pr in preds] == [LABELS[1] if q > 0.5 else LABELS[0] for q in p]
    assert (preds[0].label, preds[1].label) == ("dog", "cat")
    for pr, q in zip(preds, p, strict=True):
        assert pr.score == pytest.approx(max(q, 1 - q), abs=1e-6)
        assert dict(pr.top_k) == pytest.approx({"cat": 1 - q, "dog": q}, abs=1e-6)


def test_sigmoid_through_pixels_and_a_folder(tmp_path: Path) -> None:
    """uint8 pixels are scaled by 1/255 (the default preprocessing) before the known logit."""
    from PIL import Image

    clf = Classifier(_sigmoid_onnx(tmp_path / "s.onnx"))
    pixels = np.array([[[255, 0], [0, 255]], [[0, 255], [0, 0]], [[10, 200], [30, 90]]], np.uint8)
    want = _expected(pixels[..., None].astype(np.float32) / 255.0)
    preds = clf.predict(pixels)
    assert [pr.label for pr in preds] == ["dog", "cat", "cat"]
    np.testing.assert_allclose(np.stack([pr.probabilities for pr in preds]), want, atol=1e-6)
    for i, px in enumerate(pixels):
        (tmp_path / "imgs").mkdir(exist_ok=True)
        Image.fromarray(px, "L").save(tmp_path / "imgs" / f"{i}.png")
    rows = list(clf.classify_folder(tmp_path / "imgs"))
    assert [(Path(r.path).name, r.label) for r in rows] == [("0.png", "dog"), ("1.png", "cat"), ("2.png", "cat")]
    assert [r.score for r in rows] == pytest.approx(want.max(axis=1).tolist(), abs=1e-6)


def test_to_probabilities_sigmoid_column_order() -> None:
    from edgecnn.runtime.metadata import OutputKind
    from edgecnn.runtime.postprocess import to_probabilities

    raw = np.array([[0.9], [0.2], [0.5]], np.float32)
    want = np.array([[1 - 0.9, 0.9], [1 - 0.2, 0.2], [0.5, 0.5]], np.float32)  # 1 - p computed in float32
    np.testing.assert_allclose(to_probabilities(raw, OutputKind.sigmoid), want, atol=1e-7)
    np.testing.assert_array_equal(to_probabilities(raw[:, 0], OutputKind.sigmoid)[:, 1], raw[:, 0])  # (N,) too


@pytest.mark.needs_tf
@pytest.mark.slow
def test_keras_sigmoid_side_of_parity_matches_the_hand_computation(tmp_path: Path) -> None:
    """keras_predictor, infer_metadata and the exported ONNX model all answer [1 - p, p] for P(labels[1])."""
    import keras

    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.keras_io import infer_metadata, keras_predictor
    from edgecnn.parity.run import load_predictor
    from edgecnn.runtime.metadata import OutputKind

    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")])
    model.layers[-1].set_weights([W.reshape(4, 1), np.array([B])])
    x = _inputs()
    want = _expected(x)
    meta = infer_metadata(model, labels=list(LABELS))
    assert meta.output == OutputKind.sigmoid and meta.labels == LABELS
    np.testing.assert_allclose(keras_predictor(model, meta.output)(x), want, atol=1e-6)
    model.save(tmp_path / "s.keras")
    np.testing.assert_allclose(load_predictor(tmp_path / "s.keras", meta)(x), want, atol=1e-6)
    report = export_keras(
        tmp_path / "s.keras", tmp_path / "s.onnx", ExportConfig(labels=LABELS, parity_samples=16, simplify=False)
    )
    assert report.passed and report.metadata.output == OutputKind.sigmoid
    clf = Classifier(report.path)
    np.testing.assert_allclose(clf.predict_proba(x), want, atol=1e-6)
    assert [p.label for p in clf.predict(x[:2])] == ["dog", "cat"]
