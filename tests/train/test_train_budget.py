"""Training a net whose input differs from the source (mnist5k's 28×28 digits -> cifar10-cnn's 32×32 RGB): the
inputs stream, and the report says what memory and batch size the run used, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]  # ~1 min on the shared 2-core machine


def test_streamed_run_reports_memory_and_batch(tmp_path: Path) -> None:
    from edgecnn.report import to_json
    from edgecnn.train import TrainConfig, train

    # batch 16 asked for under a 1 MB budget: it wins, and the report warns that it cannot fit
    r = train(
        "cifar10-cnn",
        tmp_path,
        TrainConfig(data="mnist5k", epochs=1, limit=64, batch_size=16, memory_budget=1 << 20, verbose=0),
    )
    assert r.streamed and r.batch_size == 16
    assert r.batch_reason == "--batch-size 16 (asked for)"
    assert any("--batch-size 16 needs about" in w for w in r.warnings)
    assert r.peak_rss_bytes is not None and r.peak_rss_bytes > 100 << 20
    assert r.images_per_second is not None and r.images_per_second > 0
    assert (r.n_train, r.n_val, r.n_test) == (54, 10, 1000)  # --limit spreads over the 10 classes
    report = json.loads(to_json(r))
    assert report["peak_rss_bytes"] == r.peak_rss_bytes and report["batch_reason"] and report["memory_budget_bytes"]
    metrics = json.loads((r.out_dir / "metrics.json").read_text())
    assert metrics["memory"]["peak_rss_bytes"] == r.peak_rss_bytes and metrics["memory"]["batch_size"] == 16
    conf = metrics["confusion_matrix"]
    assert sum(map(sum, conf)) == 1000
    assert abs(metrics["test_accuracy"] - sum(conf[i][i] for i in range(10)) / 1000) < 1e-9
    assert (r.out_dir / "misclassified.png").read_bytes()[:4] == b"\x89PNG"


def test_budget_too_small_is_refused_before_training(tmp_path: Path) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.train import TrainConfig, train

    with pytest.raises(UsageError, match="one training sample needs about"):
        train("cifar10-cnn", tmp_path, TrainConfig(data="mnist5k", epochs=1, limit=64, memory_budget=1 << 20))
    assert not (tmp_path / "cifar10-cnn").exists()
