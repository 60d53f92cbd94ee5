"""The hostile folder every classify path is tested on (local and --ray): one place, so they cannot drift."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from conftest import write_png
from PIL import Image


def hostile_folder(root: Path) -> dict[str, bool]:
    """Valid images of every mode plus broken files; name -> should classify."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, bool] = {}
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    high_bit = {
        "I;16": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257),
        "I": Image.fromarray(rgb[..., 0].astype(np.int32) * 257),
        "F": Image.fromarray(rgb[..., 0].astype(np.float32) / 255.0),
    }
    for mode in ("L", "P", "RGBA", "CMYK", "1", "LA", "I;16", "I", "F"):
        img = high_bit.get(mode) or Image.fromarray(rgb).convert(mode)
        name = f"mode_{mode.replace(';', '')}.{'tiff' if mode in ('I;16', 'I', 'F', 'CMYK') else 'png'}"
        img.save(root / name)
        expect[name] = True
    Image.fromarray(rgb).save(root / "photo.jpg", quality=90)
    expect["photo.jpg"] = True
    exif_img = Image.fromarray(rgb)
    exif = exif_img.getexif()
    exif[0x0112] = 6  # rotated 90°
    exif_img.save(root / "exif_rotated.jpg", exif=exif)
    expect["exif_rotated.jpg"] = True
    frames = [Image.fromarray(np.full((20, 20, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    expect["animated.gif"] = True
    write_png(root / "ünïcode 名前.png")
    expect["ünïcode 名前.png"] = True
    (root / "zero.png").write_bytes(b"")
    expect["zero.png"] = False
    data = (root / "photo.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    expect["truncated.jpg"] = False
    (root / "text.png").write_text("hello, I am not an image")
    expect["text.png"] = False
    Image.new("L", (12000, 12000)).save(root / "bomb.png", optimize=True)  # 144 Mpx > Pillow's limit
    expect["bomb.png"] = False
    (root / "sub").mkdir()
    write_png(root / "sub" / "nested.png")
    expect["sub/nested.png"] = True
    (root / ".hidden.png").write_bytes(b"skip me")
    (root / "loop").symlink_to(root)  # a symlink loop must not hang
    expect["loop"] = False
    (root / "broken_link.png").symlink_to(root / "nowhere.png")
    expect["broken_link.png"] = False
    os.mkfifo(root / "fifo.png")  # opening a FIFO would block forever
    expect["fifo.png"] = False
    return expect
