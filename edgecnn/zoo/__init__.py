"""The course architectures and the keras.applications nets people deploy, by name.

Listing needs no TensorFlow; ``build`` imports Keras when called.

Example::

    from edgecnn import zoo

    zoo.names("mnist-*")
    model = zoo.build("mnist-cnn")   # a fresh, untrained keras.Model
    model = zoo.build("mobilenetv2", input_size=96, alpha=0.5)
"""

from __future__ import annotations

from typing import Any

from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.zoo import applications, catsdogs, cifar, mnist, telemetry, vgg  # noqa: F401  (registration)
from edgecnn.zoo.registry import ZooSpec, builder, get_spec, names


def build(name: str, **kwargs: Any) -> Any:
    """A fresh keras.Model of zoo architecture ``name`` (random init unless the builder takes weights)."""
    return builder(name)(**kwargs)


def metadata_for(name: str, input_size: int | None = None) -> ModelMetadata:
    """The edgecnn metadata an export of ``name`` carries (labels, input, preprocess, output)."""
    return get_spec(name).sized(input_size).metadata()


def compile_for_training(model: Any, name: str, learning_rate: float | None = None) -> Any:
    """Compile with the optimizer and loss the course used for this architecture."""
    from edgecnn._optional import require

    keras = require("keras")
    spec = get_spec(name)
    if spec.loss == "sparse_categorical_crossentropy_from_logits":
        loss: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = spec.loss
    opt_cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[spec.optimizer]
    optimizer = opt_cls(learning_rate=learning_rate) if learning_rate else opt_cls()
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


__all__ = ["ZooSpec", "build", "compile_for_training", "get_spec", "metadata_for", "names"]
