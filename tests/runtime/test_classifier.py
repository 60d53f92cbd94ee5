"""The Classifier on real onnxruntime sessions over a tiny real ONNX model (no TensorFlow)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import make_tiny_onnx, write_png
from PIL import Image

from edgecnn import Classifier, Prediction
from edgecnn.errors import InputError, MetadataError, ModelError


def test_predict_matches_a_bare_session(tiny_onnx: Path) -> None:
    clf = Classifier(tiny_onnx, provider="cpu")
    x = np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    bare = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    expected = bare.run(None, {"input": x})[0]
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-6)
    preds = clf.predict(x)
    assert [p.label for p in preds] == [clf.labels[i] for i in expected.argmax(1)]
    assert clf.providers == ["CPUExecutionProvider"]


def test_inputs_of_every_kind(tiny_onnx: Path, tmp_path: Path) -> None:
    clf = Classifier(tiny_onnx)
    png = write_png(tmp_path / "a.png", size=(32, 20))
    one = clf.predict(png)
    assert isinstance(one, Prediction) and one.label in clf.labels
    assert abs(sum(s for _, s in one.top_k) - 1.0) < 1e-5  # 3 classes: top-k covers all
    pil = clf.predict(Image.open(png))
    pixels = clf.predict(np.asarray(Image.open(png)))
    assert pil.label == one.label == pixels.label
    batch = clf.predict([png, str(png), Image.open(png)])
    assert isinstance(batch, list) and len(batch) == 3 and {p.label for p in batch} == {one.label}


def test_large_inputs_are_batched(tiny_onnx: Path) -> None:
    clf = Classifier(tiny_onnx, batch_size=7)
    x = np.random.default_rng(1).random((50, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(clf.predict_proba(x), Classifier(tiny_onnx).predict_proba(x), rtol=1e-6)


@pytest.mark.parametrize(
    ("x", "fragment"),
    [
        (np.zeros((2, 8, 8, 1), np.float32), r"expects \(N, 8, 8, 3\)"),
        (np.zeros((8, 8), np.float32), "input has shape"),
        (np.zeros((1, 9, 8, 3), np.float32), "NHWC, 8x8x3"),
        (np.full((1, 8, 8, 3), "a"), "dtype"),
    ],
)
def test_wrong_inputs_say_what_the_model_expects(tiny_onnx: Path, x: np.ndarray, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        Classifier(tiny_onnx).predict_proba(x)


def test_nan_inputs_are_rejected(tiny_onnx: Path) -> None:
    x = np.zeros((1, 8, 8, 3), np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        Classifier(tiny_onnx).predict_proba(x)


def test_sigmoid_and_logits_heads(tmp_path: Path) -> None:
    x = np.random.default_rng(2).random((6, 8, 8, 3), dtype=np.float32)
    sig = Classifier(make_tiny_onnx(tmp_path / "s.onnx", output="sigmoid"))
    p = sig.predict_proba(x)
    assert p.shape == (6, 2) and np.allclose(p.sum(1), 1.0)
    logit = Classifier(make_tiny_onnx(tmp_path / "l.onnx", output="logits"))
    q = logit.predict_proba(x)
    assert q.shape == (6, 3) and np.allclose(q.sum(1), 1.0, atol=1e-6) and (q > 0).all()


def test_model_without_metadata(tmp_path: Path) -> None:
    path = make_tiny_onnx(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(MetadataError, match="no edgecnn metadata"):
        Classifier(path)


def test_nan_outputs_are_an_error(tmp_path: Path) -> None:
    """argmax of NaN silently picks class 0: the engine must refuse instead."""
    import onnx
    from onnx import numpy_helper

    path = make_tiny_onnx(tmp_path / "nan.onnx")
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "fcb":
            init.CopyFrom(numpy_helper.from_array(np.full((3,), np.nan, np.float32), "fcb"))
    onnx.save_model(model, str(path))
    with pytest.raises(ModelError, match="NaN/Inf outputs"):
        Classifier(path).predict_proba(np.zeros((2, 8, 8, 3), np.float32))


def test_thread_safe(tiny_onnx: Path) -> None:
    clf = Classifier(tiny_onnx, threads=1)
    x = np.random.default_rng(3).random((16, 8, 8, 3), dtype=np.float32)
    expected = clf.predict_proba(x)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                results.append(clf.predict_proba(x))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_all_finite_is_exact_despite_its_dot_product_shortcut() -> None:
    from edgecnn.runtime.postprocess import all_finite

    x = np.ones((2, 5), dtype=np.float32)
    assert all_finite(x)
    big = np.full((2, 5), 3e38, dtype=np.float32)  # finite, but its dot product overflows to inf
    with np.errstate(over="ignore"):  # numpy reports that overflow; the answer is still exact
        assert all_finite(big)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 3] = bad
        assert not all_finite(y)
    assert all_finite(np.ones((2, 3), dtype=np.float16) * 300)  # float16 overflows early too


def test_inputs_already_in_the_models_form_reach_onnxruntime_uncopied(
    tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-call floor (DESIGN: within 10% or 10 µs of a bare session): an array already in the model's
    dtype and shape is handed to onnxruntime as the caller's own memory, without a copy, a conversion or
    the full validation; the checks it keeps are the two finiteness dot products (input and output)."""
    import edgecnn.runtime.classifier as classifier_module

    clf = Classifier(tiny_onnx, provider="cpu", threads=1, tuning=False)
    run = clf.engine._single
    assert run is not None, "one session, called directly: no Python dispatch between predict and onnxruntime"
    fed: list[np.ndarray] = []

    def spy(names: list[str], feed: dict[str, np.ndarray], options: object) -> list[np.ndarray]:
        fed.append(feed[clf.engine.input_name])
        return run(names, feed, options)

    full_checks: list[str] = []
    check_batch = classifier_module.check_batch
    monkeypatch.setattr(clf.engine, "_single", spy)
    monkeypatch.setattr(
        classifier_module, "check_batch", lambda x, spec: full_checks.append("x") or check_batch(x, spec)
    )

    x = np.random.default_rng(4).random((3, 8, 8, 3), dtype=np.float32)
    expected = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-6)
    assert fed[-1] is x
    one = clf.predict(x[1])  # one preprocessed sample: a view of the caller's array, no copy
    assert np.shares_memory(fed[-1], x) and fed[-1].shape == (1, 8, 8, 3)
    assert type(one.index) is int and type(one.score) is float and one.index == int(expected[1].argmax())
    assert [lab for lab, _ in one.top_k] == [clf.labels[i] for i in np.argsort(-expected[1], kind="stable")]
    assert all(type(s) is float for _, s in one.top_k)
    assert [p.index for p in clf.predict(x)] == list(expected.argmax(1))
    assert fed[-1] is x and not full_checks

    clf.predict_proba(x.astype(np.float64))  # another dtype: converted once, through the full validation
    assert full_checks == ["x"] and fed[-1].dtype == np.float32 and not np.shares_memory(fed[-1], x)
    with pytest.raises(InputError, match="NaN or Inf"):  # the fast path keeps the finiteness check
        clf.predict(np.full((8, 8, 3), np.nan, np.float32))
    empty = np.zeros((0, 8, 8, 3), np.float32)
    with pytest.raises(InputError, match="nothing to classify"):
        clf.predict(empty)
    fresh = Classifier(tiny_onnx, provider="cpu", threads=1, tuning=False)
    assert fresh.predict_proba(empty).shape == (0, 3)  # an empty first batch is no evidence against the metadata
    assert fresh.predict(x[0]).index == int(expected[0].argmax())
