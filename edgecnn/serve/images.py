"""Uploads: decoded by the runtime's ``load_image_bytes`` (the same policy as a file, so a photo classified
over HTTP gets the answer ``Classifier.predict(path)`` gives); small ones are decoded on the event loop."""

from __future__ import annotations

import io

from PIL import Image

from edgecnn.errors import ImageTooLargeError
from edgecnn.runtime.images import load_image_bytes

__all__ = ["ImageTooLargeError", "is_small_image", "load_image_bytes"]

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
