"""The ``keras.applications`` networks people deploy to an edge box: MobileNetV2/V3, EfficientNetB0, ResNet50.

Each is the real Keras builder (``include_top=False``, global average pooling) with a small softmax head, at a
chosen input size (``input_size``, default 224) and, for the MobileNets, width (``alpha``). ``weights=None``
(the default) trains from scratch offline — e.g. on the MNIST digits the project ships, resized to the input
and as RGB (``edgecnn train mobilenetv2 --input-size 32``); ``weights="imagenet"`` downloads the ImageNet
base (needs a network) for transfer learning. The preprocessing recorded in the metadata is the family's own
(``keras.applications.<family>.preprocess_input``), so ImageNet weights see what they were trained on.
"""

from __future__ import annotations

from typing import Any

from edgecnn.data.labels import DIGITS
from edgecnn.errors import UsageError
from edgecnn.runtime.metadata import ColorMode, Layout, OutputKind, PreprocessSpec
from edgecnn.zoo.mnist import _keras
from edgecnn.zoo.registry import RGB_RAW, ZooSpec, register
from edgecnn.zoo.vgg import bgr_means

DEFAULT_SIZE = 224
MIN_SIZE = 32  # the smallest input keras.applications accepts for these families with include_top=False
WIDTH_OPTIONS = ("input_size", "alpha", "weights")  # the MobileNets take a width multiplier
OPTIONS = ("input_size", "weights")
# "tf" mode of keras.applications.mobilenet_v2.preprocess_input: pixels to [-1, 1]
RGB_SIGNED = PreprocessSpec(color_mode=ColorMode.RGB, interpolation="bilinear", scale=1.0 / 127.5, offset=-1.0)
# "caffe" mode (ResNet50): the model flips RGB->BGR and subtracts the ImageNet means itself (a fixed 1×1 conv)
CAFFE_RAW = PreprocessSpec(
    color_mode=ColorMode.RGB, interpolation="bilinear", scale=1.0, offset=0.0, model_rescales=True
)
# from-scratch training on a few thousand images: BatchNormalization's moving statistics must converge in a
# few hundred steps; the families' own momentum (0.99–0.999) leaves them near their initial values, and the
# trained model then answers from statistics it never saw (inference-mode accuracy near chance)
SCRATCH_BN_MOMENTUM = 0.9


def _spec(
    name: str,
    keras_name: str,
    params: int,
    layers: str,
    preprocess: PreprocessSpec,
    options: tuple[str, ...] = OPTIONS,
    augment: bool = True,
) -> ZooSpec:
    return ZooSpec(
        name=name,
        input_shape=(DEFAULT_SIZE, DEFAULT_SIZE, 3),
        params=params,
        output=OutputKind.softmax,
        labels=DIGITS,
        layout=Layout.NHWC,
        preprocess=preprocess,
        source=f"keras.applications.{keras_name} + softmax head",
        data="mnist5k",  # resized to the input and as RGB: real labelled data that loads offline
        layers=layers,
        epochs=8,  # early stopping (patience 4 on val_accuracy) usually ends it sooner
        batch_size=64,
        reported_accuracy="— (ImageNet top-1 in the Keras docs with --weights imagenet)",
        options=options,
        # from scratch on a few thousand digits these nets learn the training set by heart without it
        extra={"keras_builder": keras_name, "augment": augment, "min_input_size": MIN_SIZE},
    )


def _application(
    keras_name: str,
    name: str,
    *,
    input_size: int = DEFAULT_SIZE,
    weights: str | None = None,
    classes: int = len(DIGITS),
    caffe: bool = False,
    augment: bool = False,
    **builder_kwargs: Any,
) -> Any:
    """``keras.applications.<keras_name>`` as a base, then Dropout .2 and a Dense softmax head.

    ``augment``: random shifts and zooms in front (inactive at inference): trained from scratch on a few
    thousand digits, these nets otherwise learn the training set by heart (98.6% on it, 81% on the test split
    for MobileNetV2 at 32×32 after 12 epochs).
    """
    keras = _keras()
    if input_size < MIN_SIZE:
        raise UsageError(f"{name}: --input-size must be >= {MIN_SIZE} (keras.applications' minimum), got {input_size}")
    if weights not in (None, "imagenet"):
        raise UsageError(f"{name}: --weights must be 'imagenet' or none, got {weights!r}")
    shape = (input_size, input_size, 3)
    base = getattr(keras.applications, keras_name)(
        include_top=False, weights=weights, input_shape=shape, pooling="avg", **builder_kwargs
    )
    if weights is None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    inputs = keras.Input(shape, name="input")
    x = inputs
    if augment:
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
        x = keras.layers.RandomZoom(0.1, fill_mode="constant")(x)
    x = bgr_means()(x) if caffe else x
    x = base(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _check_alpha(name: str, alpha: float) -> float:
    if not 0.0 < alpha <= 2.0:
        raise UsageError(f"{name}: --alpha (width multiplier) must be in (0, 2], got {alpha}")
    return alpha


def _width_builder(keras_name: str, name: str) -> Any:
    """A MobileNet builder: the input size and the width multiplier ``alpha`` are the user's."""

    def build(
        input_size: int = DEFAULT_SIZE, alpha: float = 1.0, weights: str | None = None, augment: bool = False, **_: Any
    ) -> Any:
        return _application(
            keras_name, name, input_size=input_size, weights=weights, augment=augment, alpha=_check_alpha(name, alpha)
        )

    build.__name__ = build.__qualname__ = name
    return build


_HARD_SWISH = "Rescaling, inverted residuals with squeeze-excite and hard-swish, GAP, Dense 10"
for _name, _keras_name, _params, _layers, _pre in (
    (
        "mobilenetv2",
        "MobileNetV2",
        2_270_794,
        "inverted residuals: 1×1 expand, 3×3 depthwise, 1×1 project (ReLU6, residual Add), GAP, Dense 10",
        RGB_SIGNED,
    ),
    ("mobilenetv3small", "MobileNetV3Small", 944_890, _HARD_SWISH, RGB_RAW),
    ("mobilenetv3large", "MobileNetV3Large", 3_005_962, _HARD_SWISH, RGB_RAW),
):
    register(_spec(_name, _keras_name, _params, _layers, _pre, WIDTH_OPTIONS))(_width_builder(_keras_name, _name))


@register(
    _spec(
        "efficientnetb0",
        "EfficientNetB0",
        4_062_381,
        "Rescaling + Normalization, MBConv blocks with squeeze-excite and SiLU, GAP, Dense 10",
        RGB_RAW,
        # its own stochastic depth and dropout regularise it: augmented as well, it reached 61% in 10 epochs
        # at 32×32 where plain training reached 89%
        augment=False,
    )
)
def efficientnetb0(input_size: int = DEFAULT_SIZE, weights: str | None = None, augment: bool = False, **_: Any) -> Any:
    return _application("EfficientNetB0", "efficientnetb0", input_size=input_size, weights=weights, augment=augment)


@register(
    _spec(
        "resnet50",
        "ResNet50",
        23_608_214,
        "caffe preprocessing (fixed 1×1 conv, 12 params), bottleneck residual blocks (ReLU, Add), GAP, Dense 10",
        CAFFE_RAW,
    )
)
def resnet50(input_size: int = DEFAULT_SIZE, weights: str | None = None, augment: bool = False, **_: Any) -> Any:
    return _application("ResNet50", "resnet50", input_size=input_size, weights=weights, augment=augment, caffe=True)
