"""Every zoo architecture and every keras.applications family export and meet the FP32 parity bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import EXPORT_MEMORY_HOGS, memory_hog

from edgecnn import Classifier, zoo
from edgecnn.runtime.inspect import describe_model
from edgecnn.runtime.metadata import OutputKind

pytestmark = pytest.mark.needs_tf
XDIST_PRIORITY = 1  # one unit per export, the big families among the longest: started first (tests/conftest.py)


@pytest.fixture(autouse=True)
def _free_keras_state() -> Iterator[None]:
    """Each export builds a fresh net: drop Keras' global graph state afterwards, or a worker's memory grows
    with every family it exports."""
    yield
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


# the keras.applications nets export at 32×32 in tests/zoo/test_applications.py (and per family below)
COURSE = [n for n in zoo.names() if n != "vgg16-transfer" and "input_size" not in zoo.get_spec(n).options]


@pytest.mark.slow  # 12 conversions, ~30 s: tests/export/test_export_api.py converts in the fast set
@pytest.mark.parametrize("name", COURSE)
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


# One representative per keras.applications family (module), at the smallest input its builder accepts
# (``min_size`` in keras/src/applications/*.py). Variants of one builder (ConvNeXtSmall…XLarge,
# EfficientNetB1…B7, ResNet101/152, DenseNet169/201, …) share its layers and differ only in depth and width.
KERAS_FAMILIES: dict[str, tuple[str, int]] = {
    "convnext": ("ConvNeXtTiny", 32),  # exact GELU (Erfc), grouped depthwise convs (XLA no-inline functions)
    "densenet": ("DenseNet121", 32),
    "efficientnet": ("EfficientNetB0", 32),  # Rescaling + Normalization (captured constants)
    "efficientnet_v2": ("EfficientNetV2B0", 32),
    "inception_resnet_v2": ("InceptionResNetV2", 75),
    "inception_v3": ("InceptionV3", 75),
    "mobilenet": ("MobileNet", 32),
    "mobilenet_v2": ("MobileNetV2", 32),
    "mobilenet_v3": ("MobileNetV3Small", 32),  # hard-swish, squeeze-excite
    "nasnet": ("NASNetMobile", 32),
    "resnet": ("ResNet50", 32),
    "resnet_v2": ("ResNet50V2", 32),
    "xception": ("Xception", 71),
}
FAMILY_ALIASES = {
    "resnet50": "resnet",  # keras.applications.resnet50 re-exports resnet.ResNet50
    "vgg16": "vgg16-transfer",  # the zoo's VGG16 base (test_vgg16_transfer_exports): the family's layers, exported
    "vgg19": "vgg16-transfer",  # VGG16 with three more 3×3 convs: the same layers (55 s of the sweep for nothing new)
}
NOT_FAMILIES = {"imagenet_utils"}


# the exports that peak at 7-20 GB of memory run one after another, as one unit of work of a test worker
# (conftest.EXPORT_MEMORY_HOGS, started first), the biggest first; the other families each a unit of their own
BY_COST = [*EXPORT_MEMORY_HOGS, *sorted(set(KERAS_FAMILIES) - set(EXPORT_MEMORY_HOGS))]


def _installed_families() -> set[str]:
    import types

    import keras

    modules = {n for n, v in vars(keras.applications).items() if isinstance(v, types.ModuleType)}
    return {n for n in modules if not n.startswith("_")} - NOT_FAMILIES


@pytest.mark.slow  # imports Keras to list the families (~8 s of TensorFlow import)
def test_every_keras_applications_family_is_in_the_sweep() -> None:
    """A family a newer Keras adds fails here by name until it joins KERAS_FAMILIES."""
    missing = sorted(_installed_families() - set(KERAS_FAMILIES) - set(FAMILY_ALIASES))
    assert not missing, f"keras.applications families not in the export sweep: {missing}"


@pytest.fixture(scope="module")
def convnext_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """ConvNeXtTiny (a fixed random draw: near-ties cannot flake) and its export: shared by two slow tests."""
    import keras

    from edgecnn.export import ExportConfig, export_keras

    keras.utils.set_random_seed(0)
    model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=10)
    out = tmp_path_factory.mktemp("convnext") / "convnext.onnx"
    with memory_hog(tmp_path_factory):
        return model, export_keras(model, out, ExportConfig(parity_samples=8, check=False))


@pytest.mark.slow
@pytest.mark.parametrize("family", BY_COST)
def test_keras_applications_family_exports(
    family: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Export the family's representative (weights=None, 10 classes) and check FP32 parity against Keras."""
    import keras
    import onnxruntime as ort

    from edgecnn.export import ExportConfig, export_keras

    if family not in _installed_families():
        pytest.skip(f"keras.applications.{family} is not in this Keras ({keras.__version__})")
    arch, size = KERAS_FAMILIES[family]
    x = np.random.default_rng(0).random((4, size, size, 3), dtype=np.float32) * 255
    if family == "convnext":
        model, report = request.getfixturevalue("convnext_export")
        before = model(x, training=False).numpy()
    else:
        with memory_hog(tmp_path_factory) if family in EXPORT_MEMORY_HOGS else contextlib.nullcontext():
            model = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3), classes=10)
            before = model(x, training=False).numpy()
            report = export_keras(model, tmp_path / f"{arch}.onnx", ExportConfig(parity_samples=8, check=False))
    assert report.passed, f"{family} ({arch}): {report.parity.failures + report.random_parity.failures}"
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_array_equal(model(x, training=False).numpy(), before)  # conversion did not mutate it
    assert np.abs(got - before).max() <= 1e-4, f"{family} ({arch}): max abs diff {np.abs(got - before).max():.2e}"
    assert (got.argmax(1) == before.argmax(1)).all(), f"{family} ({arch}): top-1 differs"


@pytest.mark.slow
@pytest.mark.parametrize("family", ["convnext"])  # the same unit of work as the family's export test (conftest.py)
def test_convnext_quantizes_to_int8_and_fp16(family: str, convnext_export: tuple[Any, Any], tmp_path: Path) -> None:
    """ConvNeXt's exported graph (Erf GELU, grouped Conv, LayerNorm) goes through INT8 and FP16 like the others."""
    from PIL import Image

    from edgecnn.parity import ParityBars, compare
    from edgecnn.quantize import QuantizeConfig, quantize

    fp32 = convnext_export[1].path
    rng = np.random.default_rng(0)
    for label in range(10):  # the calibration folder has one subfolder per class of the model
        (tmp_path / "calib" / f"class_{label}").mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "calib" / f"class_{label}" / f"{i}.png")
    x = rng.random((200, 32, 32, 3), dtype=np.float32) * 255  # FP16's 99.5% bar needs 200 samples to resolve
    reference = Classifier(fp32)

    fp16 = quantize(fp32, tmp_path / "convnext.fp16.onnx", QuantizeConfig.fp16(), measure_speed=False)
    result = compare(reference, Classifier(fp16.path), x, bars=ParityBars.for_mode("fp16"))
    assert result.passed, result.failures

    int8_config = QuantizeConfig.int8()
    int8 = quantize(fp32, tmp_path / "c.int8.onnx", int8_config, calibration=tmp_path / "calib", measure_speed=False)
    probs = Classifier(int8.path)(x)
    assert probs.shape == (200, 10) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # the output head stays float: real sums
    assert int8.coverage["quantized"] > 0, int8.coverage
    int8_result = compare(reference, Classifier(int8.path), x, bars=ParityBars.for_mode("int8"))
    print(f"fp16 vs fp32: {result.summary()}; int8 vs fp32: {int8_result.summary()}; {int8.coverage['quantized_ops']}")
