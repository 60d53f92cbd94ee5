"""MNIST / Fashion-MNIST MLPs and convnets from the course material (28×28 grayscale)."""

from __future__ import annotations

from typing import Any

from edgecnn.data.labels import DIGITS, FASHION
from edgecnn.runtime.metadata import Layout, OutputKind
from edgecnn.zoo.registry import GRAY, ZooSpec, register


def _keras() -> Any:
    from edgecnn._optional import require

    return require("keras")


def _mlp(name: str, hidden: tuple[tuple[int, str], ...]) -> Any:
    keras = _keras()
    layers = [keras.Input((28, 28), name="input"), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation=act) for units, act in hidden]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name=name)


def _mlp_spec(
    name: str,
    params: int,
    layers: str,
    acc: str,
    *,
    data: str = "mnist5k",
    labels: tuple[str, ...] = DIGITS,
    source: str = "course: MNIST MLP",
) -> ZooSpec:
    return ZooSpec(
        name=name,
        input_shape=(28, 28),
        params=params,
        output=OutputKind.softmax,
        labels=labels,
        layout=Layout.NHW,
        preprocess=GRAY,
        source=source,
        data=data,
        layers=layers,
        epochs=10,
        batch_size=64,
        reported_accuracy=acc,
    )


@register(_mlp_spec("mnist-mlp", 101_770, "Flatten, Dense 128 relu, Dense 10 softmax", "~97–98%"))
def mnist_mlp(**_: Any) -> Any:
    return _mlp("mnist-mlp", ((128, "relu"),))


@register(_mlp_spec("mnist-mlp-512", 407_050, "Flatten, Dense 512 relu, Dense 10 softmax", "98.17%"))
def mnist_mlp_512(**_: Any) -> Any:
    return _mlp("mnist-mlp-512", ((512, "relu"),))


@register(_mlp_spec("mnist-mlp-deep", 23_970, "Flatten, Dense 30 relu, Dense 10 relu, Dense 10 softmax", "96.46%"))
def mnist_mlp_deep(**_: Any) -> Any:
    return _mlp("mnist-mlp-deep", ((30, "relu"), (10, "relu")))


@register(
    _mlp_spec(
        "fashion-mlp",
        101_770,
        "Flatten, Dense 128 relu, Dense 10 softmax",
        "—",
        data="fashion-mnist",
        labels=FASHION,
        source="course: Fashion-MNIST MLP",
    )
)
def fashion_mlp(**_: Any) -> Any:
    return _mlp("fashion-mlp", ((128, "relu"),))


def _cnn_spec(name: str, params: int, layers: str, acc: str, source: str) -> ZooSpec:
    return ZooSpec(
        name=name,
        input_shape=(28, 28, 1),
        params=params,
        output=OutputKind.softmax,
        labels=DIGITS,
        layout=Layout.NHWC,
        preprocess=GRAY,
        source=source,
        data="mnist5k",
        layers=layers,
        epochs=20,  # early stopping (patience 4 on val_accuracy) usually ends it sooner
        batch_size=32,
        reported_accuracy=acc,
    )


@register(
    _cnn_spec(
        "mnist-cnn",
        93_322,
        "Conv 32, Pool, Conv 64, Pool, Conv 64, Flatten, Dense 64, Dense 10",
        "98.89% (5 epochs)",
        "course: MNIST convnet (TensorFlow tutorial style)",
    )
)
def mnist_cnn(**_: Any) -> Any:
    return small_cnn("mnist-cnn", (28, 28, 1), head_activation="softmax")


def small_cnn(name: str, input_shape: tuple[int, int, int], head_activation: str | None) -> Any:
    """The TensorFlow-tutorial convnet: Conv 32, Pool, Conv 64, Pool, Conv 64, Dense 64, Dense 10."""
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape, name="input"),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dense(10, activation=head_activation),
        ],
        name=name,
    )


def _convnet(name: str, pool: bool) -> Any:
    keras = _keras()
    L = keras.layers
    layers: list[Any] = [keras.Input((28, 28, 1), name="input"), L.Conv2D(32, 3, activation="relu")]
    if pool:
        layers.append(L.MaxPooling2D(2))
    layers.append(L.Conv2D(64, 3, activation="relu"))
    if pool:
        layers.append(L.MaxPooling2D(2))
    layers += [L.Conv2D(128, 3, activation="relu"), L.Flatten(), L.Dense(10, activation="softmax")]
    return keras.Sequential(layers, name=name)


@register(
    _cnn_spec(
        "mnist-convnet",
        104_202,
        "Conv 32, Pool, Conv 64, Pool, Conv 128, Flatten, Dense 10",
        "99.11% (5 epochs)",
        "course: Chollet, Deep Learning with Python, ch. 8 (functional convnet)",
    )
)
def mnist_convnet(**_: Any) -> Any:
    return _convnet("mnist-convnet", pool=True)


@register(
    _cnn_spec(
        "mnist-convnet-nopool",
        712_202,
        "Conv 32, Conv 64, Conv 128, Flatten, Dense 10",
        "—",
        "course: Chollet ch. 8, the same convnet without max-pooling (why pooling matters)",
    )
)
def mnist_convnet_nopool(**_: Any) -> Any:
    return _convnet("mnist-convnet-nopool", pool=False)


@register(
    _cnn_spec(
        "mnist-cnn-dropout",
        615_844,
        "Conv 28 (linear), Pool, Flatten, Dense 128, Dropout .5, Dense 70, Dropout .5, Dense 10",
        "—",
        "course: MNIST convnet with dropout",
    )
)
def mnist_cnn_dropout(**_: Any) -> Any:
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="input"),
            L.Conv2D(28, 3),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dropout(0.5),
            L.Dense(70, activation="relu"),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax"),
        ],
        name="mnist-cnn-dropout",
    )
