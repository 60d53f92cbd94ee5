"""Every zoo architecture and a handful of keras.applications export and meet the FP32 parity bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn import Classifier, zoo
from edgecnn.runtime.inspect import describe_model
from edgecnn.runtime.metadata import OutputKind

pytestmark = pytest.mark.needs_tf


@pytest.mark.parametrize("name", [n for n in zoo.names() if n != "vgg16-transfer"])
def test_zoo_model_exports_with_fp32_parity(name: str, tmp_path: Path) -> None:
    from edgecnn.export import ExportConfig, export_keras

    report = export_keras(f"zoo:{name}", tmp_path / f"{name}.onnx", ExportConfig(parity_samples=32))
    assert report.passed, report.parity.failures + report.random_parity.failures
    assert report.parity.agreement == 1.0 and report.parity.max_abs_diff <= 1e-4
    clf = Classifier(report.path)
    spec = zoo.get_spec(name)
    assert clf.labels == spec.labels
    if spec.output == OutputKind.logits:  # the export appends the Softmax a logits model leaves out
        assert clf.metadata.output == OutputKind.softmax and clf.metadata.source["softmax_appended"]
    else:
        assert clf.metadata.output == spec.output and "softmax_appended" not in clf.metadata.source
    info = describe_model(report.path)
    assert info.inputs[0]["shape"][0] == "batch"  # dynamic batch axis
    assert info.opsets["ai.onnx"] == 17


@pytest.mark.slow
def test_vgg16_transfer_exports(tmp_path: Path) -> None:
    from edgecnn.export import ExportConfig, export_keras

    report = export_keras("zoo:vgg16-transfer", tmp_path / "vgg.onnx", ExportConfig(parity_samples=4))
    assert report.passed and report.metadata.preprocess.model_rescales


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "ResNet50", "DenseNet121"])
def test_keras_applications_export(arch: str, tmp_path: Path) -> None:
    """BatchNorm, depthwise/separable convs, Rescaling/Normalization layers, global pooling."""
    import keras

    from edgecnn.export import ExportConfig, export_keras

    model = getattr(keras.applications, arch)(weights=None, input_shape=(96, 96, 3), classes=10)
    x = np.random.default_rng(0).random((2, 96, 96, 3), dtype=np.float32) * 255
    before = model(x, training=False).numpy()
    report = export_keras(model, tmp_path / f"{arch}.onnx", ExportConfig(parity_samples=8, check=False))
    assert report.passed, report.random_parity.failures
    np.testing.assert_array_equal(model(x, training=False).numpy(), before)  # conversion did not mutate it
