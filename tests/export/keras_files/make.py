"""Makes the small Keras files the safe-loading tests open (committed beside this script, so that those tests
refuse real Keras-made files without importing TensorFlow). Rerun after a Keras upgrade changes the format:

    python tests/export/keras_files/make.py
"""

from __future__ import annotations

from pathlib import Path

import keras

HERE = Path(__file__).resolve().parent


def main() -> None:
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]).save(HERE / "plain.keras")
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2, name="double_it")(inputs)
    keras.Model(inputs, outputs).save(HERE / "lambda.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(HERE / "legacy.h5")


if __name__ == "__main__":
    main()
