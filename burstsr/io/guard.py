"""The size guard: frames larger than a pixel limit are refused from their header, before
anything is decoded or allocated (a corrupt or hostile header can claim any size)."""

from __future__ import annotations

import os
from pathlib import Path

from burstsr.errors import InputError

# Frames larger than this many pixels are refused before they are decoded (a corrupt or hostile
# header can claim any size); the largest camera sensors have about 150 MP.
MAX_PIXELS_DEFAULT = 150_000_000
MAX_PIXELS_VARIABLE = "BURSTSR_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel limit: ``$BURSTSR_MAX_PIXELS`` when set, else :data:`MAX_PIXELS_DEFAULT`."""
    text = os.environ.get(MAX_PIXELS_VARIABLE)
    if text is None:
        return MAX_PIXELS_DEFAULT
    try:
        value = int(float(text))
    except ValueError:
        raise InputError(f"{MAX_PIXELS_VARIABLE}={text}: expected a number of pixels") from None
    if value <= 0:
        raise InputError(f"{MAX_PIXELS_VARIABLE}={text}: expected a positive number of pixels")
    return value


def check_pixels(path: Path, height: int, width: int) -> None:
    limit = max_pixels()
    if height * width > limit:
        raise InputError(
            f"{path}: {width}x{height} ({height * width / 1e6:.0f} MP) is larger than the "
            f"{limit / 1e6:g} MP limit; set {MAX_PIXELS_VARIABLE} to allow more"
        )


def match_pillow_limit() -> None:
    """Raise Pillow's own decompression-bomb limit where ours allows more, so that reading a
    header with Pillow never refuses a frame this guard accepts."""
    from PIL import Image as PILImage

    limit = max_pixels()
    if PILImage.MAX_IMAGE_PIXELS is not None and PILImage.MAX_IMAGE_PIXELS * 2 < limit:
        PILImage.MAX_IMAGE_PIXELS = limit
