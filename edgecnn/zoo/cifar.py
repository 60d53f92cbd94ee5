"""The CIFAR-10 convnet from the course (32×32 RGB, logits head: the engine applies softmax)."""

from __future__ import annotations

from typing import Any

from edgecnn.data.labels import CIFAR10
from edgecnn.runtime.metadata import Layout, OutputKind
from edgecnn.zoo.mnist import small_cnn
from edgecnn.zoo.registry import RGB, ZooSpec, register


@register(
    ZooSpec(
        name="cifar10-cnn",
        input_shape=(32, 32, 3),
        params=122_570,
        output=OutputKind.logits,
        labels=CIFAR10,
        layout=Layout.NHWC,
        preprocess=RGB,
        source="course: TensorFlow CNN tutorial on CIFAR-10",
        data="cifar10",
        layers="Conv 32, Pool, Conv 64, Pool, Conv 64, Flatten, Dense 64, Dense 10 (logits)",
        epochs=10,
        reported_accuracy="~70% (10 epochs)",
        loss="sparse_categorical_crossentropy_from_logits",
    )
)
def cifar10_cnn(**_: Any) -> Any:
    return small_cnn("cifar10-cnn", (32, 32, 3), head_activation=None)
