"""The runtime on a real CUDA device (skipped without CUDAExecutionProvider; a failure with
EDGECNN_REQUIRE_GPU=1). ``benchmarks/gpu_check.py`` runs these on the GPU machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx, write_png

from edgecnn import Classifier

CUDA = "CUDAExecutionProvider"
pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "logits"])
def test_cuda_answers_like_cpu(output: str, tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / f"{output}.onnx", output=output)
    gpu = Classifier(model, provider="cuda", tuning=False)
    cpu = Classifier(model, provider="cpu", tuning=False)
    assert gpu.providers[0] == CUDA  # really on the device, not a silent CPU fall back
    x = np.random.default_rng(0).random((37, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(gpu.predict_proba(x), cpu.predict_proba(x), atol=1e-3)
    np.testing.assert_array_equal(gpu.predict_proba(x).argmax(1), cpu.predict_proba(x).argmax(1))


def test_cuda_images_and_chunked_batches(tmp_path: Path) -> None:
    """Images through preprocessing, and a batch larger than batch_size run in chunks, on the device."""
    model = make_tiny_onnx(tmp_path / "m.onnx")
    images = [write_png(tmp_path / f"{i}.png", seed=i) for i in range(5)]
    gpu = Classifier(model, provider="cuda", batch_size=2, tuning=False)
    cpu = Classifier(model, provider="cpu", tuning=False)
    for a, b in zip(gpu.predict(images), cpu.predict(images), strict=True):
        assert a.label == b.label
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-3)
    assert gpu.providers[0] == CUDA


def test_cuda_auto_prefers_the_gpu(tmp_path: Path) -> None:
    assert Classifier(make_tiny_onnx(tmp_path / "m.onnx"), tuning=False).providers[0] == CUDA
