"""The zoo reproduces the course's parameter counts exactly; listing it needs no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgecnn import zoo
from edgecnn.errors import UsageError

# DESIGN.md's table (vgg16-transfer: "—" there; ours adds a fixed 12-parameter caffe preprocessing conv)
EXPECTED = {
    "mnist-mlp": 101_770,
    "mnist-mlp-512": 407_050,
    "mnist-mlp-deep": 23_970,
    "mnist-cnn": 93_322,
    "mnist-convnet": 104_202,
    "mnist-convnet-nopool": 712_202,
    "mnist-cnn-dropout": 615_844,
    "fashion-mlp": 101_770,
    "cifar10-cnn": 122_570,
    "catsdogs-cnn": 991_041,
    "vgg16-transfer": 17_992_013,
    "telemetry-conv1d": 67_073,
}


def test_every_design_row_is_registered() -> None:
    applications = {"mobilenetv2", "mobilenetv3small", "mobilenetv3large", "efficientnetb0", "resnet50"}
    assert set(zoo.names()) == set(EXPECTED) | applications  # those are tested in test_applications.py
    assert zoo.names("mnist-c*") == ["mnist-cnn", "mnist-convnet", "mnist-convnet-nopool", "mnist-cnn-dropout"]


@pytest.mark.needs_tf
@pytest.mark.slow  # builds each net with Keras (TensorFlow's import)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameter_counts(name: str) -> None:
    model = zoo.build(name)
    assert model.count_params() == EXPECTED[name] == zoo.get_spec(name).params
    assert tuple(model.inputs[0].shape[1:]) == zoo.get_spec(name).input_shape


@pytest.mark.needs_tf
@pytest.mark.slow
def test_augmentation_adds_no_parameters_and_is_inactive_at_inference() -> None:
    import numpy as np

    plain = zoo.build("catsdogs-cnn")
    aug = zoo.build("catsdogs-cnn", augment=True)
    assert aug.count_params() == plain.count_params() == 991_041
    x = np.random.default_rng(0).integers(0, 256, (2, 180, 180, 3)).astype("float32")
    np.testing.assert_array_equal(aug(x, training=False).numpy(), aug(x, training=False).numpy())


def test_metadata_for_heads() -> None:
    assert zoo.metadata_for("cifar10-cnn").output.value == "logits"
    assert zoo.metadata_for("catsdogs-cnn").preprocess.model_rescales
    assert zoo.metadata_for("telemetry-conv1d").input.sample_shape == (9, 1)
    assert zoo.metadata_for("mnist-mlp").input.sample_shape == (28, 28)


def test_unknown_name() -> None:
    with pytest.raises(UsageError, match="unknown zoo model 'resnet'"):
        zoo.get_spec("resnet")


def test_listing_imports_no_tensorflow() -> None:
    code = (
        "import sys; from edgecnn import zoo; zoo.names(); zoo.metadata_for('mnist-cnn');"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
