"""Decode image files the way users expect, or raise ImageError naming the file and the problem.

EXIF orientation is applied; the first frame of an animation is used; 16-bit and float images are
scaled (not clipped) to 8 bits; transparency is composited onto white (the same policy in parity and
classification); Pillow's decompression-bomb guard stays on and its warning band is an error too.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from edgecnn.errors import ImageError, ImageTooLargeError

MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's default limit
MAX_FILE_BYTES = 512 * 1024**2
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _check_regular_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file (or a broken link)", path=path) from None
    except OSError as err:
        raise ImageError(f"{path}: unreadable ({err.strerror or err})", path=path) from err
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file", path=path)
    if st.st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)", path=path)
    if st.st_size > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"{path}: file too large ({st.st_size:,} bytes)", path=path)
    if not os.access(path, os.R_OK):
        raise ImageError(f"{path}: permission denied", path=path)


def load_image(
    path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """Open, fully decode and normalise one image file to mode L, RGB or RGBA (8-bit).

    ``draft_size`` (width, height): a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as it stays
    at least that large — several times faster when the model's input is much smaller than the photo.

    Raises:
        ImageError: not an image, truncated, too large (decompression bomb), unreadable, unsupported.
    """
    path = Path(path)
    _check_regular_file(path)
    return _decode(path, str(path), path, max_pixels, draft_size)


def load_image_bytes(
    data: bytes, *, name: str = "upload", max_pixels: int = MAX_IMAGE_PIXELS, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """``load_image`` for an image held in memory (an HTTP upload): the same policy, the same errors.

    Raises:
        ImageError: empty, not an image, truncated, unsupported; ImageTooLargeError for a bomb.
    """
    if not data:
        raise ImageError(f"{name}: empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"{name}: too large ({len(data):,} bytes)")
    return _decode(io.BytesIO(data), name, None, max_pixels, draft_size)


def _decode(
    source: Path | io.BytesIO, name: str, path: Path | None, max_pixels: int, draft_size: tuple[int, int] | None
) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.width * img.height > max_pixels:
                    raise _bomb(name, path, img.width * img.height, max_pixels)
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                if draft_size is not None and img.format == "JPEG" and img.mode in ("RGB", "L"):
                    img.draft(img.mode, draft_size)
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return to_8bit(img, name)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own guard fired first (one wording whichever check catches it: catch_warnings is
        # process-wide, so a decode thread may see the warning band as a plain warning, then our check)
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _bomb(name, path, int(found[1]) if found else None, max_pixels) from err
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format)", path=path) from None
    except OSError as err:
        text = str(err)
        if "truncated" in text.lower() or "image file is" in text.lower():
            raise ImageError(f"{name}: truncated image ({text})", path=path) from err
        raise ImageError(f"{name}: cannot decode ({text})", path=path) from err
    except (ValueError, SyntaxError, EOFError, MemoryError, KeyError, IndexError, TypeError) as err:
        raise ImageError(f"{name}: cannot decode ({type(err).__name__}: {err})", path=path) from err


def _bomb(name: str, path: Path | None, pixels: int | None, limit: int) -> ImageTooLargeError:
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return ImageTooLargeError(f"{name}: too large ({size}, limit {limit:,}); possible decompression bomb", path=path)


def to_8bit(img: Image.Image, path: str | Path = "<image>") -> Image.Image:
    """Convert any Pillow mode to L, RGB or RGBA with 8 bits per channel, scaling high bit depths."""
    mode = img.mode
    if mode in ("L", "RGB", "RGBA"):
        return img
    if mode in ("1", "P", "PA", "LA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX"):
        has_alpha = mode in ("PA", "LA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
        return img.convert("RGBA" if has_alpha else ("L" if mode == "1" else "RGB"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "I":
            arr = arr / 257.0 if arr.max(initial=0) > 255 else arr
        else:  # float images: 0..1 if they look normalised, else clip to 0..255
            arr = arr * 255.0 if arr.size and np.nanmax(arr) <= 1.0 else arr
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    raise ImageError(f"{path}: unsupported image mode {mode!r}", path=path)


def to_color_mode(img: Image.Image, color_mode: str) -> Image.Image:
    """L or RGB; transparency is composited onto white."""
    img = to_8bit(img)
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    if img.mode != color_mode:
        img = img.convert(color_mode)
    return img
