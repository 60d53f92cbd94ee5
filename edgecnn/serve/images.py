"""Decode an uploaded image from bytes exactly as ``edgecnn.runtime.images.load_image`` decodes a file.

The runtime's loader takes paths; an upload is bytes in memory. The policy is the same (bomb guard with its
warning band as an error, first frame, JPEG draft, EXIF orientation, 8-bit normalisation by the runtime's
own ``to_8bit``), so a photo classified over HTTP gets the answer ``Classifier.predict(path)`` gives.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from edgecnn.errors import ImageError
from edgecnn.runtime.images import MAX_IMAGE_PIXELS, to_8bit

UPLOAD = "upload"


class ImageTooLarge(ImageError):
    """More pixels than the limit: a decompression bomb, refused before decoding."""


INLINE_BYTES = 64 * 1024
INLINE_PIXELS = 128 * 128  # a decode this small takes less than a hand-off to a worker thread (~0.1-0.3 ms)


def is_small_image(data: bytes) -> bool:
    """True for an upload cheap enough to decode on the event loop: a small file whose header (read
    without decoding) says few pixels, one frame. Anything unreadable is left to the thread as well."""
    if len(data) > INLINE_BYTES:
        return False
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width * img.height <= INLINE_PIXELS and getattr(img, "n_frames", 1) == 1
    except Exception:  # not even a header: the thread's decode names the problem
        return False


def _bomb(name: str, pixels: int | None, limit: int) -> ImageTooLarge:
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return ImageTooLarge(f"{name}: too large ({size}, limit {limit:,}); possible decompression bomb")


def load_image_bytes(
    data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, draft_size: tuple[int, int] | None = None, name: str = UPLOAD
) -> Image.Image:
    """Open, fully decode and normalise one image held in memory to mode L, RGB or RGBA (8-bit).

    Raises:
        ImageError: empty, not an image, truncated, unsupported; ImageTooLarge for a decompression bomb.
    """
    if not data:
        raise ImageError(f"{name}: empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    raise _bomb(name, img.width * img.height, max_pixels)
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
        # Pillow's own guard fired first: the runtime's one wording (catch_warnings is process-wide, so a
        # decode thread may see the warning band as a plain warning, then the explicit check)
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _bomb(name, int(found[1]) if found else None, max_pixels) from err
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format)") from None
    except OSError as err:
        text = str(err)
        if "truncated" in text.lower() or "image file is" in text.lower():
            raise ImageError(f"{name}: truncated image ({text})") from err
        raise ImageError(f"{name}: cannot decode ({text})") from err
    except (ValueError, SyntaxError, EOFError, MemoryError, KeyError, IndexError, TypeError) as err:
        raise ImageError(f"{name}: cannot decode ({type(err).__name__}: {err})") from err
