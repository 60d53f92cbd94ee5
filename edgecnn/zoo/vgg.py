"""VGG16 transfer learning (Chollet ch. 8): frozen VGG16 conv base + a small dense head, sigmoid."""

from __future__ import annotations

from typing import Any

from edgecnn.runtime.metadata import ColorMode, Layout, OutputKind, PreprocessSpec
from edgecnn.zoo.mnist import _keras
from edgecnn.zoo.registry import ZooSpec, register

# keras.applications.vgg16.preprocess_input ("caffe"): RGB->BGR and ImageNet channel means subtracted.
# The model does the BGR flip and mean subtraction itself (a layer inside), so the engine feeds raw 0..255.
VGG_RAW = PreprocessSpec(color_mode=ColorMode.RGB, interpolation="bilinear", scale=1.0, offset=0.0, model_rescales=True)


@register(
    ZooSpec(
        name="vgg16-transfer",
        input_shape=(180, 180, 3),
        params=17_992_013,
        output=OutputKind.sigmoid,
        labels=("cat", "dog"),
        layout=Layout.NHWC,
        preprocess=VGG_RAW,
        source="course: Chollet ch. 8, feature extraction with a frozen VGG16 base (ImageNet weights optional)",
        data="folder:catsdogs",
        layers=(
            "caffe preprocessing (fixed 1×1 conv, 12 params), VGG16 conv base (frozen), "
            "Flatten, Dense 256, Dropout .5, Dense 1 sigmoid"
        ),
        loss="binary_crossentropy",
        optimizer="rmsprop",
        epochs=10,
        batch_size=32,
        reported_accuracy="97.6% (ImageNet weights)",
        options=("weights",),
    )
)
def vgg16_transfer(weights: str | None = None, **_: Any) -> Any:
    """``weights="imagenet"`` downloads the ImageNet conv base (needs a network); None = random init."""
    keras = _keras()
    L = keras.layers
    base = keras.applications.VGG16(weights=weights, include_top=False, input_shape=(180, 180, 3))
    base.trainable = False
    inputs = keras.Input((180, 180, 3), name="input")
    # caffe-style preprocessing inside the model: RGB->BGR, subtract ImageNet means (no scaling)
    # (plain layers, no Lambda: a Lambda would make the saved model unsafe to load)
    x = bgr_means()(inputs)
    x = base(x, training=False)
    x = L.Flatten()(x)
    x = L.Dense(256, activation="relu")(x)
    x = L.Dropout(0.5)(x)
    outputs = L.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="vgg16-transfer")


def bgr_means() -> Any:
    """Caffe preprocessing as plain Keras layers: a fixed 1×1 conv does RGB→BGR and the mean shift
    (VGG16, ResNet50: ``keras.applications.*.preprocess_input`` in ``caffe`` mode), at any input size."""
    import numpy as np

    keras = _keras()
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_c, in_c in enumerate((2, 1, 0)):
        kernel[0, 0, in_c, out_c] = 1.0
    bias = -np.array([103.939, 116.779, 123.68], np.float32)
    layer = keras.layers.Conv2D(3, 1, use_bias=True, trainable=False, name="caffe_preprocess")
    layer.build((None, None, None, 3))
    layer.set_weights([kernel, bias])
    return layer
