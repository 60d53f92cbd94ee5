"""Training mnist-cnn on the shipped digits: the course's artefacts, and ≥ 97% held-out through ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecnn import Classifier

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def test_artefacts(mnist_trained) -> None:  # type: ignore[no-untyped-def]
    out = mnist_trained.out_dir
    for name in ("mnist-cnn.keras", "mnist-cnn.edgecnn.json", "history.json", "metrics.json"):
        assert (out / name).is_file()
    for png in ("curves.png", "confusion.png", "misclassified.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    metrics = json.loads((out / "metrics.json").read_text())
    conf = metrics["confusion_matrix"]
    assert len(conf) == 10 and sum(map(sum, conf)) == 1000
    assert abs(metrics["test_accuracy"] - sum(conf[i][i] for i in range(10)) / 1000) < 1e-6
    assert (mnist_trained.n_train, mnist_trained.n_val, mnist_trained.n_test) == (3600, 400, 1000)
    assert not list(out.glob(".*best*"))  # the checkpoint is cleaned up


def test_onnx_reaches_97_percent_and_full_agreement(mnist_trained, mnist_onnx: Path) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.parity import run_parity

    report = run_parity(mnist_trained.model_path, mnist_onnx, "mnist5k")
    assert report.n == 1000
    assert report.candidate_accuracy is not None and report.candidate_accuracy >= 0.97
    assert report.agreement == 1.0 and report.ties == 0
    assert report.max_abs_diff <= 1e-4
    digits = Classifier(mnist_onnx)
    from edgecnn.data import load_source

    ds = load_source("mnist5k", split="test", limit=50)
    preds = digits.predict(ds.x)  # uint8 pixel batch: preprocessing from the metadata
    assert sum(p.label == str(y) for p, y in zip(preds, ds.y, strict=True)) >= 47


def test_unknown_arch_is_a_usage_error(tmp_path: Path) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.train import TrainConfig, train

    with pytest.raises(UsageError, match="unknown zoo model"):
        train("lenet-9000", tmp_path)
    with pytest.raises(UsageError, match="--epochs"):
        TrainConfig(epochs=0)


def test_wrong_data_for_the_architecture(tmp_path: Path) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.train import TrainConfig, train

    with pytest.raises(UsageError, match="2 classes but data source 'digits' has 10"):
        train("telemetry-conv1d", tmp_path, TrainConfig(data="digits", epochs=1))
