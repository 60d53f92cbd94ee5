"""Conv1D telemetry classifier from the course (9 readings × 1 channel, sigmoid: normal vs anomaly)."""

from __future__ import annotations

from typing import Any

from edgecnn.runtime.metadata import Layout, OutputKind
from edgecnn.zoo.mnist import _keras
from edgecnn.zoo.registry import SIGNAL, ZooSpec, register


@register(
    ZooSpec(
        name="telemetry-conv1d",
        input_shape=(9, 1),
        params=67_073,
        output=OutputKind.sigmoid,
        labels=("normal", "anomaly"),
        layout=Layout.NWC,
        preprocess=SIGNAL,
        source="course: Conv1D classifier on machine telemetry windows",
        data="telemetry",
        layers="Conv1D 256 k4 same, MaxPool1D 2, Conv1D 128 k2 same, GlobalMaxPool1D, Dense 1 sigmoid",
        loss="binary_crossentropy",
        epochs=20,
        batch_size=32,
        reported_accuracy="91.9%",
    )
)
def telemetry_conv1d(**_: Any) -> Any:
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((9, 1), name="input"),
            L.Conv1D(256, 4, padding="same", activation="relu"),
            L.MaxPooling1D(2),
            L.Conv1D(128, 2, padding="same", activation="relu"),
            L.GlobalMaxPooling1D(),
            L.Dense(1, activation="sigmoid"),
        ],
        name="telemetry-conv1d",
    )
