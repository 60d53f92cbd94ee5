"""Cats-vs-dogs convnet from scratch (Chollet ch. 8): 180×180 RGB, Rescaling inside, sigmoid head."""

from __future__ import annotations

from typing import Any

from edgecnn.runtime.metadata import Layout, OutputKind
from edgecnn.zoo.mnist import _keras
from edgecnn.zoo.registry import RGB_RAW, ZooSpec, register


@register(
    ZooSpec(
        name="catsdogs-cnn",
        input_shape=(180, 180, 3),
        params=991_041,
        output=OutputKind.sigmoid,
        labels=("cat", "dog"),
        layout=Layout.NHWC,
        preprocess=RGB_RAW,
        source="course: Chollet, Deep Learning with Python, ch. 8 (cats vs dogs from scratch)",
        data="folder:catsdogs",
        layers="Rescaling, Conv 32/64/128/256/256 with 4 pools, Flatten, Dense 1 sigmoid",
        loss="binary_crossentropy",
        optimizer="rmsprop",
        epochs=30,
        batch_size=32,
        reported_accuracy="72–75%",
    )
)
def catsdogs_cnn(augment: bool = False, dropout: bool | None = None, **_: Any) -> Any:
    """With ``augment=True``: RandomFlip/Rotation/Zoom and Dropout .5 (inactive at inference)."""
    keras = _keras()
    L = keras.layers
    inputs = keras.Input((180, 180, 3), name="input")
    x = inputs
    if augment:
        x = L.RandomFlip("horizontal")(x)
        x = L.RandomRotation(0.1)(x)
        x = L.RandomZoom(0.2)(x)
    x = L.Rescaling(1.0 / 255)(x)
    for filters, pool in ((32, True), (64, True), (128, True), (256, True), (256, False)):
        x = L.Conv2D(filters, 3, activation="relu")(x)
        if pool:
            x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    if augment if dropout is None else dropout:
        x = L.Dropout(0.5)(x)
    outputs = L.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="catsdogs-cnn")
