"""export_keras on a trained model: metadata, sidecar, atomic write, parity on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn import Classifier
from edgecnn.errors import ParityError, UsageError

# each test converts with tf2onnx (TensorFlow's import: seconds a worker); the fast set uses the committed export
pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def test_trained_model_metadata_and_parity(mnist_trained, mnist_onnx: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.export import export_keras

    clf = Classifier(mnist_onnx)
    meta = clf.metadata
    assert meta.labels == tuple(str(i) for i in range(10))
    assert meta.source["data"] == "mnist5k" and len(meta.source["keras_sha256"]) == 64
    assert meta.source["tf2onnx"] and meta.source["opset"] == 17
    report = export_keras(mnist_trained.model_path, mnist_onnx.with_name("again.onnx"))
    assert report.parity.n == 256 and report.parity.data.startswith("mnist5k")
    assert report.parity.agreement == 1.0 and report.parity.max_abs_diff <= 1e-4
    assert report.parity.reference_accuracy is not None and report.parity.reference_accuracy > 0.95
    json.dumps(report.to_dict())


def test_labels_override_and_wrong_count(mnist_trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.errors import ModelFormatError
    from edgecnn.export import ExportConfig, export_keras

    names = tuple(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    r = export_keras(mnist_trained.model_path, tmp_path / "named.onnx", ExportConfig(labels=names, parity_samples=8))
    assert Classifier(r.path).labels == names
    with pytest.raises(ModelFormatError, match="3 labels given but the model has 10 classes"):
        export_keras(mnist_trained.model_path, tmp_path / "x.onnx", ExportConfig(labels=("a", "b", "c")))


def test_parity_bar_failure_raises_parity_error(tmp_path: Path) -> None:
    """A candidate that drifts by 1e-3 misses the FP32 bar: ParityError (exit 4) naming the number."""
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.parity import ParityBars, compare

    report = export_keras("zoo:mnist-mlp-deep", tmp_path / "m.onnx", ExportConfig(parity_samples=16))
    clf = Classifier(report.path)
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    result = compare(clf, lambda b: clf(b) + 1e-3, x, bars=ParityBars.for_mode("fp32"))
    assert not result.passed
    with pytest.raises(ParityError, match=r"max abs diff 1\.00e-03 > 1e-04") as info:
        result.raise_for_failure()
    assert info.value.exit_code == 4


def test_random_pixels_are_held_to_the_real_bar_only_without_real_data(tmp_path: Path) -> None:
    """Noise beside real digits is a sanity check (1e-3); alone, it is the proof (the FP32 bar, 1e-4)."""
    from edgecnn.export import ExportConfig, export_keras

    with_data = export_keras("zoo:mnist-mlp-deep", tmp_path / "a.onnx", ExportConfig(parity_samples=16))
    assert with_data.parity.data.startswith("mnist5k") and with_data.parity.bars.max_abs_diff == 1e-4
    assert with_data.random_parity.bars.max_abs_diff == 1e-3
    # fashion-mnist is not offline: no real data, random pixels alone (a named source that fails is an error now)
    alone = export_keras("zoo:fashion-mlp", tmp_path / "b.onnx", ExportConfig(parity_samples=16))
    assert alone.parity.data.startswith("random") and alone.random_parity.bars.max_abs_diff == 1e-4


def test_output_must_be_onnx(tmp_path: Path) -> None:
    from edgecnn.export import export_keras

    with pytest.raises(UsageError, match=r"must end in \.onnx"):
        export_keras("zoo:mnist-mlp-deep", tmp_path / "m.txt")


def test_interrupted_export_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception mid-write (here: during the post-write parity check) leaves the old file untouched."""
    from edgecnn.export import api, export_keras

    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous version")

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "compare", boom)
    with pytest.raises(KeyboardInterrupt):
        export_keras("zoo:mnist-mlp-deep", target)
    assert target.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_logits_model_answers_probabilities_from_the_graph(tmp_path: Path) -> None:
    import onnx

    from edgecnn import zoo
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.parity import run_parity

    model = zoo.build("cifar10-cnn")  # a logits head
    keras_path = tmp_path / "cifar.keras"
    model.save(keras_path)
    report = export_keras(
        keras_path, tmp_path / "c.onnx", ExportConfig(parity_samples=16, labels=zoo.metadata_for("cifar10-cnn").labels)
    )
    assert report.passed and report.metadata.output.value == "softmax"
    assert report.metadata.source["softmax_appended"] is True
    assert onnx.load(str(report.path)).graph.node[-1].op_type == "Softmax"
    x = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(Classifier(report.path).engine.run(x).sum(axis=1), 1.0, rtol=1e-5)
    assert run_parity(keras_path, report.path).passed  # the Keras side is still read as logits
    plain = export_keras(keras_path, tmp_path / "l.onnx", ExportConfig(parity_samples=16, softmax_logits=False))
    assert plain.metadata.output.value == "logits" and plain.passed
